"""The detail term (backend.style.detail): renders' local contrast kept up to the painting's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import StyleTexError
from backend.formats.images import load_image
from backend.mesh.primitives import two_island_sphere
from backend.render import MeshTensors, rasterize_view, shade
from backend.style.detail import WINDOWS, band_contrasts, detail_loss, windows_for
from backend.style.engine import resize_longer_side
from backend.style.engine import StyleJob, stylize
from backend.style.losses import Coverage
from backend.style.settings import StyleSettings
from backend.views import ring_cameras

REPO = Path(__file__).resolve().parent.parent


def test_flat_images_have_no_detail_and_noise_has_its_own():
    flat = torch.full((1, 3, 32, 32), 0.4)
    assert float(band_contrasts(flat).max()) < 1e-3
    noise = torch.rand(1, 1, 128, 128, generator=torch.Generator().manual_seed(0)).expand(1, 3, 128, 128)
    bands = band_contrasts(noise)[0]
    # Independent pixels of variance s^2: a k x k mean has s^2 / k^2, and nested means' difference the difference of
    # those, so the bands are s * sqrt(1 - 1/3^2), s * sqrt(1/3^2 - 1/7^2) and s * sqrt(1/7^2 - 1/15^2).
    inverse = [1 / k**2 for k in WINDOWS]
    expected = float(noise[0, 0].std()) * torch.tensor([np.sqrt(a - b) for a, b in zip(inverse, inverse[1:])])
    assert torch.allclose(bands, expected.to(bands.dtype), rtol=0.08), (bands, expected)


def test_the_windows_grow_with_the_paintings_strokes_so_the_bands_hold_the_same_strokes():
    assert windows_for(1.0) == windows_for(0.5) == WINDOWS == (1, 3, 7, 15)
    assert windows_for(2.0) == (3, 7, 15, 31) and windows_for(3.0) == (3, 9, 21, 45)
    # A painting at twice the size, through twice the windows, has the bands it has at its size through the first.
    painting = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    at = {side: resize_longer_side(painting, side, torch.device("cpu")).clamp(0, 1) for side in (256, 512)}
    same = band_contrasts(at[256])[0]
    torch.testing.assert_close(band_contrasts(at[512], windows=windows_for(2.0))[0], same, rtol=0.06, atol=0)


def test_the_background_and_the_silhouette_add_no_detail():
    """A uniform disc on a black background: its covered pixels' local means leave the background out."""
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    inside = (((yy - 24) ** 2 + (xx - 24) ** 2) < 15**2).float()[None, None]
    image = 0.8 * inside.expand(1, 3, 48, 48)
    assert float(band_contrasts(image, inside).max()) < 1e-3
    assert float(band_contrasts(image).min()) > 0.05  # without the mask, the rim is an edge


def test_the_loss_is_a_shortfall_only():
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    weight = torch.ones(2, 1, 32, 32)
    bands = band_contrasts(image, weight)
    assert float(detail_loss(image, Coverage(weight), bands.min(dim=0).values * 0.9)) == 0.0  # more vivid: no cost
    faint = 0.5 + 0.25 * (image - 0.5)
    assert float(detail_loss(faint, Coverage(weight), bands.mean(dim=0))) == pytest.approx(0.75**2, rel=0.05)


def test_its_gradient_brings_back_faded_strokes():
    mesh = two_island_sphere(16, 32)
    tensors = MeshTensors.from_mesh(mesh, torch.device("cpu"))
    views = [rasterize_view(tensors, camera, 48) for camera in ring_cameras(mesh.center, mesh.radius, 4)]
    weight = torch.stack([v.mask.float()[None] for v in views])
    strokes = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))
    vivid = torch.stack([shade(v, tensors.uvs, strokes).permute(2, 0, 1) for v in views])
    target = band_contrasts(vivid, weight).mean(dim=0)
    parameter = (0.5 + 0.1 * (strokes - 0.5)).requires_grad_(True)  # the same strokes at a fifth of the contrast
    optimizer = torch.optim.Adam([parameter], lr=0.01)
    losses = []
    for _ in range(80):
        images = torch.stack([shade(v, tensors.uvs, parameter).permute(2, 0, 1) for v in views])
        loss = detail_loss(images, Coverage(weight), target)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[0] > 0.3 and losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


def test_the_engine_term_makes_the_renders_more_vivid():
    """detail_weight in a real job: the renders of the final texture from fixed views have more local contrast with
    the term than without it, and the painting's targets follow its blend weights."""
    mesh = two_island_sphere(16, 32)
    tensors = MeshTensors.from_mesh(mesh, torch.device("cpu"))
    views = [rasterize_view(tensors, camera, 48) for camera in ring_cameras(mesh.center, mesh.radius, 4)]
    weight = torch.stack([v.mask.float()[None] for v in views])
    style = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    original = np.full((16, 16, 3), 0.8, np.float32)
    vivid = {}
    for detail in (0.0, 4.0):
        settings = StyleSettings(steps=40, texture_size=32, render_size=48, features="random", seed=0,
                                 detail_weight=detail)
        texture = torch.from_numpy(stylize(mesh, style, settings, original).texture)
        images = torch.stack([shade(v, tensors.uvs, texture).permute(2, 0, 1) for v in views])
        vivid[detail] = float(band_contrasts(images, weight).mean())
    assert vivid[4.0] > 1.2 * vivid[0.0], vivid

    settings = StyleSettings(steps=1, texture_size=32, render_size=48, features="random", style_blend="1,0")
    blended = StyleJob(mesh, [style, np.zeros_like(style)], settings, original, torch.device("cpu"))
    alone = StyleJob(mesh, style, StyleSettings(steps=1, texture_size=32, render_size=48, features="random"), original,
                     torch.device("cpu"))
    assert torch.equal(blended.detail_target(48), alone.detail_target(48))  # weight 0: nothing of that painting

    # The windows follow the painting's size on the screen: style_scale and a close-up's zoom widen them alike.
    assert alone.detail_windows(48) == WINDOWS and alone.detail_windows(48, 3.0) == windows_for(3.0)
    larger = StyleJob(mesh, style, StyleSettings(steps=1, texture_size=32, render_size=48, features="random",
                                                 style_scale=2.0), original, torch.device("cpu"))
    assert larger.detail_windows(48) == (3, 7, 15, 31) and larger.detail_windows(24) == (3, 7, 15, 31)
    assert larger.detail_target(48).shape == (3,)


def test_its_setting_is_checked():
    with pytest.raises(StyleTexError, match="detail_weight"):
        StyleSettings(detail_weight=-0.5).validate()
