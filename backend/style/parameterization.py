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

import math

import numpy as np
import torch
import torch.nn.functional as F

# Colour correlation of ImageNet images (square root of the covariance), from the reference code.
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_MATRIX = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()
EDGE = 0.5 / 255  # originals are clamped to [EDGE, 1 - EDGE] before the logit; error <= half an 8-bit step


def _logit(texture: torch.Tensor) -> torch.Tensor:
    return torch.logit(texture.clamp(EDGE, 1 - EDGE))


def as_shape(size: int | tuple[int, int]) -> tuple[int, int]:
    """A texture or spectrum size: n (square) or (rows, columns)."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class PixelTexture(torch.nn.Module):
    def __init__(self, size: int, generator: torch.Generator, original: torch.Tensor | None = None, decay: float = 1.0,
                 spectrum_size: int | tuple[int, int] | None = None, floor: float = 1.0):
        super().__init__()
        if spectrum_size is not None and as_shape(spectrum_size) != (size, size):
            raise ValueError("the pixel parameterization has no spectrum: it works at the texture's size")
        if original is not None:
            logits = _logit(original.float())
        else:
            logits = torch.randn(size, size, 3, generator=generator) * 0.01
        self.size = size
        self.working_shape = (size, size)
        self.logits = torch.nn.Parameter(logits)

    def forward(self, size: int | tuple[int, int] | None = None) -> torch.Tensor:
        """The texture (size, size, 3) in (0, 1), image layout (row 0 at the top)."""
        if size is not None and as_shape(size) != (self.size, self.size):
            raise ValueError(f"a pixel texture of {self.size}^2 cannot be given at {size}")
        return torch.sigmoid(self.logits)


class FourierTexture(torch.nn.Module):
    """A spectrum of rows x columns (spectrum_size: n for n x n, or a pair) below the texture's size optimizes only
    the frequencies a texture of that shape holds; forward(size) is then its band-limited interpolation (the
    spectrum zero-padded), which equals forward(spectrum shape) at every (size / n)-th texel along each axis. The
    Nyquist row or column of a smaller even side is held at zero: it has no unambiguous place in the larger
    spectrum. A rectangular spectrum serves UVs stretched along a texture axis (spectrum_size.py): its samples
    are then about as wide on the screen one way as the other, and its frequencies (cycles per sample) measure
    the screen's."""

    def __init__(self, size: int, generator: torch.Generator, original: torch.Tensor | None = None, decay: float = 1.0,
                 spectrum_size: int | tuple[int, int] | None = None, floor: float = 1.0):
        super().__init__()
        rows, columns = as_shape(spectrum_size or size)
        if not (1 <= rows <= size and 1 <= columns <= size):
            raise ValueError(f"spectrum size {rows} x {columns} must be between 1 and the texture size {size}")
        fy = torch.fft.fftfreq(rows).view(-1, 1)
        fx = torch.fft.rfftfreq(columns).view(1, -1)
        frequency = torch.sqrt(fx * fx + fy * fy)
        # decay 1 is the article's 1/f; a larger power slows the finest frequencies further (less speckle).
        # Below `floor` cycles per texture the scale stops growing (the article: 1, only the constant term is
        # held): a higher floor slows the coarsest colour modes, with which separate UV islands can each take
        # a different part of the painting's palette (docs/BENCHMARKS.md). A square spectrum's n becomes the
        # geometric mean of the sides, which keeps the texture's amplitude per unit of spectrum as it was.
        n = math.sqrt(rows * columns)
        scale = 1.0 / torch.clamp(frequency, min=floor / max(rows, columns)) ** decay * n
        if rows < size and rows % 2 == 0:
            scale[rows // 2, :] = 0
        if columns < size and columns % 2 == 0:
            scale[:, columns // 2] = 0
        self.register_buffer("scale", scale)  # (rows, columns // 2 + 1)
        self.size, self.working_shape = size, (rows, columns)
        if original is not None:
            start = original.float()
            if (rows, columns) != (size, size):
                start = F.interpolate(start.permute(2, 0, 1)[None], size=(rows, columns), mode="bilinear",
                                      antialias=True)[0].permute(1, 2, 0)
            decorrelated = _logit(start) @ torch.linalg.inv(COLOR_MATRIX.T)  # (rows, columns, 3)
            spectrum = torch.fft.rfft2(4.0 * decorrelated.permute(2, 0, 1)) / torch.where(scale > 0, scale, 1.0)
            spectrum = torch.view_as_real(spectrum * (scale > 0)).contiguous()
        else:
            spectrum = torch.randn(2, 3, rows, columns // 2 + 1, generator=generator).permute(1, 2, 3, 0).contiguous() * 0.01
        # (3, rows, columns // 2 + 1, 2: real, imaginary): a complex tensor's layout, viewed without a copy.
        self.spectrum = torch.nn.Parameter(spectrum)

    def forward(self, size: int | tuple[int, int] | None = None) -> torch.Tensor:
        """The texture (rows, columns, 3) in (0, 1), image layout (row 0 at the top); size (n for n x n, or a pair)
        defaults to the texture size, and the optimizer's renders use working_shape (the cheapest)."""
        shape = as_shape(size or self.size)
        if shape[0] < self.working_shape[0] or shape[1] < self.working_shape[1]:
            raise ValueError(f"a spectrum of {self.working_shape[0]} x {self.working_shape[1]} gives textures of at "
                             f"least that size, not {shape[0]} x {shape[1]}")
        return decode_spectrum(self.spectrum, self.scale, shape, self.working_shape[1])


def decode_spectrum(spectrum: torch.Tensor, scale: torch.Tensor, shape: tuple[int, int], columns: int) -> torch.Tensor:
    """(..., 3, rows, columns // 2 + 1, 2) spectra -> (..., H, W, 3) textures in (0, 1), (H, W) = shape at least
    (rows, columns)."""
    rows = spectrum.shape[-3]
    # The colour basis is linear, so it mixes the spectrum's channels before the inverse FFT: a
    # (3, 3) x (3, N) product on contiguous rows instead of one over the (H * W, 3) image.
    # The scale repeated over (real, imaginary) first: a product broadcast over a last axis of two runs at a fifth of
    # the speed of a plain one (0.68 against 0.14 ms at 512^2, and as much again in the backward pass).
    pairs = scale[..., None].expand(*scale.shape, 2).contiguous()
    scaled = (spectrum * pairs).reshape(*spectrum.shape[:-4], 3, -1)
    mixed = (COLOR_MATRIX.to(scaled) / 4.0) @ scaled
    complex_spectrum = torch.view_as_complex(mixed.view(spectrum.shape))
    if shape != (rows, columns):
        complex_spectrum = _zero_padded(complex_spectrum, shape) * (shape[0] * shape[1] / (rows * columns))
    return torch.sigmoid(torch.fft.irfft2(complex_spectrum, s=shape)).movedim(-3, -1)


def _zero_padded(spectrum: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(..., C, rows, columns // 2 + 1) half spectrum -> (..., C, H, W // 2 + 1) with the same frequencies."""
    rows, half = spectrum.shape[-2:]
    positive = (rows + 1) // 2  # rows of frequencies 0 .. positive - 1; the rest are negative
    out = spectrum.new_zeros(*spectrum.shape[:-2], shape[0], shape[1] // 2 + 1)
    out[..., :positive, :half] = spectrum[..., :positive, :]
    out[..., shape[0] - (rows - positive) :, :half] = spectrum[..., positive:, :]
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
        self.size, self.working_shape, self.frames = first.size, first.working_shape, frames
        self.independent = independent
        if independent:
            self.register_buffer("shared", torch.zeros_like(first.spectrum))
            self.unique = torch.nn.Parameter(torch.stack([s.spectrum.detach() for s in starts]))
        else:
            self.shared = torch.nn.Parameter(first.spectrum.detach().clone())
            self.unique = torch.nn.Parameter(torch.zeros(frames, *first.spectrum.shape, device=first.spectrum.device))

    def forward(self, size: int | tuple[int, int] | None = None, frame: int | None = None) -> torch.Tensor:
        """(N, H, W, 3) textures in (0, 1), or frame `frame`'s (H, W, 3); size as FourierTexture's."""
        unique = self.unique if frame is None else self.unique[frame]
        return decode_spectrum(self.shared + unique, self.scale, as_shape(size or self.size), self.working_shape[1])


PARAMETERIZATIONS = {"fourier": FourierTexture, "pixel": PixelTexture}


def make_texture_parameter(
    kind: str, size: int, seed: int, original: np.ndarray | None, device: torch.device, decay: float = 1.0,
    spectrum_size: int | tuple[int, int] | None = None, floor: float = 1.0,
) -> torch.nn.Module:
    """A module whose forward() gives the current texture; `original` (size, size, 3) in [0, 1] or None.
    `decay` is the fourier spectrum's power, `floor` the frequency (cycles per texture) below which its scale
    stops growing and `spectrum_size` its resolution (n or (rows, columns); default: the texture's; the pixel
    parameterization has none of them)."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.from_numpy(original) if original is not None else None
    return PARAMETERIZATIONS[kind](size, generator, start, decay, spectrum_size, floor).to(device)
