"""The original's alpha is kept, not styled: a see-through part of a card stays see-through in the result and in
every preview, in the result's own layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.render import rasterize_view, shade
from backend.style.engine import StyleJob, stylize
from backend.texture.transfer import resize_square
from backend.style.settings import StyleSettings
from backend.texture import build_pyramid
from backend.texture.alpha import split_alpha
from backend.texture.sample import sample
from backend.views import orbit_camera

REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(steps=3, texture_size=128, render_size=64, features="random", device="cpu", seed=2)


@pytest.fixture(scope="module")
def spot():
    mesh = read_obj(REPO / "data" / "spot" / "spot_triangulated.obj")
    colours = resize_square(load_image(REPO / "data" / "spot" / "spot_texture.png"), 96)
    # A cutout: the left third of the texture fully transparent, a soft ramp, the rest opaque.
    u = (np.arange(96) + 0.5) / 96
    alpha = np.clip((u - 1 / 3) * 12, 0, 1)[None, :, None].repeat(96, axis=0).astype(np.float32)
    return mesh, np.concatenate([colours, alpha], axis=-1), load_image(REPO / "data" / "styles" / "starry_night.jpg")


def test_split_alpha_keeps_an_alpha_only_where_some_texel_is_see_through():
    rgb = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    assert split_alpha(rgb)[1] is None
    opaque = np.concatenate([rgb, np.ones((8, 8, 1), np.float32)], axis=-1)
    colours, alpha = split_alpha(opaque)
    assert alpha is None and np.array_equal(colours, rgb)
    cut = opaque.copy()
    cut[0, 0, 3] = 0.5
    colours, alpha = split_alpha(cut)
    assert np.array_equal(colours, rgb) and alpha.shape == (8, 8, 1) and alpha[0, 0, 0] == 0.5


@pytest.mark.parametrize("unwrap", ["keep", "auto"])
def test_the_result_and_previews_carry_the_original_alpha_resized(spot, unwrap):
    mesh, original, style = spot
    previews = []
    settings = StyleSettings(**SETTINGS, unwrap=unwrap, preview_every=1)
    result = stylize(mesh, style, settings, original, progress=lambda p: previews.append(p.texture))
    assert result.report["unwrap"] == ("keep" if unwrap == "keep" else "round-trip")
    # independently: the 96^2 alpha resized to the result's 128^2 as any image is
    expected = F.interpolate(torch.from_numpy(original[..., 3])[None, None], size=(128, 128), mode="bilinear",
                             antialias=True, align_corners=False)[0, 0].numpy()
    assert result.texture.shape == (128, 128, 4)
    assert np.abs(result.texture[..., 3] - expected).max() < 1e-5
    assert (result.texture[:, :40, 3] == 0).all() and (result.texture[:, 60:, 3] == 1).all()
    shown = [p for p in previews if p is not None]
    assert shown and all(p.shape[-1] == 4 and np.abs(p[..., 3] - expected).max() < 1e-5 for p in shown)
    plain = stylize(mesh, style, StyleSettings(**SETTINGS, unwrap=unwrap), original[..., :3]).texture
    assert np.abs(result.texture[..., 60:, :3] - original_colours(original, 128)[:, 60:]).mean() > 0.05  # restyled
    assert not np.array_equal(result.texture[..., :3], plain)  # learned from renders that see through


def original_colours(original: np.ndarray, size: int) -> np.ndarray:
    return resize_square(original[..., :3], size)


def test_views_show_the_background_through_see_through_texels(spot):
    """Each pixel is as opaque as the alpha at its surface point (the texture's u, found with a ramp texture of
    its own), the learned render shows the background through it and the losses weigh it by it."""
    mesh, original, style = spot
    job = StyleJob(mesh, style, StyleSettings(**SETTINGS, unwrap="keep"), original[..., :3], torch.device("cpu"),
                   see_through=original[..., 3:])
    ramp = torch.from_numpy(((np.arange(96) + 0.5) / 96).astype(np.float32))[None, :, None].expand(96, 96, 1)
    for direction in ((1, 0, 0), (-1, 0.3, 0), (0, 1, 0.5), (0.2, -1, -0.3)):
        camera = orbit_camera(mesh.center, mesh.radius, np.asarray(direction) / np.linalg.norm(direction))
        fragments = rasterize_view(job.mesh_t, camera, 64)
        u = shade(fragments, job.mesh_t.uvs, ramp.contiguous(), "linear", "clamp")[..., 0]
        opacity = job.opacity(fragments)[..., 0]
        hidden, solid = fragments.mask & (u < 0.25), fragments.mask & (u > 0.5) & (u < 0.95)
        assert hidden.any() and solid.any()
        assert (opacity[~fragments.mask] == 0).all()
        # all but the odd pixel whose mip footprint reaches over a UV island's edge
        assert (opacity[hidden] < 0.1).float().mean() > 0.98 and (opacity[solid] > 0.9).float().mean() > 0.98
    job.step()
    view = job.pool.views[0]
    image = job.shade_views(build_pyramid(job.parameter(job.working_shape)).texels, [view])[0][0]
    clear = view.opacity[..., 0] == 0
    assert torch.equal(image[clear], view.background.expand_as(image[clear]))
    assert (view.coverage.mask[0, 0][clear] == 0).all() and (view.coverage.mask[0, 0] > 0).any()
    partial = (view.opacity[..., 0] > 0) & (view.opacity[..., 0] < 1)
    assert torch.allclose(view.coverage.mask[0, 0][partial], view.opacity[..., 0][partial])


def test_new_uvs_carry_the_alpha_to_where_each_face_now_lies(spot):
    mesh, original, style = spot
    result = stylize(mesh, style, StyleSettings(**SETTINGS, unwrap="even"), original)
    assert result.uvs is not None and result.texture.shape == (128, 128, 4)
    # Each face's alpha at its centroid: in the original's UVs and in the result's new ones.
    before = sample(torch.from_numpy(original[..., 3:]), torch.from_numpy(mesh.uvs.mean(axis=1)), filter="linear")
    after = sample(torch.from_numpy(np.ascontiguousarray(result.texture[..., 3:])),
                   torch.from_numpy(result.uvs.mean(axis=1).astype(np.float32)), filter="linear")
    clear = (before[:, 0] == 0) | (before[:, 0] == 1)  # faces away from the ramp
    assert clear.sum() > 0.8 * len(mesh.faces) and (before[clear, 0] == 0).any()
    assert (torch.abs(after[clear] - before[clear]) < 0.05).float().mean() > 0.97


def test_selected_faces_keep_the_alpha_of_every_texel(spot):
    mesh, original, style = spot
    right = mesh.positions[mesh.faces].mean(axis=1)[:, 0] > mesh.center[0]
    settings = StyleSettings(**{**SETTINGS, "texture_size": 96})
    result = stylize(mesh, style, settings, original, editable=right).texture
    assert np.array_equal(result[..., 3], original[..., 3])


def test_an_opaque_alpha_channel_changes_nothing(spot):
    mesh, original, style = spot
    opaque = original.copy()
    opaque[..., 3] = 1
    settings = StyleSettings(**SETTINGS, unwrap="keep")
    result = stylize(mesh, style, settings, opaque).texture
    assert np.array_equal(result, stylize(mesh, style, settings, original[..., :3]).texture)


def test_every_frame_of_a_morph_carries_the_alpha(spot):
    from backend.style.sequence import stylize_sequence

    mesh, original, style = spot
    wave = load_image(REPO / "data" / "styles" / "wave.jpg")
    settings = StyleSettings(**{**SETTINGS, "texture_size": 96, "steps": 2})
    result = stylize_sequence(mesh, style, wave, settings, 3, original)
    assert len(result.frames) == 3
    for frame in result.frames:
        assert frame.shape == (96, 96, 4) and np.array_equal(frame[..., 3], original[..., 3])
    assert not np.array_equal(result.frames[0][..., :3], result.frames[-1][..., :3])
