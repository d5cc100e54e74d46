"""Constants and bpy helpers shared by the add-on tests (imported by conftest and the test modules)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MAIN_PYTHON = REPO / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STYLE = REPO / "data" / "styles" / "starry_night.jpg"
# Small and fast: every job uses these (plus its own steps).
JOB = {"texture_size": 32, "render_size": 32, "features": "random", "seed": 0}


def add_sphere(name: str = "Ball", segments: int = 8, rings: int = 6):
    """A UV sphere (it comes with a UV map that has seams), made active and selected."""
    import bpy

    bpy.ops.mesh.primitive_uv_sphere_add(segments=segments, ring_count=rings, radius=1.0)
    obj = bpy.context.active_object
    obj.name = name
    return obj


def image_rgba(image) -> np.ndarray:
    """(H, W, 4) float32 pixels as Blender stores them (row 0 at the BOTTOM)."""
    width, height = image.size
    flat = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return flat.reshape(height, width, 4)


def make_image(name: str, size: int = 32, seed: int = 1):
    """A byte image (sRGB) with random pixels, packed so that it survives save and reload."""
    import bpy

    image = bpy.data.images.new(name, size, size, alpha=True, float_buffer=False)
    rng = np.random.default_rng(seed)
    rgba = np.ones((size, size, 4), np.float32)
    rgba[..., :3] = np.round(rng.random((size, size, 3)) * 255) / 255
    image.pixels.foreach_set(rgba.ravel())
    image.update()
    image.pack()
    return image


def textured_material(obj, image, name: str = "Painted"):
    """A material on obj: Principled BSDF's Base Color <- Image Texture(image). Returns the node."""
    import bpy

    material = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):  # 5.0+: always node-based, and use_nodes is deprecated
        material.use_nodes = True
    tree = material.node_tree
    bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
    node = tree.nodes.new("ShaderNodeTexImage")
    node.image = image
    tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    obj.data.materials.append(material)
    return node


def base_color_node(obj):
    """The Image Texture node linked to the Principled BSDF's Base Color, found independently of the add-on."""
    tree = obj.active_material.node_tree
    bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
    links = bsdf.inputs["Base Color"].links
    assert len(links) == 1, "Base Color should have exactly one link"
    assert links[0].from_node.type == "TEX_IMAGE"
    return links[0].from_node


def style_bytes() -> bytes:
    return STYLE.read_bytes()
