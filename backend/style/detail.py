"""The detail term: strokes as vivid as the painting's.

Gram matrices pooled over views and over the style memory are met by a soft blend of the painting's colours
as well as by its sharp strokes: what they hold of the strokes' edges is spread over many channels and weighed
against everything else, so an optimized texture ends up with about 0.6-0.9 of the painting's local contrast,
a foggy version of its brushwork. This term looks at that directly: the luminance of a render is split into bands
by local means over nested windows (luminance minus its 3 x 3 mean, that mean minus the 7 x 7 one, that minus the
15 x 15 one: a stroke's edge, a stroke, a group of strokes), each band has a standard deviation over the covered
pixels, and the painting, at the size the style is measured, has its own. Bands, not the luminance minus each
mean: pixel noise fills every such difference, so it would stand in for strokes of every size.

The loss is the squared shortfall of each band's ratio to the painting's from 1: fainter detail than the
painting's costs; harsher detail is left to the style term, since part of it is the original's own (the edges
of Spot's dark patches), which the content term keeps. Not the squared log of the ratio: at a random start
(contrast near 0) that is about 20 a band, and with it Spot lost its patches in the first steps for good.

The local mean is over covered pixels only (a normalized box filter), so the background and silhouettes add
no edge of their own.

The windows grow with the painting's strokes on the screen: where its style is measured enlarged (style_scale 2,
or a close-up's zoom) they are that much wider, the finest band's lower end included (the luminance is then
first averaged over a window of its own), so the bands hold the same strokes as at scale 1 and what is finer
than them is left to the style term. Fixed windows would ask for the painting's fine contrast at every scale (a
painting's local contrast hardly changes with its size) and undo the larger strokes that style_scale asks for.
Smaller scales keep scale 1's windows: a pixel and a 3 x 3 window bound the finest band there is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .colors import luminance
from .losses import Coverage

# Nested box windows, in pixels at the renders' scale; the bands lie between neighbours, the first (1: a pixel)
# being the finest mean. Not the quality benchmark's 9 x 9, so its contrast score is not what the term optimizes.
WINDOWS = (1, 3, 7, 15)


def windows_for(magnification: float) -> tuple[int, ...]:
    """WINDOWS for renders in which the painting's strokes look `magnification` times as large as at scale 1 (its
    longer side over the render's), each widened to the odd size nearest below that many times; not narrowed."""
    factor = max(1.0, magnification)
    return tuple(2 * math.floor(window * factor / 2) + 1 for window in WINDOWS)


def box_sums(images: torch.Tensor, windows: tuple[int, ...] = WINDOWS) -> list[torch.Tensor]:
    """Per window of `windows`, the sums of (B, C, H, W) over the window x window box centred on every pixel (zeros
    outside the image); None for a window of 1 (the image itself). Running sums along each axis, the first shared
    by every window: a constant cost a pixel whatever the window (a stride-1 pooling's is its area: 34 ms a step at
    these windows on 2 cores, against 4).
    Row and column sums stay small, so float32 keeps them exact enough."""
    largest = max(windows) // 2
    width = images.shape[-1]
    rows = F.pad(images, (largest + 1, largest)).cumsum(dim=-1)
    out: list[torch.Tensor | None] = []
    for window in windows:
        if window == 1:
            out.append(None)
            continue
        start = largest - window // 2
        across = rows[..., start + window : start + window + width] - rows[..., start : start + width]
        columns = F.pad(across, (0, 0, window // 2 + 1, window // 2)).cumsum(dim=-2)
        out.append(columns[..., window:, :] - columns[..., :-window, :])
    return out


def coverage_sums(weight: torch.Tensor, windows: tuple[int, ...] = WINDOWS) -> list[torch.Tensor]:
    """Per window, 1 / the box sums of a coverage weight (B, 1, H, W) (None for a window of 1): fixed for a view, so
    kept with it."""
    return [None if sums is None else 1 / sums.clamp(min=1e-6) for sums in box_sums(weight, windows)]


def band_contrasts(images: torch.Tensor, weight: torch.Tensor | None = None,
                   inverse_sums: list[torch.Tensor] | None = None, windows: tuple[int, ...] = WINDOWS) -> torch.Tensor:
    """(B, len(windows) - 1): per image (B, 3, H, W), the weighted standard deviation of each band of its luminance:
    each window's local mean minus the next window's, a local mean being over the window's covered pixels (a
    window of 1: the luminance itself); weight (B, 1, H, W) in [0, 1], None: all 1; inverse_sums: coverage_sums(weight,
    windows) if already known."""
    luma = luminance(images, dim=1)
    if weight is None:
        weight = torch.ones_like(luma)
    if inverse_sums is None:
        inverse_sums = coverage_sums(weight, windows)
    total = weight.sum(dim=(1, 2, 3)).clamp(min=1e-6)
    means = [luma if sums is None else sums * inverse for sums, inverse in zip(box_sums(luma * weight, windows),
                                                                             inverse_sums)]
    out = []
    for finer, coarser in zip(means, means[1:]):
        band = finer - coarser  # what lies between this window's mean and the next smaller one's
        weighted = weight * band
        mean = weighted.sum(dim=(1, 2, 3)) / total
        variance = (weighted * band).sum(dim=(1, 2, 3)) / total - mean**2
        out.append((variance.clamp(min=0) + 1e-8).sqrt())
    return torch.stack(out, dim=1)


def blended_bands(images: list[torch.Tensor], weights: list[float], windows: tuple[int, ...] = WINDOWS) -> torch.Tensor:
    """(len(windows) - 1,): the band contrasts of paintings (each (1, 3, H, W)) mixed with `weights`, the root of their
    weighted variances: what one image holding the paintings' strokes in those proportions would show."""
    total = sum(weights)
    return sum(w / total * band_contrasts(image, windows=windows)[0] ** 2
               for image, w in zip(images, weights) if w > 0).sqrt()


def detail_loss(learned: torch.Tensor, coverage: Coverage, target: torch.Tensor,
                windows: tuple[int, ...] = WINDOWS) -> torch.Tensor:
    """Mean over views (B, 3, H, W) and windows of the squared shortfall of their band contrasts from the painting's
    `target` ((len(windows) - 1,) or one row a view; measured with the same windows), as a share of it: 0 where a view
    is as vivid or more."""
    weight = coverage.mask
    inverse_sums = coverage.kept(f"detail {windows}", lambda mask: coverage_sums(mask, windows))
    ratios = band_contrasts(learned, weight, inverse_sums, windows) / target.clamp(min=1e-6)
    return ((1 - ratios).clamp(min=0) ** 2).mean()
