"""Transparency carried through a job: the original's alpha is kept, not styled.

A texture's alpha says where a card is see-through (a leaf, a fence, a decal's edge). The style changes colours
only, so the result takes the original's alpha, resampled into the result's layout: the same texture size, or the
new UVs of an even layout. Without it a restyled leaf would come back as an opaque quad wherever the material reads
the image's alpha.
"""

from __future__ import annotations

import numpy as np

from .transfer import resize_square

OPAQUE = 1 - 0.5 / 255  # an alpha at or above this is 255 in 8 bits: the texel is opaque


def split_alpha(texture: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(H, W, 3 or 4) -> its colours (H, W, 3) and its alpha (H, W, 1), the alpha None where there is no alpha
    channel or every texel is opaque (so an opaque RGBA image costs nothing more than an RGB one)."""
    if texture is None or texture.shape[-1] < 4:
        return texture, None
    alpha = np.ascontiguousarray(texture[..., 3:4], dtype=np.float32)
    colours = np.ascontiguousarray(texture[..., :3])
    return colours, (alpha if bool((alpha < OPAQUE).any()) else None)


class AlphaCarry:
    """The original's alpha (H, W, 1) or None, shown in a result of `size`^2 texels: in the original's UVs, or,
    after place(), in new ones. Attaches it to the result and to every preview."""

    def __init__(self, alpha: np.ndarray | None, size: int):
        self.alpha, self.size = alpha, size
        self._shown: np.ndarray | None = None

    def place(self, moved: np.ndarray | None) -> None:
        """The result lies in new UVs, and `moved` (size, size, 1) is the alpha moved into them with the colours
        (transfer.py; None where there is no alpha)."""
        self._shown = moved

    def shown(self) -> np.ndarray | None:
        """The alpha in the result's layout (size, size, 1), or None."""
        if self.alpha is not None and self._shown is None:
            self._shown = resize_square(self.alpha, self.size)
        return self._shown

    def __call__(self, texture: np.ndarray) -> np.ndarray:
        """A result or preview (S, S, 3) with the alpha as a fourth channel (unchanged where there is none)."""
        alpha = self.shown()
        if alpha is None:
            return texture
        if alpha.shape[:2] != texture.shape[:2]:
            alpha = resize_square(alpha, texture.shape[0])
        return np.concatenate([texture[..., :3], alpha], axis=-1)
