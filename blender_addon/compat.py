"""Small shims where Blender's Python API changed between 3.4 and 5.0 (bpy-facing)."""

from __future__ import annotations

import bpy
import numpy as np


def corner_uvs(mesh: "bpy.types.Mesh", name: str = "") -> np.ndarray:
    """(loops, 2) float32 UVs of the UV map `name` (default: the active one)."""
    layer = mesh.uv_layers[name] if name else mesh.uv_layers.active
    out = np.empty(len(mesh.loops) * 2, dtype=np.float32)
    if hasattr(layer, "uv"):  # 3.5+: attribute-backed UV access
        layer.uv.foreach_get("vector", out)
    else:  # 3.4
        layer.data.foreach_get("uv", out)
    return out.reshape(-1, 2)


def uses_nodes(material: "bpy.types.Material") -> bool:
    """Whether the material is node-based (always, since 5.0, where `use_nodes` is deprecated)."""
    if bpy.app.version >= (5, 0, 0):
        return material.node_tree is not None
    return material.use_nodes and material.node_tree is not None


def enable_nodes(material: "bpy.types.Material") -> None:
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True


def srgb_name() -> str:
    return "sRGB"


def linear_name() -> str:
    """The linear colour-space name ('Linear' before 4.0, 'Linear Rec.709' since)."""
    return "Linear Rec.709" if bpy.app.version >= (4, 0, 0) else "Linear"
