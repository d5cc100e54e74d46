"""The textures of all of an object's materials, for one job (bpy-facing; the packing is atlas.py's).

Every image feeding a Base Color of the object's materials is restyled in the same run. With one image
for all faces nothing changes: the job's texture is that image; with none, the plain colours the faces
show, painted into their UVs. Otherwise the images (and a flat cell of base colour for each material without
an image) are packed into an atlas, the UVs moved into their cells, and the faces of materials without an
image marked not editable, so they render as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .atlas import AtlasLayout, pack, plan_atlas, remap_uvs
from .uv_texels import face_colour_texture


@dataclass
class ObjectTextures:
    texture: np.ndarray | None  # (S, S, 3) sRGB values, row 0 at the top: the image, the atlas, or plain colours
    uvs: np.ndarray  # (F, 3, 2), moved into the atlas's cells when there is one
    editable: np.ndarray | None  # (F,) bool, or None when every face may change
    images: list  # the original images, in cell order (the first is the active material's when it has one)
    layout: AtlasLayout | None  # None: one image (or none) serves every face


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear values (float images, colour sockets) -> sRGB-encoded float32, clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def base_color(material) -> np.ndarray:
    """The sRGB colour a material without an image shows: its Principled BSDF's Base Color, else its
    viewport colour, else Blender's default grey."""
    from .compat import uses_nodes

    if material is not None and uses_nodes(material):
        for node in material.node_tree.nodes:
            if node.type == "BSDF_PRINCIPLED":
                return linear_to_srgb(np.array(node.inputs["Base Color"].default_value[:3], np.float64))
    if material is not None:
        return linear_to_srgb(np.array(material.diffuse_color[:3], np.float64))
    return linear_to_srgb(np.full(3, 0.8))


def plain_colour(material) -> np.ndarray | None:
    """The one sRGB colour a material without an image shows everywhere, or None where its Base Color comes from
    a node we do not read (a procedural texture, a colour ramp)."""
    from .compat import uses_nodes

    if material is not None and uses_nodes(material):
        for node in material.node_tree.nodes:
            if node.type == "BSDF_PRINCIPLED" and node.inputs["Base Color"].is_linked:
                return None
    return base_color(material)


PLAIN_SIZE = 512  # the side of the texture painted with the plain colours of several materials


def plain_texture(slots: list, material_index: np.ndarray, uvs: np.ndarray) -> np.ndarray | None:
    """What an object without images shows, as a texture, where its faces' materials show plain colours (so the job
    holds it as it holds a texture, and Preserve Colors keeps each part's colour): one colour as (4, 4, 3), several
    painted face by face into its UVs (PLAIN_SIZE^2). None without any material (the backend's grey stands in) or
    where a material's colour comes from a node we do not read."""
    used = np.unique(material_index)
    if all(slots[int(s)] is None for s in used):
        return None
    colours = {int(s): plain_colour(slots[int(s)]) for s in used}
    if any(colour is None for colour in colours.values()):
        return None
    stacked = np.stack(list(colours.values()))
    if np.ptp(stacked, axis=0).max() <= 0.5 / 255:
        return np.broadcast_to(stacked[0], (4, 4, 3)).copy()
    per_face = np.stack([colours[int(s)] for s in material_index])
    return face_colour_texture(uvs, per_face, PLAIN_SIZE)


def object_textures(obj, material_index: np.ndarray, uvs: np.ndarray, editable: np.ndarray | None,
                    cell_size: int, pixels) -> ObjectTextures:
    """Which texture each triangle reads. material_index (F,) are the triangles' slot indices; `pixels`
    reads an image's (H, W, 3) values; cell_size is each image's side in an atlas."""
    from .extract import base_color_node

    slots = [slot.material for slot in obj.material_slots] or [None]
    material_index = np.clip(material_index, 0, len(slots) - 1)
    images: list = []
    cell_of_slot = []
    for material in slots:
        node = base_color_node(material)
        image = node.image if node is not None else None
        if image is not None and image not in images:
            images.append(image)
        cell_of_slot.append(images.index(image) if image is not None else -1)
    active = base_color_node(obj.active_material)
    if active is not None and active.image in images:  # the active material's image first, as before
        first = images.index(active.image)
        images.insert(0, images.pop(first))
        cell_of_slot = [-1 if c < 0 else 0 if c == first else c + (c < first) for c in cell_of_slot]
    cell_of_face = np.asarray(cell_of_slot)[material_index]
    without = cell_of_face < 0
    if len(images) <= 1 and (not images or not without.any()):
        texture = pixels(images[0]) if images else plain_texture(slots, material_index, uvs)
        return ObjectTextures(texture, uvs, editable, images, None)
    # An atlas: images first, then one flat cell per material without an image.
    flat_slots = sorted({int(s) for s in material_index[without]})
    for slot in flat_slots:
        cell_of_face[without & (material_index == slot)] = len(images) + flat_slots.index(slot)
    sides = {tuple(image.size) for image in images}
    if editable is not None and len(sides) == 1 and len(set(next(iter(sides)))) == 1:
        cell_size = next(iter(sides))[0]  # selected faces only: cells of the images' own size, so nothing is resampled
    layout = plan_atlas(len(images) + len(flat_slots), cell_size)
    textures = [pixels(image) for image in images]
    textures += [np.broadcast_to(base_color(slots[s]), (4, 4, 3)) for s in flat_slots]
    keep = ~without if editable is None else editable & ~without
    return ObjectTextures(pack(textures, layout), remap_uvs(uvs, cell_of_face, layout),
                          keep if without.any() or editable is not None else None, images, layout)
