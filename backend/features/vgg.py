"""torchvision VGG-16/19 as a feature extractor, with ImageNet weights obtained the standard way.

Weights come from torchvision's weights API, which looks in torch's hub cache
(`$TORCH_HOME/hub/checkpoints`, by default `~/.cache/torch/hub/checkpoints`) and downloads there
when it can; or from a local file given by the user (a state dict, loaded with weights_only=True,
so nothing is unpickled beyond tensors).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
from pathlib import Path

import torch
import torchvision
from torchvision.models.vgg import cfgs as vgg_configs
from torchvision.models.vgg import make_layers as vgg_layers

from ..errors import StyleTexError
from .imagenet import ImageNetNormalize

VGG_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VGG_CONTENT_LAYER = "relu4_2"
DOWNLOAD_TIMEOUT_S = 30


def layer_names(features: torch.nn.Sequential) -> list[str]:
    """Names of the modules of a torchvision VGG `features` block: conv1_1, relu1_1, ..., pool1, ..."""
    names, block, index = [], 1, 1
    for module in features:
        if isinstance(module, torch.nn.Conv2d):
            names.append(f"conv{block}_{index}")
        elif isinstance(module, torch.nn.ReLU):
            names.append(f"relu{block}_{index}")
            index += 1
        else:
            names.append(f"pool{block}")
            block, index = block + 1, 1
    return names


def _weights_enum(kind: str):
    return {"vgg19": torchvision.models.VGG19_Weights, "vgg16": torchvision.models.VGG16_Weights}[kind].IMAGENET1K_V1


def _cache_path(kind: str) -> Path:
    url = _weights_enum(kind).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def cached_weights(kind: str) -> Path | None:
    """The ImageNet weights file of `kind` in torch's cache, when it is there (nothing is downloaded)."""
    path = _cache_path(kind)
    return path if path.is_file() else None


def _features_only(kind: str) -> torch.nn.Module:
    """VGG's convolutional part alone, wrapped so its state-dict keys read 'features.N...' as in the
    full model: building the full model would spend a second initializing a 120M-weight classifier
    that the style loss never runs."""
    model = torch.nn.Module()
    model.features = vgg_layers(vgg_configs[{"vgg16": "D", "vgg19": "E"}[kind]], batch_norm=False)
    return model


def _load(model: torch.nn.Module, state: dict) -> None:
    model.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")})


def load_vgg(kind: str, weights_path: str | None) -> tuple[torch.nn.Sequential, str]:
    """The `features` block of VGG `kind` with ImageNet weights, and a note of where they came from."""
    model = _features_only(kind)
    if weights_path:
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise StyleTexError(f"--weights {weights_path}: no such file") from None
        except Exception as exc:  # torch raises many types for a bad file
            raise StyleTexError(f"--weights {weights_path}: not a PyTorch state dict ({type(exc).__name__})") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            if not isinstance(state, dict):
                raise TypeError("not a dict of tensors")
            _load(model, state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StyleTexError(f"--weights {weights_path}: does not fit torchvision's {kind} ({first})") from None
        return model.features, f"file {weights_path}"
    weights = _weights_enum(kind)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a dead network must not hang the job
    try:
        # torch announces downloads on stdout (torch.hub writes "Downloading: ..." there, not on
        # stderr); our own message below says what matters.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            state = weights.get_state_dict(progress=False)
        _load(model, state)
    except Exception as exc:
        raise StyleTexError(
            f"ImageNet weights for {kind} are not in torch's cache ({_cache_path(kind)}) and could not be "
            f"downloaded ({type(exc).__name__}): copy {os.path.basename(weights.url)} there from a machine "
            f"with internet access ({weights.url}), pass --weights PATH, or use --features auto (EfficientNet-Lite0, "
            f"installed with StyleTex)"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return model.features, f"torchvision {kind} IMAGENET1K_V1"


class VggFeatures(torch.nn.Module):
    """Runs VGG only up to the deepest requested layer and returns the requested activations."""

    def __init__(self, features: torch.nn.Sequential, kind: str, layers: tuple[str, ...]):
        super().__init__()
        names = layer_names(features)
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise StyleTexError(f"{kind} has no layer {unknown[0]!r} (layers are named like relu4_2, conv3_1, pool2)")
        last = max(names.index(name) for name in layers)
        for module in features:
            if isinstance(module, torch.nn.ReLU):
                module.inplace = False  # an in-place ReLU would overwrite a stored conv activation
        self.body = features[: last + 1]
        self.names = names[: last + 1]
        self.layers = set(layers)
        self.normalize = ImageNetNormalize()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.normalize(images)
        out = {}
        for name, module in zip(self.names, self.body):
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out
