"""The record a rasterizer returns: what covers each pixel, and where on that triangle."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Fragments:
    """Per-pixel coverage of one view, row 0 at the top of the image.

    face_ids: (H, W) int64, index of the visible face, -1 where no face covers the pixel centre.
    bary:     (H, W, 3) float32, perspective-correct barycentrics of the pixel centre with respect
              to the face's three corners (in the order of `faces`); 0 on background.
    depth:    (H, W) float32, view-space depth (distance along the view axis), +inf on background.
    bary_dxy: (H, W, 3, 2) float32, d bary / d x and d bary / d y in pixels (x right, y down);
              used to pick mip levels. 0 on background.
    """

    face_ids: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor
    bary_dxy: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(H, W) bool, True where a face covers the pixel centre."""
        return self.face_ids >= 0
