"""The FeatureNet interface and the factory that picks an implementation by name."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import StyleTexError

KINDS = ("vgg19", "vgg16", "random")


@dataclass
class FeatureNet:
    """A frozen feature extractor. `module(images)` returns {layer name: (B, C, h, w)} for `layers`."""

    kind: str
    module: torch.nn.Module
    layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    content_layer: str
    quality_note: str = ""  # set when the features are not meant for quality results
    weights: str = field(default="")  # where the weights came from

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.module(images)


def build_feature_net(
    kind: str = "vgg19",
    device: torch.device | str = "cpu",
    weights_path: str | None = None,
    style_layers: tuple[str, ...] | None = None,
    content_layer: str | None = None,
    extra_layers: tuple[str, ...] = (),
    seed: int = 0,
) -> FeatureNet:
    """Builds the named feature network on `device`, with every parameter frozen.

    vgg19 / vgg16: torchvision's VGG with ImageNet weights from torchvision's cache (downloaded there
    when possible) or from `weights_path`. random: a seeded multi-scale bank of random filters for
    tests and offline machines; it is not a quality mode. extra_layers are computed too (for
    feature-visualization objectives).
    """
    if kind not in KINDS:
        raise StyleTexError(f"features must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "random":
        from .random_bank import RANDOM_CONTENT_LAYER, RANDOM_STYLE_LAYERS, RandomFeatureBank

        style = tuple(style_layers or RANDOM_STYLE_LAYERS)
        content = content_layer or RANDOM_CONTENT_LAYER
        layers = tuple(dict.fromkeys((*style, content, *extra_layers)))
        module = RandomFeatureBank(seed=seed, layers=layers)
        note = "random features: a seeded bank of random filters for tests and offline runs, not a quality mode"
        net = FeatureNet(kind, module, layers, style, content, note, f"random (seed {seed})")
    else:
        from .vgg import VGG_CONTENT_LAYER, VGG_STYLE_LAYERS, VggFeatures, load_vgg

        style = tuple(style_layers or VGG_STYLE_LAYERS)
        content = content_layer or VGG_CONTENT_LAYER
        layers = tuple(dict.fromkeys((*style, content, *extra_layers)))
        features, source = load_vgg(kind, weights_path)
        module = VggFeatures(features, kind, layers)
        net = FeatureNet(kind, module, layers, style, content, "", source)
    net.module.to(device).eval()
    for p in net.module.parameters():
        p.requires_grad_(False)
    return net
