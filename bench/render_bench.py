"""Renderer rows: rasterization, texture sampling, and the renderer-over-network ratio."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torchvision

from backend.formats.obj import read_obj
from backend.mesh.primitives import uv_sphere
from backend.render import MeshTensors, clip_positions, shade
from backend.raster import rasterize
from backend.texture import sample
from backend.views import orbit_camera

from .timing import interleaved_medians, median_seconds

ROOT = Path(__file__).resolve().parent.parent
VIEW = (1.0, -1.0, 0.4)  # an oblique view direction


def dense_mesh():
    """A 510,720-triangle sphere: the 'large mesh' of the benchmarks."""
    return uv_sphere(400, 640)


def vgg16_to_relu5_1(device: torch.device) -> torch.nn.Module:
    """VGG-16 features up to relu5_1, the deepest layer a Gatys style loss reads (random weights:
    timing does not depend on the values)."""
    net = torchvision.models.vgg16(weights=None).features[:26].to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def run(device: torch.device, quick: bool) -> list[dict]:
    repeats = 3 if quick else 5
    rows: list[dict] = []
    meshes = {"spot": read_obj(ROOT / "data" / "spot" / "spot_triangulated.obj"), "sphere510k": dense_mesh()}
    for name, mesh in meshes.items():
        mesh_t = MeshTensors.from_mesh(mesh, device)
        clip = clip_positions(mesh_t, orbit_camera(mesh.center, mesh.radius, VIEW))
        for size in (256, 512, 1024):
            seconds = median_seconds(lambda: rasterize(clip, mesh_t.faces, size, orientation=mesh_t.orientation), device, repeats)
            rows.append({"name": f"rasterize {name} ({len(mesh.faces)} tris) {size}^2", "seconds": seconds})

    # Sampler alone: every pixel of a 512^2 view looks up a random UV with footprints of ~2 texels.
    gen = torch.Generator().manual_seed(0)
    uv = torch.rand(512 * 512, 2, generator=gen).to(device)
    for tex_size in (1024, 2048):
        texture = torch.rand(tex_size, tex_size, 3, generator=gen).to(device).requires_grad_()
        uv_dxy = torch.full((len(uv), 2, 2), 2.0 / tex_size, device=device)
        for filt in ("linear", "linear-mipmap-linear"):

            def step() -> None:
                texture.grad = None
                sample(texture, uv, uv_dxy, filter=filt).sum().backward()

            seconds = median_seconds(step, device, repeats)
            rows.append({"name": f"sample fwd+bwd {filt}, {tex_size}^2 texture, 512^2 lookups", "seconds": seconds})

    net = vgg16_to_relu5_1(device)
    image = torch.rand(1, 3, 512, 512, device=device).requires_grad_()

    def network_step() -> None:
        image.grad = None
        net(image).square().mean().backward()

    # The renderer's whole share of one training view: rasterize, interpolate UVs, sample + backward. Both
    # meshes are closed, so their back faces are culled, as every render of the engine does.
    texture = torch.rand(1024, 1024, 3, generator=gen).to(device).requires_grad_()

    def view_step_of(mesh) -> Callable[[], None]:
        mesh_t = MeshTensors.from_mesh(mesh, device)
        clip = clip_positions(mesh_t, orbit_camera(mesh.center, mesh.radius, VIEW))

        def step() -> None:
            texture.grad = None
            shade(rasterize(clip, mesh_t.faces, 512, orientation=mesh_t.orientation), mesh_t.uvs, texture).sum().backward()

        return step

    dense, spot, vgg = interleaved_medians(
        [view_step_of(meshes["sphere510k"]), view_step_of(meshes["spot"]), network_step], device, 2 * repeats + 1
    )
    rows.append({"name": "VGG-16 to relu5_1 fwd+bwd to input, 512^2", "seconds": vgg})
    rows.append({"name": "render view spot 512^2 (raster+interp+sample fwd/bwd)", "seconds": spot})
    rows.append({"name": "render view 510k tris 512^2 (raster+interp+sample fwd/bwd)", "seconds": dense})
    rows.append({"name": "raster_sample_over_vgg16_512_spot", "ratio": spot / vgg})
    rows.append({"name": "raster_sample_over_vgg16_512", "ratio": dense / vgg})
    return rows
