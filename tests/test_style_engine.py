"""The optimization loop (backend.style.engine.stylize) with random features on tiny scenes.

Everything runs on the CPU with the seeded random feature bank, textures of 32-64 texels and renders
of 32-48 pixels, so each run takes a fraction of a second to a few seconds.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import StyleTexError
from backend.features import build_feature_net
from backend.formats.images import load_image
from backend.mesh import make_mesh
from backend.mesh.primitives import uv_sphere
from backend.render import MeshTensors, render
from backend.style.engine import STAND_IN_GREY, StyleJob, stylize
from backend.texture.transfer import resize_square
from backend.style.finishing import uv_island_mask
from backend.style.plain_original import PLAIN_SHARE
from backend.style.settings import StyleSettings
from tests.helpers import tiny
from backend.views import ring_cameras

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


def striped_style(size: int = 64, period: int = 4) -> np.ndarray:
    """Red/dark-red horizontal stripes: a style with a strong colour cast, far from mid-grey."""
    image = np.zeros((size, size, 3), np.float32)
    band = (np.arange(size) // period) % 2 == 0
    image[band] = (0.95, 0.25, 0.05)
    image[~band] = (0.6, 0.05, 0.02)
    return image


def random_texture(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (size, size, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def sphere():
    return uv_sphere(10, 20)


@pytest.fixture(scope="module")
def starry():
    return load_image(REPO / "data" / "styles" / "starry_night.jpg")


# --- an atlas cube with an island that no camera can see ---------------------------------------

ATLAS = 48  # texture size: 3 x 3 cells of 16 texels
CELL = ATLAS // 3
INSET = 0.2  # each island keeps 0.2 of a cell (3.2 texels) free on every side


def cell_rect(index: int) -> np.ndarray:
    """UV corners (4, 2) of island `index` in a 3 x 3 atlas (index = column + 3 * row, v upwards)."""
    cx, cy = index % 3, index // 3
    u0, v0 = (cx + INSET) / 3, (cy + INSET) / 3
    u1, v1 = (cx + 1 - INSET) / 3, (cy + 1 - INSET) / 3
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], np.float32)


def atlas_cube_with_hidden_quad():
    """A closed cube (half size 1) whose 6 faces map to separate islands 0..5, and a quad inside it
    (half size 0.5) mapped to island 6, which every outside camera sees through no face."""
    corners = [np.array([x, y, z], np.float32) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    h = 0.5
    corners += [np.array(p, np.float32) for p in [(-h, -h, 0.1), (h, -h, 0.1), (h, h, 0.1), (-h, h, 0.1)]]
    quads.append((8, 9, 10, 11))
    faces, uvs = [], []
    for island, (a, b, c, d) in enumerate(quads):
        square = cell_rect(island)
        faces += [(a, b, c), (a, c, d)]
        uvs += [square[[0, 1, 2]], square[[0, 2, 3]]]
    return make_mesh(np.array(corners), np.array(faces), np.array(uvs), "atlas cube")


def cell_mask(index: int) -> np.ndarray:
    """(ATLAS, ATLAS) bool: the texels of atlas cell `index` (image layout: row 0 is v = 1)."""
    cx, cy = index % 3, index // 3
    mask = np.zeros((ATLAS, ATLAS), bool)
    row0 = ATLAS - (cy + 1) * CELL
    mask[row0 : row0 + CELL, cx * CELL : (cx + 1) * CELL] = True
    return mask


@pytest.fixture(scope="module")
def atlas():
    mesh = atlas_cube_with_hidden_quad()
    island = uv_island_mask(torch.from_numpy(mesh.uvs), ATLAS).numpy()
    hidden = island & cell_mask(6)
    visible = island & ~hidden
    # Test design checks: seven islands of equal size, none touching another or the border.
    assert all((island & cell_mask(k)).sum() == hidden.sum() for k in range(7))
    assert not (island & cell_mask(7)).any() and not (island & cell_mask(8)).any()
    assert not island[0].any() and not island[-1].any() and not island[:, 0].any() and not island[:, -1].any()
    return mesh, island, hidden, visible


def atlas_settings(**overrides) -> StyleSettings:
    # The default mip-mapped filter: coarse levels average across islands, so the hidden island's
    # texels do receive gradient; coverage must still count them as unseen (seen = under a face
    # that some view showed). The cube's cells meet at UV seams; these tests pin finishing without the
    # seam term and its gutter (tests/test_seams.py has those), and without the detail term, which would pull the
    # striped style's contrast in before its colour (tests/test_detail.py has it).
    base = dict(steps=25, texture_size=ATLAS, render_size=32, views_per_step=2, margin=2, seam_weight=0.0,
                detail_weight=0.0)
    base.update(overrides)
    return tiny(**base)


def grow_reference(image: np.ndarray, known: np.ndarray, rings: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Independent float64 version of the island growing: every ring, each unknown texel with known
    3x3 neighbours becomes their mean. Returns (image, known) after growing."""
    image = np.where(known[..., None], image, 0).astype(np.float64)
    known = known.copy()
    h, w = known.shape
    ring = 0
    while (rings is None or ring < rings) and known.any() and not known.all():
        k = np.pad(known.astype(np.float64), 1)
        v = np.pad(image * known[..., None], ((1, 1), (1, 1), (0, 0)))
        weight = sum(k[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
        total = sum(v[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
        new = (weight > 0) & ~known
        image[new] = total[new] / weight[new][:, None]
        known |= new
        ring += 1
    return image, known


# --- the loss falls ------------------------------------------------------------------------------


def test_style_loss_falls(sphere, starry):
    # Style alone: the content and balance terms of the grey standing in for the missing original are off.
    settings = tiny(steps=80, texture_size=64, render_size=48, views_per_step=2, param="fourier", seed=0,
                    content_weight=0.0, balance_weight=0.0)
    result = stylize(sphere, starry, settings)
    style = np.array([entry["style"] for entry in result.report["loss"]])
    total = np.array([entry["total"] for entry in result.report["loss"]])
    assert len(style) == 80 and np.isfinite(style).all()
    first, last = style[:10].mean(), style[-10:].mean()
    assert last < 0.75 * first, (first, last)  # measured: about 0.88 -> 0.48
    # total = style_weight * style + content_weight * content + seam_weight * seam + the weighted detail, balance and
    # layout terms.
    parts = {key: np.array([entry[key] for entry in result.report["loss"]])
             for key in ("content", "seam", "detail", "balance", "layout")}
    assert parts["detail"][:10].mean() > 0  # a random start is fainter than the painting
    np.testing.assert_allclose(total, style + settings.content_weight * parts["content"] + settings.seam_weight *
                               parts["seam"] + parts["detail"] + parts["balance"] + parts["layout"], rtol=1e-6)


def test_a_grey_stands_in_for_a_missing_original(sphere, starry):
    """No original texture: a uniform STAND_IN_GREY one gives the content and balance terms (style alone grew blocks of
    the painting's colours), and the texels no view saw take it. Not for a channel objective, whose picture is the
    network's alone; preserved colours still ask for an original of their own."""
    from backend.style.engine import original_or_stand_in

    settings = tiny(steps=2)
    grey, stands_in = original_or_stand_in(None, settings)
    assert stands_in and grey.shape[-1] == 3 and np.all(grey == np.float32(STAND_IN_GREY))
    given = random_texture(16, 1)
    assert original_or_stand_in(given, settings) == (given, False)
    assert original_or_stand_in(None, tiny(objective="channel:rand3:5")) == (None, False)
    assert original_or_stand_in(None, settings, needs_own=True) == (None, False)
    bare = stylize(sphere, starry, settings)
    with_grey = stylize(sphere, starry, settings, grey)
    assert bare.report["original_stand_in"] and not with_grey.report["original_stand_in"]
    np.testing.assert_array_equal(bare.texture, with_grey.texture)
    loss = bare.report["loss"][-1]
    assert loss["content"] > 0 and loss["balance"] > 0  # a random start is no uniform grey
    assert bare.report["content_weight"] == pytest.approx(settings.content_weight * PLAIN_SHARE)  # plain_original.py
    assert loss["total"] == pytest.approx(loss["style"] + bare.report["content_weight"] * loss["content"] + settings.seam_weight
                                          * loss["seam"] + loss["detail"] + loss["balance"] + loss["layout"], rel=1e-5)
    objective = stylize(sphere, None, tiny(steps=1, objective="channel:rand3:5"))
    assert objective.report["original_stand_in"] is False and objective.report["loss"][0]["content"] == 0
    with pytest.raises(StyleTexError, match="needs an original texture"):
        stylize(sphere, starry, tiny(steps=1, preserve_colors=True))


def test_style_weight_scales_the_total(sphere, starry):
    off = dict(content_weight=0.0, seam_weight=0.0, detail_weight=0.0, balance_weight=0.0)  # style alone
    a = stylize(sphere, starry, tiny(steps=2, style_weight=1.0, **off))
    b = stylize(sphere, starry, tiny(steps=2, style_weight=3.0, **off))
    # Step 1 is the same state in both runs (Adam's first step does not depend on the loss scale,
    # nor does the second, so both steps match).
    for x, y in zip(a.report["loss"], b.report["loss"]):
        assert y["style"] == pytest.approx(x["style"], rel=1e-5)
        assert y["total"] == pytest.approx(3 * x["total"], rel=1e-5)


def test_content_term_with_an_original(sphere, starry):
    original = random_texture(32, 3)
    # (no balance term: it is not in the report, and the detail term's pull moves the patches a little)
    result = stylize(sphere, starry, tiny(steps=3, content_weight=0.5, init="original", balance_weight=0.0), original)
    first = result.report["loss"][0]
    # Starting from the original, the renders match the content renders exactly at step 1.
    assert first["content"] == pytest.approx(0.0, abs=2e-3)
    later = result.report["loss"][-1]
    assert later["content"] > first["content"]
    for entry in result.report["loss"]:
        expected = entry["style"] + 0.5 * entry["content"] + StyleSettings.seam_weight * entry["seam"] + entry["detail"]
        assert entry["total"] == pytest.approx(expected, rel=1e-5, abs=1e-7)


# --- gradients reach visible texels only ---------------------------------------------------------


def test_hidden_island_keeps_the_original(atlas):
    mesh, island, hidden, visible = atlas
    original = random_texture(ATLAS, 1)
    result = stylize(mesh, striped_style(), atlas_settings(), original)
    assert result.report["coverage"] == pytest.approx(6 / 7, abs=0.02)
    texture = result.texture
    assert texture.shape == (ATLAS, ATLAS, 3) and np.isfinite(texture).all()
    np.testing.assert_allclose(texture[hidden], original[hidden], rtol=0, atol=1e-6)
    assert np.abs(texture[visible] - original[visible]).mean() > 0.1  # the visible islands changed


def test_hidden_island_takes_the_grey_standing_in_for_a_missing_original(atlas):
    mesh, island, hidden, visible = atlas
    result = stylize(mesh, striped_style(), atlas_settings(param="pixel"))
    assert result.report["coverage"] == pytest.approx(6 / 7, abs=0.02) and result.report["original_stand_in"]
    texture = result.texture
    np.testing.assert_allclose(texture[hidden], STAND_IN_GREY, rtol=0, atol=1e-6)
    assert np.abs(texture[visible] - STAND_IN_GREY).mean() > 0.1  # the visible islands changed


def test_hidden_island_grown_from_neighbours_without_any_original(atlas):
    """A channel objective has no original, not even a stand-in: texels no view saw are grown from the seen ones."""
    mesh, island, hidden, visible = atlas
    result = stylize(mesh, None, atlas_settings(param="pixel", objective="channel:rand3:5", learning_rate=0.3))
    assert result.report["coverage"] == pytest.approx(6 / 7, abs=0.02) and not result.report["original_stand_in"]
    texture = result.texture
    assert np.isfinite(texture).all()
    seen_values = texture[visible]
    lo, hi = seen_values.min(axis=0), seen_values.max(axis=0)
    assert ((texture[hidden] >= lo - 1e-6) & (texture[hidden] <= hi + 1e-6)).all()
    # The pixel parameterization starts at sigmoid(0.01 * noise) ~ 0.5; the hidden texels follow the seen ones'
    # change, grown from them (not left at the start).
    change = seen_values.mean(axis=0) - 0.5
    moved = np.abs(change) > 0.1  # measured: red +0.48, blue -0.46
    assert moved.any()
    assert (np.abs(texture[hidden].mean(axis=0) - 0.5 - change)[moved] < np.abs(change)[moved] / 2).all()
    assert texture[hidden].std(axis=0).max() < seen_values.std(axis=0).max()  # smooth fill


@pytest.mark.parametrize("param", ["fourier", "pixel"])
def test_seen_texels_and_finishing_match_a_reference(atlas, param):
    """White box: StyleJob's seen mask lies on the visible islands only, and finish() equals an
    independent float64 re-computation from the raw texture and that mask."""
    mesh, island, hidden, visible = atlas
    settings = atlas_settings(param=param, margin=3).validate()
    job = StyleJob(mesh, striped_style(), settings, None, CPU)
    for _ in range(settings.steps):
        job.step()
    seen = job.seen_texels().numpy()
    assert not seen[hidden].any()
    assert seen[visible].mean() > 0.98
    # Bilinear taps reach at most one texel beyond an island's texel centres.
    near = grow_reference(np.zeros((ATLAS, ATLAS, 1)), island, 1)[1]
    assert not (seen & ~near).any()
    with torch.no_grad():
        raw = job.parameter().numpy().astype(np.float64)
    texture, coverage = job.finish()
    seen_island = seen & island
    assert coverage == pytest.approx(seen_island.sum() / island.sum(), abs=1e-12)
    filled, _ = grow_reference(raw, seen_island)
    filled = np.where(island[..., None], filled, raw)
    padded, reached = grow_reference(filled, island, settings.margin)
    expected = np.where(reached[..., None], padded, filled)
    np.testing.assert_allclose(texture, expected, rtol=0, atol=2e-6)
    assert np.abs(texture[hidden] - raw[hidden]).max() > 0.01  # the raw values were replaced


# --- finishing: island padding and the island mask ------------------------------------------------


def test_island_padding_is_grown_from_island_texels(atlas):
    mesh, island, hidden, visible = atlas
    margin = 3
    result = stylize(mesh, striped_style(), atlas_settings(margin=margin, steps=10), random_texture(ATLAS, 2))
    texture = result.texture.astype(np.float64)
    padded, reached = grow_reference(texture, island, margin)
    ring = reached & ~island
    assert ring.sum() > 100
    np.testing.assert_allclose(texture[ring], padded[ring], rtol=0, atol=2e-6)
    # A texel right outside a straight island edge is close to the island texel next to it.
    rows, cols = np.nonzero(island & cell_mask(4))
    r, c = (rows.min() + rows.max()) // 2, cols.max()
    assert np.abs(texture[r, c + 1] - texture[r, c]).max() < np.abs(texture[visible] - texture[r, c]).max()


def test_uv_island_mask_lower_left_triangle():
    size = 16
    uvs = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])  # u + v <= 1: the lower-left half
    mask = uv_island_mask(uvs, size).numpy()
    assert mask.shape == (size, size) and mask.dtype == bool
    r, c = np.indices((size, size))
    # Texel centre (row r, column c) has u = (c + 0.5) / 16 and v = 1 - (r + 0.5) / 16: inside when
    # c < r. The mask then grows by one texel (c <= r + 1); c == r + 2 is on the grown diagonal edge.
    assert mask[c <= r + 1].all()
    assert not mask[c >= r + 3].any()
    assert mask[size - 1, 0] and not mask[0, size - 1]  # bottom-left in, top-right out


def test_uv_island_mask_small_island_position():
    size = 32
    # An island in u in [0.5, 0.75], v in [0.75, 1]: texel columns 16..23, rows 0..7.
    u0, u1, v0, v1 = 0.5, 0.75, 0.75, 1.0
    uvs = torch.tensor([[[u0, v0], [u1, v0], [u1, v1]], [[u0, v0], [u1, v1], [u0, v1]]])
    mask = uv_island_mask(uvs, size).numpy()
    expected = np.zeros((size, size), bool)
    expected[0:9, 15:25] = True  # grown by one texel (there is no row -1)
    np.testing.assert_array_equal(mask, expected)


# --- starting from the original, previews, determinism, cancelling --------------------------------


@pytest.mark.parametrize("param", ["fourier", "pixel"])
def test_init_original_starts_from_the_original_and_previews_follow_the_steps(sphere, starry, param):
    original = load_image(REPO / "data" / "spot" / "spot_texture.png")
    settings = tiny(steps=1, preview_every=1, param=param, init="original").validate()
    expected = resize_square(original, 32)
    assert expected.std() > 0.05
    job = StyleJob(sphere, starry, settings, original, CPU)
    assert job.working_shape == (32, 32)  # a start from the original keeps all of its detail
    start = job.texture().numpy()
    np.testing.assert_allclose(start, expected, rtol=0, atol=1 / 255)
    previews = []
    result = stylize(sphere, starry, settings, original, previews.append)
    assert result.report["init"] == "original"
    assert len(previews) == 1 and previews[0].texture is not None
    assert previews[0].texture.shape == (32, 32, 3)
    # A preview shows the texture after its step: close to the start, but moved.
    assert 0 < np.abs(previews[0].texture - start).max() < 0.1


def test_init_original_without_an_original_starts_from_the_grey_standing_in(sphere, starry):
    result = stylize(sphere, starry, tiny(steps=1, init="original", learning_rate=1e-9))
    assert result.report["init"] == "original" and result.report["original_stand_in"]
    np.testing.assert_allclose(result.texture, STAND_IN_GREY, atol=2e-3)
    # no original at all (a channel objective): random
    assert stylize(sphere, None, tiny(steps=1, init="original", objective="channel:rand3:5")).report["init"] == "random"


def test_progress_and_preview_cadence(sphere, starry):
    seen = []
    result = stylize(sphere, starry, tiny(steps=5, preview_every=2), None, seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5]
    assert all(p.steps == 5 for p in seen)
    assert [p.texture is not None for p in seen] == [False, True, False, True, True]
    assert all(p.texture.shape == (32, 32, 3) and p.texture.dtype == np.float32 for p in seen if p.texture is not None)
    for p, entry in zip(seen, result.report["loss"]):
        assert (p.total, p.style, p.content) == (entry["total"], entry["style"], entry["content"])
        assert p.eta >= 0 and p.elapsed > 0
    assert seen[-1].eta == 0
    assert all(b.elapsed >= a.elapsed for a, b in zip(seen, seen[1:]))
    # Previews are snapshots: a later step does not change an earlier one.
    assert np.abs(seen[1].texture - seen[3].texture).max() > 0


def test_same_seed_same_result_other_seed_differs(sphere, starry):
    settings = tiny(steps=4, views_per_step=2, seed=5)
    a = stylize(sphere, starry, settings)
    b = stylize(sphere, starry, dataclasses.replace(settings))
    c = stylize(sphere, starry, dataclasses.replace(settings, seed=6))
    np.testing.assert_array_equal(a.texture, b.texture)
    assert a.report["loss"] == b.report["loss"]
    assert np.abs(a.texture - c.texture).max() > 1e-3
    assert a.report["loss"] != c.report["loss"]


def test_pooled_views_and_the_seam_term_scatter_the_gradient_through_their_transposes(sphere, starry):
    """A step's table gradient through the plans' kept transposes is the one index_add_ gives (to rounding: each
    plan's part is the same bit for bit, their sum is taken in another order)."""
    from backend.texture import build_pyramid
    from backend.texture.sample import SamplePlan

    job = StyleJob(sphere, starry, tiny(texture_size=48, render_size=40), random_texture(48, 1), CPU)
    job.step()
    view = job.pool.views[0]
    assert view.plan.samples.transpose is not None and job.seam_term.plan.transpose is not None
    plain = lambda plan: SamplePlan(plan.index, plan.weight, plan.offsets,  # noqa: E731
                                    None if plan.offsets is None else plan.transpose.col_indices().long().sort()[0])
    texels = build_pyramid(job.parameter(job.working_shape), kernel=job.settings.mip_kernel).texels.detach()
    grads = []
    for strip in (False, True):
        if strip:
            view = dataclasses.replace(view, plan=dataclasses.replace(view.plan, samples=plain(view.plan.samples)))
            job.seam_term.plan = plain(job.seam_term.plan)
        table = texels.clone().requires_grad_()
        images, seam = job.shade_views(table, [view])
        (grad,) = torch.autograd.grad(images[0].square().sum() + seam, table)
        grads.append(grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_cancel_during_the_run(sphere, starry):
    cancel = threading.Event()
    steps_seen = []

    def progress(p):
        steps_seen.append(p.step)
        if p.step == 3:
            cancel.set()

    result = stylize(sphere, starry, tiny(steps=50), None, progress, cancel)
    assert result.cancelled and result.report["cancelled"]
    assert result.report["steps_done"] == 3 and len(result.report["loss"]) == 3
    assert steps_seen == [1, 2, 3]
    assert result.texture.shape == (32, 32, 3) and result.texture.dtype == np.float32
    assert np.isfinite(result.texture).all() and (result.texture >= 0).all() and (result.texture <= 1).all()


def test_cancel_before_the_first_step(sphere, starry):
    cancel = threading.Event()
    cancel.set()
    result = stylize(sphere, starry, tiny(steps=5), random_texture(32, 4), None, cancel)
    assert result.cancelled and result.report["steps_done"] == 0 and result.report["loss"] == []
    assert result.report["coverage"] == 0.0
    assert np.isfinite(result.texture).all() and result.texture.shape == (32, 32, 3)


def test_report_fields(sphere, starry):
    settings = tiny(steps=3, seed=2)
    result = stylize(sphere, starry, settings)
    report = result.report
    assert report["settings"] == dataclasses.asdict(settings)
    assert report["settings"]["steps"] == 3 and report["settings"]["features"] == "random"
    assert report["steps_done"] == 3 and report["cancelled"] is False and not result.cancelled
    assert [entry["step"] for entry in report["loss"]] == [1, 2, 3]
    for entry in report["loss"]:
        assert set(entry) == {"step", "total", "style", "content", "seam", "detail", "balance", "layout"}
        assert all(isinstance(entry[k], float) and math.isfinite(entry[k]) for k in entry if k != "step")
    assert report["seconds_per_step"] > 0 and report["seconds"] >= report["seconds_per_step"]
    assert 0 <= report["coverage"] <= 1 and report["coverage"] > 0.5
    assert report["device"] == "cpu"
    assert report["features"] == "random" and "2" in report["weights"]
    assert report["quality_note"].strip()
    assert report["init"] == "random"


# --- the channel objective -------------------------------------------------------------------------


def channel_activation(mesh, texture: np.ndarray, layer: str, channel: int, seed: int) -> float:
    """Mean activation of one random-bank channel over the mesh in 4 fixed views of `texture`."""
    net = build_feature_net("random", seed=seed, extra_layers=(layer,))
    tensors = MeshTensors.from_mesh(mesh)
    values = []
    for camera in ring_cameras(mesh.center, mesh.radius, 4):
        image = render(tensors, camera, torch.from_numpy(np.ascontiguousarray(texture)), 48, background=0.5)
        with torch.no_grad():
            values.append(net(image.permute(2, 0, 1)[None])[layer][0, channel].mean().item())
    return float(np.mean(values))


def test_channel_objective_excites_the_channel(sphere):
    settings = tiny(steps=30, objective="channel:rand3:5", seed=1, views_per_step=2, learning_rate=0.05)
    result = stylize(sphere, None, settings)
    losses = [entry["style"] for entry in result.report["loss"]]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1e-3  # the negative mean activation falls
    start = stylize(sphere, None, dataclasses.replace(settings, steps=1, learning_rate=1e-9)).texture
    before = channel_activation(sphere, start, "rand3", 5, seed=1)
    after = channel_activation(sphere, result.texture, "rand3", 5, seed=1)
    assert after > before + 0.05 and after > 1.2 * before, (before, after)


def test_channel_objective_channel_out_of_range(sphere):
    # The random bank has 64 channels per layer: 64 names none of them.
    with pytest.raises(StyleTexError) as info:
        stylize(sphere, None, tiny(steps=2, objective="channel:rand3:64"))
    assert "\n" not in str(info.value) and "64" in str(info.value)


def test_channel_objective_unknown_layer(sphere):
    with pytest.raises(StyleTexError) as info:
        stylize(sphere, None, tiny(steps=2, objective="channel:relu4_1:3"))
    assert "\n" not in str(info.value) and "relu4_1" in str(info.value)


# --- bad input -----------------------------------------------------------------------------------


def one_line_error(call, *must_contain: str) -> str:
    with pytest.raises(StyleTexError) as info:
        call()
    message = str(info.value)
    assert message.strip() and "\n" not in message
    for text in must_contain:
        assert text in message, message
    return message


def test_style_image_needed_without_objective(sphere):
    one_line_error(lambda: stylize(sphere, None, tiny()), "style")


def test_zero_area_mesh(starry):
    positions = np.ones((3, 3), np.float32)
    mesh = make_mesh(positions, np.array([[0, 1, 2]]), np.array([[[0, 0], [1, 0], [0, 1]]], np.float32))
    one_line_error(lambda: stylize(mesh, starry, tiny()), "zero")
    # Collinear vertices are as bad.
    line = make_mesh(np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], np.float32), np.array([[0, 1, 2]]),
                     np.array([[[0, 0], [1, 0], [0, 1]]], np.float32))
    one_line_error(lambda: stylize(line, starry, tiny()), "zero")


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"style_weight": float("nan")}, "style_weight"),
        ({"content_weight": float("inf")}, "content_weight"),
        ({"style_weight": -1.0}, "style_weight"),
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"texture_size": 3}, "texture_size"),
        ({"render_size": 8}, "render_size"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"views_per_step": 0}, "views_per_step"),
        ({"style_decay": 1.0}, "style_decay"),
        ({"zoom_min": 2.0, "zoom_max": 1.0}, "zoom_max"),
        ({"roll_deg": 190.0}, "roll_deg"),
        ({"roll_deg": -5.0}, "roll_deg"),
        ({"fov_deg": 180.0}, "fov_deg"),
        ({"objective": "bogus"}, "objective"),
        ({"objective": "channel:rand3:-1"}, "objective"),
        ({"features": "bogus"}, "features"),
        ({"param": "wavelet"}, "param"),
        ({"init": "zeros"}, "init"),
        ({"device": "tpu"}, "device"),
        ({"seed": -1}, "seed"),
        ({"jitter": -1.0}, "jitter"),
        ({"fourier_decay": 5.0}, "fourier_decay"),
        ({"coarse_fraction": 1.5}, "coarse_fraction"),
        ({"closeup_share": 1.5}, "closeup_share"),
        ({"closeup_share": 0.5, "closeup_zoom": 0.5}, "closeup_zoom"),
        ({"closeup_share": 0.5, "closeup_zoom": 16.0, "render_size": 1024}, "closeup_zoom"),
        ({"style_layers": "rand1:x"}, "style_layers"),
        ({"style_layers": "rand1:-2"}, "style_layers"),
        ({"style_layers": "rand9"}, "rand9"),
        ({"content_layer": "rand9"}, "rand9"),
    ],
)
def test_bad_settings(sphere, starry, overrides, name):
    one_line_error(lambda: stylize(sphere, starry, tiny(**overrides)), name)


def test_unknown_feature_kind_even_without_validation(sphere, starry):
    # StyleJob (used by the benchmarks) does not validate; the factory still refuses the name.
    settings = tiny(features="resnet")
    one_line_error(lambda: StyleJob(sphere, starry, settings, None, CPU), "resnet")


# --- the tuning settings ----------------------------------------------------------------------------


def test_style_layers_and_their_weights_reach_the_loss(sphere, starry):
    job = StyleJob(sphere, starry, tiny(style_layers="rand1:2, rand4", content_layer="rand2"), None, CPU)
    assert job.net.style_layers == ("rand1", "rand4") and job.net.content_layer == "rand2"
    assert job.layer_weights == {"rand1": 2.0, "rand4": 1.0}
    default = StyleJob(sphere, starry, tiny(), None, CPU)
    assert default.layer_weights == dict.fromkeys(default.net.style_layers, 1.0)


def test_coarse_to_fine_renders_at_half_size_first_with_targets_at_that_scale(sphere, starry):
    job = StyleJob(sphere, starry, tiny(steps=4, render_size=48, coarse_fraction=0.5), None, CPU)
    sizes = []
    for _ in range(4):
        sizes.append(job.render_size())
        job.step()
    assert sizes == [24, 24, 48, 48]
    assert sorted(job.targets_by_size) == [(24, 1.0), (48, 1.0)]
    coarse, fine = job.targets(24), job.targets(48)
    assert any((coarse[n] - fine[n]).abs().max() > 1e-4 for n in coarse)  # the painting seen at two scales
    assert job.memory().steps == 2  # the style memory started afresh at the switch


def test_jitter_moves_the_pixel_grid_by_whole_pixels():
    mesh = MeshTensors.from_mesh(uv_sphere(12, 24))
    camera = ring_cameras((0.0, 0.0, 0.0), 1.0, 1)[0]
    texture = torch.from_numpy(random_texture(32, 1))
    from backend.render import rasterize_view

    still = rasterize_view(mesh, camera, 64).mask
    moved = rasterize_view(mesh, camera, 64, shift=(3.0, 2.0)).mask  # 3 right, 2 up
    torch.testing.assert_close(moved[10:54, 13:57], still[12:56, 10:54], rtol=0, atol=0)
    assert render(mesh, camera, texture, 64).shape == (64, 64, 3)
    settings = tiny(jitter=1.5, steps=2)
    a = stylize(uv_sphere(6, 12), striped_style(), settings).texture
    b = stylize(uv_sphere(6, 12), striped_style(), settings).texture
    np.testing.assert_array_equal(a, b)  # jitter is drawn from the job's seeded generator


def test_fourier_decay_changes_the_spectrum_scale():
    from backend.style.parameterization import make_texture_parameter

    flat = make_texture_parameter("fourier", 16, 0, None, CPU, decay=1.0).scale
    steep = make_texture_parameter("fourier", 16, 0, None, CPU, decay=2.0).scale
    # Lowest non-zero frequency (1/16) against the highest (sqrt(2)/2): 1/f^2 squares 1/f's ratio.
    flat_ratio, steep_ratio = float(flat[0, 1] / flat[8, 8]), float(steep[0, 1] / steep[8, 8])
    assert flat_ratio == pytest.approx(16 * math.sqrt(0.5), rel=1e-5)
    assert steep_ratio == pytest.approx(flat_ratio**2, rel=1e-5)


def test_gpu_speed_options_run_and_stay_close_to_float32(sphere, starry):
    # channels_last and bfloat16 autocast are meant for CUDA; they run on the CPU as well, which
    # lets CI check that they change the arithmetic, not the result.
    plain_job = StyleJob(sphere, starry, tiny(steps=3).validate(), None, CPU)
    base = [plain_job.step()["total"] for _ in range(3)]
    for options in ({"channels_last": True}, {"network_precision": "bfloat16"},
                    {"channels_last": True, "network_precision": "bfloat16"}):
        job = StyleJob(sphere, starry, tiny(steps=3, **options).validate(), None, CPU)
        assert job.net.channels_last == options.get("channels_last", False)
        assert job.net.bfloat16 == ("network_precision" in options)
        image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        features = job.net(image)
        assert all(f.dtype == torch.float32 for f in features.values())
        if job.net.bfloat16:  # autocast really ran: bfloat16's 8-bit mantissa shows
            plain = build_feature_net("random")(image)
            assert max(float((features[k] - plain[k]).abs().max()) for k in plain) > 1e-4
        losses = [job.step()["total"] for _ in range(3)]
        for got, expected in zip(losses, base):
            assert got == pytest.approx(expected, rel=0.05), options
    with pytest.raises(StyleTexError, match="network_precision"):
        tiny(network_precision="float16").validate()
    with pytest.raises(StyleTexError, match="channels_last"):
        tiny(channels_last=1).validate()


def test_the_layout_term_keeps_the_recoloured_originals_coarse_colours():
    """layout_weight pulls each view's 8 x 8 grid of mean colours towards the original's render recoloured to
    the painting's palette: measured on fixed views afterwards, the final texture is closer to that layout
    with the term than without it."""
    import torch

    from backend.formats.images import load_image
    from backend.mesh.primitives import two_island_sphere
    from backend.render import MeshTensors, rasterize_view, shade
    from backend.style.colors import colour_transfer
    from backend.style.engine import stylize
    from backend.style.losses import colour_layout, layout_loss
    from backend.style.settings import StyleSettings
    from backend.views import ring_cameras

    mesh = two_island_sphere(16, 32)
    original = np.zeros((32, 32, 3), np.float32)
    original[:16] = (0.9, 0.8, 0.7)  # two colours, so the layout has something to keep
    original[16:] = (0.3, 0.4, 0.6)
    style = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    matrix, offset = (torch.from_numpy(a) for a in colour_transfer(original, style.reshape(-1, 3)))
    tensors = MeshTensors.from_mesh(mesh, torch.device("cpu"))
    views = [rasterize_view(tensors, camera, 32) for camera in ring_cameras(mesh.center, mesh.radius, 4)]

    def distance(texture: np.ndarray) -> float:
        total = 0.0
        for fragments in views:
            mask = fragments.mask.float()[None, None]
            source = shade(fragments, tensors.uvs, torch.from_numpy(original), background=0.0).permute(2, 0, 1)[None]
            recoloured = (torch.einsum("ij,bjhw->bihw", matrix, source) + offset.view(1, 3, 1, 1)).clamp(0, 1)
            target, covered = colour_layout(recoloured, mask)
            image = shade(fragments, tensors.uvs, torch.from_numpy(texture), background=0.0).permute(2, 0, 1)[None]
            total += layout_loss(image, mask, target, covered).item()
        return total / len(views)

    scores = {}
    for weight in (0.0, 4.0):
        settings = StyleSettings(steps=40, texture_size=32, render_size=32, features="random", seed=0,
                                 layout_weight=weight)
        scores[weight] = distance(stylize(mesh, style, settings, original).texture)
    assert scores[4.0] < 0.7 * scores[0.0], scores


def test_the_cells_style_term_gives_every_part_of_a_view_the_whole_palette():
    """tile_weight adds each view cell's Gram against the painting's: measured on fixed views afterwards, the
    cells of the final texture's renders are closer to the painting's statistics with the term than without."""
    from backend.formats.images import load_image
    from backend.mesh.primitives import two_island_sphere
    from backend.render import MeshTensors, rasterize_view, shade
    from backend.style.engine import style_targets, stylize
    from backend.style.losses import Coverage, tile_grams, tiled_style_loss
    from backend.style.settings import StyleSettings
    from backend.views import ring_cameras

    mesh = two_island_sphere(16, 32)
    original = np.full((64, 64, 3), 0.8, np.float32)
    style = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    cpu = torch.device("cpu")
    net = build_feature_net("random", cpu, seed=0)
    targets = style_targets(net, [style], 64, cpu)
    weights = dict.fromkeys(net.style_layers, 1.0)
    tensors = MeshTensors.from_mesh(mesh, cpu)
    views = [rasterize_view(tensors, camera, 64) for camera in ring_cameras(mesh.center, mesh.radius, 4)]

    def cells_distance(texture: np.ndarray) -> float:
        total = 0.0
        for fragments in views:
            mask = Coverage(fragments.mask.float()[None, None])
            image = shade(fragments, tensors.uvs, torch.from_numpy(texture), background=0.5).permute(2, 0, 1)[None]
            features = net(image)
            cells = {name: tile_grams(features[name], mask, 2) for name in ("rand1", "rand2")}  # the layers with cells
            total += tiled_style_loss(cells, targets, weights).item()
        return total / len(views)

    scores = {}
    for weight in (0.0, 3.0):
        # no content term: a uniform original would hold the texture still at these sizes and steps; upright views,
        # as those the cells are measured in (turned ones, the default, give 0.099 against 0.164)
        settings = StyleSettings(steps=150, texture_size=64, render_size=64, features="random", seed=0,
                                 content_weight=0.0, learning_rate=0.05, tile_weight=weight, roll_deg=0.0)
        scores[weight] = cells_distance(stylize(mesh, style, settings, original).texture)
    assert scores[3.0] < 0.6 * scores[0.0], scores  # measured: 0.106 against 0.228
    with pytest.raises(StyleTexError, match="tile_weight"):
        StyleSettings(tile_weight=-1.0).validate()
    with pytest.raises(StyleTexError, match="style_tiles"):
        StyleSettings(style_tiles=0).validate()


def test_roll_turns_the_views_about_their_line_of_sight(sphere, starry):
    """World up draws meridians on the surface that every view shows upright; rolled views lie every way."""
    def tilts(**overrides):
        job = StyleJob(sphere, starry, tiny(view_pool=12, view_reuse=1, steps=12, **overrides), None, CPU)
        for _ in range(12):
            job.step()
        # the screen's right axis against world up: 0 where the view is upright
        return np.array([abs(v.camera.view_matrix()[0, 2]) for v in job.pool.views])

    assert tilts(roll_deg=0.0).max() < 1e-9
    rolled = tilts(roll_deg=180.0)
    assert len(rolled) == 12 and rolled.max() > 0.5
