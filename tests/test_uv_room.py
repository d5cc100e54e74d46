"""UV room: each face's UV axes, the starved share of the surface, and the note a user gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.formats.obj import read_obj
from backend.mesh import make_mesh
from backend.mesh.primitives import many_island_sphere, stretched_tube, two_island_sphere, uv_sphere
from backend.mesh.unwrap import even_layout
from backend.mesh.uv_room import shared_share, starved_faces, uv_axes, uv_room
from backend.texture.uv_layout import shared_texels

ROOT = Path(__file__).resolve().parent.parent


def squares(uv_heights: list[float], columns: list[int] | None = None):
    """Unit squares side by side along X (two triangles each, tilted out of the XY plane so the frame is not
    the world's), square i mapped to a UV column 1/n wide (column `columns[i]`, by default i) and uv_heights[i]
    high."""
    n = len(uv_heights)
    positions, faces, uvs = [], [], []
    tilt = np.array([[1, 0, 0], [0, 0.6, 0.8], [0, -0.8, 0.6]])  # a rotation: lengths and areas are kept
    for i, height in enumerate(uv_heights):
        base = len(positions)
        positions += [tilt @ np.array(p, float) for p in ((i, 0, 0), (i + 1, 0, 0), (i + 1, 1, 0), (i, 1, 0))]
        column = i if columns is None else columns[i]
        u0, u1 = column / n, (column + 1) / n
        corners = [(u0, 0), (u1, 0), (u1, height), (u0, height)]
        for a, b, c in ((0, 1, 2), (0, 2, 3)):
            faces.append((base + a, base + b, base + c))
            uvs.append((corners[a], corners[b], corners[c]))
    return make_mesh(np.array(positions), np.array(faces), np.array(uvs), "squares")


def test_axes_are_the_uv_maps_singular_values():
    area, major, minor = uv_axes(squares([0.5, 0.125]))
    assert area == pytest.approx([0.5] * 4)
    # Square 0: 1/2 UV wide and 1/2 high per unit, square 1: 1/2 wide and 1/8 high.
    assert major == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert minor == pytest.approx([0.5, 0.5, 0.125, 0.125])


def test_a_face_without_uv_area_is_starved_and_one_without_surface_area_counts_nothing():
    mesh = squares([0.5, 0.5, 0.0])  # the third square's UVs collapse onto a line
    room = uv_room(mesh, 1024)
    assert room.starved_share == pytest.approx(1 / 3) and room.stretched_share == pytest.approx(1 / 3)
    flat = make_mesh(np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0.0]]), np.array([[0, 1, 2], [0, 1, 3]]),
                     np.array([[[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 0], [0, 1]]]), "flat")
    area, _, _ = uv_axes(flat)
    assert area[0] == 0 and area[1] == pytest.approx(0.5)


def test_starved_share_counts_the_thin_faces_area_and_names_it_in_the_note():
    # Four squares of 1/5 x 1/2 UV each (density sqrt(1/10) per unit, the median); one 1/5 x 1/50: thin axis
    # 1/50 against a median of 0.32 (16 times fewer), so starved, and stretched 10 : 1.
    room = uv_room(squares([0.5, 0.5, 0.5, 0.5, 0.02]), 512)
    assert room.starved_share == pytest.approx(0.2) and room.stretched_share == pytest.approx(0.2)
    assert room.median_density == pytest.approx(np.sqrt(0.2 * 0.5) * 512)
    assert "20.0 % of the surface" in room.note() and "UV room" in room.note()
    # 1/5 x 1/20 is 6.3 times fewer texels than the median along its thin axis, stretched 4 : 1: room enough.
    even = uv_room(squares([0.5, 0.5, 0.5, 0.5, 0.05]), 512)
    assert even.starved_share == 0 and even.note() == ""
    # the faces themselves (a round trip keeps them as carried back)
    np.testing.assert_array_equal(starved_faces(squares([0.5, 0.5, 0.5, 0.5, 0.02]), 512), [False] * 8 + [True] * 2)
    assert not starved_faces(squares([0.5, 0.5, 0.5, 0.5, 0.05]), 512).any()


def test_the_bundled_and_procedural_meshes():
    """Blub's fins and tail get a fifth of its surface's room at most and are named; the others have room."""
    blub = uv_room(read_obj(ROOT / "data" / "blub" / "blub_triangulated.obj"), 1024)
    assert 0.1 < blub.starved_share < 0.3 and blub.note() and blub.shared_share == 0
    for mesh in (read_obj(ROOT / "data" / "spot" / "spot_triangulated.obj"),
                 read_obj(ROOT / "data" / "bob" / "bob_tri.obj"),
                 two_island_sphere(), stretched_tube(), many_island_sphere()):
        room = uv_room(mesh, 1024)
        assert room.note() == "" and room.starved_share < 0.01 and room.shared_share == 0, room


def test_a_selection_is_judged_on_its_own_faces():
    mesh = squares([0.5, 0.5, 0.5, 0.5, 0.02])
    thin = np.arange(len(mesh.faces)) >= 8  # the fifth square's two triangles
    assert uv_room(mesh, 512, faces=~thin).starved_share == 0 and uv_room(mesh, 512, faces=~thin).note() == ""
    assert uv_room(mesh, 512, faces=thin | (np.arange(10) < 4)).starved_share == pytest.approx(1 / 3)


def test_shared_texels_are_those_two_faces_cover():
    # Four squares in UV columns of 1/4 x 1/2: the first two on one column, the last two on their own.
    mesh = squares([0.5, 0.5, 0.5, 0.5], columns=[0, 0, 2, 3])
    shared = shared_texels(torch.from_numpy(mesh.uvs), 64).numpy()
    expected = np.zeros((64, 64), bool)
    expected[32:, :16] = True  # column 0, v in [0, 1/2): the image's lower half
    np.testing.assert_array_equal(shared, expected)
    # Neighbouring faces of one island share edges, not texels.
    alone = squares([0.5, 0.5, 0.5, 0.5])
    assert not shared_texels(torch.from_numpy(alone.uvs), 64).any()


def test_overlapping_uvs_are_named_with_their_share_of_the_surface():
    mesh = squares([0.5, 0.5, 0.5, 0.5], columns=[0, 0, 2, 3])
    room = uv_room(mesh, 512)
    assert room.shared_share == pytest.approx(0.5, abs=0.03) and room.starved_share == 0
    assert "50" in room.note().split("%")[0] and "shares its texels" in room.note() and "--unwrap even" in room.note()
    assert room.to_dict()["shared_share"] == room.shared_share
    # a selection is judged on its own faces: the squares alone in their columns share nothing
    apart = np.arange(len(mesh.faces)) >= 4
    assert shared_share(mesh, apart) == 0 and uv_room(mesh, 512, faces=apart).note() == ""
    assert shared_share(mesh, ~apart) == 1


def test_mirrored_halves_are_named_and_even_uv_room_parts_them():
    """A sphere whose two halves read one half of the texture, mirrored (a common way to save texture room)."""
    sphere = uv_sphere(24, 48)
    uvs = sphere.uvs.copy()
    uvs[..., 0] = 1 - np.abs(2 * uvs[..., 0] - 1)
    mirrored = make_mesh(sphere.positions, sphere.faces, uvs, "mirrored")
    assert uv_room(mirrored, 1024).shared_share > 0.95 and "shares its texels" in uv_room(mirrored, 1024).note()
    assert uv_room(sphere, 1024).shared_share == 0
    assert uv_room(even_layout(mirrored, 1024), 1024).shared_share == 0


def test_a_texture_tiled_over_the_surface_is_shared_by_its_tiles():
    # Four squares on UV columns 0-3 of a layout four tiles wide: each reads the whole texture (wrapped).
    tiled = squares([1.0, 1.0, 1.0, 1.0])
    tiled = make_mesh(tiled.positions, tiled.faces, tiled.uvs * np.float32([4, 1]), "tiled")
    assert shared_share(tiled) == 1
    # One island moved a whole tile away reads the texels it read before, and no other part reads them.
    moved = squares([0.5, 0.5, 0.5, 0.5])
    moved = make_mesh(moved.positions, moved.faces, moved.uvs + np.float32([1, -2]), "moved")
    assert shared_share(moved) == 0
