"""The artist's controls in the engine and on the command line: several paintings with blend weights,
the style scale, and preserved colours. The measured ones run the real pretrained network at small sizes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.errors import StyleTexError
from backend.features import build_feature_net
from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.render import MeshTensors, render
from backend.style.colors import LUMA, keep_colors, matched_grey_painting
from backend.style.engine import style_targets, stylize
from backend.texture.transfer import resize_square
from backend.style.finishing import uv_island_mask
from backend.style.settings import StyleSettings, parse_blend
from backend.views import orbit_camera
from bench.quality_score import Scorer, score_cameras

REPO = Path(__file__).resolve().parent.parent
STYLES = REPO / "data" / "styles"
CPU = torch.device("cpu")
YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)


@pytest.fixture(scope="module")
def spot():
    return read_obj(REPO / "data" / "spot" / "spot_triangulated.obj"), load_image(REPO / "data" / "spot" / "spot_texture.png")


@pytest.fixture(scope="module")
def paintings():
    return [load_image(STYLES / name) for name in ("starry_night.jpg", "wave.jpg")]


# --- several paintings -------------------------------------------------------------------------------


def test_blended_targets_are_the_weighted_mean_of_the_paintings(paintings):
    net = build_feature_net("random", CPU, seed=3)
    one, two = (style_targets(net, [p], 64, CPU) for p in paintings)
    assert style_targets(net, paintings, 64, CPU, [1.0, 0.0]).keys() == one.keys()
    for name, value in style_targets(net, paintings, 64, CPU, [1.0, 0.0]).items():
        assert torch.equal(value, one[name])
    for name, value in style_targets(net, paintings, 64, CPU, [3.0, 1.0]).items():
        torch.testing.assert_close(value, 0.75 * one[name] + 0.25 * two[name])
    for name, value in style_targets(net, paintings, 64, CPU).items():  # no weights: equal
        torch.testing.assert_close(value, 0.5 * one[name] + 0.5 * two[name])


def test_blend_one_and_zero_gives_the_single_paintings_texture(spot, paintings):
    mesh, texture = spot
    settings = dict(steps=4, texture_size=64, render_size=48, features="random", device="cpu", seed=2)
    single = stylize(mesh, paintings[0], StyleSettings(**settings), texture)
    blended = stylize(mesh, paintings, StyleSettings(**settings, style_blend="1,0"), texture)
    other = stylize(mesh, paintings, StyleSettings(**settings, style_blend="0,1"), texture)
    assert np.array_equal(single.texture, blended.texture)
    assert not np.array_equal(single.texture, other.texture)


def test_blend_weights_are_checked(spot, paintings):
    assert parse_blend("") is None and parse_blend("1, 0.5") == [1.0, 0.5]
    for text in ("a,b", "1,-1", "0,0", "1,inf"):
        with pytest.raises(StyleTexError, match="style_blend"):
            parse_blend(text)
    mesh, texture = spot
    with pytest.raises(StyleTexError, match="3 weights for 2 paintings"):
        stylize(mesh, paintings, StyleSettings(steps=1, texture_size=32, render_size=32, features="random",
                                               style_blend="1,1,1"), texture)


# --- style scale -------------------------------------------------------------------------------------


def test_style_scale_sets_the_paintings_size_when_its_style_is_measured():
    assert StyleSettings(render_size=256).style_longer_side() == 256
    assert StyleSettings(render_size=256, style_scale=2.0).style_longer_side() == 512
    assert StyleSettings(render_size=256, style_scale=0.5).style_longer_side(128) == 64  # coarse steps: in proportion
    assert StyleSettings(render_size=256, style_size=300, style_scale=0.5).style_longer_side() == 150
    for scale in (0.1, 9.0, float("nan")):
        with pytest.raises(StyleTexError, match="style_scale"):
            StyleSettings(style_scale=scale).validate()


def _spectral_centroids(mesh, texture: np.ndarray, size: int) -> np.ndarray:
    """Power-weighted mean spatial frequency (cycles per pixel) of the luminance inside the silhouette
    (eroded, so its edge does not count) of eight renders around the mesh."""
    tensors, out = MeshTensors.from_mesh(mesh), []
    for k in range(8):
        angle = 2 * np.pi * k / 8
        camera = orbit_camera(mesh.center, mesh.radius, (np.cos(angle), np.sin(angle), 0.3 if k % 2 else -0.3))
        image = render(tensors, camera, torch.from_numpy(texture), size, background=-1.0)
        inner = -F.max_pool2d(-(image[..., 0] >= 0).float()[None, None], 5, 1, 2)[0, 0]
        y = image.clamp(min=0) @ torch.tensor(LUMA)
        y = (y - y[inner > 0].mean()) * inner
        power = torch.fft.rfft2(y).abs() ** 2
        frequency = (torch.fft.fftfreq(size)[:, None] ** 2 + torch.fft.rfftfreq(size)[None, :] ** 2).sqrt()
        out.append(float((power * frequency).sum() / power.sum()))
    return np.array(out)


def test_a_larger_style_scale_gives_larger_structures(spot, paintings):
    # The style and detail terms (no content or balance term: Spot's own patches would dominate the spectrum), the
    # real network. The detail term's windows grow with the scale: with fixed ones it lifted the fine band alike at
    # both scales and the spectrum's centroid with it (0.092 at both).
    mesh, texture = spot
    # Two seeds: with the views turned about their line of sight (roll_deg) the gap varies more from seed to seed.
    fine, coarse = ([], [])
    for seed in (0, 1):
        settings = dict(steps=150, texture_size=256, render_size=128, features="efficientnet_lite0", device="cpu",
                        content_weight=0.0, balance_weight=0.0, seed=seed)
        for scale, centroids in ((0.5, fine), (2.0, coarse)):
            result = stylize(mesh, paintings[0], StyleSettings(**settings, style_scale=scale), texture).texture
            centroids.extend(_spectral_centroids(mesh, result, 128))
    fine, coarse = np.array(fine), np.array(coarse)
    # Measured: 0.090 -> 0.080 (seed 0, lower in 7 of 8 views) and 0.089 -> 0.085 (seed 1) cycles per pixel; upright
    # views gave 0.100 -> 0.082 and 0.092 -> 0.081 (the style term alone: 0.075 -> 0.068 and 0.062 -> 0.052).
    assert coarse.mean() < 0.95 * fine.mean()
    assert (coarse < fine).sum() >= 10


# --- preserved colours -------------------------------------------------------------------------------


def chromaticity(image) -> np.ndarray:
    rgb = np.asarray(image, np.float64).reshape(-1, 3)
    return rgb / rgb.sum(axis=1, keepdims=True).clip(min=1e-12)


def test_keep_colors_replaces_luminance_and_keeps_each_texels_hue():
    gen = torch.Generator().manual_seed(0)
    original = 0.2 + 0.6 * torch.rand(16, 16, 3, generator=gen)
    result = torch.rand(16, 16, 3, generator=gen)
    kept = keep_colors(result, original)
    yiq = torch.from_numpy(YIQ)
    # Chromaticity r : g : b is the original's in every texel, clipped or not.
    np.testing.assert_allclose(chromaticity(kept), chromaticity(original), atol=1e-6)
    # Y is the result's wherever the scaled texel fits in [0, 1].
    fits = ((original * (result @ yiq[0])[..., None] / (original @ yiq[0])[..., None]) <= 1).all(-1)
    assert fits.float().mean() > 0.5
    torch.testing.assert_close((kept @ yiq[0])[fits], (result @ yiq[0])[fits])
    # A saturated red keeps its hue where adding the change as grey would not.
    red = torch.tensor([[[0.8, 0.45, 0.25]]])
    lighter = keep_colors(torch.full((1, 1, 3), 0.7), red)
    np.testing.assert_allclose(chromaticity(lighter), chromaticity(red), atol=1e-6)
    # Black has no hue: it takes the change of luminance as grey.
    np.testing.assert_allclose(keep_colors(torch.full((1, 1, 3), 0.3), torch.zeros(1, 1, 3)).numpy(), 0.3, atol=1e-6)
    grey = matched_grey_painting(np.random.default_rng(1).random((20, 30, 3), dtype=np.float32), original.numpy())
    y = original.numpy() @ np.asarray(LUMA, np.float32)
    assert grey.shape == (20, 30, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    assert grey[..., 0].mean() == pytest.approx(y.mean(), abs=0.02) and grey[..., 0].std() == pytest.approx(y.std(), rel=0.1)


def test_preserved_colors_keep_the_originals_chroma_while_the_paintings_structure_arrives(spot, paintings):
    mesh, texture = spot
    settings = dict(steps=120, texture_size=256, render_size=128, features="efficientnet_lite0", device="cpu")
    kept = stylize(mesh, paintings[0], StyleSettings(**settings, preserve_colors=True), texture).texture
    plain = stylize(mesh, paintings[0], StyleSettings(**settings), texture).texture
    original = resize_square(texture, 256)
    # Every texel of the islands keeps its own chromaticity (near-black ones excepted; the gutter outside is
    # continued from the islands); the plain run moves it.
    inside = uv_island_mask(torch.from_numpy(mesh.uvs), 256, grown=False).numpy().reshape(-1)
    lit = (original.reshape(-1, 3) @ np.asarray(LUMA, np.float32) > 0.05) & inside
    assert np.abs(chromaticity(kept) - chromaticity(original))[lit].max() < 1e-4
    assert np.abs(chromaticity(plain) - chromaticity(original))[lit].mean() > 0.02
    # The painting's structure, in luminance: another network (Lite1) finds grey renders of the result closer
    # to the painting in grey (its luminance matched to the original's, as the engine's target) than grey
    # renders of the original.
    scorer = Scorer(CPU, render_size=128)
    tensors = MeshTensors.from_mesh(mesh)
    fragments, masks = scorer.views(tensors, score_cameras(mesh.center, mesh.radius))
    grey = lambda image: np.repeat((image @ np.asarray(LUMA, np.float32))[..., None], 3, axis=2)  # noqa: E731
    target = scorer.painting_grams(matched_grey_painting(paintings[0], texture))
    distance = {name: scorer.style_distance(scorer.features(scorer.renders(tensors, fragments, grey(image)), masks), target)
                for name, image in (("kept", kept), ("original", original))}
    assert distance["kept"] < 0.85 * distance["original"], distance  # measured: 0.336 against 0.429


def test_preserved_colors_keep_the_chroma_through_a_round_trip_and_auto_keeps_the_own_uvs(spot, paintings):
    """A round trip restyles in other UVs and polishes a filtered texture: every texel still ends with the original's
    own chromaticity. unwrap auto keeps Spot's own UVs when colours are preserved (and says why)."""
    mesh, texture = spot
    settings = StyleSettings(steps=8, texture_size=128, render_size=64, features="random", preserve_colors=True)
    trip = stylize(mesh, paintings[0], replace(settings, unwrap="round-trip"), texture)
    original = resize_square(texture, 128)
    inside = uv_island_mask(torch.from_numpy(mesh.uvs), 128, grown=False).numpy().reshape(-1)
    lit = (original.reshape(-1, 3) @ np.asarray(LUMA, np.float32) > 0.05) & inside
    assert trip.report["polish_steps"] == 1
    assert np.abs(chromaticity(trip.texture) - chromaticity(original))[lit].max() < 1e-4
    assert np.abs(trip.texture - original).mean() > 0.01  # and it did restyle
    report = stylize(mesh, paintings[0], replace(settings, steps=1), texture).report
    assert report["unwrap"] == "keep" and "preserve colors" in report["unwrap_reason"]


def test_preserved_colors_need_an_original_texture(spot, paintings, tmp_path):
    mesh, _ = spot
    with pytest.raises(StyleTexError, match="needs an original texture"):
        stylize(mesh, paintings[0], StyleSettings(steps=1, texture_size=32, render_size=32, features="random",
                                                  preserve_colors=True))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    obj = tmp_path / "spot.obj"  # without the material library beside it, which would name Spot's own texture
    obj.write_bytes((REPO / "data" / "spot" / "spot_triangulated.obj").read_bytes())
    cases = ((["--preserve-colors"], "--texture"),
             (["--style", str(STYLES / "wave.jpg"), "--style-blend", "1"], "1 weights for 2 paintings"),
             (["--style-scale", "20"], "style_scale"))
    for args, text in cases:
        result = subprocess.run([sys.executable, "-m", "backend", "stylize", str(obj), "--style", str(STYLES / "starry_night.jpg"),
                                 "--out", str(tmp_path / "out.png"), "--features", "random", *args],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and text in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_colour_transfer_gives_the_targets_mean_and_covariance():
    from backend.style.colors import colour_transfer

    rng = np.random.default_rng(3)
    source = rng.random((500, 3)) @ np.array([[0.5, 0.1, 0.0], [0.0, 0.3, 0.1], [0.2, 0.0, 0.4]])
    target = rng.random((700, 3)) @ np.array([[0.2, 0.0, 0.1], [0.1, 0.6, 0.0], [0.0, 0.1, 0.3]]) + 0.2
    matrix, offset = colour_transfer(source, target)
    moved = source @ matrix.T + offset
    np.testing.assert_allclose(moved.mean(axis=0), target.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(np.cov(moved.T), np.cov(target.T), atol=1e-5)
