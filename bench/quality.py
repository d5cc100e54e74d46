"""`python3 build.py bench quality`: restyle meshes with paintings and score the results.

For each (mesh, painting) pair: run the engine with the default settings (the demo's sizes and step
count unless given), write a contact sheet under out/bench/quality/ (top row: the original texture and
renders of it; bottom row: the painting and renders of the result), and score the result with a
network the engine does not optimize (quality_score.py). A good result is at least as close to the
painting's statistics as the painting pasted on as the texture (`vs_pasted` <= 1), while keeping the
object's structure (`structure` well below the pasted painting's).

On the surface (surface_scores.py): the seam step ratio (about 1 when no seam shows), the seam balance
(the two sides' band colours apart, over the painting's spread; the original's beside it), the split
(how far whole patches of the surface are lighter or darker than the original's patches say, over the
painting's luminance spread; the pasted painting's beside it), the local
contrast of the renders against the painting's at the same scale (1 = strokes as vivid as the painting's) and
the dense islands' contrast over the rest's (`dense`: islands packed more densely than the rest come out
calmer; "-" where the mesh has none). `vsp_cy`, `con_cy`, `sea_cy`: vs_pasted, the local contrast and the seam step
ratio again on Blender Cycles' renders from the same views (cycles_check.py: no mip blur; the pasted painting's contrast there as
`contrast_cycles_pasted` in the JSON; "-" where bpy does not import, or with --no-cycles).

Meshes: the bundled Spot, Bob and Blub, and procedural ones that the bundled three do not cover (a sphere
whose hemispheres are two UV islands, a thin tube with stretched UVs, a sphere cut into many small
islands, a sphere whose northern cap is an island packed twice as densely as the rest, a torus whose one island
wraps both ways with texels stretched 2.9 times along the ring, a cube whose six faces each take the whole texture:
overlapping UVs), each with a uniform light original.
`--mesh OBJ[:TEXTURE]` and `--style IMAGE` score others.
`--set NAME=VALUE` overrides any engine setting (for tuning); `--seeds N` runs N seeds from the settings' one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from examples.demo import DEMO
from backend.devices import pick_device
from backend.errors import StyleTexError
from backend.formats.images import contact_sheet, load_image, save_image
from backend.mesh import Mesh, make_mesh
from backend.formats.obj import read_obj
from backend.mesh.primitives import (cube, dense_cap_sphere, many_island_sphere, stretched_tube, torus,
                                     two_island_sphere)
from backend.mesh.seams import find_seams
from backend.mesh.uv_room import dense_islands
from backend.render import MeshTensors
from backend.style.engine import resize_longer_side, stylize
from backend.texture.transfer import resize_square
from backend.style.settings import StyleSettings
from backend.texture.transfer import transfer_texture

from .cycles_check import blender_available, cycles_renders
from .quality_score import Scorer, laplacian_energy, score_cameras
from .surface_scores import (colour_spread, dense_island_contrast, local_contrast, luminance_spread,
                             region_balance, seam_balance, seam_step_ratio, surface_regions, view_pairs)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
MESHES = {
    "spot": (DATA / "spot" / "spot_triangulated.obj", DATA / "spot" / "spot_texture.png"),
    "bob": (DATA / "bob" / "bob_tri.obj", DATA / "bob" / "bob_diffuse.png"),
    "blub": (DATA / "blub" / "blub_triangulated.obj", DATA / "blub" / "blub_texture.png"),
}
PROCEDURAL = {"sphere2": two_island_sphere, "tube": stretched_tube, "islands": many_island_sphere, "cap": dense_cap_sphere,
              "torus": torus, "cube": cube}
LIGHT = (0.86, 0.83, 0.76)  # the procedural meshes' original: a uniform light colour
PAINTINGS = [DATA / "styles" / name for name in ("starry_night.jpg", "wave.jpg", "shipwreck.jpg")]


def load_model(name: str, obj: Path | None, texture: Path | None) -> tuple[Mesh, np.ndarray | None]:
    """A bundled or given OBJ with its texture, or a procedural mesh with a uniform light 64^2 original."""
    if name in PROCEDURAL and obj is None:
        return PROCEDURAL[name](), np.broadcast_to(np.float32(LIGHT), (64, 64, 3)).copy()
    return read_obj(obj), load_image(texture) if texture else None


def parse_overrides(pairs: list[str]) -> dict:
    """NAME=VALUE strings -> typed StyleSettings overrides."""
    types = {f.name: type(f.default) for f in fields(StyleSettings)}
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in types:
            raise StyleTexError(f"--set {pair}: no setting {name!r}")
        kind = types[name]
        if kind is bool:
            if value not in ("true", "false"):
                raise StyleTexError(f"--set {pair}: {value!r} is not true or false")
            out[name] = value == "true"
            continue
        try:
            out[name] = None if value == "none" else (kind(value) if kind in (int, float, str) else value)
        except ValueError:
            raise StyleTexError(f"--set {pair}: {value!r} is not a {kind.__name__}") from None
    return out


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """The whole image, letterboxed into size x size on white."""
    small = resize_longer_side(image, size, torch.device("cpu"))[0].permute(1, 2, 0).numpy()
    th, tw = small.shape[:2]
    out = np.ones((size, size, 3), np.float32)
    y, x = (size - th) // 2, (size - tw) // 2
    out[y : y + th, x : x + tw] = small.clip(0, 1)
    return out


def run_pair(name: str, obj: Path | None, texture: Path | None, painting_path: Path, settings: StyleSettings,
             scorer: Scorer, out: Path, cycles: bool = False, judge_roll: float = 0.0) -> dict:
    mesh, original = load_model(name, obj, texture)
    painting = load_image(painting_path)
    started = time.perf_counter()
    result = stylize(mesh, painting, settings, original)
    seconds = time.perf_counter() - started
    if result.uvs is not None:  # restyled in new UVs (--set unwrap=even): everything is scored on them
        if original is not None:
            original = transfer_texture(original[..., :3], mesh.uvs, result.uvs, settings.texture_size)
        mesh = make_mesh(mesh.positions, mesh.faces, result.uvs, name)

    mesh_t = MeshTensors.from_mesh(mesh, scorer.device)
    cameras = score_cameras(mesh.center, mesh.radius, judge_roll)
    painting_grams = scorer.painting_grams(painting)
    pasted = resize_square(painting, settings.texture_size)
    row = {"mesh": name, "painting": painting_path.stem, "seconds": seconds,
           "seconds_per_step": result.report["seconds_per_step"], "features": result.report["features"],
           "spectrum_size": result.report["spectrum_size"], "filter": result.report["filter"]}
    scored = {"result": result.texture, "pasted": pasted}
    if original is not None:
        scored["original"] = original
    fragments, masks = scorer.views(mesh_t, cameras)
    views, feats = {}, {}
    for key, tex in scored.items():
        views[key] = scorer.renders(mesh_t, fragments, tex)
        feats[key] = scorer.features(views[key], masks)
        row[f"style_{key}"] = scorer.style_distance(feats[key], painting_grams)
    row["vs_pasted"] = row["style_result"] / row["style_pasted"]
    row["speckle"] = laplacian_energy(views["result"], masks) / scorer.painting_speckle(painting)
    labels = find_seams(mesh, settings.boundary == "wrap").island
    island = torch.from_numpy(labels).to(scorer.device)
    pairs = [view_pairs(mesh_t, f, island, settings.boundary == "wrap") for f in fragments]
    painting_image = resize_longer_side(painting, scorer.render_size, scorer.device)
    spread = colour_spread(painting_image)
    row["seam_ratio"] = seam_step_ratio(views["result"], pairs)
    row["seam_ratio_pasted"] = seam_step_ratio(views["pasted"], pairs)  # a painting cut at every seam
    row["balance"] = seam_balance(views["result"], pairs, spread)
    if original is not None:
        row["balance_original"] = seam_balance(views["original"], pairs, spread)
    regions = surface_regions(mesh_t)
    luma_spread = luminance_spread(painting_image)
    row["split"] = region_balance(views["result"], views.get("original"), fragments, regions, luma_spread)
    row["split_pasted"] = region_balance(views["pasted"], views.get("original"), fragments, regions, luma_spread)
    painting_contrast = local_contrast(painting_image)
    row["contrast"] = local_contrast(views["result"], masks) / painting_contrast
    row["contrast_pasted"] = local_contrast(views["pasted"], masks) / painting_contrast
    if cycles:  # the same two scores on another renderer's views
        seen = dict(zip(("result", "pasted"), cycles_renders(mesh, [result.texture, pasted], cameras, scorer.render_size)))
        distance = {key: scorer.style_distance(scorer.features(images.to(scorer.device), covered.float().to(scorer.device)),
                                               painting_grams) for key, (images, covered) in seen.items()}
        row["style_result_cycles"], row["style_pasted_cycles"] = distance["result"], distance["pasted"]
        row["vs_pasted_cycles"] = distance["result"] / distance["pasted"]
        row["contrast_cycles"] = local_contrast(*seen["result"]) / painting_contrast
        row["contrast_cycles_pasted"] = local_contrast(*seen["pasted"]) / painting_contrast
        # The same cameras give the same pixels: our views' seam pairs hold for Cycles' too.
        row["seam_ratio_cycles"] = seam_step_ratio(seen["result"][0].to(scorer.device), pairs)
        row["seam_ratio_cycles_pasted"] = seam_step_ratio(seen["pasted"][0].to(scorer.device), pairs)
    dense = dense_islands(mesh, labels)
    row["dense_contrast"] = (dense_island_contrast(views["result"], fragments, torch.from_numpy(dense).to(scorer.device))
                             if dense is not None else None)
    if original is not None:
        row["vs_original"] = row["style_result"] / row["style_original"]
        row["structure_result"] = scorer.structure_distance(feats["result"], feats["original"], masks)
        row["structure_pasted"] = scorer.structure_distance(feats["pasted"], feats["original"], masks)

    size = scorer.render_size
    to_hwc = lambda t: t.permute(1, 2, 0).cpu().numpy()  # noqa: E731
    top = [thumbnail(original if original is not None else np.ones((8, 8, 3), np.float32), size)]
    top += [to_hwc(v) for v in views.get("original", views["pasted"])[:4]]
    bottom = [thumbnail(painting, size)] + [to_hwc(v) for v in views["result"][:4]]
    seed = f"_seed{settings.seed}" if settings.seed else ""
    sheet = out / f"{name}_{painting_path.stem}{seed}.png"
    save_image(sheet, contact_sheet(top + bottom, columns=5))
    save_image(out / f"{name}_{painting_path.stem}{seed}_texture.png", result.texture)
    row["seed"] = settings.seed
    row["sheet"] = str(sheet.relative_to(ROOT)) if sheet.is_relative_to(ROOT) else str(sheet)
    return row


def print_row(row: dict) -> None:
    structure = (f"{row['structure_result']:9.3f} {row['structure_pasted']:9.3f}" if "structure_result" in row
                 else f"{'-':>9s} {'-':>9s}")
    original = f"{row['style_original']:8.3f}" if "style_original" in row else f"{'-':>8s}"
    balance_original = f"{row['balance_original']:6.3f}" if "balance_original" in row else f"{'-':>6s}"
    dense = f"{row['dense_contrast']:5.2f}" if row.get("dense_contrast") is not None else "-"
    cycles = (f"{row['vs_pasted_cycles']:6.3f} {row['contrast_cycles']:6.2f} {row['seam_ratio_cycles']:6.2f}"
              if "contrast_cycles" in row else f"{'-':>6s} {'-':>6s} {'-':>6s}")
    rows, columns = row["spectrum_size"]
    spectrum = str(rows) if rows == columns else f"{rows}x{columns}"
    print(f"{row['mesh']:<8s} {row['painting']:<14s} {row['seed']:4d} {original} {row['style_pasted']:8.3f} "
          f"{row['style_result']:8.3f} {row['vs_pasted']:9.3f} {structure} {row['speckle']:7.2f} {row['seam_ratio']:6.2f} "
          f"{row['balance']:7.3f} {balance_original} {row['split']:6.3f} {row['split_pasted']:7.3f} {row['contrast']:8.2f} "
          f"{cycles} {dense:>5s} {spectrum:>8s} {row['seconds']:7.1f}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build.py bench quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mesh", action="append", default=[], metavar="OBJ[:TEXTURE]",
                        help="mesh to restyle (repeatable; default: the bundled Spot, Bob and Blub)")
    parser.add_argument("--style", action="append", default=[], metavar="IMAGE",
                        help="painting (repeatable; default: the bundled three)")
    parser.add_argument("--only", help=f"comma-separated meshes ({','.join([*MESHES, *PROCEDURAL])})")
    parser.add_argument("--seeds", type=int, default=1,
                        help="run each pair with N seeds, from the settings' seed (0 unless --set seed=S) on")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="engine setting override")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench" / "quality"))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--no-cycles", action="store_true", help="skip the scores on Blender Cycles' renders")
    parser.add_argument("--judge-roll", type=float, default=0.0, metavar="DEGREES",
                        help="turn the judge's eight views about their lines of sight by this angle, one way and the "
                             "other in turn (default 0: upright, as a model is mostly seen)")
    args = parser.parse_args(argv)
    try:
        # The demo's sizes and steps: what a CPU user runs. Others through --set.
        settings = replace(StyleSettings(**DEMO, device=args.device), **parse_overrides(args.set)).validate()
        if args.mesh:
            meshes = {}
            for spec in args.mesh:
                obj, _, tex = spec.partition(":")
                meshes[Path(obj).stem] = (Path(obj), Path(tex) if tex else None)
        else:
            known = {**MESHES, **{n: (None, None) for n in PROCEDURAL}}
            names = args.only.split(",") if args.only else list(known)
            meshes = {n: known[n] for n in names if n in known}
            if len(meshes) != len(names):
                raise StyleTexError(f"--only: known meshes are {', '.join(known)}")
        if args.seeds < 1:
            raise StyleTexError(f"--seeds must be at least 1, got {args.seeds}")
        paintings = [Path(p) for p in args.style] or PAINTINGS
        device = pick_device(args.device)
        scorer = Scorer(device)
        cycles = not args.no_cycles and blender_available()
        out = Path(args.out)
        print(f"quality: {settings.steps} steps, texture {settings.texture_size}^2, renders {settings.render_size}^2, "
              f"features {settings.features}; scored by EfficientNet-Lite1 over 8 fixed views"
              + (f" turned by ±{args.judge_roll:g}°" if args.judge_roll else ""))
        print(f"{'mesh':<8s} {'painting':<14s} {'seed':>4s} {'original':>8s} {'pasted':>8s} {'result':>8s} {'vs_pasted':>9s} "
              f"{'struct':>9s} {'struct_p':>9s} {'speckle':>7s} {'seams':>6s} {'balance':>7s} {'bal_o':>6s} {'split':>6s} "
              f"{'split_p':>7s} {'contrast':>8s} {'vsp_cy':>6s} {'con_cy':>6s} {'sea_cy':>6s} {'dense':>5s} {'spectrum':>8s} {'seconds':>7s}")
        rows = []
        for name, (obj, tex) in meshes.items():
            for painting in paintings:
                for seed in range(settings.seed, settings.seed + args.seeds):
                    rows.append(run_pair(name, obj, tex, painting, replace(settings, seed=seed), scorer, out, cycles,
                                         args.judge_roll))
                    print_row(rows[-1])
    except StyleTexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {"median_vs_pasted": statistics.median(r["vs_pasted"] for r in rows),
               "worst_vs_pasted": max(r["vs_pasted"] for r in rows),
               "pairs_at_least_as_close_as_pasted": sum(r["vs_pasted"] <= 1 for r in rows), "pairs": len(rows)}
    print(f"median vs_pasted {summary['median_vs_pasted']:.3f}, worst {summary['worst_vs_pasted']:.3f}; "
          f"{summary['pairs_at_least_as_close_as_pasted']}/{len(rows)} pairs at least as close as the pasted painting")
    report = {"settings": settings.to_dict(), "rows": rows, **summary}
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / 'quality.json'} and {len(rows)} contact sheets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
