"""The resolution of the optimized spectrum (backend.style.spectrum_size) and how the engine uses it."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.mesh.primitives import stretched_tube
from backend.render import MeshTensors
from backend.style.engine import StyleJob, stylize
from backend.style.settings import StyleSettings
from backend.mesh import make_mesh
from backend.style.spectrum_size import (MIN_AUTO_SIZE, MINOR_MAGNIFICATION, filter_for,
                                         footprint_levels, probe_footprints, resolvable_shape, resolvable_size)

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


def covered_levels(mesh: MeshTensors, center, radius: float, texture_size: int, render_size: int, rng,
                   **probe) -> torch.Tensor:
    """Footprint levels (N, 2) of the probe views' covered pixels for a texture_size^2 texture."""
    return footprint_levels(probe_footprints(mesh, center, radius, render_size, rng, **probe), texture_size,
                            texture_size)


@pytest.fixture(scope="module")
def spot():
    return read_obj(REPO / "data" / "spot" / "spot_triangulated.obj")


@pytest.mark.parametrize("low, size", [(-1.0, 1024), (0.2, 1024), (0.3, 512), (1.2, 512), (1.3, 256), (2.4, 128), (9.0, MIN_AUTO_SIZE)])
def test_the_texture_halved_as_often_as_all_but_a_tenth_of_the_pixels_allow(low, size):
    # One pixel in ten reads level `low` (or finer); the rest read coarser levels. Halvings are that level
    # plus 0.75, floored: texels up to 2^0.75 pixels wide still count as resolved.
    levels = torch.cat([torch.full((10,), low - 1.0), torch.full((90,), low + 3.0)])
    levels[9] = low  # exactly the tenth percentile
    assert resolvable_size(levels, 1024) == resolvable_size(levels[torch.randperm(100)], 1024)
    levels = torch.cat([torch.full((9,), low - 1.0), torch.full((91,), low)])
    assert resolvable_size(levels, 1024) == size


def test_no_covered_pixel_keeps_the_texture_size_and_small_textures_stay():
    assert resolvable_size(torch.zeros(0), 512) == 512
    assert resolvable_size(torch.full((5,), 4.0), 48) == 48  # already below the smallest automatic size


def test_levels_follow_texture_and_render_size(spot):
    mesh = MeshTensors.from_mesh(spot)
    probe = lambda texture, render: covered_levels(  # noqa: E731
        mesh, spot.center, spot.radius, texture, render, np.random.default_rng(4), views=3)[:, 0]
    base = probe(512, 128)
    assert len(base) > 1000
    # Twice the texels under the same pixels: exactly one level more.
    torch.testing.assert_close(probe(1024, 128), base + 1, rtol=0, atol=1e-5)
    # Twice the pixels over the same texels: about one level less.
    assert float(probe(512, 256).median()) == pytest.approx(float(base.median()) - 1, abs=0.1)


def small_job(spot, **overrides) -> StyleJob:
    settings = StyleSettings(steps=2, texture_size=512, render_size=64, features="random", device="cpu", **overrides)
    return StyleJob(spot, load_image(REPO / "data" / "styles" / "starry_night.jpg"), settings.validate(), None, CPU)


def test_auto_optimizes_what_the_renders_resolve_and_the_texture_keeps_its_size(spot):
    job = small_job(spot)
    levels = covered_levels(MeshTensors.from_mesh(spot), spot.center, spot.radius, 512, 64,
                            np.random.default_rng([0, 1]), zoom_range=(1.0, 1.2))
    size = resolvable_size(levels, 512)
    assert job.working_shape == (size, size) and size < 512  # 64^2 renders resolve far less than 512^2
    assert job.parameter(job.working_shape).shape == (size, size, 3)
    job.step()
    assert job.texture().shape == (512, 512, 3)
    assert job.finish()[0].shape == (512, 512, 3)


def test_a_set_spectrum_size_the_pixel_parameterization_and_an_original_start_are_kept(spot):
    assert small_job(spot, spectrum_size=256).working_shape == (256, 256)
    assert small_job(spot, param="pixel").working_shape == (512, 512)
    original = np.full((64, 64, 3), 0.5, np.float32)
    settings = StyleSettings(steps=1, texture_size=512, render_size=64, features="random", init="original")
    job = StyleJob(spot, original, settings.validate(), original, CPU)
    assert job.working_shape == (512, 512)


def test_the_report_says_the_spectrum_size_and_how_many_views_were_rendered(spot):
    settings = StyleSettings(steps=9, texture_size=128, render_size=16, features="random", view_pool=3, view_reuse=2,
                             unwrap="keep")  # one job: a round trip reports its first part's views
    report = stylize(spot, load_image(REPO / "data" / "styles" / "starry_night.jpg"), settings).report
    assert report["spectrum_size"] == [64, 64]
    assert report["views_rendered"] == 3 + 8 // 2  # the fill, then one fresh view every second step


def test_minor_axis_levels_are_the_footprints_shorter_side():
    # A pixel stretched 8 texels along u and 2 along v (rotated by 30 degrees: the axes need not be u and v).
    angle = np.radians(30)
    rotation = torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=torch.float32)
    texels = rotation @ torch.diag(torch.tensor([8.0, 2.0]))
    levels = footprint_levels((texels / 64)[None], 64, 64)
    torch.testing.assert_close(levels, torch.tensor([[3.0, 1.0]]), atol=0.05, rtol=0)


def test_stretched_uvs_are_capped_by_the_shorter_axis():
    """A thin tube whose texture runs along its length: the longer axis alone would allow 64^2 (a smooth wash),
    the shorter one keeps texels along the tube no more than about 3.4 pixels wide for the finest tenth."""
    tube = stretched_tube()
    levels = covered_levels(MeshTensors.from_mesh(tube), tube.center, tube.radius, 1024, 256,
                            np.random.default_rng([0, 1]), zoom_range=(1.0, 1.2))
    assert resolvable_size(levels[:, 0], 1024) == 64
    assert resolvable_size(levels, 1024) >= 128
    minor_at_size = float(torch.quantile(levels[:, 1], 0.1)) - math.log2(1024 / resolvable_size(levels, 1024))
    assert minor_at_size >= -MINOR_MAGNIFICATION


def turned(mesh, degrees: float):
    """The mesh with its UVs turned about the texture's centre (and shrunk to stay inside it)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    uv = (mesh.uvs - 0.5) @ np.array([[c, s], [-s, c]], np.float32) / (abs(c) + abs(s)) + 0.5
    return make_mesh(mesh.positions, mesh.faces, uv, "turned")


def tube_footprints(mesh) -> torch.Tensor:
    return probe_footprints(MeshTensors.from_mesh(mesh), mesh.center, mesh.radius, 256, np.random.default_rng([0, 1]),
                            zoom_range=(1.0, 1.2))


@pytest.mark.parametrize("degrees, shape", [(0, (64, 256)), (90, (256, 64))])
def test_uvs_stretched_along_a_texture_axis_get_a_spectrum_sized_per_axis(degrees, shape):
    """The tube's texture runs along it (u: about 2^1.8 texels a pixel step at 1024^2) and around it (v: 2^4.1):
    each axis is halved by its own count, so the working texels are about as wide on the screen both ways and
    trilinear filtering reads them without blurring along the tube. Turned a quarter, rows and columns swap."""
    uv_dxy = tube_footprints(turned(stretched_tube(), degrees))
    assert resolvable_shape(uv_dxy, 1024) == shape
    assert footprint_levels(uv_dxy, 1024, 1024)[:, 0].median() > footprint_levels(uv_dxy, *shape)[:, 0].median() + 1.5
    assert filter_for(uv_dxy, (1024, 1024)) == "anisotropic" and filter_for(uv_dxy, shape) == "linear-mipmap-linear"


@pytest.mark.parametrize("degrees", [45, 20])
def test_a_stretch_along_neither_texture_axis_keeps_the_square_size(degrees):
    """Turned off the axes, both axes' own rules are coarse along the footprints' shorter side: the square rule
    (capped by that side) stands, and the anisotropic filter reads along the stretch."""
    uv_dxy = tube_footprints(turned(stretched_tube(), degrees))
    size = resolvable_size(footprint_levels(uv_dxy, 1024, 1024), 1024)
    assert resolvable_shape(uv_dxy, 1024) == (size, size)
    assert filter_for(uv_dxy, (size, size)) == "anisotropic"


@pytest.mark.parametrize("name, size", [("spot", 512), ("bob", 1024), ("blub", 1024)])
def test_the_bundled_meshes_keep_their_calibrated_sizes(name, size):
    path = {"spot": "spot/spot_triangulated.obj", "bob": "bob/bob_tri.obj", "blub": "blub/blub_triangulated.obj"}[name]
    mesh = read_obj(REPO / "data" / path)
    uv_dxy = probe_footprints(MeshTensors.from_mesh(mesh), mesh.center, mesh.radius, 256, np.random.default_rng([0, 1]),
                              zoom_range=(1.0, 1.2))
    assert resolvable_size(footprint_levels(uv_dxy, 1024, 1024), 1024) == size
    assert resolvable_shape(uv_dxy, 1024) == (size, size)  # not stretched: square as calibrated


def test_the_engine_filters_by_the_working_texture_and_a_set_square_spectrum_keeps_the_stretch(spot):
    assert StyleSettings().filter == "anisotropic"  # the default; auto picks by the footprints
    style = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    tube = stretched_tube()
    cases = ((tube, {}, "linear-mipmap-linear"), (tube, {"spectrum_size": 256}, "anisotropic"),
             (turned(tube, 45), {}, "anisotropic"), (spot, {}, "linear-mipmap-linear"))
    for mesh, overrides, want in cases:
        settings = StyleSettings(steps=2, texture_size=1024, render_size=256, features="random", device="cpu",
                                 view_pool=2, filter="auto", **overrides)
        job = StyleJob(mesh, style, settings.validate(), None, CPU)
        assert job.filter == want
        assert StyleJob(mesh, style, replace(settings, filter="anisotropic"), None, CPU).filter == "anisotropic"
        if mesh is tube and not overrides:
            assert job.working_shape == (64, 256)  # the texture's columns run along the tube
            job.step()
            assert job.texture().shape == (1024, 1024, 3)
