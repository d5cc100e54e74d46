"""`python3 build.py demo`: renders the bundled Spot from a ring of views into a contact sheet."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .devices import pick_device
from .images import contact_sheet, load_image, save_image
from .obj_io import read_obj
from .render import MeshTensors, render
from .tuning import tune_allocator
from .views import ring_cameras

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "data" / "spot"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build.py demo", description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "out" / "demo"), help="output folder (default out/demo)")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    tune_allocator()

    start = time.perf_counter()
    device = pick_device(args.device)
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    texture = torch.from_numpy(load_image(SPOT / "spot_texture.png")).to(device)
    mesh_t = MeshTensors.from_mesh(mesh, device)
    background = torch.ones(3, device=device)
    images = []
    for camera in ring_cameras(mesh.center, mesh.radius, args.views, elevation_deg=20.0):
        image = render(mesh_t, camera, texture, args.size, supersample=2, background=background)
        images.append(image.cpu().numpy())
    out = Path(args.out)
    sheet_path = out / "spot_views.png"
    save_image(sheet_path, contact_sheet(images, columns=min(4, args.views)))
    print(f"rendered {args.views} views of Spot ({len(mesh.faces)} triangles) at {args.size}x{args.size} on {device} "
          f"in {time.perf_counter() - start:.1f} s -> {sheet_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
