"""A model file read once (glTF or OBJ): its mesh and the texture its materials show, as one job restyles it.

Where the materials show several images, or an image beside plain colours, they are packed into one atlas
(atlas.py, as the add-on packs an object's images): each image in a cell, each plain colour in a cell of its own,
every face's UVs moved into its cell. Only the faces showing an image are restyled then: a written model carries
images alone, and a plain colour stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MeshError
from ..mesh import Mesh
from .atlas import pack, plan_atlas, remap_uvs


@dataclass(frozen=True)
class Model:
    """A mesh file (`path`) read once: its mesh (in the atlas's UVs where there is one), its own texture (the image
    its materials show, or their atlas; None), how many atlas cells that texture is made of (1: one image, or none),
    which faces show an image where others show a plain colour in the atlas (`editable`: those alone are
    restyled; None: every face) and how many of the file's triangles are left out for want of texture coordinates."""

    path: str
    mesh: Mesh
    texture: np.ndarray | None
    cells: int = 1
    editable: np.ndarray | None = None
    left_out: int = 0

    def original(self, texture: str | Path | None) -> np.ndarray | None:
        """The job's original: the image file `texture` where given, else the model's own. A file cannot stand in
        for the several images of an atlas."""
        from .images import load_texture

        if texture is None:
            return self.texture
        if self.cells > 1:
            shown = "base colour images and plain colours" if self.editable is not None else "several base colour images"
            raise MeshError(f"{self.path}: its materials show {shown}, restyled together as one atlas: a texture "
                            "cannot stand in for them (leave it out)")
        return load_texture(texture)

    def restyled_faces(self, unwrap: str) -> np.ndarray | None:
        """The faces a job with this `unwrap` restyles, the model's plain colours staying (`editable`), or None: every
        face. New UVs asked for by name (even, round-trip) restyle the whole mesh."""
        return self.editable if unwrap in ("auto", "keep") else None

    def texture_size(self, per_image: int) -> int:
        """A job's texture size where each of the model's images gets per_image^2 texels (as the add-on's atlases
        give each image), within the atlas limit."""
        return plan_atlas(self.cells, per_image).size if self.cells > 1 else per_image

    @property
    def writes_mesh(self) -> bool:
        """Whether a result needs the mesh written with the UVs it was restyled in: an OBJ read as an atlas (a glTF
        model's images are written back one by one into the model instead)."""
        from .gltf import is_gltf

        return self.cells > 1 and not is_gltf(self.path)


def is_atlas(images: int, plain: int) -> bool:
    """Whether materials showing `images` distinct images and `plain` plain colours make an atlas: several images,
    or an image and plain colours (each plain material's faces then read a cell of its colour, as a viewer shows
    them)."""
    return images > 1 or (images > 0 and plain > 0)


def atlas_texture(images: list[np.ndarray], colours: list[np.ndarray], cell_of_face: np.ndarray, uvs: np.ndarray
                  ) -> tuple[np.ndarray | None, np.ndarray, int, np.ndarray | None]:
    """The texture a model's faces read: `images` (H, W, C) and plain `colours` (3,), in that order the cells that
    cell_of_face (F,) names; uvs (F, 3, 2) in each face's own image. Returns the texture (the one image, an atlas, or
    None where no face shows an image), the faces' UVs in it, its cells and, in an atlas with plain cells, which
    faces show an image (else None)."""
    if not is_atlas(len(images), len(colours)):
        return (images[0] if images else None), uvs, 1, None
    layout = plan_atlas(len(images) + len(colours), max(max(image.shape[:2]) for image in images))
    flat = [np.broadcast_to(np.asarray(colour, np.float32), (4, 4, 3)) for colour in colours]
    showing = cell_of_face < len(images) if colours else None
    return pack(images + flat, layout), remap_uvs(uvs, cell_of_face, layout), layout.cells, showing


def read_model(path: str | Path, obj_up: str = "Y") -> Model:
    """A mesh file by its extension: .glb / .gltf or .obj (obj_up: its up axis)."""
    from .gltf import is_gltf, read_gltf_model
    from .obj import read_obj_model

    if is_gltf(path):
        return Model(str(path), *read_gltf_model(Path(path)))
    return Model(str(path), *read_obj_model(Path(path), obj_up))
