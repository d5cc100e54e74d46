"""`python -m backend render`: one view of a mesh, with its texture or a UV checker."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .arguments import finite_float, positive_int, vector3
from ..devices import pick_device
from ..errors import StyleTexError
from ..formats.images import load_image, save_image, uv_checker
from ..formats.model import read_model
from ..raster import MAX_SIZE
from ..render import MeshTensors, rasterize_view, shade
from ..texture import interpolate
from ..texture.sample import BOUNDARIES, FILTERS
from ..views import Camera


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mesh", help="OBJ or glTF (.glb/.gltf) file with texture coordinates")
    parser.add_argument("--texture", help="texture image (default: a UV checker)")
    parser.add_argument("--eye", type=vector3, required=True, help="camera position X,Y,Z (Blender world, Z up)")
    parser.add_argument("--target", type=vector3, help="point looked at (default: the bounding-box centre)")
    parser.add_argument("--up", type=vector3, default=(0.0, 0.0, 1.0), help="up direction (default 0,0,1)")
    parser.add_argument("--fov", type=finite_float, required=True, help="vertical field of view in degrees")
    parser.add_argument("--size", type=positive_int, required=True, help="image width and height in pixels")
    parser.add_argument("--near", type=finite_float, default=0.1, help="near plane distance (default 0.1)")
    parser.add_argument("--far", type=finite_float, default=100.0, help="far plane distance (default 100)")
    parser.add_argument("--out", required=True, help="output image (PNG)")
    parser.add_argument("--uv-out", help="write float32 (N, N, 3) u, v, coverage to this .npy file")
    parser.add_argument("--filter", choices=FILTERS, default="linear-mipmap-linear", help="texture filter")
    parser.add_argument("--boundary", choices=BOUNDARIES, default="wrap", help="texture addressing")
    parser.add_argument("--supersample", type=positive_int, default=1, help="render k times larger and average")
    parser.add_argument("--background", type=vector3, default=(0.0, 0.0, 0.0), help="background colour R,G,B in [0, 1]")
    parser.add_argument("--obj-up", choices=("Y", "Z"), default="Y", help="up axis of the OBJ file (default Y, as Blender imports)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.size * args.supersample > MAX_SIZE:
        raise StyleTexError(f"--size x --supersample must be at most {MAX_SIZE}, got {args.size * args.supersample}")
    model = read_model(args.mesh, args.obj_up)
    mesh, embedded = model.mesh, model.texture
    target = args.target if args.target is not None else tuple(float(c) for c in mesh.center)
    camera = Camera(args.eye, target, args.up, args.fov, args.near, args.far)
    texture = load_image(args.texture) if args.texture else embedded[..., :3] if embedded is not None else uv_checker()
    device = pick_device(args.device)
    mesh_t = MeshTensors.from_mesh(mesh, device)
    texture_t = torch.from_numpy(texture).to(device)
    background = torch.tensor(args.background, dtype=torch.float32, device=device)

    fragments = rasterize_view(mesh_t, camera, args.size * args.supersample)
    image = shade(fragments, mesh_t.uvs, texture_t, args.filter, args.boundary, background)
    if args.supersample > 1:
        image = torch.nn.functional.avg_pool2d(image.permute(2, 0, 1)[None], args.supersample)[0].permute(1, 2, 0)
    save_image(args.out, image.cpu().numpy())

    if args.uv_out:
        if args.supersample > 1:
            fragments = rasterize_view(mesh_t, camera, args.size)
        uv = interpolate(mesh_t.uvs, fragments)
        coverage = fragments.mask.to(torch.float32)[..., None]
        uv_path = Path(args.uv_out)
        try:
            uv_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(uv_path, torch.cat([uv, coverage], dim=-1).cpu().numpy().astype(np.float32))
        except OSError as exc:
            raise StyleTexError(f"{uv_path}: cannot write the UV file ({exc.strerror or exc})") from None
    return 0
