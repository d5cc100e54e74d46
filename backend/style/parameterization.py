"""Texture parameterizations: what the optimizer actually changes.

fourier: the Distill article's decorrelated parameterization. A complex spectrum, scaled per spatial
frequency f by 1 / max(|f|, 1/size) (so all frequencies learn at comparable rates: a
preconditioner), is turned into an image by an inverse real FFT, mapped through a decorrelated
colour basis and squashed by a sigmoid into (0, 1).
pixel: one logit per texel and channel, squashed by a sigmoid.

Both can start from random values (as the article) or from an original texture, reproduced within
half an 8-bit step (exact 0 and 1 are pulled in by that much: the sigmoid never reaches them).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Colour correlation of ImageNet images (square root of the covariance), from the reference code.
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_MATRIX = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()
EDGE = 0.5 / 255  # originals are clamped to [EDGE, 1 - EDGE] before the logit; error <= half an 8-bit step


def _logit(texture: torch.Tensor) -> torch.Tensor:
    return torch.logit(texture.clamp(EDGE, 1 - EDGE))


class PixelTexture(torch.nn.Module):
    def __init__(self, size: int, generator: torch.Generator, original: torch.Tensor | None = None, decay: float = 1.0,
                 spectrum_size: int | None = None, floor: float = 1.0):
        super().__init__()
        if spectrum_size not in (None, size):
            raise ValueError("the pixel parameterization has no spectrum: it works at the texture's size")
        if original is not None:
            logits = _logit(original.float())
        else:
            logits = torch.randn(size, size, 3, generator=generator) * 0.01
        self.size = self.working_size = size
        self.logits = torch.nn.Parameter(logits)

    def forward(self, size: int | None = None) -> torch.Tensor:
        """The texture (size, size, 3) in (0, 1), image layout (row 0 at the top)."""
        if size not in (None, self.size):
            raise ValueError(f"a pixel texture of {self.size}^2 cannot be given at {size}^2")
        return torch.sigmoid(self.logits)


class FourierTexture(torch.nn.Module):
    """spectrum_size n < size optimizes only the frequencies an n x n texture holds; forward(size) is
    then its band-limited interpolation (the spectrum zero-padded), which equals forward(n) at every
    (size / n)-th texel. The Nyquist row and column of such a spectrum are held at zero: they have no
    unambiguous place in the larger spectrum."""

    def __init__(self, size: int, generator: torch.Generator, original: torch.Tensor | None = None, decay: float = 1.0,
                 spectrum_size: int | None = None, floor: float = 1.0):
        super().__init__()
        n = spectrum_size or size
        if not 1 <= n <= size:
            raise ValueError(f"spectrum size {n} must be between 1 and the texture size {size}")
        fy = torch.fft.fftfreq(n).view(-1, 1)
        fx = torch.fft.rfftfreq(n).view(1, -1)
        frequency = torch.sqrt(fx * fx + fy * fy)
        # decay 1 is the article's 1/f; a larger power slows the finest frequencies further (less speckle).
        # Below `floor` cycles per texture the scale stops growing (the article: 1, only the constant term is
        # held): a higher floor slows the coarsest colour modes, with which separate UV islands can each take
        # a different part of the painting's palette (docs/BENCHMARKS.md).
        scale = 1.0 / torch.clamp(frequency, min=floor / n) ** decay * n
        if n < size and n % 2 == 0:
            scale[n // 2, :] = 0
            scale[:, n // 2] = 0
        self.register_buffer("scale", scale)  # (n, n // 2 + 1)
        self.size, self.working_size = size, n
        if original is not None:
            start = original.float()
            if n < size:
                start = F.interpolate(start.permute(2, 0, 1)[None], size=(n, n), mode="bilinear", antialias=True)[0].permute(1, 2, 0)
            decorrelated = _logit(start) @ torch.linalg.inv(COLOR_MATRIX.T)  # (n, n, 3)
            spectrum = torch.fft.rfft2(4.0 * decorrelated.permute(2, 0, 1)) / torch.where(scale > 0, scale, 1.0)
            spectrum = torch.view_as_real(spectrum * (scale > 0)).contiguous()
        else:
            spectrum = torch.randn(2, 3, n, n // 2 + 1, generator=generator).permute(1, 2, 3, 0).contiguous() * 0.01
        # (3, n, n // 2 + 1, 2: real, imaginary): a complex tensor's layout, viewed without a copy.
        self.spectrum = torch.nn.Parameter(spectrum)

    def forward(self, size: int | None = None) -> torch.Tensor:
        """The texture (size, size, 3) in (0, 1), image layout (row 0 at the top); size defaults to the
        texture size, and the optimizer's renders use working_size (the cheapest)."""
        size = size or self.size
        if size < self.working_size:
            raise ValueError(f"a spectrum of {self.working_size}^2 gives textures of at least {self.working_size}^2, "
                             f"not {size}^2")
        return decode_spectrum(self.spectrum, self.scale, size)


def decode_spectrum(spectrum: torch.Tensor, scale: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 3, n, n // 2 + 1, 2) spectra -> (..., size, size, 3) textures in (0, 1), size >= n."""
    n = spectrum.shape[-3]
    # The colour basis is linear, so it mixes the spectrum's channels before the inverse FFT: a
    # (3, 3) x (3, N) product on contiguous rows instead of one over the (H * W, 3) image.
    scaled = (spectrum * scale[..., None]).reshape(*spectrum.shape[:-4], 3, -1)
    mixed = (COLOR_MATRIX.to(scaled) / 4.0) @ scaled
    complex_spectrum = torch.view_as_complex(mixed.view(spectrum.shape))
    if size > n:
        complex_spectrum = _zero_padded(complex_spectrum, size) * (size / n) ** 2
    return torch.sigmoid(torch.fft.irfft2(complex_spectrum, s=(size, size))).movedim(-3, -1)


def _zero_padded(spectrum: torch.Tensor, size: int) -> torch.Tensor:
    """(..., C, n, n // 2 + 1) half spectrum -> (..., C, size, size // 2 + 1) with the same frequencies."""
    n, columns = spectrum.shape[-2:]
    positive = (n + 1) // 2  # rows of frequencies 0 .. positive - 1; the rest are negative
    out = spectrum.new_zeros(*spectrum.shape[:-2], size, size // 2 + 1)
    out[..., :positive, :columns] = spectrum[..., :positive, :]
    out[..., size - (n - positive) :, :columns] = spectrum[..., positive:, :]
    return out


class SequenceTexture(torch.nn.Module):
    """N frames' textures for aligned interpolation (the seed article's first example): frame f is
    decode(shared + unique_f), one spectrum every frame shares plus one of its own, summed before the decode
    with equal weight. The unique spectra start at zero, so every frame starts from the same texture and
    keeps only the differences its objective asks for; the shared one gets every frame's gradient.
    `independent`: no shared part, each frame's spectrum starting as its own job would (`starts`, one per
    frame; aligned frames all start from starts[0])."""

    def __init__(self, starts: list[FourierTexture], frames: int, independent: bool = False):
        super().__init__()
        first = starts[0]
        if independent and len(starts) != frames:
            raise ValueError(f"independent frames need a start each: {frames} frames, {len(starts)} starts")
        self.register_buffer("scale", first.scale)
        self.size, self.working_size, self.frames = first.size, first.working_size, frames
        self.independent = independent
        if independent:
            self.register_buffer("shared", torch.zeros_like(first.spectrum))
            self.unique = torch.nn.Parameter(torch.stack([s.spectrum.detach() for s in starts]))
        else:
            self.shared = torch.nn.Parameter(first.spectrum.detach().clone())
            self.unique = torch.nn.Parameter(torch.zeros(frames, *first.spectrum.shape, device=first.spectrum.device))

    def forward(self, size: int | None = None, frame: int | None = None) -> torch.Tensor:
        """(N, size, size, 3) textures in (0, 1), or frame `frame`'s (size, size, 3)."""
        size = size or self.size
        unique = self.unique if frame is None else self.unique[frame]
        return decode_spectrum(self.shared + unique, self.scale, size)


PARAMETERIZATIONS = {"fourier": FourierTexture, "pixel": PixelTexture}


def make_texture_parameter(
    kind: str, size: int, seed: int, original: np.ndarray | None, device: torch.device, decay: float = 1.0,
    spectrum_size: int | None = None, floor: float = 1.0,
) -> torch.nn.Module:
    """A module whose forward() gives the current texture; `original` (size, size, 3) in [0, 1] or None.
    `decay` is the fourier spectrum's power, `floor` the frequency (cycles per texture) below which its scale
    stops growing and `spectrum_size` its resolution (default: the texture's; the pixel parameterization has
    none of them)."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.from_numpy(original) if original is not None else None
    return PARAMETERIZATIONS[kind](size, generator, start, decay, spectrum_size, floor).to(device)
