"""Preserving the original texture's colours: style transfer in a luminance channel.

Gatys et al. ("Preserving Color in Neural Artistic Style Transfer", 2016) compare two ways: matching the
painting's colour statistics to the content before measuring its style, or transferring style in
luminance only. We take luminance: it keeps every texel's own colour (hue and saturation come from the
original texel, not from a global colour distribution), which is what an artist asking to keep their
colours means; colour matching keeps only the overall palette and still moves colours between regions.

So, with `preserve_colors`, the network sees grey images only (the learned and the content renders, and
the painting with its luminance matched to the original texture's mean and spread, so the style's
light/dark balance does not fight the content), and the texture handed out is the original texel scaled
to the result's luminance. Scaling keeps a texel's chromaticity r : g : b, so each region keeps its hue
and its saturation; adding the change of luminance to every channel (Y from the result, I and Q from the
original, in YIQ) would keep I and Q but mix grey in, and a saturated red material drifted towards pink
(its mean chromaticity moved by 0.07). A texel that would leave [0, 1] is scaled down as a whole (it
keeps its hue and loses some brightness); near-black texels, which have no hue to keep, take the change
of luminance as grey.
"""

from __future__ import annotations

import numpy as np
import torch

# Rec. 601 luma, the Y of YIQ. Its weights sum to 1, so adding d to R, G and B adds d to Y and leaves
# I and Q unchanged: replacing Y is adding the difference of Y to every channel.
LUMA = (0.299, 0.587, 0.114)


def luminance(rgb: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Y of RGB values along `dim` (kept, size 1)."""
    weights = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device)
    shape = [1] * rgb.dim()
    shape[dim] = 3
    return (rgb * weights.view(shape)).sum(dim=dim, keepdim=True)


def grey(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, H, W), each channel the luminance: what the network sees of colour-kept runs."""
    return luminance(images, dim=1).expand_as(images)


def matched_grey_painting(painting: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The painting (H, W, 3) as grey, its luminance shifted and scaled to the original texture's mean and
    standard deviation (clipped to [0, 1])."""
    y = painting @ np.asarray(LUMA, np.float32)
    reference = original @ np.asarray(LUMA, np.float32)
    spread = float(y.std())
    scaled = (y - y.mean()) * (float(reference.std()) / spread if spread > 1e-6 else 1.0) + float(reference.mean())
    return np.repeat(np.clip(scaled, 0, 1)[..., None], 3, axis=2).astype(np.float32)


def _sqrt_psd(matrix: np.ndarray, inverse: bool = False) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    values = np.clip(values, 1e-4, None) ** (-0.5 if inverse else 0.5)  # a flat colour: no spread to amplify
    return (vectors * values) @ vectors.T


def colour_transfer(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A (3, 3), b (3,)) such that x -> A x + b maps the colours of `source` (..., 3) to the mean and
    covariance of `target`'s (ARF's recolouring of the content views before NNFM): A = C_t^1/2 C_s^-1/2."""
    s, t = source.reshape(-1, 3).astype(np.float64), target.reshape(-1, 3).astype(np.float64)
    matrix = _sqrt_psd(np.cov(t.T)) @ _sqrt_psd(np.cov(s.T), inverse=True)
    return matrix.astype(np.float32), (t.mean(0) - matrix @ s.mean(0)).astype(np.float32)


DARK = 0.02  # luminance below which a texel has no hue to keep


def keep_colors(texture: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """(S, S, 3) result and original -> each original texel scaled to the result's luminance (its chromaticity
    kept), scaled down as a whole where a channel would pass 1; near-black texels get the change as grey."""
    wanted, had = luminance(texture), luminance(original)
    scaled = original * (wanted / had.clamp(min=DARK))
    scaled = scaled / scaled.amax(dim=-1, keepdim=True).clamp(min=1.0)
    grey_shift = (original + wanted - had).clamp(0, 1)
    return torch.where(had > DARK, scaled, grey_shift).clamp(0, 1)
