"""Extraction (blender_addon.extract) against what Blender itself holds, read independently, and the
operator's messages for every selection it cannot work with."""

from __future__ import annotations

import numpy as np
import pytest

from .support import JOB, STYLE, add_sphere, base_color_node, image_rgba, make_image, textured_material

LOCATION = (1.5, -2.0, 0.75)
ROTATION = (0.3, -0.5, 1.1)
SCALE = (2.0, 0.5, 1.25)


def reference(obj):
    """What Blender holds for the evaluated object, read element by element (no foreach_get, no compat
    shim): world-space positions through mathutils, triangles and their loops, the UV of each loop."""
    import bpy

    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        matrix = evaluated.matrix_world.copy()
        local = np.array([tuple(v.co) for v in mesh.vertices], np.float64)
        world = np.array([tuple(matrix @ v.co) for v in mesh.vertices], np.float64)
        triangles = np.array([tuple(t.vertices) for t in mesh.loop_triangles], np.int64)
        layer = mesh.uv_layers.active.data
        uvs = np.array([[tuple(layer[loop].uv) for loop in t.loops] for t in mesh.loop_triangles], np.float64)
    finally:
        evaluated.to_mesh_clear()
    return local, world, triangles, uvs


def test_modified_transformed_mesh_round_trips(bpy_clean):
    from blender_addon.extract import extract_active

    bpy = bpy_clean
    obj = add_sphere()
    subdivision = obj.modifiers.new("Subdivision", "SUBSURF")
    subdivision.levels = 1
    obj.location, obj.rotation_euler, obj.scale = LOCATION, ROTATION, SCALE
    bpy.context.view_layer.update()
    base_triangles = len(obj.data.polygons) * 2  # quads and pole triangles: an upper bound

    payload = extract_active(bpy.context)
    local, world, triangles, uvs = reference(obj)

    # The modifier is applied: more triangles than the base mesh could give, exactly Blender's count.
    assert payload.faces.shape == (len(triangles), 3)
    assert len(triangles) > base_triangles
    assert payload.faces.dtype == np.int32 and payload.uvs.dtype == np.float32
    np.testing.assert_array_equal(payload.faces, triangles)
    # World space: matrix_world applied (the object is moved, rotated and scaled; the sphere is symmetric,
    # so its vertices' centroid is the object's location).
    assert payload.positions.shape == world.shape
    np.testing.assert_allclose(payload.positions, world, atol=1e-5)
    np.testing.assert_allclose(payload.positions.mean(axis=0), LOCATION, atol=1e-4)
    assert np.abs(payload.positions - local).max() > 1.0
    # Per-corner UVs equal Blender's, loop by loop.
    assert payload.uvs.shape == (len(triangles), 3, 2)
    np.testing.assert_allclose(payload.uvs, uvs, atol=1e-6)
    # Seams: a vertex used by triangles on both sides of a seam has two different UVs.
    seen: dict[int, set] = {}
    for face, face_uvs in zip(payload.faces, payload.uvs):
        for vertex, uv in zip(face, face_uvs):
            seen.setdefault(int(vertex), set()).add(tuple(np.round(uv, 5)))
    assert max(len(v) for v in seen.values()) >= 2
    # No material: no image, no texture.
    assert payload.image is None and payload.texture is None


def test_an_object_without_images_sends_the_one_plain_colour_its_faces_show(bpy_clean):
    from blender_addon.extract import extract_active
    from blender_addon.materials import linear_to_srgb

    bpy = bpy_clean
    obj = add_sphere()

    def material(name, linear_rgb):
        made = bpy.data.materials.new(name)
        if bpy.app.version < (5, 0, 0):
            made.use_nodes = True
        bsdf = next(n for n in made.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        bsdf.inputs["Base Color"].default_value = (*linear_rgb, 1.0)
        return made, bsdf

    red, bsdf = material("Red", (0.5, 0.1, 0.05))
    obj.data.materials.append(red)
    payload = extract_active(bpy.context)
    assert payload.image is None and payload.images == []
    assert payload.texture.shape == (4, 4, 3)
    np.testing.assert_allclose(payload.texture, np.broadcast_to(linear_to_srgb(np.array([0.5, 0.1, 0.05])), (4, 4, 3)))
    # A second material of the same colour on some faces: still one colour.
    obj.data.materials.append(material("AlsoRed", (0.5, 0.1, 0.05))[0])
    obj.data.polygons[0].material_index = 1
    assert extract_active(bpy.context).texture is not None
    # Of another colour: the faces show two, painted into their UVs (face 0's corners and centre read blue).
    blue = next(n for n in obj.data.materials[1].node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    blue.inputs["Base Color"].default_value = (0.0, 0.0, 1.0, 1.0)
    payload = extract_active(bpy.context)
    painted, size = payload.texture, payload.texture.shape[0]
    face = obj.data.polygons[0]
    loops = list(face.loop_indices)
    centre = np.mean([tuple(obj.data.uv_layers.active.data[i].uv) for i in loops], axis=0)
    row, column = int((1 - centre[1]) * size), int(centre[0] * size)
    np.testing.assert_allclose(painted[row, column], linear_to_srgb(np.array([0.0, 0.0, 1.0])), atol=1e-6)
    red_share = np.all(np.abs(painted - linear_to_srgb(np.array([0.5, 0.1, 0.05]))) < 1e-6, axis=-1).mean()
    assert 0.3 < red_share < 0.99  # most of the UV map: all faces but one
    # One material whose Base Color comes from a procedural texture: a colour we do not read.
    obj.data.polygons[0].material_index = 0
    noise = red.node_tree.nodes.new("ShaderNodeTexNoise")
    red.node_tree.links.new(noise.outputs["Color"], bsdf.inputs["Base Color"])
    assert extract_active(bpy.context).texture is None


def test_image_pixels_are_read_top_row_first(bpy_clean):
    from blender_addon.extract import extract_active

    obj = add_sphere()
    image = make_image("Original", size=8)
    textured_material(obj, image)
    payload = extract_active(bpy_clean.context)
    assert payload.image == image
    stored = image_rgba(image)  # Blender: row 0 is the bottom row
    assert payload.texture.shape == (8, 8, 3)
    np.testing.assert_allclose(payload.texture, stored[::-1, :, :3], atol=1e-6)
    assert not np.allclose(stored[0], stored[-1])  # the flip is visible


@pytest.mark.parametrize("kind", ["POINT", "TEXTURE"])
def test_uvs_come_through_the_mapping_node_the_image_is_read_through(bpy_clean, kind):
    """An image read through a Mapping node (tiled, moved, turned) from a UV Map node naming the second map: the job
    gets that map's UVs as the Mapping node maps them (worked out here from its definition)."""
    from blender_addon.extract import extract_active

    bpy = bpy_clean
    obj = add_sphere()
    obj.data.uv_layers.new(name="Second")
    second = obj.data.uv_layers["Second"].data
    for loop in second:
        loop.uv = (loop.uv[0] * 0.5 + 0.25, loop.uv[1] * 0.5)
    node = textured_material(obj, make_image("Original"))
    tree = obj.active_material.node_tree
    mapping, uv_node = tree.nodes.new("ShaderNodeMapping"), tree.nodes.new("ShaderNodeUVMap")
    mapping.vector_type = kind
    uv_node.uv_map = "Second"
    (x, y), angle, (sx, sy) = (0.1, 0.2), 0.3, (2.0, 3.0)
    mapping.inputs["Location"].default_value = (x, y, 0.5)
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, angle)
    mapping.inputs["Scale"].default_value = (sx, sy, 1.0)
    tree.links.new(uv_node.outputs["UV"], mapping.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], node.inputs["Vector"])
    payload = extract_active(bpy.context)
    assert payload.uv_map == "Second"
    obj.data.uv_layers.active = obj.data.uv_layers["Second"]
    u, v = np.moveaxis(reference(obj)[3], -1, 0)
    cos, sin = np.cos(angle), np.sin(angle)
    if kind == "POINT":  # location + turn(scale * uv), a turn about Z counter-clockwise
        expected = np.stack([x + cos * sx * u - sin * sy * v, y + sin * sx * u + cos * sy * v], axis=-1)
    else:  # its inverse: (turn back (uv - location)) / scale
        du, dv = u - x, v - y
        expected = np.stack([(cos * du + sin * dv) / sx, (-sin * du + cos * dv) / sy], axis=-1)
    np.testing.assert_allclose(payload.uvs, expected, atol=1e-5)
    assert payload.warnings == ()


def test_a_mapping_node_fed_by_other_nodes_is_named(bpy_clean):
    """Its values are not known here: the UVs are the map's own, and the job says the node was not followed."""
    from blender_addon.extract import extract_active

    bpy = bpy_clean
    obj = add_sphere()
    node = textured_material(obj, make_image("Original"))
    tree = obj.active_material.node_tree
    mapping, value = tree.nodes.new("ShaderNodeMapping"), tree.nodes.new("ShaderNodeValue")
    mapping.name = "Tiling"
    tree.links.new(value.outputs["Value"], mapping.inputs["Scale"])
    tree.links.new(mapping.outputs["Vector"], node.inputs["Vector"])
    payload = extract_active(bpy.context)
    np.testing.assert_allclose(payload.uvs, reference(obj)[3], atol=1e-6)
    assert len(payload.warnings) == 1 and "fed by other nodes" in payload.warnings[0]
    assert f"'Tiling' of '{obj.active_material.name}'" in payload.warnings[0]


def stylize(bpy, address: str, **overrides):
    args = dict(JOB, style_path=str(STYLE), steps=2, address=address)
    args.update(overrides)
    return bpy.ops.styletex.stylize(**args)


@pytest.mark.parametrize("case", ["nothing selected", "camera", "empty", "no uv map", "no faces", "no style"])
def test_operator_reports_what_is_wrong(bpy_clean, case):
    bpy = bpy_clean
    expected = {"nothing selected": "nothing selected: select a mesh object",
                "camera": "is a camera, not a mesh", "empty": "is an empty, not a mesh",
                "no uv map": "'Ball' has no UV map: unwrap it first",
                "no faces": "'Dots' has no faces", "no style": "style image not found"}[case]
    style = str(STYLE)
    if case == "camera":
        bpy.ops.object.camera_add()
    elif case == "empty":
        bpy.ops.object.empty_add()
    elif case == "no uv map":
        obj = add_sphere()
        while obj.data.uv_layers:
            obj.data.uv_layers.remove(obj.data.uv_layers[0])
        obj.data.update()  # RNA's uv_layers.remove() does not tag the depsgraph by itself
    elif case == "no faces":
        mesh = bpy.data.meshes.new("Dots")
        mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [(0, 1)], [])
        obj = bpy.data.objects.new("Dots", mesh)
        bpy.context.scene.collection.objects.link(obj)
        bpy.context.view_layer.objects.active = obj
    elif case == "no style":
        add_sphere()
        style = str(STYLE.with_name("no_such_painting.jpg"))
    if case != "nothing selected":
        assert bpy.context.active_object is not None
    # Nothing is listening at this address: every case must fail before anything is sent.
    with pytest.raises(RuntimeError, match=expected):
        stylize(bpy, "tcp://127.0.0.1:9", style_path=style)
    assert not any(i.name.startswith("StyleTex_") or i.name.endswith("_styled") for i in bpy.data.images)


@pytest.mark.parametrize("material", ["none", "no image"])
def test_no_image_starts_from_a_neutral_texture(bpy_clean, backend, material):
    bpy = bpy_clean
    obj = add_sphere()
    if material == "no image":  # a node material whose Base Color is a plain colour
        existing = bpy.data.materials.new("Plain")
        if bpy.app.version < (5, 0, 0):
            existing.use_nodes = True
        obj.data.materials.append(existing)
    assert stylize(bpy, backend.address) == {"FINISHED"}
    image = bpy.data.images.get("StyleTex_Ball")
    assert image is not None and tuple(image.size) == (32, 32)
    assert image.packed_file is not None
    assert len(obj.material_slots) == 1
    expected = "StyleTex_Ball" if material == "none" else "Plain"  # an existing material is used, not replaced
    assert obj.active_material is not None and obj.active_material.name == expected
    assert base_color_node(obj).image == image
    pixels = image_rgba(image)
    assert pixels[..., :3].mean() > 0.1 and pixels[..., :3].std() > 0.001  # painted (a new image is black)
    assert bpy.context.scene.styletex.status.startswith("done: 2 steps")
    # Without a material the object shows Blender's default surface and no colour is sent: the backend says that its
    # grey stands in; a plain material's colour is the original, and nothing is said.
    note = bpy.context.scene.styletex.note
    assert ("grey of 0.8 stands in" in note) if material == "none" else note == "", note
