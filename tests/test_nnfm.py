"""Nearest-neighbour feature matching (backend/style/nnfm.py) and the engine's style_loss choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.errors import StyleTexError
from backend.formats.images import load_image
from backend.mesh.primitives import uv_sphere
from backend.style import nnfm
from backend.style.engine import stylize
from backend.style.losses import Coverage
from backend.style.nnfm import feature_rows, nearest, nnfm_layers, nnfm_loss
from backend.style.settings import StyleSettings

STARRY = Path(__file__).resolve().parent.parent / "data" / "styles" / "starry_night.jpg"


def test_the_chunked_search_finds_the_exact_nearest_key(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    queries = F.normalize(torch.randn(300, 16, generator=gen), dim=1)
    keys = F.normalize(torch.randn(500, 16, generator=gen), dim=1)
    want = (queries @ keys.T).argmax(dim=1)
    monkeypatch.setattr(nnfm, "NEAREST_BYTES", 4 * 500 * 7)  # chunks of 7 queries
    assert torch.equal(nearest(queries, keys), want)


def test_the_loss_is_zero_on_the_paintings_own_features_and_its_gradient_pulls_towards_them():
    gen = torch.Generator().manual_seed(1)
    painting = torch.randn(1, 8, 6, 6, generator=gen)
    targets = {"a": feature_rows(painting)}
    assert float(nnfm_loss({"a": painting}, targets, {"a": 1.0})) == pytest.approx(0.0, abs=1e-6)
    learned = torch.randn(1, 8, 5, 5, generator=gen, requires_grad=True)
    optimizer = torch.optim.Adam([learned], lr=0.05)
    values = []
    for _ in range(40):
        loss = nnfm_loss({"a": learned}, targets, {"a": 1.0})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < 0.3 * values[0]


def test_only_covered_positions_count():
    painting = torch.zeros(1, 2, 4, 4)
    painting[:, 0] = 1  # every painting feature points along channel 0
    learned = torch.zeros(1, 2, 4, 4)
    learned[:, 0, :, :2] = 1  # the left half matches, the right half is orthogonal
    learned[:, 1, :, 2:] = 1
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    targets = {"a": feature_rows(painting)}
    assert float(nnfm_loss({"a": learned}, targets, {"a": 1.0}, Coverage(mask))) == pytest.approx(0.0, abs=1e-6)
    assert float(nnfm_loss({"a": learned}, targets, {"a": 1.0})) == pytest.approx(0.5, abs=1e-6)


def test_channels_last_features_give_the_same_loss_and_gradient():
    gen = torch.Generator().manual_seed(2)
    painting = torch.randn(1, 6, 7, 7, generator=gen, dtype=torch.float64)
    targets = {"a": feature_rows(painting)}
    features = torch.randn(2, 6, 8, 9, generator=gen, dtype=torch.float64)
    mask = Coverage((torch.rand(2, 1, 8, 9, generator=gen, dtype=torch.float64) > 0.4).double())
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        learned = features.contiguous(memory_format=layout).requires_grad_()
        loss = nnfm_loss({"a": learned}, targets, {"a": 1.0}, mask)
        results.append((loss.detach(), torch.autograd.grad(loss, learned)[0]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)
    assert results[0][1].abs().sum() > 0


def test_layers_of_stride_four_or_more():
    weights = {"stem": 0.5, "block2_expand": 1.0, "block7_expand": 2.0}
    assert nnfm_layers(weights, {"stem": 128, "block2_expand": 64, "block7_expand": 16}, 256) == \
        {"block2_expand": 1.0, "block7_expand": 2.0}
    assert nnfm_layers({"stem": 1.0}, {"stem": 128}, 256) == {"stem": 1.0}  # none qualifies: all of them


@pytest.mark.parametrize("kind", ["nnfm", "mix"])
def test_the_engine_runs_nnfm_and_its_style_loss_falls(kind):
    settings = StyleSettings(steps=40, texture_size=64, render_size=48, features="random", device="cpu", margin=2,
                             views_per_step=2, style_loss=kind)
    result = stylize(uv_sphere(10, 20), load_image(STARRY), settings)
    style = np.array([entry["style"] for entry in result.report["loss"]])
    assert np.isfinite(style).all() and style[-5:].mean() < 0.9 * style[:5].mean()


def test_an_unknown_style_loss_is_refused():
    with pytest.raises(StyleTexError, match="style_loss"):
        StyleSettings(style_loss="wasserstein").validate()
