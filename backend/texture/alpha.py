"""Transparency carried through a job: the original's alpha is kept, not styled.

A texture's alpha says where a card is see-through (a leaf, a fence, a decal's edge). The style changes colours
only, so the result takes the original's alpha, resampled into the result's layout: the same texture size, or the
new UVs of an even layout. Without it a restyled leaf would come back as an opaque quad wherever the material reads
the image's alpha.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .transfer import transfer_texture

OPAQUE = 1 - 0.5 / 255  # an alpha at or above this is 255 in 8 bits: the texel is opaque


def split_alpha(texture: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(H, W, 3 or 4) -> its colours (H, W, 3) and its alpha (H, W, 1), the alpha None where there is no alpha
    channel or every texel is opaque (so an opaque RGBA image costs nothing more than an RGB one)."""
    if texture is None or texture.shape[-1] < 4:
        return texture, None
    alpha = np.ascontiguousarray(texture[..., 3:4], dtype=np.float32)
    colours = np.ascontiguousarray(texture[..., :3])
    return colours, (alpha if bool((alpha < OPAQUE).any()) else None)


def resized_alpha(alpha: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 1) alpha -> (size, size, 1), antialiased; an alpha of that size comes back unchanged (a job on
    selected faces keeps every texel of the original exactly)."""
    if alpha.shape[:2] == (size, size):
        return alpha
    tensor = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32)).permute(2, 0, 1)[None]
    out = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


class AlphaCarry:
    """The original's alpha (H, W, 1) or None, shown in a result of `size`^2 texels: in the original's UVs, or,
    after move(), in new ones. Attaches it to the result and to every preview."""

    def __init__(self, alpha: np.ndarray | None, size: int):
        self.alpha, self.size = alpha, size
        self._uvs: tuple[np.ndarray, np.ndarray] | None = None
        self._shown: np.ndarray | None = None

    def move(self, from_uvs: np.ndarray, to_uvs: np.ndarray) -> None:
        """The result lies in `to_uvs` (F, 3, 2), the original in `from_uvs` of the same faces."""
        self._uvs, self._shown = (from_uvs, to_uvs), None

    def shown(self) -> np.ndarray | None:
        """The alpha in the result's layout (size, size, 1), or None."""
        if self.alpha is not None and self._shown is None:
            self._shown = (transfer_texture(self.alpha, *self._uvs, self.size) if self._uvs is not None
                           else resized_alpha(self.alpha, self.size))
        return self._shown

    def __call__(self, texture: np.ndarray) -> np.ndarray:
        """A result or preview (S, S, 3) with the alpha as a fourth channel (unchanged where there is none)."""
        alpha = self.shown()
        if alpha is None:
            return texture
        if alpha.shape[:2] != texture.shape[:2]:
            alpha = resized_alpha(alpha, texture.shape[0])
        return np.concatenate([texture[..., :3], alpha], axis=-1)
