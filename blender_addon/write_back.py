"""Putting textures into Blender: the styled image, wiring it into the material, reverting (bpy-facing).

The result always goes into a NEW image datablock (`<original>_styled`, or `StyleTex_<object>` when
the material had none); the original image stays in the file and `revert` puts it back.
"""

from __future__ import annotations

import bpy
import numpy as np

from .compat import enable_nodes, srgb_name

ORIGINAL_KEY = "styletex_original"  # node property: name of the image the node showed before
UV_MAP_KEY = "styletex_uv_map"  # image property: the UV map a styled image is laid out in (absent: the original's)
VECTOR_KEY = "styletex_vector"  # node property: what fed its Vector input before (_feeder)
UV_NODE_PREFIX = "StyleTex UV "  # + the image node's name: the UV Map node that feeds it a styled image's map
SHARED_KEY = "styletex_shared"  # material property of our copy of a material other objects use: the original's name
CREATED_KEY = "styletex_created"  # node property of an image node we added: what fed Base Color (_feeder)


def styled_image_name(obj: "bpy.types.Object", original: "bpy.types.Image | None") -> str:
    return f"{original.name}_styled" if original is not None else f"StyleTex_{obj.name}"


def ensure_image(name: str, size: int, uv_map: str = "") -> "bpy.types.Image":
    """A byte image tagged sRGB (our textures hold sRGB-encoded values), reused when the size matches; laid out
    in the UV map `uv_map` ("": the one the original image is shown through)."""
    image = bpy.data.images.get(name)
    if image is not None and tuple(image.size) != (size, size):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(name, size, size, alpha=True, float_buffer=False)
    image.colorspace_settings.name = srgb_name()
    if uv_map:
        image[UV_MAP_KEY] = uv_map
    elif UV_MAP_KEY in image:
        del image[UV_MAP_KEY]
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
    """The Image Texture node feeding the active material's Base Color, creating material and nodes when missing (in
    a copy of its own where other objects use the material: _own)."""
    from .extract import base_color_image

    if obj.active_material is not None:
        _own(obj, obj.active_material)
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
    return _new_image_node(material)


def _new_image_node(material: "bpy.types.Material") -> "bpy.types.Node":
    """An Image Texture node of ours feeding the material's Base Color, remembering what fed it before (revert
    removes the node and puts that back: a plain colour shows again)."""
    enable_nodes(material)
    tree = material.node_tree
    bsdf = next((n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
        output = next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL"), None) or tree.nodes.new("ShaderNodeOutputMaterial")
        tree.links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    node = tree.nodes.new("ShaderNodeTexImage")
    node.location = (bsdf.location.x - 300, bsdf.location.y)
    node[CREATED_KEY] = _feeder(bsdf.inputs["Base Color"])
    tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    return node


def _remove_created(node: "bpy.types.Node") -> None:
    """Removes an image node of ours (_new_image_node), relinking what fed Base Color before."""
    tree, feeder = node.id_data, node[CREATED_KEY]
    targets = [link.to_socket for link in node.outputs["Color"].links]
    tree.nodes.remove(node)
    for target in targets:
        _relink(tree, feeder, target)


def _feeder(socket: "bpy.types.NodeSocket") -> str:
    """What feeds an input socket, as "<node>\t<output socket>" ("": nothing), for _relink to put back."""
    link = socket.links[0] if socket.links else None
    return f"{link.from_node.name}\t{link.from_socket.identifier}" if link is not None else ""


def _relink(tree: "bpy.types.NodeTree", feeder: str, socket: "bpy.types.NodeSocket") -> None:
    """Links the output `feeder` (_feeder's record) into `socket` again, where that node is still there."""
    source, _, identifier = feeder.partition("\t")
    before = tree.nodes.get(source) if source else None
    output = next((o for o in before.outputs if o.identifier == identifier), None) if before is not None else None
    if output is not None:
        tree.links.new(output, socket)


def _base_color_nodes(obj: "bpy.types.Object") -> list:
    """The Base Color image nodes of all the object's materials, each material once."""
    from .extract import base_color_node

    return [node for node in map(base_color_node, _materials(obj)) if node is not None]


def _swap(node: "bpy.types.Node", image: "bpy.types.Image") -> None:
    if node.image is not None and node.image != image and ORIGINAL_KEY not in node:
        node[ORIGINAL_KEY] = node.image.name
        # Unlinked from the node, the original may have no user left, and Blender drops datablocks
        # without users when it saves: keep it, or revert finds nothing after the file is reopened.
        node.image.use_fake_user = True
    node.image = image
    _route_uvs(node, image.get(UV_MAP_KEY, ""))


def _route_uvs(node: "bpy.types.Node", uv_map: str) -> None:
    """Makes the image node read the UV map `uv_map` through a UV Map node of ours, remembering what fed its Vector
    input before; with "" puts that back."""
    tree = node.id_data
    ours = tree.nodes.get(UV_NODE_PREFIX + node.name)
    vector = node.inputs["Vector"]
    if uv_map:
        if VECTOR_KEY not in node:
            node[VECTOR_KEY] = _feeder(vector)
        if ours is None:
            ours = tree.nodes.new("ShaderNodeUVMap")
            ours.name = ours.label = UV_NODE_PREFIX + node.name
            ours.location = (node.location.x - 200, node.location.y - 250)
        ours.uv_map = uv_map
        tree.links.new(ours.outputs["UV"], vector)
        return
    if ours is not None:
        tree.nodes.remove(ours)
    if VECTOR_KEY in node:
        _relink(tree, node[VECTOR_KEY], vector)
        del node[VECTOR_KEY]


def _materials(obj: "bpy.types.Object") -> list:
    """The object's materials, each once, in slot order."""
    return list({slot.material.name: slot.material for slot in obj.material_slots if slot.material is not None}.values())


def _own(obj: "bpy.types.Object", material: "bpy.types.Material") -> "bpy.types.Material":
    """`material`, or where other objects' data use it too, a copy of it in this object's slots: a styled texture is
    laid out in this object's UVs, and would show on the others as noise (revert puts the shared one back)."""
    if material.users - material.use_fake_user <= 1:
        return material
    users = bpy.data.user_map(subset={material}).get(material, set())
    if all(user == obj.data or user == obj for user in users):
        return material
    copy = material.copy()
    copy[SHARED_KEY] = material.name
    for slot in obj.material_slots:
        if slot.material == material:
            slot.material = copy
    return copy


def show_styled(obj: "bpy.types.Object", image: "bpy.types.Image") -> None:
    """Wires `image` into the active material's Base Color, remembering what was there, and into
    every other material of the object that shows the same original image (one texture atlas
    shared by several materials is common). An object that showed no image was restyled whole: every
    material of it shows the result. Materials other objects use too are copied first (_own)."""
    from .extract import base_color_node

    node = _image_node(obj)
    original = node.image if node.image != image else bpy.data.images.get(node.get(ORIGINAL_KEY, ""))
    others = [m for m in _materials(obj) if m != obj.active_material]
    if original is None:
        siblings = [base_color_node(m) or _new_image_node(m) for m in (_own(obj, m) for m in others)]
    else:
        showing = [m for m in others if (n := base_color_node(m)) is not None and n.image == original]
        siblings = [base_color_node(_own(obj, m)) for m in showing]
    for target in (node, *siblings):
        _swap(target, image)


def show_styled_for(obj: "bpy.types.Object", original: "bpy.types.Image", image: "bpy.types.Image") -> None:
    """Wires `image` into every Base Color node of the object's materials that shows `original` (or showed it
    before an earlier preview of this job): one image of an object with several."""
    from .extract import base_color_node

    for material in _materials(obj):
        node = base_color_node(material)
        if node is not None and (node.image == original or
                                 (node.image == image and node.get(ORIGINAL_KEY) == original.name)):
            _swap(base_color_node(_own(obj, material)), image)


def revert(obj: "bpy.types.Object") -> bool:
    """Puts the original images back in all the object's materials, read through the UV maps they were read through,
    the materials it copied back in their slots, removes the image nodes it added to materials that showed none, and
    Even UV Room's map; False when there is nothing to revert."""
    from .extract import EVEN_NAME

    reverted = False
    for slot in obj.material_slots:  # our copies of shared materials: the shared ones come back, untouched
        copy = slot.material
        shared = bpy.data.materials.get(copy[SHARED_KEY]) if copy is not None and SHARED_KEY in copy else None
        if shared is not None:
            slot.material = shared
            if copy.users == 0:
                bpy.data.materials.remove(copy)
            reverted = True
    for node in _base_color_nodes(obj):
        original = bpy.data.images.get(node[ORIGINAL_KEY]) if ORIGINAL_KEY in node else None
        if original is not None:
            node.image = original
            del node[ORIGINAL_KEY]
            reverted = True
        if VECTOR_KEY in node:
            _route_uvs(node, "")
            reverted = True
        if CREATED_KEY in node:  # the material showed no image: its plain colour (or what fed it) shows again
            _remove_created(node)
            reverted = True
    layers = obj.data.uv_layers if obj.type == "MESH" else None
    if layers is not None and EVEN_NAME in layers:  # also when a job failed before its first preview
        layers.remove(layers[EVEN_NAME])
        reverted = True
    return reverted


def sequence_folder() -> str:
    """Where an animated texture's frames go: `//<blend name>_styletex/` beside the saved .blend."""
    import os

    stem = os.path.splitext(os.path.basename(bpy.data.filepath))[0]
    return os.path.join(os.path.dirname(bpy.path.abspath(bpy.data.filepath)), f"{stem}_styletex")


def show_sequence(obj: "bpy.types.Object", frames: np.ndarray, name: str, frame_start: int,
                  uv_map: str = "") -> "bpy.types.Image":
    """Saves frames (N, S, S, 3) as `<name>_0001.png` ... beside the .blend and wires them into the material as
    an image sequence that plays from `frame_start`, one texture frame per scene frame (holding the last one
    afterwards). The image names its files relative to the .blend, so the folder moves with it. `uv_map`: the UV map
    the frames are laid out in ("": the original image's)."""
    import os

    folder = sequence_folder()
    os.makedirs(folder, exist_ok=True)
    scratch = bpy.data.images.new(f"{name}_scratch", frames.shape[2], frames.shape[1], alpha=True, float_buffer=False)
    scratch.colorspace_settings.name = srgb_name()
    scratch.file_format = "PNG"
    try:
        paths = []
        for number, frame in enumerate(frames, 1):
            write_pixels(scratch, frame)
            paths.append(os.path.join(folder, f"{name}_{number:04d}.png"))
            scratch.filepath_raw = paths[-1]
            scratch.save()
    finally:
        bpy.data.images.remove(scratch)
    old = bpy.data.images.get(name)
    if old is not None:
        bpy.data.images.remove(old)
    image = bpy.data.images.load(paths[0], check_existing=False)
    image.name = name
    image.source = "SEQUENCE"
    image.colorspace_settings.name = srgb_name()
    image.filepath = bpy.path.relpath(paths[0])
    if uv_map:
        image[UV_MAP_KEY] = uv_map
    node = _image_node(obj)
    _swap(node, image)
    user = node.image_user
    user.frame_duration, user.frame_start, user.frame_offset = len(frames), frame_start, 0
    user.use_cyclic, user.use_auto_refresh = False, True
    return image
