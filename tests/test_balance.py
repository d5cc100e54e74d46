"""The balance term (backend.style.balance): patches of the surface as light as the original's say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import StyleTexError
from backend.formats.images import load_image
from backend.mesh.primitives import two_island_sphere
from backend.mesh.regions import surface_regions
from backend.render import MeshTensors, rasterize_view, shade
from backend.style.balance import MIN_SHARE, ViewRegions, affine_residual, balance_loss
from backend.style.engine import stylize
from backend.style.settings import StyleSettings
from backend.views import ring_cameras

REPO = Path(__file__).resolve().parent.parent
REGIONS = 8


def test_the_affine_fit_leaves_nothing_of_an_affine_map_and_the_bump_of_one_patch():
    x = torch.tensor([0.1, 0.5, 0.9, 0.3, 0.7], dtype=torch.float64)
    weight = torch.full((5,), 0.2, dtype=torch.float64)
    assert float(affine_residual(1.0 - 0.6 * x, x, weight).abs().max()) < 1e-12  # an inversion is free
    bumped = 0.2 + 0.5 * x
    bumped[3] += 0.3
    residual = affine_residual(bumped, x, weight)
    assert int(residual.abs().argmax()) == 3 and float(residual[3]) > 0.15
    y = torch.tensor([0.2, 0.4, 0.6, 0.4, 0.4], dtype=torch.float64)  # a uniform original: only the mean is free
    assert torch.allclose(affine_residual(y, None, weight), y - 0.4)


def test_a_view_of_a_uniform_original_is_fitted_by_a_constant():
    mesh, tensors, regions, views, _ = scene()
    uniform = torch.full((32, 32, 3), 0.7)
    for fragments in views:
        view = ViewRegions.of(fragments.face_ids, fragments.mask, regions, REGIONS,
                              shade(fragments, tensors.uvs, uniform))
        assert view.original is None and view.fitted >= 3
        assert view.fitted == int((view.counts >= MIN_SHARE * fragments.mask.numel()).sum())


def scene():
    mesh = two_island_sphere(16, 32)
    tensors = MeshTensors.from_mesh(mesh, torch.device("cpu"))
    regions = surface_regions(tensors.positions, tensors.faces, REGIONS)
    views = [rasterize_view(tensors, camera, 48) for camera in ring_cameras(mesh.center, mesh.radius, 4)]
    original = np.zeros((32, 32, 3), np.float32)
    original[:, :16] = (0.9, 0.8, 0.7)  # the north island light, the south dark: structure to keep
    original[:, 16:] = (0.3, 0.4, 0.6)
    return mesh, tensors, regions, views, original


def renders_and_regions(tensors, regions, views, original, texture):
    images, view_regions = [], []
    for fragments in views:
        source = shade(fragments, tensors.uvs, torch.from_numpy(original))
        view_regions.append(ViewRegions.of(fragments.face_ids, fragments.mask, regions, REGIONS, source))
        images.append(shade(fragments, tensors.uvs, torch.from_numpy(texture)).permute(2, 0, 1))
    return torch.stack(images), view_regions


def test_a_recoloured_original_is_balanced_and_a_split_of_it_is_not():
    mesh, tensors, regions, views, original = scene()
    recoloured = (1.0 - 0.5 * original).astype(np.float32)  # darker where the original is light: an affine map
    images, view_regions = renders_and_regions(tensors, regions, views, original, recoloured)
    assert float(balance_loss(images, view_regions, 0.2)) < 1e-6
    split = recoloured.copy()
    split[:16, :16] += 0.3  # half of the north island lighter than the rest of it
    images, _ = renders_and_regions(tensors, regions, views, original, np.clip(split, 0, 1))
    assert float(balance_loss(images, view_regions, 0.2)) > 0.02  # a residual of about 0.15 of a 0.2 spread


def test_its_gradient_evens_out_a_split():
    """Gradient descent on the term alone turns a split texture into one whose patches follow the original."""
    mesh, tensors, regions, views, original = scene()
    texture = np.full((32, 32, 3), 0.5, np.float32)
    texture[:16] = 0.9  # a light half of the texture across both islands: no affine map of the original's
    parameter = torch.tensor(texture, requires_grad=True)
    _, view_regions = renders_and_regions(tensors, regions, views, original, texture)
    optimizer = torch.optim.Adam([parameter], lr=0.02)
    losses = []
    for _ in range(60):
        images = torch.stack([shade(f, tensors.uvs, parameter).permute(2, 0, 1) for f in views])
        loss = balance_loss(images, view_regions, 0.2)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.3 * losses[0], (losses[0], losses[-1])


def test_the_engine_term_keeps_the_patches_balanced():
    """balance_weight in a real job: measured on fixed views afterwards, the final texture's patches follow the
    original's better with the term than without it."""
    mesh, tensors, regions, views, original = scene()
    style = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    scores = {}
    for weight in (0.0, 8.0):
        settings = StyleSettings(steps=40, texture_size=32, render_size=32, features="random", seed=0,
                                 balance_weight=weight, balance_regions=REGIONS)
        texture = stylize(mesh, style, settings, original).texture
        images, view_regions = renders_and_regions(tensors, regions, views, original, texture)
        scores[weight] = float(balance_loss(images, view_regions, 0.2))
    assert scores[8.0] < 0.7 * scores[0.0], scores


def test_its_settings_are_checked():
    with pytest.raises(StyleTexError, match="balance_weight"):
        StyleSettings(balance_weight=-1.0).validate()
    with pytest.raises(StyleTexError, match="balance_regions"):
        StyleSettings(balance_regions=2).validate()


def test_a_thin_parts_patches_are_fitted_but_not_a_strokes_worth():
    """On the thin tube (length 3, radius 0.1) a patch covers about 1/100 of a full view: every view fits at least
    five of its eight patches (at 1/64 none had three, and its ends came out light); a patch of fewer pixels than
    MIN_SHARE of the view, a stroke's worth, stays out of the fit."""
    from backend.mesh.primitives import stretched_tube
    from backend.views import random_cameras

    mesh = stretched_tube()
    tensors = MeshTensors.from_mesh(mesh, torch.device("cpu"))
    regions = surface_regions(tensors.positions, tensors.faces, REGIONS)
    for camera in random_cameras(mesh.center, mesh.radius, 8, np.random.default_rng(0), 30.0, (1.0, 1.2)):
        fragments = rasterize_view(tensors, camera, 128)
        view = ViewRegions.of(fragments.face_ids, fragments.mask, regions, REGIONS,
                              shade(fragments, tensors.uvs, torch.full((8, 8, 3), 0.5)))
        assert view.fitted >= 5, view.fitted
    # A 64^2 view whose faces 0-3 lie in patches 0-3: patch 0 shows one pixel fewer than MIN_SHARE of it.
    least = round(MIN_SHARE * 64 * 64)
    face_ids = torch.full((64, 64), 3, dtype=torch.long).reshape(-1)
    face_ids[: least - 1], face_ids[least - 1 : 2 * least] = 0, 1
    face_ids[2 * least : 3 * least + 1] = 2
    view = ViewRegions.of(face_ids.view(64, 64), torch.ones(64, 64, dtype=torch.bool), torch.arange(4), 4,
                          torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(0)))
    assert view.shown.tolist() == [False, True, True, True]


def test_the_paintings_luminance_spread_follows_the_blend():
    from backend.style.engine import luminance_spread

    black, white = np.zeros((4, 4, 3), np.float32), np.ones((4, 4, 3), np.float32)
    assert luminance_spread([black, white]) == pytest.approx(0.5)  # half the pixels 0, half 1
    assert luminance_spread([black, white], [3, 1]) == pytest.approx(np.sqrt(0.25 * 0.75))
    starry = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    assert luminance_spread([starry, white], [1, 0]) == luminance_spread([starry])  # weight 0: nothing, bit for bit
