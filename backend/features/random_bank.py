"""A seeded multi-scale bank of random convolution filters: texture features without trained weights.

Random shallow networks synthesize textures about as well as Gatys' VGG features (Ustyuzhaninov et
al., 2017), while an untrained deep VGG does not. The bank sees the image at five scales (each half
the previous, by area averaging); at each scale one convolution of random zero-mean, unit-norm
filters (several kernel sizes) and a ReLU give one "layer", named rand1 (finest) to rand5.

This makes tests and offline runs possible. It is NOT a quality mode: results from it say nothing
about what ImageNet features produce.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import StyleTexError
from .imagenet import ImageNetNormalize

SCALES = 5
FILTERS_PER_SIZE = {3: 24, 5: 24, 7: 16}  # 64 channels per scale
RANDOM_STYLE_LAYERS = tuple(f"rand{k}" for k in range(1, SCALES + 1))
RANDOM_CONTENT_LAYER = "rand3"


class RandomFeatureBank(torch.nn.Module):
    def __init__(self, seed: int, layers: tuple[str, ...]):
        super().__init__()
        unknown = [name for name in layers if name not in RANDOM_STYLE_LAYERS]
        if unknown:
            raise StyleTexError(f"random features have no layer {unknown[0]!r} (layers: {', '.join(RANDOM_STYLE_LAYERS)})")
        self.layers = layers
        self.depth = max(RANDOM_STYLE_LAYERS.index(name) for name in layers) + 1
        generator = torch.Generator().manual_seed(seed)
        for scale in range(self.depth):
            for size, count in FILTERS_PER_SIZE.items():
                w = torch.randn(count, 3, size, size, generator=generator)
                w = w - w.mean(dim=(1, 2, 3), keepdim=True)
                w = w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                self.register_buffer(f"w{scale}_{size}", w)
        self.normalize = ImageNetNormalize()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.normalize(images)
        out = {}
        for scale in range(self.depth):
            if scale:
                x = F.avg_pool2d(x, 2, ceil_mode=True)
            name = RANDOM_STYLE_LAYERS[scale]
            if name in self.layers:
                maps = [
                    F.conv2d(F.pad(x, [size // 2] * 4, mode="replicate"), getattr(self, f"w{scale}_{size}"))
                    for size in FILTERS_PER_SIZE
                ]
                out[name] = F.relu(torch.cat(maps, dim=1))
        return out
