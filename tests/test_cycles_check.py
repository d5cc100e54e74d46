"""The quality benchmark's second renderer: Blender's Cycles (bench/cycles_check.py), run through the real bpy.

Cycles' renders must show what ours show, pixel for pixel (same cameras, same UV convention), and, where a UV
layout stretches its texels on the surface, keep the texture's contrast that trilinear filtering blurs away (and the
anisotropic filter, the judge's, mostly keeps).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.mesh.primitives import stretched_tube, torus
from backend.render import MeshTensors, rasterize_view, shade
from backend.texture.transfer import resize_square
from bench.cycles_check import blender_available, cycles_renders
from bench.quality_score import score_cameras
from bench.surface_scores import local_contrast

from tests.test_quality import SPOT, STARRY

pytestmark = pytest.mark.skipif(not blender_available(), reason="bpy is installed with the dev requirements")


def _ours(mesh, texture: np.ndarray, cameras, size: int, filter: str) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = MeshTensors.from_mesh(mesh)
    fragments = [rasterize_view(tensors, camera, size) for camera in cameras]
    table = torch.from_numpy(np.ascontiguousarray(texture[..., :3], dtype=np.float32))
    images = torch.stack([shade(f, tensors.uvs, table, filter=filter, background=0.5).permute(2, 0, 1) for f in fragments])
    return images, torch.stack([f.mask[None] for f in fragments])


def test_cycles_sees_spot_as_our_renderer_does():
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    texture = load_image(SPOT / "spot_texture.png")
    cameras = score_cameras(mesh.center, mesh.radius)[::5]  # one from above, one from below
    (images, covered), = cycles_renders(mesh, [texture], cameras, 96)
    ours, mask = _ours(mesh, texture, cameras, 96, "linear")
    assert images.shape == ours.shape == (2, 3, 96, 96)
    # Cycles' whole pixels lie inside our silhouette; ours adds only the rim pixels Cycles covers in part.
    assert int((covered & ~mask).sum()) <= 0.01 * int(covered.sum())
    assert int(covered.sum()) >= 0.9 * int(mask.sum())
    both = (covered & mask).expand_as(images)
    # Same texels in the same places (measured 0.009; mirrored, 0.27): cameras, axes and v's direction agree.
    assert float((images - ours).abs()[both].mean()) < 0.03
    assert float((images - ours.flip(-1)).abs()[both].mean()) > 0.1


@pytest.mark.parametrize("make", [stretched_tube, torus])
def test_cycles_keeps_the_contrast_trilinear_filtering_blurs_on_stretched_texels(make):
    """...and our anisotropic filter (the judge's, bench/quality_score.py) keeps most of it."""
    mesh = make()
    pasted = resize_square(load_image(STARRY), 512)
    cameras = score_cameras(mesh.center, mesh.radius)[:4]
    (images, covered), = cycles_renders(mesh, [pasted], cameras, 128)
    cycles = local_contrast(images, covered)
    trilinear = local_contrast(*_ours(mesh, pasted, cameras, 128, "linear-mipmap-linear"))
    anisotropic = local_contrast(*_ours(mesh, pasted, cameras, 128, "anisotropic"))
    # Measured: 0.163 against 0.119 on the tube, 0.109 against 0.085 on the torus; anisotropic 0.135 and 0.106.
    assert cycles > 1.15 * trilinear
    assert abs(cycles - anisotropic) < 0.75 * abs(cycles - trilinear)
