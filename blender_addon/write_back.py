"""Putting textures into Blender: the styled image, wiring it into the material, reverting (bpy-facing).

The result always goes into a NEW image datablock (`<original>_styled`, or `StyleTex_<object>` when
the material had none); the original image stays in the file and `revert` puts it back.
"""

from __future__ import annotations

import bpy
import numpy as np

from .compat import enable_nodes, srgb_name

ORIGINAL_KEY = "styletex_original"  # node property: name of the image the node showed before


def styled_image_name(obj: "bpy.types.Object", original: "bpy.types.Image | None") -> str:
    return f"{original.name}_styled" if original is not None else f"StyleTex_{obj.name}"


def ensure_image(name: str, size: int) -> "bpy.types.Image":
    """A byte image tagged sRGB (our textures hold sRGB-encoded values), reused when the size matches."""
    image = bpy.data.images.get(name)
    if image is not None and tuple(image.size) != (size, size):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(name, size, size, alpha=True, float_buffer=False)
    image.colorspace_settings.name = srgb_name()
    return image


def write_pixels(image: "bpy.types.Image", pixels: np.ndarray) -> None:
    """(H, W, 3|4) values in [0, 1], row 0 at the top -> the image (float32 fast path, bottom row first)."""
    height, width = pixels.shape[:2]
    if tuple(image.size) != (width, height):
        image.scale(width, height)
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[..., : min(pixels.shape[2], 4)] = pixels[..., :4]
    image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1]).ravel())
    image.update()


def _image_node(obj: "bpy.types.Object") -> "bpy.types.Node":
    """The Image Texture node feeding Base Color, creating material and nodes when missing."""
    from .extract import base_color_image

    node = base_color_image(obj)
    if node is not None:
        return node
    material = obj.active_material
    if material is None:
        material = bpy.data.materials.new(f"StyleTex_{obj.name}")
        if obj.data.materials:
            obj.data.materials[obj.active_material_index] = material
        else:
            obj.data.materials.append(material)
    enable_nodes(material)
    tree = material.node_tree
    bsdf = next((n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
        output = next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL"), None) or tree.nodes.new("ShaderNodeOutputMaterial")
        tree.links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    node = tree.nodes.new("ShaderNodeTexImage")
    node.location = (bsdf.location.x - 300, bsdf.location.y)
    tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    return node


def show_styled(obj: "bpy.types.Object", image: "bpy.types.Image") -> None:
    """Wires `image` into the material's Base Color, remembering what was there."""
    node = _image_node(obj)
    if node.image is not None and node.image != image and ORIGINAL_KEY not in node:
        node[ORIGINAL_KEY] = node.image.name
        # Unlinked from the node, the original may have no user left, and Blender drops datablocks
        # without users when it saves: keep it, or revert finds nothing after the file is reopened.
        node.image.use_fake_user = True
    node.image = image


def revert(obj: "bpy.types.Object") -> bool:
    """Puts the original image back; False when there is nothing to revert."""
    from .extract import base_color_image

    node = base_color_image(obj)
    if node is None or ORIGINAL_KEY not in node:
        return False
    original = bpy.data.images.get(node[ORIGINAL_KEY])
    if original is None:
        return False
    node.image = original
    del node[ORIGINAL_KEY]
    return True
