"""The balance term: no region of the surface lighter or darker than the original says it should be.

Gram statistics pooled over a view (and over the style memory's views) are met as well by a light head
over a dark body as by light and dark strokes everywhere: a split. The cells of losses.gram_style ask every
quarter of a view for the whole palette, which halves the splits but leaves regions larger than a cell
free. This term looks at the surface instead of the screen: the mesh is cut into patches of about equal
area (mesh/regions.py), and in every view the mean luminance of each patch shown is fitted by an affine map
of the original render's patch means. A global change of brightness or contrast, even an inversion, is
free (the painting decides those); what the fit leaves is a region that took another part of the palette
than its neighbours, and that residual is the loss. With a uniform original the fit is a constant: the
patches are asked to be equally light on the whole, however their strokes vary inside.

The patch means are over 1/256 of a view or more (MIN_SHARE), a few strokes at the least, so single strokes are not
what it sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .colors import luminance

# A patch shown by fewer than this share of a view's pixels (16 x 16 at 256^2) is left out of that view's fit: its
# mean is a stroke's colour, not a region's (the painting's strokes span about 8-16 pixels at the renders' scale), or
# a sliver at a silhouette. A thin part's patches are above it (the procedural tube's, about 500 pixels): at 1/64
# they were left out, and the tube's two ends came out light and its middle dark (docs/BENCHMARKS.md).
MIN_SHARE = 1 / 256


@dataclass(frozen=True)
class ViewRegions:
    """What one view needs of the balance term, all fixed when the view is made (so a step reads no value back
    from the device): its covered pixels' flat indices (n,), the patch of each (n,), the patches' pixel counts
    (K,), which patches the fit takes (K,): those shown by at least MIN_SHARE of the view, their weights in the
    fit (k,), summing to 1, and the original render's mean luminance over them (k,), None where it does not
    vary (the fit is then a constant)."""

    pixels: torch.Tensor
    patch: torch.Tensor
    counts: torch.Tensor
    shown: torch.Tensor
    weight: torch.Tensor
    original: torch.Tensor | None

    @classmethod
    def of(cls, face_ids: torch.Tensor, mask: torch.Tensor, regions: torch.Tensor, count: int,
           original: torch.Tensor) -> "ViewRegions":
        """From a view's fragments (face ids and mask, (H, W)), the faces' patches (F,) and the original texture's
        render (H, W, 3)."""
        pixels = torch.nonzero(mask.reshape(-1)).squeeze(1)
        patch = regions[face_ids.reshape(-1)[pixels]]
        counts = torch.bincount(patch, minlength=count).to(original.dtype)
        # kept for as long as the view is pooled: 32-bit indices, 8 bytes a covered pixel beside its plan's 100
        pixels, patch = pixels.to(torch.int32), patch.to(torch.int32)
        shade = luminance(original.reshape(-1, original.shape[-1])[pixels, :3])[:, 0]
        shown = counts >= MIN_SHARE * mask.numel()
        weight = counts[shown] / counts[shown].sum().clamp(min=1)
        means = patch_means(shade, patch, counts)[shown]
        varies = bool((weight * (means - (weight * means).sum()) ** 2).sum() > 1e-8)
        return cls(pixels, patch, counts, shown, weight, means if varies else None)

    @property
    def fitted(self) -> int:
        """How many patches the fit takes (known without reading the device)."""
        return len(self.weight)


def patch_means(values: torch.Tensor, patch: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(K,) the mean of per-pixel `values` (n,) over each patch (0 where a patch has no pixel)."""
    sums = values.new_zeros(len(counts)).index_add(0, patch, values)
    return sums / counts.clamp(min=1)


def affine_residual(y: torch.Tensor, x: torch.Tensor | None, weight: torch.Tensor) -> torch.Tensor:
    """y (K,) minus its weighted least-squares fit a * x + b (weights (K,) summing to 1), or its weighted mean
    alone where x is None (an original that does not vary). Differentiable in y: the residual is a fixed
    projection of it."""
    centred_y = y - (weight * y).sum()
    if x is None:
        return centred_y
    centred_x = x - (weight * x).sum()
    slope = (weight * centred_x * centred_y).sum() / (weight * centred_x**2).sum().clamp(min=1e-12)
    return centred_y - slope * centred_x


def balance_loss(learned: torch.Tensor, views: list[ViewRegions], spread: float) -> torch.Tensor:
    """Mean over views of the weighted mean square of the affine fit's residual of the learned renders' (B, 3, H, W)
    patch luminances, over the square of the painting's luminance `spread`. Squared, not its root: the root's
    gradient keeps its size as the residual vanishes, and Adam then rocks a balanced texture back and forth."""
    shades = luminance(learned, dim=1).reshape(learned.shape[0], -1)
    total = learned.new_zeros(())
    for shade, view in zip(shades, views):
        if view.fitted < 3:  # two patches are always fitted exactly
            continue
        y = patch_means(shade[view.pixels], view.patch, view.counts)[view.shown]
        total = total + (view.weight * affine_residual(y, view.original, view.weight) ** 2).sum()
    return total / (len(views) * max(spread, 1e-6) ** 2)
