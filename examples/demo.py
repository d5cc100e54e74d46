"""`python3 build.py demo`: stylizes the bundled Spot with The Starry Night.

Writes out/demo/: the texture (spot_styled.png), a before/after contact sheet from several views
(spot_before_after.png) and the run's report (report.json). The network is `auto` unless asked
otherwise: the pretrained EfficientNet-Lite0 that installs with the project on the CPU, VGG-19 on
CUDA when its weights are on disk. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from backend.devices import pick_device
from backend.errors import StyleTexError
from backend.features.network import KINDS
from backend.formats.images import contact_sheet, load_image, save_image
from backend.formats.obj import read_obj
from backend.render import MeshTensors, render
from backend.style.engine import stylize
from backend.style.settings import StyleSettings
from backend.commands.job import ProgressBar
from backend.tuning import tune_allocator
from backend.views import ring_cameras

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "data" / "spot"
STYLE = ROOT / "data" / "styles" / "starry_night.jpg"
# A CPU-sized job (the defaults of StyleSettings follow the reference's 512^2 renders and 400 steps).
DEMO = {"steps": 300, "texture_size": 1024, "render_size": 256}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build.py demo", description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "out" / "demo"), help="output folder (default out/demo)")
    parser.add_argument("--steps", type=int, default=DEMO["steps"])
    parser.add_argument("--texture-size", type=int, default=DEMO["texture_size"])
    parser.add_argument("--render-size", type=int, default=DEMO["render_size"])
    parser.add_argument("--features", default="auto", choices=KINDS)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    tune_allocator()
    try:
        return run(args)
    except StyleTexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    device = pick_device(args.device)
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    original = load_image(SPOT / "spot_texture.png")
    style = load_image(STYLE)
    settings = StyleSettings(steps=args.steps, texture_size=args.texture_size, render_size=args.render_size,
                             features=args.features, device=args.device)
    print(f"stylizing Spot ({len(mesh.faces)} triangles) with {STYLE.name}: {settings.steps} steps, "
          f"texture {settings.texture_size}^2, renders {settings.render_size}^2, on {device}")
    result = stylize(mesh, style, settings, original, ProgressBar(False, None))

    out = Path(args.out)
    save_image(out / "spot_styled.png", result.texture)
    mesh_t = MeshTensors.from_mesh(mesh, device)
    views = []
    for texture in (original, result.texture):
        texture_t = torch.from_numpy(texture).to(device)
        for camera in ring_cameras(mesh.center, mesh.radius, 4, elevation_deg=20.0):
            views.append(render(mesh_t, camera, texture_t, 256, supersample=2, background=1.0).cpu().numpy())
    save_image(out / "spot_before_after.png", contact_sheet(views, columns=4))
    (out / "report.json").write_text(json.dumps(result.report, indent=2) + "\n")
    r = result.report
    if r["unwrap"] == "round-trip":
        print(f"UVs: {r['unwrap_reason']}")
    print(f"done in {time.perf_counter() - started:.0f} s with {r['features']} ({r['seconds_per_step']:.2f} s/step, "
          f"coverage {100 * r['coverage']:.1f} %): {out / 'spot_styled.png'}, {out / 'spot_before_after.png'}"
          + (f"\nnote: {r['quality_note']}" if r["quality_note"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
