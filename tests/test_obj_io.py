"""The OBJ reader: corners, fan triangulation, relative indices, up axis, and its error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.errors import MeshError, StyleTexError
from backend.mesh import make_mesh
from backend.formats.obj import read_obj, write_obj

REPO = Path(__file__).resolve().parent.parent
SPOT = REPO / "data" / "spot" / "spot_triangulated.obj"


def write(tmp_path: Path, text: str, name: str = "mesh.obj") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_z(tmp_path: Path, text: str):
    """Reads with up_axis='Z' so positions come back exactly as written."""
    return read_obj(write(tmp_path, text), up_axis="Z")


# --- well-formed files -------------------------------------------------------------------------


def test_triangle_with_v_vt_corners(tmp_path):
    mesh = read_z(
        tmp_path,
        "v 0 0 0\nv 1 0 0\nv 0 1 0\n"
        "vt 0.1 0.2\nvt 0.9 0.2\nvt 0.1 0.8\n"
        "f 1/1 2/2 3/3\n",
    )
    assert mesh.positions.dtype == np.float32 and mesh.positions.shape == (3, 3)
    assert mesh.faces.dtype == np.int64
    assert mesh.uvs.dtype == np.float32
    np.testing.assert_array_equal(mesh.positions, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])
    np.testing.assert_allclose(mesh.uvs, [[[0.1, 0.2], [0.9, 0.2], [0.1, 0.8]]], rtol=0, atol=1e-7)


def test_triangle_with_v_vt_vn_corners_uses_vt_and_ignores_vn(tmp_path):
    mesh = read_z(
        tmp_path,
        "v 0 0 0\nv 1 0 0\nv 0 1 0\n"
        "vt 0 0\nvt 1 0\nvt 0 1\n"
        "vn 0 0 1\n"
        # Corners deliberately use vt in a different order from v.
        "f 1/3/1 2/1/1 3/2/1\n",
    )
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])
    np.testing.assert_array_equal(mesh.uvs, [[[0, 1], [0, 0], [1, 0]]])


def test_uvs_are_per_corner_so_a_vertex_can_have_two_uvs(tmp_path):
    # Two triangles share vertices 1 and 3 but give them different texture coordinates (a seam).
    mesh = read_z(
        tmp_path,
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvt 0.5 0.5\nvt 0.25 0.75\n"
        "f 1/1 2/2 3/3\nf 1/5 3/6 4/4\n",
    )
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3]])
    np.testing.assert_array_equal(mesh.uvs[0], [[0, 0], [1, 0], [1, 1]])
    np.testing.assert_array_equal(mesh.uvs[1], [[0.5, 0.5], [0.25, 0.75], [0, 1]])


def test_quad_is_fan_triangulated_with_per_corner_uvs(tmp_path):
    mesh = read_z(
        tmp_path,
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
        "f 1/1 2/2 3/3 4/4\n",
    )
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3]])
    np.testing.assert_array_equal(mesh.uvs, [[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]])


def test_pentagon_is_fan_triangulated(tmp_path):
    # vt k is (k/10, k/100) so every corner's UV identifies which vt it came from.
    vts = "".join(f"vt {k / 10} {k / 100}\n" for k in range(1, 6))
    mesh = read_z(
        tmp_path,
        "v 0 0 0\nv 2 0 0\nv 3 1 0\nv 1 2 0\nv -1 1 0\n" + vts + "f 1/5 2/4 3/3 4/2 5/1\n",
    )
    assert mesh.faces.shape == (3, 3)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [0, 3, 4]])
    vt_of = np.array([[5, 4, 3], [5, 3, 2], [5, 2, 1]], dtype=np.float32)
    np.testing.assert_allclose(mesh.uvs[..., 0], vt_of / 10, rtol=0, atol=1e-7)
    np.testing.assert_allclose(mesh.uvs[..., 1], vt_of / 100, rtol=0, atol=1e-8)


def test_mixed_polygons_count_faces(tmp_path):
    mesh = read_z(
        tmp_path,
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 0 0\nv 2 1 0\nvt 0 0\n"
        "f 1/1 2/1 3/1\n"  # 1 triangle
        "f 1/1 2/1 3/1 4/1\n"  # 2 triangles
        "f 1/1 2/1 5/1 6/1 3/1 4/1\n",  # hexagon: 4 triangles
    )
    assert len(mesh.faces) == 7
    assert mesh.uvs.shape == (7, 3, 2)


def test_negative_indices_are_relative_to_what_was_read_so_far(tmp_path):
    text = (
        "v 9 9 9\n"  # a vertex that must not be used
        "vt 0.9 0.9\n"
        "v 0 0 0\nv 1 0 0\nv 0 1 0\n"
        "vt 0 0\nvt 1 0\nvt 0 1\n"
        "f -3/-3 -2/-2 -1/-1\n"
        "v 5 5 5\n"
        "vt 0.5 0.5\n"
        "f -4/-4 -1/-1 -3/-3\n"  # now -1 is the vertex (5,5,5) and vt (0.5,0.5)
    )
    mesh = read_z(tmp_path, text)
    np.testing.assert_array_equal(mesh.faces, [[1, 2, 3], [1, 4, 2]])
    np.testing.assert_array_equal(mesh.uvs[0], [[0, 0], [1, 0], [0, 1]])
    np.testing.assert_array_equal(mesh.uvs[1], [[0, 0], [0.5, 0.5], [1, 0]])


def test_mixed_positive_and_negative_indices_agree(tmp_path):
    base = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
    a = read_z(tmp_path, base + "f 1/1 2/2 3/3\n")
    b = read_z(tmp_path, base + "f -3/1 2/-2 -1/-1\n")
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_array_equal(a.uvs, b.uvs)


def test_comments_blank_lines_and_other_keywords_are_ignored(tmp_path):
    text = (
        "# a comment line\n"
        "\n"
        "   \n"
        "mtllib thing.mtl\n"
        "o object\n"
        "g group\n"
        "v 0 0 0   # trailing comment\n"
        "v 1 0 0\n"
        "\tv 0 1 0\n"
        "vn 0 0 1\n"
        "s off\n"
        "usemtl mat\n"
        "vt 0 0\nvt 1 0\nvt 0 1\n"
        "# f 1/1 2/2 9/9   a commented-out face is not read\n"
        "f 1/1/1 2/2/1 3/3/1 # comment after a face\n"
        "\n"
    )
    mesh = read_z(tmp_path, text)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])
    np.testing.assert_array_equal(mesh.positions, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "crlf.obj"
    path.write_bytes(b"v 0 0 0\r\nv 1 0 0\r\nv 0 1 0\r\nvt 0 0\r\nvt 1 0\r\nvt 0 1\r\nf 1/1 2/2 3/3\r\n")
    mesh = read_obj(path)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])


def test_old_mac_line_endings(tmp_path):
    path = tmp_path / "cr.obj"
    path.write_bytes(b"v 0 0 0\rv 1 0 0\rv 0 1 0\rvt 0 0\rf 1/1 2/1 3/1\rf 1 2 3\r")
    with pytest.raises(MeshError) as info:
        read_obj(path)
    assert f"{path}:6:" in str(info.value)


def test_crlf_error_line_number(tmp_path):
    path = tmp_path / "crlf_bad.obj"
    path.write_bytes(b"v 0 0 0\r\n\r\nv 1 0 0\r\nv 0 1 0\r\nf 1 2 3\r\n")
    with pytest.raises(MeshError) as info:
        read_obj(path)
    assert f"{path}:5:" in str(info.value)
    assert "\r" not in str(info.value)


@pytest.mark.parametrize("separator", ["\x0c", "\x0b", "\x1c", "\x85", "\u2028"])
def test_unicode_line_separators_in_comments_do_not_shift_line_numbers(tmp_path, separator):
    # str.splitlines() would break these lines in two; editors and the OBJ format do not.
    path = write(tmp_path, f"v 0 0 0 # a{separator}b\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(MeshError) as info:
        read_obj(path)
    assert f"{path}:4:" in str(info.value), str(info.value)


def test_default_converts_y_up_to_z_up_like_blender(tmp_path):
    text = "v 1 2 3\nv -4 5 -6\nv 7 -8 9\nvt 0 0\nf 1/1 2/1 3/1\n"
    path = write(tmp_path, text)
    default = read_obj(path)
    explicit = read_obj(path, up_axis="Y")
    expected = [[1, -3, 2], [-4, 6, 5], [7, -9, -8]]  # (x, y, z) -> (x, -z, y)
    np.testing.assert_array_equal(default.positions, expected)
    np.testing.assert_array_equal(explicit.positions, expected)
    assert default.positions.dtype == np.float32


def test_up_axis_z_keeps_coordinates(tmp_path):
    path = write(tmp_path, "v 1 2 3\nv -4 5 -6\nv 7 -8 9\nvt 0 0\nf 1/1 2/1 3/1\n")
    mesh = read_obj(path, up_axis="Z")
    np.testing.assert_array_equal(mesh.positions, [[1, 2, 3], [-4, 5, -6], [7, -8, 9]])


def test_conversion_is_a_proper_rotation(tmp_path):
    # A counter-clockwise triangle must stay counter-clockwise: no mirroring.
    path = write(tmp_path, "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n")
    y_up = read_obj(path).positions.astype(np.float64)
    z_up = read_obj(path, up_axis="Z").positions.astype(np.float64)
    n_y = np.cross(y_up[1] - y_up[0], y_up[2] - y_up[0])
    n_z = np.cross(z_up[1] - z_up[0], z_up[2] - z_up[0])
    # Rotating +90 degrees about X takes the normal (0,0,1) to (0,-1,0).
    np.testing.assert_array_equal(n_z, [0, 0, 1])
    np.testing.assert_array_equal(n_y, [0, -1, 0])


def test_bad_up_axis_is_rejected(tmp_path):
    path = write(tmp_path, "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n")
    with pytest.raises(MeshError):
        read_obj(path, up_axis="X")


def test_write_then_read_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    positions = rng.normal(size=(12, 3)).astype(np.float32)
    positions[0] = [0.0, 0.0, 0.0]  # zeros (and their signs) must survive too
    faces = rng.integers(0, 12, size=(20, 3))
    uvs = rng.uniform(-0.5, 1.5, size=(20, 3, 2)).astype(np.float32)
    mesh = make_mesh(positions, faces, uvs)
    path = tmp_path / "round.obj"
    write_obj(path, mesh)
    back = read_obj(path)
    np.testing.assert_array_equal(back.positions, mesh.positions)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.uvs, mesh.uvs)
    assert back.positions.dtype == np.float32 and back.uvs.dtype == np.float32
    assert back.faces.dtype == np.int64


def test_written_file_is_y_up(tmp_path):
    mesh = make_mesh([[1, 2, 3], [0, 0, 0], [0, 0, 1]], [[0, 1, 2]], np.zeros((1, 3, 2)))
    path = tmp_path / "w.obj"
    write_obj(path, mesh)
    first = path.read_text().splitlines()[0].split()
    assert first[0] == "v"
    assert [float(c) for c in first[1:]] == [1, 3, -2]  # Blender (x, y, z) -> OBJ (x, z, -y)


def test_bundled_spot_mesh():
    mesh = read_obj(SPOT)
    assert mesh.faces.shape == (5856, 3)
    assert mesh.uvs.shape == (5856, 3, 2)
    assert np.isfinite(mesh.positions).all()
    assert np.isfinite(mesh.uvs).all()
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.positions)
    assert mesh.positions.shape == (2930, 3)
    # The cow's texture atlas lies (almost) in the unit square.
    assert mesh.uvs.min() > -0.1 and mesh.uvs.max() < 1.1


def test_read_accepts_str_path(tmp_path):
    path = write(tmp_path, "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n")
    assert len(read_obj(str(path)).faces) == 1


# --- malformed files ---------------------------------------------------------------------------

HEADER = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"  # lines 1-6

MALFORMED = {
    "no_vt": (HEADER + "f 1 2 3\n", 7),
    "only_vn": (HEADER + "# comment\n\nf 1//1 2//2 3//3\n", 9),
    "vertex_index_too_big": (HEADER + "f 1/1 2/2 4/3\n", 7),
    "vertex_index_too_negative": (HEADER + "f -4/1 2/2 3/3\n", 7),
    "vertex_index_forward_reference": ("v 0 0 0\nv 1 0 0\nvt 0 0\nf 1/1 2/1 3/1\nv 0 1 0\n", 4),
    "vt_index_too_big": (HEADER + "f 1/1 2/2 3/4\n", 7),
    "vt_index_too_negative": (HEADER + "f 1/-4 2/2 3/3\n", 7),
    "vertex_index_zero": (HEADER + "f 0/1 1/2 2/3\n", 7),
    "vt_index_zero": (HEADER + "f 1/0 2/2 3/3\n", 7),
    "index_not_integer": (HEADER + "f 1/1 2/2 x/3\n", 7),
    "coordinate_not_a_number": ("v 0 0 0\nv 1 zero 0\n", 2),
    "uv_not_a_number": ("v 0 0 0\nvt 0 abc\n", 2),
    "too_few_coordinates": ("v 0 0 0\nv 1 0\n", 2),
    "nan_coordinate": ("v 0 0 0\n\nv nan 0 0\n", 3),
    "inf_coordinate": ("v inf 0 0\n", 1),
    "negative_inf_coordinate": ("v 0 0 0\nv 0 -inf 0\n", 2),
    "nan_uv": ("v 0 0 0\nvt 0 nan\n", 2),
    "two_corner_face": (HEADER + "f 1/1 2/2\n", 7),
    "one_corner_face": (HEADER + "f 1/1\n", 7),
    "empty_face": (HEADER + "\nf\n", 8),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_names_file_and_line(tmp_path, case):
    text, line = MALFORMED[case]
    path = write(tmp_path, text, name=f"{case}.obj")
    with pytest.raises(MeshError) as info:
        read_obj(path)
    message = str(info.value)
    assert f"{path}:{line}:" in message, message
    assert "\n" not in message and "\r" not in message
    # The error must be exactly at that line, not also claim some other line.
    other_lines = [f"{path}:{n}:" for n in range(1, 12) if n != line]
    assert not any(tag in message for tag in other_lines), message


def test_mesh_error_is_a_styletex_error(tmp_path):
    path = write(tmp_path, HEADER + "f 1 2 3\n")
    with pytest.raises(StyleTexError):
        read_obj(path)


def test_error_messages_say_what_is_wrong(tmp_path):
    def message(text: str) -> str:
        with pytest.raises(MeshError) as info:
            read_obj(write(tmp_path, text))
        return str(info.value)

    assert "vt" in message(HEADER + "f 1 2 3\n")
    assert "out of range" in message(HEADER + "f 1/1 2/2 9/3\n")
    assert "NaN or Inf" in message("v nan 0 0\n")
    assert "not a number" in message("v 1 x 0\n")
    assert "3 corners" in message(HEADER + "f 1/1 2/2\n")


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n\n", "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\n"],
    ids=["empty", "comments", "vertices_only"],
)
def test_file_without_faces(tmp_path, text):
    path = write(tmp_path, text, name="facelessmesh.obj")
    with pytest.raises(MeshError) as info:
        read_obj(path)
    message = str(info.value)
    assert str(path) in message
    assert "no faces" in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    path = tmp_path / "does_not_exist.obj"
    with pytest.raises(MeshError) as info:
        read_obj(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(MeshError) as info:
        read_obj(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_the_texture_an_objs_material_library_names_is_its_original(tmp_path):
    """map_Kd of the materials the faces use (options before the name, the library beside the OBJ); their plain Kd
    where they name none or a file that is not there; no texture where no face shows an image."""
    from backend.formats.model import read_model
    from backend.formats.obj import mtl_materials
    from PIL import Image

    Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(tmp_path / "my paint.png")
    (tmp_path / "lib.mtl").write_text("newmtl paint\nKd 1 1 1\nmap_Kd -s 1 1 1 -clamp on -bm 0.5 my paint.png\n"
                                      "newmtl lost\nKd 0.5 0.25 0\nmap_Kd nowhere.png\nnewmtl bare\n")
    table = mtl_materials([tmp_path / "lib.mtl", tmp_path / "missing.mtl"])
    assert table["paint"].diffuse_map == tmp_path / "my paint.png" and table["lost"].diffuse_map is None
    np.testing.assert_allclose(table["lost"].colour, [0.7354, 0.5371, 0.0], atol=1e-3)  # Kd is linear: sRGB-encoded
    np.testing.assert_allclose(table["bare"].colour, 0.9063, atol=1e-3)  # no Kd: Blender's 0.8 grey
    body = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
    (tmp_path / "one.obj").write_text(f"mtllib lib.mtl\n{body}usemtl paint\nf 1/1 2/2 3/3\nusemtl paint\nf 1/1 3/3 2/2\n")
    one = read_model(tmp_path / "one.obj")
    assert one.cells == 1 and one.editable is None and one.texture.shape == (4, 4, 3)
    assert np.allclose(one.texture, 200 / 255)
    for name, faces in (("lost.obj", "usemtl lost\nf 1/1 2/2 3/3\n"), ("bare.obj", "f 1/1 2/2 3/3\n")):
        (tmp_path / name).write_text(f"mtllib lib.mtl\n{body}{faces}")
        model = read_model(tmp_path / name)
        assert model.texture is None and model.cells == 1, name


def test_a_written_mesh_names_its_texture_in_a_library_beside_it(tmp_path):
    """By its path relative to the OBJ, spaces and all, so an importer (and read_model) shows the mesh textured."""
    from backend.formats.model import read_model
    from PIL import Image

    (tmp_path / "tex dir").mkdir()
    Image.fromarray(np.full((4, 4, 3), 90, np.uint8)).save(tmp_path / "tex dir" / "a b.png")
    mesh = make_mesh(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]), np.zeros((1, 3, 2), np.float32))
    write_obj(tmp_path / "out" / "m.obj", mesh, texture=tmp_path / "tex dir" / "a b.png")
    assert (tmp_path / "out" / "m.mtl").read_text().splitlines()[-1] == "map_Kd ../tex dir/a b.png"
    model = read_model(tmp_path / "out" / "m.obj")
    assert model.cells == 1 and np.allclose(model.texture, 90 / 255)
