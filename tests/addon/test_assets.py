"""Real assets through the add-on and a real backend: the UV map a job uses, meshes without one (refused
or unwrapped), and restyling the selected faces only with every other texel kept byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

from .support import JOB, STYLE, add_sphere, base_color_node, image_rgba, make_image, textured_material


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
