"""UVs past the unit square (a texture tiled or moved by a Mapping node or a glTF transform): the texture wraps, so a
face there reads, and a job restyles, the texels it lands on once moved by whole tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from backend.formats.images import load_image
from backend.mesh import make_mesh
from backend.mesh.primitives import uv_sphere
from backend.style.engine import stylize
from backend.style.settings import StyleSettings
from backend.texture.uv_layout import tile_copies, uv_fragments

REPO = Path(__file__).resolve().parent.parent
SETTINGS = dict(steps=20, texture_size=64, render_size=64, features="random", device="cpu", seed=0, unwrap="keep")


def moved(mesh, du: float):
    uvs = mesh.uvs.copy()
    uvs[..., 0] += du
    return make_mesh(mesh.positions, mesh.faces, uvs)


def test_each_face_is_copied_into_every_tile_it_reaches():
    inside = torch.tensor([[[0.1, 0.1], [0.9, 0.1], [0.5, 1.0]]])
    copies, face = tile_copies(inside)
    assert copies is inside and face.tolist() == [0]  # a layout in the unit square is left as it is
    across = torch.tensor([[[0.8, 0.2], [1.3, 0.2], [1.0, 0.6]], [[1.2, 2.1], [1.5, 2.1], [1.4, 2.5]]])
    copies, face = tile_copies(across)
    assert face.tolist() == [0, 0, 1]
    torch.testing.assert_close(copies[0], across[0])  # over u = 1: as it is, and one tile to the left
    torch.testing.assert_close(copies[1], across[0] - torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(copies[2], across[1] - torch.tensor([1.0, 2.0]))  # wholly in tile (1, 2)


def test_a_layout_moved_by_a_quarter_covers_the_texels_rolled_by_a_quarter():
    mesh = uv_sphere(8, 16)
    size = 64
    before = uv_fragments(torch.from_numpy(mesh.uvs), size)
    after = uv_fragments(torch.from_numpy(moved(mesh, 0.25).uvs), size)
    rolled = torch.roll(before.face_ids, size // 4, dims=1)  # columns are u
    assert before.mask.float().mean() > 0.8  # the sphere's map fills most of the square (not its pole caps)
    assert (after.face_ids == rolled).float().mean() > 0.99  # the same faces (all but edge-on texel centres)


def test_a_job_in_moved_uvs_restyles_every_texel_the_surface_shows():
    mesh = uv_sphere(16, 32)
    grey = np.full((64, 64, 3), 0.5, np.float32)
    style = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    texture = stylize(moved(mesh, 0.3), style, StyleSettings(**SETTINGS), grey).texture
    still_grey = np.abs(texture - 0.5).max(axis=-1) < 1e-3
    assert still_grey.mean() < 0.01  # before the texture wrapped, 43 % of the band left of u = 0.3 stayed grey
    assert not still_grey[:, :17].any()


def test_selected_faces_in_moved_uvs_keep_every_other_texel_exactly():
    mesh = moved(uv_sphere(16, 32), 0.3)
    right = mesh.positions[mesh.faces].mean(axis=1)[:, 0] > 0
    original = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    style = load_image(REPO / "data" / "styles" / "starry_night.jpg")
    texture = stylize(mesh, style, StyleSettings(**SETTINGS), original, editable=right).texture
    others = uv_fragments(torch.from_numpy(mesh.uvs[~right]), 64).mask.numpy()  # the unselected faces' texels
    assert others[:, :17].any()  # some of them only past u = 1
    assert np.array_equal(texture[others], original[others])
    assert np.abs(texture[~others] - original[~others]).mean() > 0.05
