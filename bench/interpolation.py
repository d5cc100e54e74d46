"""`python3 build.py bench interpolate`: aligned interpolation against independent frames, side by side in one
run. Spot morphs from one painting to another over N frames, both ways, at the same steps and settings;
the report gives the mean texel difference between consecutive frames and the frames' final losses, and a
contact sheet shows every frame rendered from one view (top: aligned, bottom: independent)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from backend.formats.images import contact_sheet, load_image, save_image
from backend.formats.obj import read_obj
from backend.render import MeshTensors, render
from backend.style.sequence import stylize_sequence
from backend.style.settings import StyleSettings
from backend.tuning import tune_allocator
from backend.views import ring_cameras

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "data" / "spot"
STYLES = ROOT / "data" / "styles"


def views_of(mesh, frames: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Each frame on the mesh, from one three-quarter view."""
    tensors = MeshTensors.from_mesh(mesh, torch.device("cpu"))
    camera = ring_cameras(mesh.center, mesh.radius, 8)[1]
    with torch.no_grad():
        return [render(tensors, camera, torch.from_numpy(f), size, supersample=2, background=1.0).numpy() for f in frames]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="build.py bench interpolate")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--texture-size", type=int, default=256)
    parser.add_argument("--render-size", type=int, default=128)
    parser.add_argument("--style", default=str(STYLES / "starry_night.jpg"))
    parser.add_argument("--style-to", default=str(STYLES / "wave.jpg"))
    parser.add_argument("--from-original", action="store_true", help="morph from Spot's texture to --style instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "out" / "bench" / "interpolate"))
    args = parser.parse_args(argv)
    tune_allocator()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mesh, original = read_obj(SPOT / "spot_triangulated.obj"), load_image(SPOT / "spot_texture.png")
    style, style_to = load_image(args.style), load_image(args.style_to)
    rows, renders = {}, {}
    for name, independent in (("aligned", False), ("independent", True)):
        settings = StyleSettings(steps=args.steps, texture_size=args.texture_size, render_size=args.render_size,
                                 seed=args.seed, device="cpu")
        started = time.perf_counter()
        result = stylize_sequence(mesh, style, None if args.from_original else style_to, settings, args.frames, original,
                                  from_original=args.from_original, independent=independent)
        report = result.report
        rows[name] = {"mean_consecutive_difference": report["mean_consecutive_difference"],
                      "consecutive_difference": report["consecutive_difference"],
                      "final_losses": report["final_losses"], "mean_final_loss": float(np.mean(report["final_losses"])),
                      "seconds": time.perf_counter() - started, "features": report["features"]}
        renders[name] = views_of(mesh, result.frames, 192)
        for number, frame in enumerate(result.frames):
            save_image(out / name / f"frame_{number:04d}.png", frame)
        print(f"{name:12s} mean consecutive difference {report['mean_consecutive_difference']:.4f}, "
              f"final loss {rows[name]['mean_final_loss']:.4f}, {rows[name]['seconds']:.0f} s", flush=True)
    aligned, independent = rows["aligned"], rows["independent"]
    summary = {
        "frames": args.frames, "steps": args.steps, "texture_size": args.texture_size, "render_size": args.render_size,
        "morph": f"spot_texture.png -> {Path(args.style).name}" if args.from_original else
                 f"{Path(args.style).name} -> {Path(args.style_to).name}", "rows": rows,
        "difference_ratio": aligned["mean_consecutive_difference"] / independent["mean_consecutive_difference"],
        "loss_ratio": aligned["mean_final_loss"] / independent["mean_final_loss"],
    }
    save_image(out / "contact_sheet.png", contact_sheet(renders["aligned"] + renders["independent"], args.frames))
    save_image(out / "strip.png", contact_sheet(renders["aligned"], args.frames))
    (out / "interpolate.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"aligned / independent: consecutive difference {summary['difference_ratio']:.3f}, "
          f"final loss {summary['loss_ratio']:.3f}; wrote {out}")
    return 0
