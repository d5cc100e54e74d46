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

# Colour correlation of ImageNet images (square root of the covariance), from the reference code.
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_MATRIX = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()
EDGE = 0.5 / 255  # originals are clamped to [EDGE, 1 - EDGE] before the logit; error <= half an 8-bit step


def _logit(texture: torch.Tensor) -> torch.Tensor:
    return torch.logit(texture.clamp(EDGE, 1 - EDGE))


class PixelTexture(torch.nn.Module):
    def __init__(self, size: int, generator: torch.Generator, original: torch.Tensor | None = None, decay: float = 1.0):
        super().__init__()
        if original is not None:
            logits = _logit(original.float())
        else:
            logits = torch.randn(size, size, 3, generator=generator) * 0.01
        self.logits = torch.nn.Parameter(logits)

    def forward(self) -> torch.Tensor:
        """The texture (size, size, 3) in (0, 1), image layout (row 0 at the top)."""
        return torch.sigmoid(self.logits)


class FourierTexture(torch.nn.Module):
    def __init__(self, size: int, generator: torch.Generator, original: torch.Tensor | None = None, decay: float = 1.0):
        super().__init__()
        fy = torch.fft.fftfreq(size).view(-1, 1)
        fx = torch.fft.rfftfreq(size).view(1, -1)
        frequency = torch.sqrt(fx * fx + fy * fy)
        # decay 1 is the article's 1/f; a larger power slows the finest frequencies further (less speckle).
        scale = 1.0 / torch.clamp(frequency, min=1.0 / size) ** decay * math.sqrt(size * size)
        self.register_buffer("scale", scale)  # (size, size // 2 + 1)
        self.size = size
        if original is not None:
            decorrelated = _logit(original.float()) @ torch.linalg.inv(COLOR_MATRIX.T)  # (H, W, 3)
            spectrum = torch.fft.rfft2(4.0 * decorrelated.permute(2, 0, 1)) / scale
            spectrum = torch.stack([spectrum.real, spectrum.imag])
        else:
            spectrum = torch.randn(2, 3, size, size // 2 + 1, generator=generator) * 0.01
        self.spectrum = torch.nn.Parameter(spectrum)  # (2: real, imaginary, 3, size, size // 2 + 1)

    def forward(self) -> torch.Tensor:
        """The texture (size, size, 3) in (0, 1), image layout (row 0 at the top)."""
        spectrum = torch.complex(self.spectrum[0], self.spectrum[1]) * self.scale
        image = torch.fft.irfft2(spectrum, s=(self.size, self.size)) / 4.0  # (3, H, W)
        return torch.sigmoid(image.permute(1, 2, 0) @ COLOR_MATRIX.to(image).T)


PARAMETERIZATIONS = {"fourier": FourierTexture, "pixel": PixelTexture}


def make_texture_parameter(
    kind: str, size: int, seed: int, original: np.ndarray | None, device: torch.device, decay: float = 1.0
) -> torch.nn.Module:
    """A module whose forward() gives the current texture; `original` (size, size, 3) in [0, 1] or None.
    `decay` is the fourier spectrum's power (the pixel parameterization has none)."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.from_numpy(original) if original is not None else None
    return PARAMETERIZATIONS[kind](size, generator, start, decay).to(device)
