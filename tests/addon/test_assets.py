"""Real assets through the add-on and a real backend: the UV map a job uses, meshes without one (refused
or unwrapped), and restyling the selected faces only with every other texel kept byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

from .support import JOB, REPO, STYLE, add_sphere, base_color_node, image_rgba, make_image, textured_material


def painted(bpy, name: str = "Ball"):
    obj = add_sphere(name)
    image = make_image("Original")
    node = textured_material(obj, image)
    return obj, image, node


def texels_inside(uvs: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool in Blender's pixel order (row 0 at the bottom): texel centres inside any triangle."""
    centre = (np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="xy"), -1).reshape(-1, 2) + 0.5) / size
    out = np.zeros(len(centre), bool)
    for a, b, c in uvs.astype(np.float64):
        edges = [(b - a, centre - a), (c - b, centre - b), (a - c, centre - c)]
        side = np.stack([e[0] * p[:, 1] - e[1] * p[:, 0] for e, p in edges])
        out |= (side >= 0).all(axis=0) | (side <= 0).all(axis=0)
    return out.reshape(size, size)


def add_flat_map(obj) -> None:
    """A second UV map, 'Flat': the first one halved, so the two give different UVs everywhere."""
    first = obj.data.uv_layers[0]
    flat = obj.data.uv_layers.new(name="Flat")
    for source, target in zip(first.data, flat.data):
        target.uv = (source.uv[0] * 0.5, source.uv[1] * 0.5)


def test_the_uv_map_is_the_chosen_one_the_image_nodes_or_the_active_render_one(bpy_clean):
    from blender_addon.extract import ExtractError, extract_active, which_uv_map

    bpy = bpy_clean
    obj, _, node = painted(bpy)
    add_flat_map(obj)
    first = obj.data.uv_layers[0].name
    obj.data.uv_layers["Flat"].active_render = True
    obj.data.uv_layers.active = obj.data.uv_layers[first]  # the active (edited) map is not what renders
    assert which_uv_map(obj) == ("Flat", "the active render map")
    flat = extract_active(bpy.context)
    assert flat.uv_map == "Flat" and flat.uvs.max() <= 0.5 + 1e-6
    # A UV Map node feeding the image node: that map, as the material shows it.
    tree = obj.active_material.node_tree
    uv_node = tree.nodes.new("ShaderNodeUVMap")
    uv_node.uv_map = first
    tree.links.new(uv_node.outputs["UV"], node.inputs["Vector"])
    from_node = extract_active(bpy.context)
    assert (from_node.uv_map, from_node.uv_map_reason) == (first, "the image node's UV Map node")
    np.testing.assert_allclose(from_node.uvs * 0.5, flat.uvs, atol=1e-6)
    chosen = extract_active(bpy.context, "Flat")
    assert chosen.uv_map_reason == "chosen"
    np.testing.assert_array_equal(chosen.uvs, flat.uvs)
    with pytest.raises(ExtractError, match="no UV map 'Detail'"):
        extract_active(bpy.context, "Detail")


def test_a_mesh_without_uv_map_is_refused_or_unwrapped(bpy_clean, backend):
    bpy = bpy_clean
    obj = add_sphere("Bare")
    while obj.data.uv_layers:
        obj.data.uv_layers.remove(obj.data.uv_layers[0])
    vertices = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", vertices)
    with pytest.raises(RuntimeError, match="no UV map: unwrap it first \\(UV > Smart UV Project\\)"):
        bpy.ops.styletex.stylize(style_path=str(STYLE), steps=1, address=backend.address, **JOB)
    assert not obj.data.uv_layers  # refused: the mesh is as it was
    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, auto_unwrap=True, address=backend.address, **JOB)
    assert result == {"FINISHED"}
    assert [layer.name for layer in obj.data.uv_layers] == ["StyleTex_UV"]
    uvs = np.empty(len(obj.data.loops) * 2, np.float32)
    obj.data.uv_layers[0].data.foreach_get("uv", uvs)
    assert uvs.min() >= 0 and uvs.max() <= 1 and np.ptp(uvs) > 0.5  # Smart UV Project's islands in the unit square
    after = np.empty_like(vertices)
    obj.data.vertices.foreach_get("co", after)
    np.testing.assert_array_equal(after, vertices)  # the geometry untouched
    # No texture before: a new image, and a material wired to it (the content term is off).
    styled = bpy.data.images["StyleTex_Bare"]
    assert base_color_node(obj).image == styled and obj.mode == "OBJECT"


def test_selected_faces_only_keeps_every_other_texel_byte_for_byte(bpy_clean, backend):
    bpy = bpy_clean
    obj, original, _ = painted(bpy)
    before = image_rgba(original).copy()
    centres = np.array([tuple(p.center) for p in obj.data.polygons])
    selected = centres[:, 2] > 0.3  # the sphere's top cap
    obj.data.polygons.foreach_set("select", selected)
    obj.data.update()
    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=3, selected_only=True, address=backend.address,
                                      **{**JOB, "texture_size": 128})  # the image's own size (32) is used instead
    assert result == {"FINISHED"}
    styled = image_rgba(bpy.data.images["Original_styled"])
    assert styled.shape == before.shape
    obj.data.calc_loop_triangles()
    uvs = np.array([[tuple(obj.data.uv_layers.active.data[i].uv) for i in t.loops] for t in obj.data.loop_triangles],
                   np.float32)
    chosen = np.array([selected[t.polygon_index] for t in obj.data.loop_triangles])
    unselected, inside = texels_inside(uvs[~chosen], 32), texels_inside(uvs[chosen], 32) & ~texels_inside(uvs[~chosen], 32)
    as_bytes = lambda rgba: np.round(rgba[..., :3] * 255).astype(np.uint8)  # noqa: E731
    assert unselected.mean() > 0.3 and inside.mean() > 0.05
    assert np.array_equal(as_bytes(styled)[unselected], as_bytes(before)[unselected])  # byte for byte
    assert np.abs(styled[inside][:, :3] - before[inside][:, :3]).mean() > 0.02  # and the selection was restyled
    with pytest.raises(RuntimeError, match="no face is selected"):
        obj.data.polygons.foreach_set("select", np.zeros_like(selected))
        obj.data.update()
        bpy.ops.styletex.revert()
        bpy.ops.styletex.stylize(style_path=str(STYLE), steps=1, selected_only=True, address=backend.address, **JOB)


def test_even_uv_room_restyles_in_a_map_of_its_own_and_revert_puts_the_original_back(bpy_clean, backend):
    """A sphere whose own UVs squeeze its top cap into a speck: the backend's note says so for a job in those UVs
    and says nothing for Even UV Room's, which runs in a StyleTex_Even map shown through a UV Map node of the
    add-on's. Revert puts back the image, the UV Map node the material had, and removes the map."""
    from blender_addon.extract import evaluated_corner_uvs, extract_active
    from blender_addon.write_back import UV_MAP_KEY

    bpy = bpy_clean
    obj, original, node = painted(bpy)
    own = obj.data.uv_layers[0]
    cap = np.array([p.center[2] > 0.3 for p in obj.data.polygons])
    for polygon in obj.data.polygons:
        if cap[polygon.index]:
            loops = list(polygon.loop_indices)
            centre = np.mean([tuple(own.data[i].uv) for i in loops], axis=0)
            for i in loops:
                own.data[i].uv = tuple(centre + (np.array(own.data[i].uv) - centre) / 40)
    own = own.name  # a layer's Python object does not outlive other layers' coming and going
    tree = obj.active_material.node_tree
    theirs = tree.nodes.new("ShaderNodeUVMap")  # the material reads its image through a UV Map node already
    theirs.uv_map = own
    tree.links.new(theirs.outputs["UV"], node.inputs["Vector"])
    settings = bpy.context.scene.styletex
    # The job's UVs and the texture's come in one face order, so the backend moves the texture face by face.
    np.testing.assert_array_equal(evaluated_corner_uvs(bpy.context, obj, own), extract_active(bpy.context).uvs)

    assert bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, address=backend.address, **JOB) == {"FINISHED"}
    assert "too little UV room" in settings.note and "Even UV Room" in settings.note
    assert bpy.ops.styletex.revert() == {"FINISHED"}
    with pytest.raises(RuntimeError, match="turn off Selected Faces Only"):
        bpy.ops.styletex.stylize(style_path=str(STYLE), steps=1, even_uvs=True, selected_only=True,
                                 address=backend.address, **JOB)
    assert "StyleTex_Even" not in obj.data.uv_layers  # refused: the mesh is as it was

    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, even_uvs=True, address=backend.address, **JOB)
    assert result == {"FINISHED"} and settings.note == ""
    layers = obj.data.uv_layers
    assert [layer.name for layer in layers] == [own, "StyleTex_Even"]
    assert layers.active.name == own and layers[own].active_render  # the object's own maps stay active
    even = np.empty(len(obj.data.loops) * 2, np.float32)
    layers["StyleTex_Even"].data.foreach_get("uv", even)
    assert even.min() >= 0 and even.max() <= 1 and np.ptp(even) > 0.5
    styled = bpy.data.images["Original_styled"]
    assert base_color_node(obj).image == styled and styled[UV_MAP_KEY] == "StyleTex_Even"
    feeding = node.inputs["Vector"].links[0].from_node
    assert feeding.type == "UVMAP" and feeding.uv_map == "StyleTex_Even" and feeding != theirs
    # Restyled again without Revert: the job reads the result through its map, and so is its own result shown.
    assert bpy.ops.styletex.stylize(style_path=str(STYLE), steps=1, address=backend.address, **JOB) == {"FINISHED"}
    again = bpy.data.images["Original_styled_styled"]
    assert base_color_node(obj).image == again and again[UV_MAP_KEY] == "StyleTex_Even"
    assert node.inputs["Vector"].links[0].from_node.uv_map == "StyleTex_Even"

    assert bpy.ops.styletex.revert() == {"FINISHED"}
    assert base_color_node(obj).image == original
    assert node.inputs["Vector"].links[0].from_node == theirs
    assert [n for n in tree.nodes if n.type == "UVMAP"] == [theirs]
    assert [layer.name for layer in obj.data.uv_layers] == [own]
    assert bpy.ops.styletex.revert() == {"CANCELLED"}


def test_face_colours_are_painted_into_their_uvs_with_a_gutter():
    from blender_addon.uv_texels import face_colour_texture

    # Two triangles over the lower-left half square: red below the diagonal, blue above it; nothing above v = 0.5.
    uvs = np.array([[[0, 0], [0.5, 0], [0.5, 0.5]], [[0, 0], [0.5, 0.5], [0, 0.5]]], np.float64)
    red, blue = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    texture = face_colour_texture(uvs, np.array([red, blue]), size=64, gutter=3)
    assert texture.shape == (64, 64, 3) and texture.dtype == np.float32
    lower = texture[::-1]  # row 0 at v = 0
    assert np.allclose(lower[4, 20], red) and np.allclose(lower[20, 4], blue)
    assert np.allclose(lower[33, 10], blue) and np.allclose(lower[10, 33], red)  # the gutter continues each side
    assert np.allclose(lower[50, 50], (0.5, 0.0, 0.5))  # far from every triangle: the mean colour


def test_overlapping_share_counts_texels_two_triangles_both_cover():
    from blender_addon.uv_overlap import overlapping_share

    quad = np.array([[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]], [[0.1, 0.1], [0.9, 0.9], [0.1, 0.9]]])
    assert overlapping_share(quad) == 0  # two triangles that share an edge
    folded = np.array([[[0.1, 0.1], [0.9, 0.1], [0.1, 0.9]], [[0.5, 0.1], [0.9, 0.1], [0.5, 0.5]]])
    # the second triangle (area 0.08) lies wholly inside the first (0.32): a quarter of the covered texels
    assert abs(overlapping_share(folded) - 0.25) < 0.01
    tiny = np.array([[[0.3, 0.3], [0.3005, 0.3], [0.3, 0.3005]]] * 2)  # no texel centre inside: nothing covered
    assert overlapping_share(tiny) == 0


def test_even_uv_room_lowers_the_angle_limit_until_blubs_fins_do_not_fold(bpy_clean):
    """Blub's own UVs give its fins 1/1500 of the median texel density (1st percentile). Smart UV Project at Blender's
    default angle limit folds the fins onto themselves (texels shared by two places); Even UV Room's map does not,
    and gives every part about the same density."""
    from blender_addon.compat import corner_uvs
    from blender_addon.extract import EVEN_NAME, add_even_uv_map, add_uv_map, evaluated_corner_uvs
    from blender_addon.uv_overlap import overlapping_share

    bpy = bpy_clean
    bpy.ops.wm.obj_import(filepath=str(REPO / "data" / "blub" / "blub_triangulated.obj"))
    obj = bpy.context.selected_objects[0]
    bpy.context.view_layer.objects.active = obj
    own = obj.data.uv_layers[0].name
    positions = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", positions)
    obj.data.calc_loop_triangles()
    corners = np.array([tuple(t.vertices) for t in obj.data.loop_triangles])
    triangles = positions.reshape(-1, 3)[corners]
    area = np.linalg.norm(np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1)

    def density_quantile(uvs: np.ndarray) -> float:
        edges = uvs[:, 1:] - uvs[:, :1]
        density = np.abs(edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 1, 0] * edges[:, 0, 1]) / np.maximum(area, 1e-12)
        return float(np.percentile(density, 1) / np.median(density))

    assert density_quantile(evaluated_corner_uvs(bpy.context, obj, own)) < 0.01
    loops = np.array([tuple(t.loops) for t in obj.data.loop_triangles])
    add_uv_map(obj, "Default", active=False)  # Smart UV Project at its default angle limit
    assert overlapping_share(corner_uvs(obj.data, "Default")[loops]) > 0.01
    assert add_even_uv_map(obj) == EVEN_NAME
    even = evaluated_corner_uvs(bpy.context, obj, EVEN_NAME)
    assert overlapping_share(even) == 0 and density_quantile(even) > 0.8
    assert obj.data.uv_layers.active.name == own and obj.data.uv_layers[own].active_render


def test_keep_own_uvs_restyles_in_even_uvs_and_hands_the_image_back_in_the_objects_own_map(bpy_clean, backend):
    """Even UV Room with Keep Own UVs: the backend's round trip. No map is added, the styled image is shown through
    the object's own UVs as the original was, every texel under the surface was restyled, and the picture is not
    the one the same job makes in the own UVs (which two runs give bit for bit)."""
    from blender_addon.write_back import UV_MAP_KEY

    bpy = bpy_clean
    obj, original, node = painted(bpy)
    before = image_rgba(original)
    feeding = node.inputs["Vector"].links[0].from_node if node.inputs["Vector"].links else None
    with pytest.raises(RuntimeError, match="turn off Keep Own UVs"):
        bpy.ops.styletex.stylize(style_path=str(STYLE), steps=1, even_uvs=True, keep_own_uvs=True, animate=True,
                                 address=backend.address, **JOB)

    def styled(**options) -> np.ndarray:
        assert bpy.ops.styletex.stylize(style_path=str(STYLE), steps=4, address=backend.address, **JOB,
                                        **options) == {"FINISHED"}
        image = bpy.data.images["Original_styled"]
        assert base_color_node(obj).image == image and UV_MAP_KEY not in image
        assert (node.inputs["Vector"].links[0].from_node if node.inputs["Vector"].links else None) == feeding
        pixels = image_rgba(image)[..., :3]
        assert bpy.ops.styletex.revert() == {"FINISHED"}
        bpy.data.images.remove(image)
        return pixels

    plain, again = styled(), styled()
    trip = styled(even_uvs=True, keep_own_uvs=True)
    assert [layer.name for layer in obj.data.uv_layers] == ["UVMap"]
    obj.data.calc_loop_triangles()
    uvs = np.array([[tuple(obj.data.uv_layers[0].data[i].uv) for i in t.loops] for t in obj.data.loop_triangles],
                   np.float32)
    inside = texels_inside(uvs, 32)
    assert inside.mean() > 0.3
    assert np.abs(trip[inside] - before[inside][:, :3]).mean() > 0.1
    np.testing.assert_array_equal(plain, again)
    assert np.abs(trip[inside] - plain[inside]).mean() > 0.005
