"""Objects with several materials through the add-on and a real backend: every image is restyled in one
run into its own styled copy, the originals stay intact, revert restores them all; a material without an
image keeps its base colour; the atlas packing itself (numpy only)."""

from __future__ import annotations

import numpy as np

from .support import JOB, STYLE, image_rgba, make_image, textured_material


def two_material_cube(bpy, plain: bool = False):
    """A cube whose faces alternate between two materials, each with its own image (and optionally a third
    material, without an image, on two faces)."""
    bpy.ops.mesh.primitive_cube_add(size=2.0)
    obj = bpy.context.active_object
    obj.name = "Crate"
    with bpy.context.temp_override(active_object=obj, object=obj, edit_object=obj):
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.uv.smart_project(island_margin=0.02)  # the cube's own map overlaps its six faces
        bpy.ops.object.mode_set(mode="OBJECT")
    wood, metal = make_image("Wood", seed=1), make_image("Metal", seed=2)
    textured_material(obj, wood, "WoodMaterial")
    textured_material(obj, metal, "MetalMaterial")
    slots = [0, 1, 0, 1, 0, 1]
    if plain:
        material = bpy.data.materials.new("Paint")
        if bpy.app.version < (5, 0, 0):
            material.use_nodes = True
        bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        bsdf.inputs["Base Color"].default_value = (0.8, 0.1, 0.1, 1.0)
        obj.data.materials.append(material)
        slots = [0, 1, 2, 1, 0, 2]
    obj.data.polygons.foreach_set("material_index", slots)
    obj.data.update()
    return obj, wood, metal


def principled(material):
    return next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")


def nodes_showing(obj) -> list[str]:
    out = []
    for slot in obj.material_slots:
        if slot.material.node_tree is None:  # a material without nodes (before Blender 5.0) shows no image
            continue
        for node in slot.material.node_tree.nodes:
            if node.type == "TEX_IMAGE":
                out.append(node.image.name)
    return out


def test_both_images_are_restyled_in_one_run_and_both_revert(bpy_clean, backend):
    bpy = bpy_clean
    obj, wood, metal = two_material_cube(bpy)
    before = {image.name: image_rgba(image).copy() for image in (wood, metal)}
    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=3, address=backend.address, **JOB)
    assert result == {"FINISHED"}
    assert sorted(nodes_showing(obj)) == ["Metal_styled", "Wood_styled"]
    for image in (wood, metal):
        styled = bpy.data.images[f"{image.name}_styled"]
        assert tuple(styled.size) == (32, 32) and styled.packed_file is not None
        assert np.abs(image_rgba(styled)[..., :3] - before[image.name][..., :3]).mean() > 0.05
        np.testing.assert_array_equal(image_rgba(image), before[image.name])  # the original is untouched
    assert not np.array_equal(image_rgba(bpy.data.images["Wood_styled"]), image_rgba(bpy.data.images["Metal_styled"]))
    assert bpy.ops.styletex.revert() == {"FINISHED"}
    assert sorted(nodes_showing(obj)) == ["Metal", "Wood"]


def test_a_material_without_an_image_keeps_its_colour_and_gets_no_copy(bpy_clean, backend):
    bpy = bpy_clean
    obj, wood, metal = two_material_cube(bpy, plain=True)
    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=3, address=backend.address, **JOB)
    assert result == {"FINISHED"}
    assert sorted(nodes_showing(obj)) == ["Metal_styled", "Wood_styled"]  # Paint has no image node, and gets none
    paint = obj.material_slots[2].material
    bsdf = next(n for n in paint.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert not bsdf.inputs["Base Color"].links and tuple(bsdf.inputs["Base Color"].default_value)[:3] == \
        tuple(np.float32([0.8, 0.1, 0.1]))


def test_an_object_without_images_is_restyled_whole_and_reverts_to_its_colours(bpy_clean, backend):
    """Several materials, none with an image: the result shows on every material's faces, and revert removes the
    image nodes it added (a Base Color fed by a procedural texture gets that texture back)."""
    bpy = bpy_clean
    bpy.ops.mesh.primitive_uv_sphere_add(segments=8, ring_count=6)
    obj = bpy.context.active_object
    obj.name = "Toy"
    colours = {"Paint": (0.8, 0.1, 0.1), "Rubber": (0.02, 0.02, 0.02), "Marble": (0.5, 0.5, 0.5)}
    for name, colour in colours.items():
        material = bpy.data.materials.new(name)
        if bpy.app.version < (5, 0, 0):
            material.use_nodes = True
        principled(material).inputs["Base Color"].default_value = (*colour, 1.0)
        obj.data.materials.append(material)
    marble = obj.material_slots[2].material.node_tree
    noise = marble.nodes.new("ShaderNodeTexNoise")
    marble.links.new(noise.outputs["Color"], principled(obj.material_slots[2].material).inputs["Base Color"])
    obj.data.polygons.foreach_set("material_index", np.arange(len(obj.data.polygons)) % 3)
    obj.data.update()
    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=3, address=backend.address, **JOB)
    assert result == {"FINISHED"}
    assert nodes_showing(obj) == ["StyleTex_Toy"] * 3
    assert bpy.ops.styletex.revert() == {"FINISHED"}
    assert nodes_showing(obj) == []
    for slot, (name, colour) in zip(obj.material_slots, colours.items()):
        socket = principled(slot.material).inputs["Base Color"]
        assert tuple(socket.default_value)[:3] == tuple(np.float32(colour))
        assert [link.from_node.name for link in socket.links] == (["Noise Texture"] if name == "Marble" else [])


def test_a_material_other_objects_share_is_copied_for_the_restyled_one_and_revert_puts_it_back(bpy_clean, backend):
    """The styled texture is laid out in this object's UVs: another object with the same material keeps the
    original (textured), or its plain colour (untextured); a linked duplicate (same mesh) shows the result."""
    bpy = bpy_clean
    wood = make_image("Wood")
    for textured in (True, False):
        bpy.ops.mesh.primitive_uv_sphere_add(segments=8, ring_count=6)
        other = bpy.context.active_object
        bpy.ops.mesh.primitive_uv_sphere_add(segments=8, ring_count=6, location=(3, 0, 0))
        obj = bpy.context.active_object
        if textured:
            textured_material(obj, wood, "Shared")
        else:
            obj.data.materials.append(bpy.data.materials.new("Plain"))
        shared = obj.data.materials[0]
        other.data.materials.append(shared)
        twin = obj.copy()  # a linked duplicate: the same mesh, so the same UVs
        bpy.context.collection.objects.link(twin)
        bpy.context.view_layer.objects.active = obj
        result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, address=backend.address, **JOB)
        assert result == {"FINISHED"}
        styled = "Wood_styled" if textured else f"StyleTex_{obj.name}"
        mine = obj.material_slots[0].material
        assert mine != shared and nodes_showing(obj) == [styled] and nodes_showing(twin) == [styled]
        assert other.material_slots[0].material == shared
        assert nodes_showing(other) == (["Wood"] if textured else [])
        copy = mine.name
        assert bpy.ops.styletex.revert() == {"FINISHED"}
        assert obj.material_slots[0].material == shared and copy not in bpy.data.materials
        assert nodes_showing(obj) == nodes_showing(other) == (["Wood"] if textured else [])


def test_the_extracted_atlas_holds_each_image_and_base_colour_in_its_cell(bpy_clean):
    from blender_addon.atlas import unpack
    from blender_addon.extract import extract_active, image_pixels

    bpy = bpy_clean
    obj, wood, metal = two_material_cube(bpy, plain=True)
    payload = extract_active(bpy.context, texture_size=32)
    assert payload.layout is not None and payload.layout.cells == 3 and payload.texture.shape == (64, 64, 3)
    cells = unpack(payload.texture, payload.layout, 3)
    images = {image.name: image for image in payload.images}
    assert sorted(images) == ["Metal", "Wood"]
    for index, image in enumerate(payload.images):
        np.testing.assert_allclose(cells[index], image_pixels(image), atol=1e-6)  # 32^2 cells: not resampled
    red = 1.055 * 0.8 ** (1 / 2.4) - 0.055
    np.testing.assert_allclose(cells[2].mean(axis=(0, 1)), [red, 1.055 * 0.1 ** (1 / 2.4) - 0.055, 1.055 * 0.1 ** (1 / 2.4) - 0.055], atol=1e-4)
    # Faces of the image-less material may not change; every face's UVs lie in its own cell.
    slots = np.array([p.material_index for p in obj.data.polygons])
    obj.data.calc_loop_triangles()
    triangle_slot = slots[[t.polygon_index for t in obj.data.loop_triangles]]
    np.testing.assert_array_equal(payload.editable, triangle_slot != 2)
    cell_of_slot = {0: payload.images.index(wood), 1: payload.images.index(metal), 2: 2}
    for slot, cell in cell_of_slot.items():
        row, column = divmod(cell, 2)
        uv = payload.uvs[triangle_slot == slot].reshape(-1, 2)
        assert (uv[:, 0] >= column / 2).all() and (uv[:, 0] <= (column + 1) / 2).all()
        assert (uv[:, 1] >= 1 - (row + 1) / 2).all() and (uv[:, 1] <= 1 - row / 2).all()


def test_an_atlas_with_one_cutout_carries_its_alpha_and_the_others_are_opaque(bpy_clean):
    from blender_addon.atlas import unpack
    from blender_addon.extract import extract_active

    bpy = bpy_clean
    obj, wood, metal = two_material_cube(bpy, plain=True)
    rgba = image_rgba(metal).copy()
    rgba[..., 3] = np.where(np.arange(32) < 10, 0.0, 1.0)[:, None]  # Blender's bottom ten rows see-through
    metal.pixels.foreach_set(rgba.ravel())
    metal.update()
    payload = extract_active(bpy.context, texture_size=32)
    assert payload.texture.shape == (64, 64, 4)
    cells = unpack(payload.texture, payload.layout, 3)
    for index, image in enumerate(payload.images):
        expected = image_rgba(image)[::-1, :, 3]  # row 0 at the top, as the payload holds it
        np.testing.assert_array_equal(cells[index][..., 3], expected)
    assert (cells[2][..., 3] == 1).all() and (cells[payload.images.index(wood)][..., 3] == 1).all()
