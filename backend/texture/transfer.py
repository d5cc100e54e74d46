"""A texture moved to another size, or from one UV layout of a mesh to another: what the surface shows stays the same."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .uv_layout import grow, uv_fragments
from .sample import sample

MARGIN = 8  # texels each island is grown by, so that filtered lookups at its rim read its own colours


def resize_square(texture: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C) float32 in [0, 1], antialiased; a texture of that size comes back with its values
    unchanged (a job on selected faces keeps every texel of the original exactly)."""
    if texture.shape[:2] == (size, size):
        return np.ascontiguousarray(texture, dtype=np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(texture, dtype=np.float32)).permute(2, 0, 1)[None]
    out = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


def transfer_texture(texture: np.ndarray, from_uvs: np.ndarray, to_uvs: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) texture for per-corner UVs `from_uvs` (F, 3, 2) -> (size, size, C) for `to_uvs` (F, 3, 2) of the same
    faces: each texel inside a face's new UV triangle takes the old texture at the same point of that face
    (bilinear); islands are grown by MARGIN texels and the rest takes the mean colour."""
    fragments = uv_fragments(torch.from_numpy(np.ascontiguousarray(to_uvs, np.float32)), size)
    inside = fragments.mask
    corners = torch.from_numpy(np.ascontiguousarray(from_uvs, np.float32))[fragments.face_ids[inside]]  # (N, 3, 2)
    points = (fragments.bary[inside][..., None] * corners).sum(dim=1)
    source = torch.from_numpy(np.ascontiguousarray(texture, np.float32))
    out = torch.zeros(size, size, source.shape[-1])
    out[inside] = sample(source, points, filter="linear")
    out, known = grow(out, inside, MARGIN)
    if bool(known.any()):
        out[~known] = out[known].mean(dim=0)
    return out.numpy()
