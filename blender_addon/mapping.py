"""A Mapping node between the UV map and the image: its tiling, offset and turn applied to the UVs a job gets.

A material may read its image through a Mapping node (a texture tiled four times, moved, turned). The job is to
restyle the image where the surface shows it, so it gets the mapped UVs: the strokes come out at their size on the
surface, and since the texture wraps, they run on across the borders of the tiles. The restyled image goes back into
the same Image Texture node, behind the same Mapping node.

A Mapping node whose Location, Rotation or Scale is fed by another node cannot be read here; its UVs are taken as
they are, and the job says so (unread_mappings).
"""

from __future__ import annotations

import numpy as np


def feeding_mapping(image_node) -> "object | None":
    """The Mapping node linked into an Image Texture node's Vector input, or None."""
    if image_node is None:
        return None
    links = image_node.inputs["Vector"].links
    return links[0].from_node if links and links[0].from_node.type == "MAPPING" else None


def uv_transform(mapping) -> tuple[np.ndarray, np.ndarray] | None:
    """(A (2, 2), b (2,)) with which a Mapping node maps a UV (u, v) to A (u, v) + b, or None where one of its
    inputs is fed by another node. A UV is the vector (u, v, 0), so any turn maps it affinely."""
    from mathutils import Euler

    sockets = {name: mapping.inputs[name] for name in ("Location", "Rotation", "Scale") if name in mapping.inputs}
    if any(socket.is_linked for socket in sockets.values()):
        return None
    kind = mapping.vector_type
    location = np.array(sockets["Location"].default_value, np.float64) if "Location" in sockets else np.zeros(3)
    rotation = np.array(Euler(tuple(sockets["Rotation"].default_value), "XYZ").to_matrix(), np.float64)
    scale = np.array(sockets["Scale"].default_value, np.float64) if "Scale" in sockets else np.ones(3)
    if kind == "TEXTURE":  # the inverse of a Point mapping
        matrix = np.diag(1 / np.where(scale == 0, 1, scale)) @ rotation.T
        return matrix[:2, :2], -(matrix @ location)[:2]
    matrix = rotation @ np.diag(scale)
    if kind == "NORMAL":  # normals are not UVs; taken as they are
        return None
    return matrix[:2, :2], (location[:2] if kind == "POINT" else np.zeros(2))


def mapped_uvs(uvs: np.ndarray, material_index: np.ndarray, image_nodes: list) -> np.ndarray:
    """(F, 3, 2) UVs with each triangle's material's Mapping node applied (image_nodes: each material slot's Base
    Color image node, or None)."""
    out = np.array(uvs, np.float64)
    for slot, node in enumerate(image_nodes):
        mapping = feeding_mapping(node)
        transform = uv_transform(mapping) if mapping is not None else None
        if transform is None:
            continue
        matrix, offset = transform
        faces = material_index == slot
        out[faces] = out[faces] @ matrix.T + offset
    return out.astype(np.float32)


def unread_mappings(materials: list, image_nodes: list) -> list[str]:
    """What the user should know of the Mapping nodes mapped_uvs could not apply (inputs fed by other nodes, or the
    Normal type): one line each, naming the node and its material (materials: each slot's, beside image_nodes)."""
    out = []
    for material, node in zip(materials, image_nodes):
        mapping = feeding_mapping(node)
        if mapping is not None and uv_transform(mapping) is None:
            out.append(f"the Mapping node '{mapping.name}' of '{material.name}' has inputs fed by other nodes or maps "
                       f"normals: its image is restyled as the UV map lays it out, not as the node moves it")
    return out
