"""Reading the active object into plain numpy arrays (bpy-facing; all bulk data via foreach_get)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np

from .atlas import AtlasLayout
from .compat import corner_uvs, uses_nodes
from .mapping import feeding_mapping, mapped_uvs, unread_mappings
from .materials import linear_to_srgb, object_textures
from .uv_overlap import overlapping_share

OPAQUE = 1 - 0.5 / 255  # an alpha at or above this is 255 in 8 bits: the texel is opaque


class ExtractError(Exception):
    """A user-facing problem with the selection, in one line."""


@dataclass
class MeshPayload:
    positions: np.ndarray  # (V, 3) float32, world space
    faces: np.ndarray  # (F, 3) int32 (loop triangles)
    uvs: np.ndarray  # (F, 3, 2) float32, per corner, of the UV map `uv_map`
    image: "bpy.types.Image | None"  # the image behind the material's Base Color, if any
    texture: np.ndarray | None  # (H, W, 3) float32, sRGB-encoded, row 0 at the top
    uv_map: str = ""  # the UV map the job uses, and why (see which_uv_map)
    uv_map_reason: str = ""
    editable: np.ndarray | None = None  # (F,) bool: triangles that may change (selected-only; materials with images)
    images: list | None = None  # the original images in the texture (several: packed as `layout` says)
    layout: "AtlasLayout | None" = None
    warnings: tuple[str, ...] = ()  # what the job does otherwise than the material shows (mapping.unread_mappings)


def base_color_image(obj: "bpy.types.Object") -> "bpy.types.ImageTexture | None":
    """The Image Texture node feeding the Principled BSDF's Base Color of the active material."""
    return base_color_node(obj.active_material)


def base_color_node(material: "bpy.types.Material | None") -> "bpy.types.ImageTexture | None":
    """The Image Texture node feeding the Principled BSDF's Base Color of `material`."""
    if material is None or not uses_nodes(material):
        return None
    for node in material.node_tree.nodes:
        if node.type == "BSDF_PRINCIPLED":
            for link in node.inputs["Base Color"].links:
                if link.from_node.type == "TEX_IMAGE":
                    return link.from_node
    return None


def which_uv_map(obj: "bpy.types.Object", requested: str = "") -> tuple[str, str]:
    """(name, why) of the UV map a job on `obj` uses: the one asked for; else the one a UV Map node feeds
    into the Base Color image's Vector input (what the material shows); else the active render map (what
    an image node without a UV Map node reads). ("", why not) when the mesh has none or lacks the one asked."""
    layers = obj.data.uv_layers if obj is not None and obj.type == "MESH" else []
    names = [layer.name for layer in layers]
    if not names:
        return "", NO_UV_MAP
    if requested:
        if requested in names:
            return requested, "chosen"
        return "", f"no UV map '{requested}' (it has {', '.join(names)})"
    node = base_color_image(obj)
    feeding = feeding_mapping(node) or node  # through a Mapping node (mapping.py) to what feeds it
    if feeding is not None:
        for link in feeding.inputs["Vector"].links:
            if link.from_node.type == "UVMAP" and link.from_node.uv_map in names:
                return link.from_node.uv_map, "the image node's UV Map node"
    render = next((layer.name for layer in layers if layer.active_render), names[0])
    return render, "the active render map"


UNWRAP_NAME = "StyleTex_UV"
NO_UV_MAP = "has no UV map: unwrap it first (UV > Smart UV Project), or let StyleTex do it (Auto Unwrap)"


EVEN_NAME = "StyleTex_Even"  # the UV map Even UV Room restyles in (write_back.revert removes it)
# Smart UV Project's angle limits (degrees) for Even UV Room, tried in turn until no island folds over itself:
# 66 (Blender's default) folds thin curved parts onto themselves (Blub's fins: 3.3 % of the covered texels, Spot:
# 0.02 %); 45 leaves 0.06 % on Blub and 30 none. Smaller limits cut more islands and leave less of the square used
# (Blub: 42 % at 66, 30 % at 30, 12 % at 15), with margins of 1 % of the square between them.
EVEN_ANGLES = (66.0, 45.0, 30.0, 15.0)
EVEN_MARGIN = 0.01


def add_even_uv_map(obj: "bpy.types.Object") -> str:
    """Even UV Room's map (EVEN_NAME, made anew): Smart UV Project with the largest angle limit of EVEN_ANGLES whose
    islands do not overlap (the smallest when none is free of it)."""
    for angle in EVEN_ANGLES:
        name = add_uv_map(obj, EVEN_NAME, active=False, angle_limit=angle, margin=EVEN_MARGIN)
        obj.data.calc_loop_triangles()  # edit mode rebuilt the mesh
        if overlapping_share(triangle_uvs(obj.data, name)) == 0:
            break
    return name


def triangle_uvs(mesh: "bpy.types.Mesh", name: str) -> np.ndarray:
    """(F, 3, 2) UVs of the map `name` at the corners of the mesh's loop triangles (calc_loop_triangles first)."""
    loops = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
    mesh.loop_triangles.foreach_get("loops", loops)
    return np.ascontiguousarray(corner_uvs(mesh, name)[loops].reshape(-1, 3, 2))


def add_uv_map(obj: "bpy.types.Object", name: str = UNWRAP_NAME, active: bool = True, angle_limit: float = 66.0,
               margin: float = 0.02) -> str:
    """A UV map made by Smart UV Project (a map called `name` is made anew; `angle_limit` in degrees, `margin` a
    fraction of the square). Its islands keep the surface's proportions, so every part gets about the same texels
    per unit of area. With `active` it becomes the active (render) map (Auto Unwrap); otherwise the active maps stay
    as they were. The rest of the mesh, its face selection and the mode stay as they were."""
    mesh = obj.data
    selected = np.empty(len(mesh.polygons), dtype=bool)
    mesh.polygons.foreach_get("select", selected)
    before = mesh.uv_layers.active.name if mesh.uv_layers.active is not None else ""
    if name in mesh.uv_layers:
        mesh.uv_layers.remove(mesh.uv_layers[name])
    layer = mesh.uv_layers.new(name=name)
    mesh.uv_layers.active = layer  # Smart UV Project writes the active map
    if active:
        layer.active_render = True
    name = layer.name  # edit mode rebuilds the mesh's layers: `layer` must not be touched after it
    mode = obj.mode
    with bpy.context.temp_override(active_object=obj, object=obj, selected_objects=[obj], edit_object=obj):
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.mesh.select_all(action="SELECT")
        bpy.ops.uv.smart_project(angle_limit=math.radians(angle_limit), island_margin=margin)
        bpy.ops.object.mode_set(mode="OBJECT")
        if mode != "OBJECT":
            bpy.ops.object.mode_set(mode=mode)
    mesh.polygons.foreach_set("select", selected)
    if not active and before in mesh.uv_layers:
        mesh.uv_layers.active = mesh.uv_layers[before]
    mesh.update()
    return name


def image_pixels(image: "bpy.types.Image") -> np.ndarray:
    """(H, W, 3) float32 sRGB-encoded values, row 0 at the top (Blender stores the bottom row first); (H, W, 4) with
    the alpha where some texel is see-through (a cutout's: the backend keeps it, and the styled image carries it)."""
    width, height = image.size
    if width == 0 or height == 0:
        raise ExtractError(f"image '{image.name}' has no pixels (is its file missing?)")
    flat = np.empty(width * height * image.channels, dtype=np.float32)
    image.pixels.foreach_get(flat)
    stored = flat.reshape(height, width, image.channels)[::-1]
    pixels = stored[..., :3]
    if pixels.shape[2] < 3:
        pixels = np.repeat(pixels[..., :1], 3, axis=2)
    if image.is_float and image.colorspace_settings.name != "sRGB":
        pixels = linear_to_srgb(pixels)  # float buffers hold linear values
    if image.channels == 4 and image.alpha_mode != "NONE" and bool((stored[..., 3] < OPAQUE).any()):
        pixels = np.concatenate([pixels, stored[..., 3:]], axis=-1)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def evaluated_corner_uvs(context: "bpy.types.Context", obj: "bpy.types.Object", name: str) -> np.ndarray:
    """(F, 3, 2) UVs of the map `name` on the evaluated object's loop triangles, in extract_active's face order."""
    evaluated = obj.evaluated_get(context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        return triangle_uvs(mesh, name)
    finally:
        evaluated.to_mesh_clear()


def extract_active(context: "bpy.types.Context", uv_map: str = "", selected_only: bool = False,
                   texture_size: int = 1024) -> MeshPayload:
    """The evaluated (modifiers applied) active mesh, triangulated, in world space, with the UVs of `uv_map`
    (default: see which_uv_map); with selected_only, which triangles belong to faces selected in Edit Mode.
    Several images across the object's materials come packed into one atlas of texture_size^2 cells
    (materials.py)."""
    obj = context.active_object
    if obj is None:
        raise ExtractError("nothing selected: select a mesh object")
    if obj.type != "MESH":
        kind = obj.type.lower().replace("_", " ")
        raise ExtractError(f"'{obj.name}' is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a mesh")
    if obj.mode == "EDIT":  # edit-mode changes (the selection among them) reach the mesh data only on request
        obj.update_from_editmode()
    depsgraph = context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        count = len(mesh.loop_triangles)
        if count == 0:  # before the UV check: a mesh without faces has no UV map either, and can't be unwrapped
            raise ExtractError(f"'{obj.name}' has no faces")
        if not mesh.uv_layers:
            raise ExtractError(f"'{obj.name}' {NO_UV_MAP}")
        chosen, why = which_uv_map(obj, uv_map)
        if not chosen or chosen not in mesh.uv_layers:
            raise ExtractError(f"'{obj.name}' {why}" if why == NO_UV_MAP else f"'{obj.name}': {why}")
        positions = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", positions)
        faces = np.empty(count * 3, dtype=np.int32)
        mesh.loop_triangles.foreach_get("vertices", faces)
        uvs = triangle_uvs(mesh, chosen)
        material_index = np.empty(count, dtype=np.int32)
        mesh.loop_triangles.foreach_get("material_index", material_index)
        editable = None
        if selected_only:
            polygon = np.empty(count, dtype=np.int32)
            mesh.loop_triangles.foreach_get("polygon_index", polygon)
            selected = np.empty(len(mesh.polygons), dtype=bool)
            mesh.polygons.foreach_get("select", selected)
            editable = selected[polygon]
            if not editable.any():
                raise ExtractError(f"'{obj.name}': no face is selected (select faces in Edit Mode, or untick Selected Only)")
        matrix = np.array(evaluated.matrix_world, dtype=np.float64)
    finally:
        evaluated.to_mesh_clear()
    positions = positions.reshape(-1, 3).astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    materials = [slot.material for slot in obj.material_slots] or [None]
    nodes = [base_color_node(material) for material in materials]
    uvs = mapped_uvs(uvs, np.clip(material_index, 0, len(nodes) - 1), nodes)  # where the surface shows the images
    found = object_textures(obj, material_index, np.ascontiguousarray(uvs), editable, texture_size, image_pixels)
    image = found.images[0] if found.images else None
    return MeshPayload(positions.astype(np.float32), faces.reshape(count, 3), np.ascontiguousarray(found.uvs), image,
                       found.texture, chosen, why, found.editable, found.images, found.layout,
                       tuple(unread_mappings(materials, nodes)))
