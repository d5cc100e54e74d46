"""The content weight an original earns by its markings (backend.style.plain_original), and the job using it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.mesh import Mesh, make_mesh
from backend.mesh.primitives import uv_sphere
from backend.style.engine import StyleJob, stylize
from backend.style.plain_original import FULL_SPREAD, PLAIN_SHARE, content_share, surface_spread
from backend.style.sequence import SequenceJob
from tests.helpers import tiny

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


def two_triangles(big: float) -> Mesh:
    """Two triangles side by side in space, the left `big` times the right's area; in UV the left one lies in the
    texture's left half and the right one in its right half."""
    positions = np.array([[0, 0, 0], [big, 0, 0], [0, 1, 0], [big, 0, 0], [big + 1, 0, 0], [big, 1, 0]], np.float32)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    uvs = np.array([[[0.05, 0.1], [0.45, 0.1], [0.05, 0.9]], [[0.55, 0.1], [0.95, 0.1], [0.55, 0.9]]], np.float32)
    return make_mesh(positions, faces, uvs)


def halves(left, right, size: int = 64) -> np.ndarray:
    texture = np.zeros((size, size, 3), np.float32)
    texture[:, : size // 2] = left
    texture[:, size // 2 :] = right
    return texture


def test_a_plain_texture_has_no_spread_and_earns_the_plain_share():
    sphere = uv_sphere(8, 16)
    spread = surface_spread(sphere, np.full((16, 16, 3), 0.7, np.float32))
    assert spread == pytest.approx(0.0, abs=1e-9)
    assert content_share(spread) == pytest.approx(PLAIN_SHARE)


def test_spread_is_weighted_by_surface_area():
    # Black on three quarters of the surface, white on one: each channel's variance 0.75 * 0.25, over three channels.
    spread = surface_spread(two_triangles(3.0), halves(0.0, 1.0))
    assert spread == pytest.approx(np.sqrt(3 * 0.75 * 0.25), abs=0.02)
    # The same texture on triangles of equal area: half and half.
    assert surface_spread(two_triangles(1.0), halves(0.0, 1.0)) == pytest.approx(np.sqrt(3 * 0.25), abs=0.02)


def test_spread_reads_what_the_surface_shows_not_the_texels_between_islands():
    noisy = np.random.default_rng(0).uniform(0, 1, (64, 64, 3)).astype(np.float32)
    quad = make_mesh(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32), np.array([[0, 1, 2], [0, 2, 3]]),
                     np.array([[[0.3, 0.3], [0.7, 0.3], [0.7, 0.7]], [[0.3, 0.3], [0.7, 0.7], [0.3, 0.7]]], np.float32))
    plain_inside = noisy.copy()
    plain_inside[12:52, 12:52] = 0.5  # the island covers texels 19-45 of 64, and their bilinear neighbours
    assert surface_spread(quad, plain_inside) == pytest.approx(0.0, abs=1e-9)
    noisy_inside = np.full_like(noisy, 0.5)
    noisy_inside[12:52, 12:52] = noisy[12:52, 12:52]
    assert surface_spread(quad, noisy_inside) > FULL_SPREAD


def test_the_share_rises_linearly_to_full_weight():
    assert content_share(-1.0) == pytest.approx(PLAIN_SHARE)
    assert content_share(FULL_SPREAD / 2) == pytest.approx((1 + PLAIN_SHARE) / 2)
    assert content_share(FULL_SPREAD) == pytest.approx(1.0)
    assert content_share(10 * FULL_SPREAD) == pytest.approx(1.0)


def test_the_bundled_models_keep_the_full_content_weight():
    for obj, texture in (("spot/spot_triangulated.obj", "spot/spot_texture.png"), ("bob/bob_tri.obj", "bob/bob_diffuse.png"),
                         ("blub/blub_triangulated.obj", "blub/blub_texture.png")):
        spread = surface_spread(read_obj(REPO / "data" / obj), load_image(REPO / "data" / texture))
        assert spread > 3 * FULL_SPREAD, obj


@pytest.fixture(scope="module")
def painting():
    return load_image(REPO / "data" / "styles" / "starry_night.jpg")


def test_a_job_weighs_its_content_term_by_the_original(painting):
    sphere = uv_sphere(8, 16)
    settings = tiny(content_weight=1.5)
    plain = StyleJob(sphere, painting, settings, np.full((32, 32, 3), 0.6, np.float32), CPU)
    assert plain.content_weight == pytest.approx(1.5 * PLAIN_SHARE)
    marked = np.random.default_rng(1).uniform(0, 1, (32, 32, 3)).astype(np.float32)
    assert StyleJob(sphere, painting, settings, marked, CPU).content_weight == pytest.approx(1.5)
    # A morph from the original holds its first frames to it, plain or not.
    morph = SequenceJob(sphere, painting, None, settings, np.full((32, 32, 3), 0.6, np.float32), CPU, 3,
                        from_original=True)
    assert morph.content_weight == pytest.approx(1.5)


def test_the_report_says_the_weight_the_grey_standing_in_earned(painting):
    result = stylize(uv_sphere(8, 16), painting, tiny(content_weight=1.5, steps=2))
    assert result.report["original_stand_in"] is True
    assert result.report["content_weight"] == pytest.approx(1.5 * PLAIN_SHARE)
