"""Feature networks (backend.features): the seeded random bank and the VGG loading paths.

This machine has no network and no cached ImageNet weights; the VGG tests use torch's hub folder
pointed at an empty temporary directory and a randomly initialized state dict saved to a file.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch
import torch.nn.functional as F
import torchvision

from backend.errors import StyleTexError
from backend.features import build_feature_net
from backend.features.imagenet import IMAGENET_MEAN, IMAGENET_STD
from backend.features.random_bank import RANDOM_CONTENT_LAYER, RANDOM_STYLE_LAYERS

VGG_DEFAULT = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2")


def images(b=2, size=64, seed=0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- random bank ---------------------------------------------------------------------------------


def test_random_bank_layers_shapes_and_relu():
    net = build_feature_net("random", seed=0)
    assert net.kind == "random"
    assert net.style_layers == RANDOM_STYLE_LAYERS == ("rand1", "rand2", "rand3", "rand4", "rand5")
    assert net.content_layer == RANDOM_CONTENT_LAYER == "rand3"
    assert net.quality_note  # random features say they are not a quality mode
    out = net(images(size=64))
    assert set(out) == set(RANDOM_STYLE_LAYERS)
    for k, name in enumerate(RANDOM_STYLE_LAYERS):
        assert out[name].shape == (2, 64, 64 >> k, 64 >> k), name
        assert bool((out[name] >= 0).all())
        assert (out[name] > 0).float().mean() > 0.2  # ReLU of zero-mean filters: not dead
        assert bool(torch.isfinite(out[name]).all())


def test_random_bank_odd_sizes_round_up():
    out = build_feature_net("random", seed=0)(images(b=1, size=33))
    assert [out[n].shape[-1] for n in RANDOM_STYLE_LAYERS] == [33, 17, 9, 5, 3]


def test_random_bank_is_deterministic_per_seed_and_differs_across_seeds():
    x = images()
    a = build_feature_net("random", seed=3)(x)
    b = build_feature_net("random", seed=3)(x)
    c = build_feature_net("random", seed=4)(x)
    for name in RANDOM_STYLE_LAYERS:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
        assert (a[name] - c[name]).abs().max() > 1e-3
    # The global RNG plays no part.
    torch.manual_seed(1234)
    d = build_feature_net("random", seed=3)(x)
    torch.testing.assert_close(a["rand2"], d["rand2"], rtol=0, atol=0)


def test_random_bank_requested_subset_and_extra_layers():
    net = build_feature_net("random", style_layers=("rand1", "rand2"), content_layer="rand2", extra_layers=("rand4",))
    assert net.layers == ("rand1", "rand2", "rand4")
    out = net(images(b=1, size=32))
    assert set(out) == {"rand1", "rand2", "rand4"}
    # A layer's filters do not depend on which other layers were asked for.
    full = build_feature_net("random")(images(b=1, size=32))
    torch.testing.assert_close(out["rand4"], full["rand4"], rtol=0, atol=0)


def test_random_bank_is_frozen_but_passes_gradients_to_the_image():
    net = build_feature_net("random", seed=0)
    assert all(not p.requires_grad for p in net.module.parameters())
    x = images(b=1, size=32).requires_grad_(True)
    net(x)["rand3"].sum().backward()
    assert x.grad is not None and x.grad.abs().max() > 0


def test_random_bank_rand1_matches_a_hand_convolution():
    net = build_feature_net("random", style_layers=("rand1",), content_layer="rand1", seed=5)
    x = images(b=1, size=16)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    normalized = (x - mean) / std
    bank = net.module
    maps = []
    for size in (3, 5, 7):
        w = getattr(bank, f"w0_{size}")
        assert w.shape[1:] == (3, size, size)
        torch.testing.assert_close(w.flatten(1).norm(dim=1), torch.ones(len(w)), rtol=0, atol=1e-5)  # unit norm
        torch.testing.assert_close(w.mean(dim=(1, 2, 3)), torch.zeros(len(w)), rtol=0, atol=1e-6)  # zero mean
        maps.append(F.conv2d(F.pad(normalized, [size // 2] * 4, mode="replicate"), w))
    torch.testing.assert_close(net(x)["rand1"], F.relu(torch.cat(maps, dim=1)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"style_layers": ("rand9",)},
        {"content_layer": "relu4_2"},
        {"extra_layers": ("bogus",)},
    ],
)
def test_random_bank_unknown_layer_is_a_style_tex_error(kwargs):
    with pytest.raises(StyleTexError) as info:
        build_feature_net("random", **kwargs)
    message = str(info.value)
    assert "\n" not in message and "layer" in message


def test_unknown_kind_is_a_style_tex_error():
    with pytest.raises(StyleTexError) as info:
        build_feature_net("alexnet")
    assert "\n" not in str(info.value) and "alexnet" in str(info.value)


# --- VGG -----------------------------------------------------------------------------------------


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """torch's hub folder (and TORCH_HOME) inside tmp_path: no cached weights can be found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return tmp_path


def test_vgg_without_cached_weights_or_network_fails_fast_with_one_line(empty_hub, capfd):
    outcome: dict = {}

    def attempt():
        try:
            outcome["net"] = build_feature_net("vgg19")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            outcome["error"] = exc

    started = time.monotonic()
    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "build_feature_net('vgg19') hung for over 60 s without network"
    assert time.monotonic() - started < 60
    assert "net" not in outcome, "weights were found although the hub folder is empty"
    error = outcome["error"]
    assert isinstance(error, StyleTexError), repr(error)
    message = str(error)
    assert "\n" not in message
    assert "--weights" in message and "--features auto" in message
    assert str(empty_hub / "hub") in message  # says where the weights were looked for
    # Nothing was left behind in the cache (no partial download), and torch's download notice
    # did not reach the terminal: the error message is all the user sees.
    checkpoints = empty_hub / "hub" / "checkpoints"
    assert not checkpoints.exists() or not any(p.suffix == ".pth" for p in checkpoints.iterdir())
    captured = capfd.readouterr()
    assert "Downloading" not in captured.out + captured.err


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    """A complete vgg16 state dict (random weights) and the model it came from."""
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None)
    path = tmp_path_factory.mktemp("weights") / "vgg16_random.pth"
    torch.save(model.state_dict(), path)
    return path, model.features.eval()


def test_vgg_from_a_weights_file(vgg16_file):
    path, reference = vgg16_file
    net = build_feature_net("vgg16", weights_path=str(path))
    assert net.kind == "vgg16" and str(path) in net.weights
    assert net.quality_note == ""
    assert net.content_layer == "relu4_2"
    assert set(net.layers) == set(VGG_DEFAULT)
    # relu5_1 is module 25 of vgg16's features: nothing after it runs.
    assert len(net.module.body) == 26
    x = images(b=1, size=64)
    out = net(x)
    assert set(out) == set(VGG_DEFAULT)
    expected_shapes = {"relu1_1": (64, 64), "relu2_1": (128, 32), "relu3_1": (256, 16), "relu4_1": (512, 8),
                       "relu4_2": (512, 8), "relu5_1": (512, 4)}
    for name, (channels, size) in expected_shapes.items():
        assert out[name].shape == (1, channels, size, size), name
        assert bool((out[name] >= 0).all())
    # The loaded weights are the file's: compare with the reference model run by hand.
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        h = (x - mean) / std
        hand = {}
        for index, module in enumerate(reference):
            h = module(h.clone())
            if index in (1, 6, 11, 18, 20, 25):
                hand[index] = h.clone()
    torch.testing.assert_close(out["relu1_1"], hand[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["relu4_2"], hand[20], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["relu5_1"], hand[25], rtol=1e-4, atol=1e-5)
    assert all(not p.requires_grad for p in net.module.parameters())


def test_vgg_runs_only_up_to_the_deepest_requested_layer(vgg16_file):
    path, _ = vgg16_file
    net = build_feature_net("vgg16", weights_path=str(path), style_layers=("relu1_1",), content_layer="relu2_1")
    assert len(net.module.body) == 7  # conv1_1 relu1_1 conv1_2 relu1_2 pool1 conv2_1 relu2_1
    assert set(net(images(b=1, size=32))) == {"relu1_1", "relu2_1"}


@pytest.mark.parametrize("kind", ["random", "efficientnet_lite0", "vgg16"])
def test_content_features_alone_equal_the_full_pass_and_run_no_deeper(kind, vgg16_file):
    weights = str(vgg16_file[0]) if kind == "vgg16" else None
    net = build_feature_net(kind, weights_path=weights)
    x = images(b=2, size=64)
    with torch.no_grad():
        full = net(x)[net.content_layer]
        alone = net.content(x)
    torch.testing.assert_close(alone, full, rtol=0, atol=0)
    assert net.content_module is not None and net.content_module is not net.module
    assert not any(p.requires_grad for p in net.content_module.parameters())
    if kind == "vgg16":
        assert len(net.content_module.body) == 21  # up to relu4_2, not relu5_1
    if kind == "efficientnet_lite0":
        assert net.content_module.last_block < net.module.last_block


def test_vgg_conv_and_relu_of_the_same_block_both_survive(vgg16_file):
    # torchvision's ReLUs are in-place; a stored conv activation must not be overwritten.
    path, _ = vgg16_file
    net = build_feature_net("vgg16", weights_path=str(path), style_layers=("conv1_1", "relu1_1"),
                            content_layer="relu1_1")
    out = net(images(b=1, size=16))
    assert out["conv1_1"].min() < 0
    torch.testing.assert_close(out["relu1_1"], F.relu(out["conv1_1"]), rtol=0, atol=0)


def test_vgg_unknown_layer_is_a_one_line_error(vgg16_file):
    path, _ = vgg16_file
    with pytest.raises(StyleTexError) as info:
        build_feature_net("vgg16", weights_path=str(path), extra_layers=("rand3",))
    assert "\n" not in str(info.value) and "rand3" in str(info.value)


def test_vgg_weights_of_the_wrong_architecture(vgg16_file):
    path, _ = vgg16_file
    with pytest.raises(StyleTexError) as info:
        build_feature_net("vgg19", weights_path=str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "vgg19" in message


@pytest.mark.parametrize("content", [b"this is not a checkpoint\n", b"PK\x03\x04garbage zip"])
def test_garbage_weights_file(tmp_path, content):
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(StyleTexError) as info:
        build_feature_net("vgg16", weights_path=str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "--weights" in message


def test_weights_file_holding_something_else(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(torch.zeros(4), path)  # not a dict at all
    with pytest.raises(StyleTexError) as info:
        build_feature_net("vgg16", weights_path=str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_weights_file(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(StyleTexError) as info:
        build_feature_net("vgg19", weights_path=str(path))
    assert "\n" not in str(info.value) and "no such file" in str(info.value)
    assert not os.path.exists(path)
