"""Restyling some faces only (stylize's `editable`): the others render with the original texture and keep
their texels bit for bit; the result blends in over a few texels inside the editable faces' islands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.errors import StyleTexError
from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.style.engine import EDIT_FEATHER, StyleJob, stylize
from backend.texture.transfer import resize_square
from backend.style.finishing import editable_weight, uv_island_mask
from backend.style.settings import StyleSettings

REPO = Path(__file__).resolve().parent.parent
MARGIN = StyleSettings().margin  # how far the result reaches past the islands: their padding
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
    weight = editable_weight(torch.from_numpy(mesh.uvs), torch.from_numpy(right), 128, EDIT_FEATHER, MARGIN)[..., None].numpy()
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
    weight = editable_weight(torch.from_numpy(mesh.uvs), torch.from_numpy(right), 128, EDIT_FEATHER, MARGIN).numpy()
    # Inside the islands proper: the rim just outside them is gutter, continued across seams.
    seen = job.seen_texels().numpy() & uv_island_mask(torch.from_numpy(mesh.uvs), 128, grown=False).numpy()
    ramp = (weight > 0) & (weight < 1) & seen
    assert ramp.sum() > 20
    expected = original + weight[..., None] * (result - original)
    np.testing.assert_allclose(finished[ramp], expected[ramp], atol=1e-6)


def test_the_selections_own_seams_are_finished_as_a_whole_jobs(spot):
    """Only where the selection meets unselected faces does the result blend into the original: at its own UV seams
    and island rims it is finished as a whole job's (seam gutters continued across, islands padded). A weight falling
    at every island's edge drew the original's colours along each seam of the selection."""
    mesh, original, right, style = spot
    uvs = torch.from_numpy(mesh.uvs)
    weight = editable_weight(uvs, torch.from_numpy(right), 128, EDIT_FEATHER, MARGIN).numpy()
    grow = lambda mask, k: F.max_pool2d(torch.from_numpy(mask)[None, None].float(), 2 * k + 1, 1, k)[0, 0].numpy() > 0  # noqa: E731
    unselected = uv_island_mask(uvs[~right], 128).numpy()
    selected = uv_island_mask(uvs[right], 128, grown=False).numpy()
    far = ~grow(unselected, EDIT_FEATHER + 1)
    rim = selected & ~(-F.max_pool2d(-torch.from_numpy(selected)[None, None].float(), 3, 1, 1)[0, 0].numpy() > 0)
    assert (rim & far).sum() > 100 and (weight[rim & far] == 1).all()  # the selection's edges far from the rest
    gutter = grow(selected, MARGIN) & ~selected & far
    assert gutter.sum() > 100 and (weight[gutter] == 1).all()  # its padding too
    assert (weight[~grow(selected, MARGIN + 1)] == 0).all() and (weight[unselected] == 0).all()
    job = StyleJob(mesh, style, StyleSettings(**SETTINGS).validate(), original, torch.device("cpu"), right)
    job.step()
    finished, _ = job.finish()
    with torch.no_grad():
        result = job._result().numpy()
    inside = rim & far & job.seen_texels().numpy()
    np.testing.assert_allclose(finished[inside], result[inside], atol=1e-6)  # the result itself, not a blend
