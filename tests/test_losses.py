"""The style losses (backend.style.losses), checked against hand computations in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.style.losses import (StyleMemory, channel_objective, content_loss, covered_rows, gram, resize_mask, select_columns,
                                  style_loss)


def features(b=2, c=5, h=6, w=8, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, h, w, generator=g, dtype=torch.float64)


# --- gram ----------------------------------------------------------------------------------------


def test_gram_without_mask_is_the_mean_outer_product():
    f = features()
    expected = torch.einsum("bchw,bdhw->bcd", f, f) / (f.shape[2] * f.shape[3])
    got = gram(f)
    assert got.shape == (2, 5, 5)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, got.transpose(1, 2), rtol=0, atol=1e-14)  # symmetric


def test_gram_with_a_general_mask_is_the_weighted_mean():
    f = features()
    m = torch.rand(2, 1, 6, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = torch.einsum("bhw,bchw,bdhw->bcd", m[:, 0], f, f) / m.sum(dim=(1, 2, 3))[:, None, None]
    torch.testing.assert_close(gram(f, m), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("masked", [False, True])
def test_gram_gradient_matches_the_plain_product(masked):
    f = features().requires_grad_()
    m = torch.rand(2, 1, 6, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64) if masked else None
    torch.autograd.gradcheck(lambda x: gram(x, m), (f,))
    upstream = torch.randn(2, 5, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (grad,) = torch.autograd.grad((gram(f, m) * upstream).sum(), f)
    w = m if masked else torch.ones_like(f[:, :1])
    plain = torch.einsum("bhw,bchw,bdhw->bcd", w[:, 0], f, f) / w.sum(dim=(1, 2, 3))[:, None, None]
    (expected,) = torch.autograd.grad((plain * upstream).sum(), f)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


def test_masked_out_features_do_not_change_the_gram():
    f = features()
    m = torch.zeros(2, 1, 6, 8, dtype=torch.float64)
    m[0, 0, 1:4, 2:7] = 1
    m[1, 0, ::2, ::3] = 1
    changed = torch.where(m > 0, f, 1000 * torch.randn_like(f) + 7)
    torch.testing.assert_close(gram(changed, m), gram(f, m), rtol=1e-12, atol=1e-12)
    # ... while without the mask the change is visible (the test would notice an ignored mask).
    assert (gram(changed) - gram(f)).abs().max() > 1


def test_half_mask_equals_the_gram_of_the_covered_half():
    f = features()
    m = torch.zeros(2, 1, 6, 8, dtype=torch.float64)
    m[..., :4] = 1  # left half
    torch.testing.assert_close(gram(f, m), gram(f[..., :4]), rtol=1e-12, atol=1e-12)
    m = torch.zeros(2, 1, 6, 8, dtype=torch.float64)
    m[..., 3:, :] = 1  # bottom half
    torch.testing.assert_close(gram(f, m), gram(f[..., 3:, :]), rtol=1e-12, atol=1e-12)


def test_mask_is_area_resized_to_a_coarser_layer():
    f = features(h=4, w=4)  # the layer is half the mask's resolution
    m = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    m[:, :, :4, :4] = 1  # exactly the top-left 2x2 block of the layer
    torch.testing.assert_close(gram(f, m), gram(f[..., :2, :2]), rtol=1e-12, atol=1e-12)
    # A fine mask that covers one texel of a 2x2 block weights that layer position by 1/4.
    m = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    m[:, :, :2, :2] = 1  # layer position (0, 0) fully
    m[:, :, 2, 2] = 1  # layer position (1, 1) by a quarter
    weights = torch.zeros(2, 4, 4, dtype=torch.float64)
    weights[:, 0, 0], weights[:, 1, 1] = 1.0, 0.25
    expected = torch.einsum("bhw,bchw,bdhw->bcd", weights, f, f) / 1.25
    torch.testing.assert_close(gram(f, m), expected, rtol=1e-12, atol=1e-12)
    coarse = resize_mask(m, f)
    assert coarse.shape == (2, 1, 4, 4)
    torch.testing.assert_close(coarse[:, 0], weights, rtol=0, atol=1e-12)


def test_empty_mask_gives_a_finite_gram():
    f = features()
    out = gram(f, torch.zeros(2, 1, 6, 8, dtype=torch.float64))
    assert torch.isfinite(out).all()
    assert out.abs().max() == 0


# --- style memory --------------------------------------------------------------------------------


def test_style_memory_value_is_the_bias_corrected_ema():
    decay = 0.8
    memory = StyleMemory(decay)
    g = torch.Generator().manual_seed(3)
    grams = [torch.rand(1, 4, 4, generator=g, dtype=torch.float64) for _ in range(5)]
    shadow = torch.zeros(1, 4, 4, dtype=torch.float64)
    for t, current in enumerate(grams, start=1):
        out = memory({"a": current, "b": 2 * current})
        shadow = decay * shadow + (1 - decay) * current
        expected = shadow / (1 - decay**t)
        torch.testing.assert_close(out["a"], expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out["b"], 2 * expected, rtol=1e-12, atol=1e-12)
    # Step 1 is the current Gram itself (bias correction); later steps are an average, not G_t.
    assert (out["a"] - grams[-1]).abs().max() > 0.05
    # The average is a convex combination of the Grams seen: within their range elementwise.
    stack = torch.stack(grams)
    assert (out["a"] >= stack.min(dim=0).values - 1e-12).all() and (out["a"] <= stack.max(dim=0).values + 1e-12).all()


def test_style_memory_first_step_is_the_current_gram():
    memory = StyleMemory(0.95)
    current = torch.rand(1, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(memory({"x": current})["x"], current, rtol=1e-12, atol=1e-12)


def test_style_memory_averages_the_views_of_a_step_whatever_their_number():
    memory = StyleMemory(0.5)
    two, three = torch.rand(2, 3, 3, dtype=torch.float64), torch.rand(3, 3, 3, dtype=torch.float64)
    first = memory({"x": two})["x"]
    torch.testing.assert_close(first, two.mean(0, keepdim=True).expand(2, 3, 3), rtol=1e-12, atol=1e-12)
    second = memory({"x": three})["x"]  # a step of another size (close-ups and full views in other numbers)
    expected = (0.25 * two.mean(0) + 0.5 * three.mean(0)) / 0.75
    torch.testing.assert_close(second, expected.expand(3, 3, 3), rtol=1e-12, atol=1e-12)


def test_style_memory_gradient_is_that_of_the_current_gram():
    memory = StyleMemory(0.9)
    for _ in range(3):
        memory({"a": torch.rand(1, 4, 4, dtype=torch.float64)})
    current = torch.rand(1, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 4, 4, dtype=torch.float64)
    out = memory({"a": current})["a"]
    (w * out).sum().backward()
    torch.testing.assert_close(current.grad, w, rtol=0, atol=1e-12)
    # ... and the stored average holds no graph (it must not keep old views alive).
    assert not memory.shadow["a"].requires_grad


def test_style_memory_gradient_flows_back_into_features():
    f = features(b=1, c=3).requires_grad_(True)
    memory = StyleMemory(0.9)
    memory({"a": torch.rand(1, 3, 3, dtype=torch.float64)})
    out = memory({"a": gram(f)})["a"]
    w = torch.randn(1, 3, 3, dtype=torch.float64)
    (w * out).sum().backward()
    direct = f.detach().clone().requires_grad_(True)
    (w * gram(direct)).sum().backward()
    torch.testing.assert_close(f.grad, direct.grad, rtol=1e-12, atol=1e-12)


# --- style, content and channel losses -----------------------------------------------------------


def test_style_loss_is_zero_at_the_target_and_a_weighted_normalized_mean():
    f = features(b=1)
    target = {"a": gram(f)[0], "b": gram(f[:, :3])[0]}
    grams = {"a": gram(f), "b": gram(f[:, :3])}
    weights = {"a": 1.0, "b": 3.0}
    assert style_loss(grams, target, weights).item() == pytest.approx(0.0, abs=1e-12)
    other = {"a": grams["a"] + 0.5, "b": grams["b"] * 2}
    a = (0.5 / target["a"].abs().mean()).item()
    b = (target["b"].abs().mean() / target["b"].abs().mean()).item()
    expected = (1.0 * a + 3.0 * b) / 4.0
    assert style_loss(other, target, weights).item() == pytest.approx(expected, rel=1e-12)


def test_style_loss_is_scale_free():
    f = features(b=1, seed=4)
    s = features(b=1, seed=5)
    targets = {"a": gram(s)[0]}
    base = style_loss({"a": gram(f)}, targets, {"a": 1.0}).item()
    assert base > 0.01
    for k in (0.1, 3.0, 40.0):
        scaled = style_loss({"a": gram(k * f)}, {"a": gram(k * s)[0]}, {"a": 1.0}).item()
        assert scaled == pytest.approx(base, rel=1e-9)
        torch.testing.assert_close(gram(k * s)[0], k**2 * targets["a"], rtol=1e-9, atol=0)


def test_style_loss_mean_is_over_views_too():
    target = {"a": torch.eye(3, dtype=torch.float64)}
    grams = {"a": torch.stack([torch.eye(3, dtype=torch.float64), 2 * torch.eye(3, dtype=torch.float64)])}
    # |G - T| is 0 for view 0 and I for view 1: mean over (2, 3, 3) = 3 / 18, over mean|T| = 3 / 9.
    assert style_loss(grams, target, {"a": 1.0}).item() == pytest.approx((3 / 18) / (3 / 9), rel=1e-12)


def test_content_loss_zero_for_identical_and_ignores_masked_positions():
    a = features(seed=6).abs()
    m = torch.zeros(2, 1, 6, 8, dtype=torch.float64)
    m[:, :, 2:5, 1:6] = 1
    assert content_loss(a, a.clone(), m).item() == pytest.approx(0.0, abs=1e-15)
    assert content_loss(a, a.clone()).item() == pytest.approx(0.0, abs=1e-15)
    b = a + 0.3 * features(seed=7)
    changed = torch.where(m > 0, b, b + 100)
    assert content_loss(changed, a, m).item() == pytest.approx(content_loss(b, a, m).item(), rel=1e-12)
    # Hand computation: mean |b - a| over covered positions / mean |a| there.
    sel = m.expand_as(a) > 0
    expected = ((b - a).abs()[sel].mean() / a.abs()[sel].mean()).item()
    assert content_loss(b, a, m).item() == pytest.approx(expected, rel=1e-12)
    assert content_loss(changed, a).item() > 10  # unmasked, the change counts


def test_content_loss_with_a_coarser_layer():
    a = features(h=3, w=4, seed=8).abs()
    b = features(h=3, w=4, seed=9).abs()
    m = torch.zeros(2, 1, 6, 8, dtype=torch.float64)
    m[:, :, :2, :2] = 1  # exactly layer position (0, 0)
    expected = ((b - a)[..., 0, 0].abs().mean() / a[..., 0, 0].abs().mean()).item()
    assert content_loss(b, a, m).item() == pytest.approx(expected, rel=1e-12)


def test_channel_objective_is_a_masked_mean():
    f = features(seed=10)
    m = torch.zeros(2, 1, 6, 8, dtype=torch.float64)
    m[0, :, :3] = 1
    m[1, :, :, 5:] = 0.5
    for channel in (0, 3):
        sel = m[:, 0]
        expected = ((f[:, channel] * sel).sum() / sel.sum()).item()
        assert channel_objective(f, channel, m).item() == pytest.approx(expected, rel=1e-12)
    assert channel_objective(f, 2).item() == pytest.approx(f[:, 2].mean().item(), rel=1e-12)
    # Only the chosen channel counts.
    g = f.clone()
    g[:, 4] += 50
    assert channel_objective(g, 2, m).item() == pytest.approx(channel_objective(f, 2, m).item(), rel=1e-12)


def test_channel_objective_with_a_coarser_layer_uses_the_area_mask():
    f = features(h=3, w=4, seed=11)
    m = torch.zeros(2, 1, 6, 8, dtype=torch.float64)
    m[:, :, 2:4, 4:6] = 1  # exactly layer position (1, 2)
    expected = f[:, 1, 1, 2].mean().item()
    assert channel_objective(f, 1, m).item() == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(channel_objective(f, 1, torch.zeros_like(m)).item())


def test_a_kept_coverage_gives_the_same_losses_as_its_mask_and_computes_each_size_once():
    from backend.style.losses import Coverage

    g = torch.Generator().manual_seed(3)
    mask = (torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64) > 0.6).double()
    coverage = Coverage(mask)
    for size in (16, 8, 3):
        f = torch.rand(2, 5, size, size, generator=g, dtype=torch.float64)
        torch.testing.assert_close(gram(f, coverage), gram(f, mask), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(content_loss(f, f.flip(0), coverage), content_loss(f, f.flip(0), mask), rtol=1e-12, atol=1e-12)
        assert coverage.at(f) is coverage.at(f.clone())  # kept, not recomputed
    assert len(coverage._at) == 3


@pytest.mark.parametrize("masked", [False, True])
def test_channels_last_features_give_the_same_gram_and_gradient(masked):
    g = torch.Generator().manual_seed(4)
    f = torch.rand(2, 6, 8, 10, generator=g, dtype=torch.float64)
    mask = (torch.rand(2, 1, 16, 20, generator=g, dtype=torch.float64) > 0.5).double() if masked else None
    nhwc = f.contiguous(memory_format=torch.channels_last).requires_grad_()
    plain = f.clone().requires_grad_()
    upstream = torch.rand(2, 6, 6, generator=g, dtype=torch.float64)
    (gram(nhwc, mask) * upstream).sum().backward()
    (gram(plain, mask) * upstream).sum().backward()
    torch.testing.assert_close(gram(nhwc, mask), gram(plain, mask), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(nhwc.grad, plain.grad, rtol=1e-12, atol=1e-12)
    torch.autograd.gradcheck(lambda x: gram(x, mask), (nhwc,))


def test_colour_layout_is_the_covered_mean_colour_per_cell():
    from backend.style.losses import colour_layout, layout_loss

    image = torch.zeros(1, 3, 8, 8)
    image[:, 0, :, :4] = 1.0  # left half red
    image[:, 2, :, 4:] = 1.0  # right half blue
    mask = torch.ones(1, 1, 8, 8)
    mask[..., :2, :] = 0  # the top quarter is background, whatever its colour
    image[..., :2, :] = 0.5
    colour, covered = colour_layout(image, mask, grid=2)
    torch.testing.assert_close(covered[0, 0], torch.tensor([[0.5, 0.5], [1.0, 1.0]]))
    torch.testing.assert_close(colour[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(colour[0, :, 1, 1], torch.tensor([0.0, 0.0, 1.0]))
    assert layout_loss(image, mask, colour, covered).item() == pytest.approx(0.0, abs=1e-6)
    swapped = image.flip(-1)  # red and blue change places: every covered cell is off by its whole colour
    assert layout_loss(swapped, mask, colour, covered).item() == pytest.approx(2.0, rel=1e-5)


# --- style per grid cell -------------------------------------------------------------------------


def test_tile_grams_are_each_cells_masked_gram_and_merge_into_the_whole_views():
    from backend.style.losses import Coverage, merged_gram, tile_grams

    f = features(b=2, c=3, h=8, w=9)  # 9 columns: cells of 5 and 4
    mask = torch.ones(2, 1, 8, 9, dtype=torch.float64)
    mask[0, :, :4, :5] = 0  # the first view's top-left cell is background
    mask[1, :, 4:, 5:] = 0.5
    mask[1, :, 0, 0] = 0
    grams, total = tile_grams(f, Coverage(mask), 2)
    cells = [(slice(0, 4), slice(0, 5)), (slice(0, 4), slice(5, 9)), (slice(4, 8), slice(0, 5)), (slice(4, 8), slice(5, 9))]
    for k, (rows, cols) in enumerate(cells):
        for v in range(2):
            m = mask[v:v + 1, :, rows, cols]
            expected = gram(f[v:v + 1, :, rows, cols], m)[0] if m.sum() > 0 else torch.zeros(3, 3, dtype=torch.float64)
            torch.testing.assert_close(grams[v, k], expected)
            assert total[v, k].item() == pytest.approx(m.sum().item())
    torch.testing.assert_close(merged_gram(grams, total), gram(f, mask))
    channels_last = f.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(tile_grams(channels_last, Coverage(mask), 2)[0], grams)
    small = features(b=2, c=3, h=1, w=2)  # fewer positions than cells: one cell per position
    grams, total = tile_grams(small, Coverage(torch.ones(2, 1, 1, 2, dtype=torch.float64)), 4)
    assert grams.shape == (2, 2, 3, 3)
    torch.testing.assert_close(grams[:, 1], small[:, :, 0, 1, None] * small[:, None, :, 0, 1])


def test_tile_grams_have_the_gradient_of_their_products():
    """Each cell's product and its gradient are written out by hand (one product a cell): checked against finite
    differences, in both memory layouts, with an empty cell."""
    from backend.style.losses import Coverage, tile_grams

    mask = torch.ones(2, 1, 6, 7, dtype=torch.float64)
    mask[0, :, :3, :4] = 0  # an empty cell
    mask[1, :, 3:, :] = 0.25
    coverage = Coverage(mask)
    for layout in (torch.contiguous_format, torch.channels_last):
        f = features(b=2, c=3, h=6, w=7).contiguous(memory_format=layout).requires_grad_()
        assert torch.autograd.gradcheck(lambda x: tile_grams(x, coverage, 2)[0], (f,))


def test_tiled_style_loss_sees_halves_that_the_whole_views_gram_does_not():
    """Two regions that each hold one of two feature vectors have the Gram of the whole mixture, as do fine
    stripes of both; only the cells tell them apart, so only the tiled loss penalizes the halves."""
    from backend.style.losses import Coverage, tile_grams, tiled_style_loss

    a, b = torch.tensor([1.0, 0.2, 0.0], dtype=torch.float64), torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    halves = torch.empty(1, 3, 8, 8, dtype=torch.float64)
    halves[..., :, :4], halves[..., :, 4:] = a[:, None, None], b[:, None, None]
    stripes = torch.empty_like(halves)
    stripes[..., :, 0::2], stripes[..., :, 1::2] = a[:, None, None], b[:, None, None]
    mask = Coverage(torch.ones(1, 1, 8, 8, dtype=torch.float64))
    target = {"x": gram(stripes)[0]}
    torch.testing.assert_close(gram(halves)[0], target["x"])
    loss = lambda f: tiled_style_loss({"x": tile_grams(f, mask, 2)}, target, {"x": 1.0}).item()  # noqa: E731
    assert loss(stripes) == pytest.approx(0.0, abs=1e-12)
    assert loss(halves) > 0.5


def test_select_columns_is_index_select_along_the_last_axis_values_and_gradient():
    columns = torch.rand(2, 5, 40, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([3, 0, 17, 39, 8])
    picked = select_columns(columns, index)
    expected = columns.index_select(2, index)
    assert torch.equal(picked, expected)
    weights = torch.rand_like(expected)
    (grad,) = torch.autograd.grad((picked * weights).sum(), columns)
    (reference,) = torch.autograd.grad((expected * weights).sum(), columns)
    assert torch.equal(grad, reference)
    assert grad[:, :, 1].abs().sum() == 0 and grad[:, :, 17].abs().sum() > 0


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_covered_rows_are_the_features_at_the_positions_values_and_gradient(layout):
    f = torch.rand(2, 5, 6, 7, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
    index = torch.tensor([40, 0, 17, 41, 8])
    picked = covered_rows(f, index)
    expected = f.detach().reshape(2, 5, -1)[:, :, index].transpose(1, 2)
    assert picked.shape == (2, 5, 5) and torch.equal(picked, expected)
    weights = torch.rand(2, 5, 5, dtype=torch.float64)
    (grad,) = torch.autograd.grad((picked * weights).sum(), f)
    reference = torch.zeros(2, 5, 42, dtype=torch.float64)
    reference[:, :, index] = weights.transpose(1, 2)
    assert torch.equal(grad, reference.view(2, 5, 6, 7))


def test_remembered_style_loss_is_style_loss_through_the_memory_value_and_gradient():
    """One autograd node a layer gives what style_loss(memory(grams)) gives: the averages' distance, and the current
    Grams' gradient; both memories move alike."""
    from backend.style.losses import remembered_style_loss

    generator = torch.Generator().manual_seed(4)
    weights = {"a": 0.5, "b": 2.0}
    targets = {name: torch.randn(c, c, generator=generator, dtype=torch.float64) for name, c in (("a", 3), ("b", 5))}
    memories = [StyleMemory(0.9), StyleMemory(0.9)]
    for step in range(3):
        grams = {name: torch.randn(2, len(t), len(t), generator=generator, dtype=torch.float64, requires_grad=True)
                 for name, t in targets.items()}
        expected = style_loss(memories[0](grams), targets, weights)
        got = remembered_style_loss(grams, memories[1], targets, weights)
        torch.testing.assert_close(got, expected)
        wanted = torch.autograd.grad(expected, list(grams.values()))
        given = torch.autograd.grad(got, list(grams.values()))
        for a, b in zip(given, wanted):
            torch.testing.assert_close(a, b)
            assert a.abs().sum() > 0
        for name in targets:
            torch.testing.assert_close(memories[0].shadow[name], memories[1].shadow[name])
