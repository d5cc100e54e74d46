"""Restyling some faces only (stylize's `editable`): the others render with the original texture and keep
their texels bit for bit; the result blends in over a few texels inside the editable faces' islands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import StyleTexError
from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.style.engine import EDIT_FEATHER, StyleJob, stylize
from backend.texture.transfer import resize_square
from backend.style.finishing import editable_weight, uv_island_mask
from backend.style.settings import StyleSettings

REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(steps=3, texture_size=128, render_size=64, features="random", device="cpu", seed=4)


@pytest.fixture(scope="module")
def spot():
    mesh = read_obj(REPO / "data" / "spot" / "spot_triangulated.obj")
    original = resize_square(load_image(REPO / "data" / "spot" / "spot_texture.png"), 128)
    right = mesh.positions[mesh.faces].mean(axis=1)[:, 0] > mesh.center[0]  # Spot's right half
    return mesh, original, right, load_image(REPO / "data" / "styles" / "starry_night.jpg")


def test_unselected_texels_keep_their_bytes_and_the_selection_is_restyled(spot):
    mesh, original, right, style = spot
    result = stylize(mesh, style, StyleSettings(**SETTINGS), original, editable=right).texture
    weight = editable_weight(torch.from_numpy(mesh.uvs), torch.from_numpy(right), 128, EDIT_FEATHER)[..., None].numpy()
    as_bytes = lambda image: np.round(image * 255).astype(np.uint8)  # noqa: E731  (what an 8-bit image stores)
    kept = weight[..., 0] == 0
    assert np.array_equal(result[kept], original[kept])
    assert np.array_equal(as_bytes(result)[kept], as_bytes(original)[kept])
    deep = weight[..., 0] == 1
    assert deep.mean() > 0.05 and np.abs(result[deep] - original[deep]).mean() > 0.05
    unselected = uv_island_mask(torch.from_numpy(mesh.uvs[~right]), 128).numpy()
    assert not (weight[..., 0][unselected] > 0).any()  # a texel under any unselected face is never touched
    # The border: weights between 0 and 1 on a few texels inside the selected islands.
    ramp = (weight[..., 0] > 0) & (weight[..., 0] < 1)
    steps = {round(float(w), 3) for w in np.unique(weight[..., 0][ramp])}
    assert ramp.any() and steps <= {round(k / (EDIT_FEATHER + 1), 3) for k in range(1, EDIT_FEATHER + 1)}


def test_views_show_unselected_faces_with_the_original_texture(spot):
    mesh, original, right, style = spot
    job = StyleJob(mesh, style, StyleSettings(**SETTINGS).validate(), original, torch.device("cpu"), right)
    job.step()
    view = job.pool.draw(1)[0]
    pixels, colors = view.fixed
    assert len(pixels) > 50
    learned = job._shown(view, torch.zeros(64, 64, 3)).reshape(-1, 3)
    assert torch.equal(learned[pixels], colors)
    whole = StyleJob(mesh, style, StyleSettings(**SETTINGS).validate(), original, torch.device("cpu"))
    whole.step()
    assert whole.pool.draw(1)[0].fixed is None


def test_selected_only_needs_an_original_and_one_flag_per_face(spot):
    mesh, original, right, style = spot
    settings = StyleSettings(**SETTINGS)
    with pytest.raises(StyleTexError, match="needs an original texture"):
        stylize(mesh, style, settings, None, editable=right)
    with pytest.raises(StyleTexError, match="one per face"):
        stylize(mesh, style, settings, original, editable=right[:-1])
    with pytest.raises(StyleTexError, match="no face is selected"):
        stylize(mesh, style, settings, original, editable=np.zeros_like(right))


def test_the_border_blends_the_result_in_once(spot):
    mesh, original, right, style = spot
    job = StyleJob(mesh, style, StyleSettings(**SETTINGS).validate(), original, torch.device("cpu"), right)
    for _ in range(3):
        job.step()
    finished, _ = job.finish()
    with torch.no_grad():
        result = job._result().numpy()
    weight = editable_weight(torch.from_numpy(mesh.uvs), torch.from_numpy(right), 128, EDIT_FEATHER).numpy()
    # Inside the islands proper: the rim just outside them is gutter, continued across seams.
    seen = job.seen_texels().numpy() & uv_island_mask(torch.from_numpy(mesh.uvs), 128, grown=False).numpy()
    ramp = (weight > 0) & (weight < 1) & seen
    assert ramp.sum() > 20
    expected = original + weight[..., None] * (result - original)
    np.testing.assert_allclose(finished[ramp], expected[ramp], atol=1e-6)
