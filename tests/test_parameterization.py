"""Texture parameterizations (backend.style.parameterization): shapes, ranges, exact starts, seeds,
and the Fourier preconditioner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.formats.images import load_image
from backend.texture.transfer import resize_square
from backend.style.parameterization import PARAMETERIZATIONS, make_texture_parameter

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
KINDS = ("fourier", "pixel")


def texture_of(module: torch.nn.Module) -> np.ndarray:
    with torch.no_grad():
        return module().cpu().numpy()


def test_both_kinds_are_registered():
    assert set(PARAMETERIZATIONS) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [8, 33, 64])
def test_random_start_shape_and_range(kind, size):
    module = make_texture_parameter(kind, size, 0, None, CPU)
    texture = module()
    assert texture.shape == (size, size, 3)
    assert texture.dtype == torch.float32
    assert bool(((texture > 0) & (texture < 1)).all())
    assert any(p.requires_grad for p in module.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_values_stay_in_the_open_interval_for_extreme_parameters(kind):
    module = make_texture_parameter(kind, 16, 0, None, CPU)
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(0).add_(torch.randn_like(p) * 1e3)
    texture = module()
    assert bool(torch.isfinite(texture).all())
    assert bool(((texture >= 0) & (texture <= 1)).all())


def random_image(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    image[0, :5] = 0.0  # exact extremes are reproduced too (clamped by half an 8-bit step)
    image[1, :5] = 1.0
    image[2, :, 0] = 0.0
    image[3, :, 1] = 1.0
    return image


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [16, 31, 64])
def test_start_from_a_random_original_reproduces_it(kind, size):
    original = random_image(size, seed=size)
    got = texture_of(make_texture_parameter(kind, size, 0, original, CPU))
    assert got.shape == original.shape
    np.testing.assert_allclose(got, original, rtol=0, atol=1 / 255)
    # Away from the extremes (clamped by half a step there) the error is far below an 8-bit step.
    inner = (original > 2 / 255) & (original < 253 / 255)
    assert np.abs(got - original)[inner].max() < 0.05 / 255


@pytest.mark.parametrize("kind", KINDS)
def test_start_from_an_8_bit_original_gives_its_bytes_back(kind):
    # What a PNG texture holds: multiples of 1/255 (1..254 here: exact 0 and 1 come back as 1/255
    # and 254/255 or 255/255, see the report), saved the way backend.formats.images.save_image rounds.
    rng = np.random.default_rng(5)
    original = (rng.integers(1, 255, (24, 24, 3)) / 255).astype(np.float32)
    got = texture_of(make_texture_parameter(kind, 24, 0, original, CPU))
    np.testing.assert_array_equal((got * 255 + 0.5).astype(np.uint8), (original * 255 + 0.5).astype(np.uint8))


def test_all_black_and_all_white_originals():
    for value in (0.0, 1.0):
        original = np.full((16, 16, 3), value, np.float32)
        for kind in KINDS:
            got = texture_of(make_texture_parameter(kind, 16, 3, original, CPU))
            np.testing.assert_allclose(got, original, rtol=0, atol=1 / 255)


@pytest.mark.parametrize("kind", KINDS)
def test_start_from_the_spot_texture_resized(kind):
    original = resize_square(load_image(REPO / "data" / "spot" / "spot_texture.png"), 48)
    assert original.std() > 0.05  # a real texture, not a flat colour
    got = texture_of(make_texture_parameter(kind, 48, 0, original, CPU))
    np.testing.assert_allclose(got, original, rtol=0, atol=1 / 255)


@pytest.mark.parametrize("kind", KINDS)
def test_seeds(kind):
    a = texture_of(make_texture_parameter(kind, 32, 7, None, CPU))
    b = texture_of(make_texture_parameter(kind, 32, 7, None, CPU))
    c = texture_of(make_texture_parameter(kind, 32, 8, None, CPU))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4
    # The global torch RNG plays no part.
    torch.manual_seed(123)
    d = texture_of(make_texture_parameter(kind, 32, 7, None, CPU))
    np.testing.assert_array_equal(a, d)


@pytest.mark.parametrize("kind", KINDS)
def test_random_start_is_not_flat(kind):
    # The random start carries the seed's noise (so different seeds give different results) but
    # stays close to mid-grey.
    texture = texture_of(make_texture_parameter(kind, 32, 0, None, CPU))
    assert texture.std() > 1e-5
    assert np.abs(texture - 0.5).max() < 0.2


def test_fourier_gradient_reaches_every_frequency():
    module = make_texture_parameter("fourier", 16, 0, None, CPU)
    texture = module()
    weights = torch.randn(texture.shape, generator=torch.Generator().manual_seed(0))
    (texture * weights).sum().backward()
    grad = module.spectrum.grad
    assert grad is not None and grad.shape == module.spectrum.shape
    assert bool(torch.isfinite(grad).all())
    assert grad.abs().max() > 0
    # Real and imaginary parts of most coefficients receive gradient (imaginary parts of the
    # self-conjugate ones, e.g. the DC term, legitimately get none).
    assert (grad[..., 0].abs() > 0).float().mean() > 0.99
    assert (grad[..., 1].abs() > 0).float().mean() > 0.9


def test_fourier_single_texel_gradient_is_spread_over_the_spectrum():
    module = make_texture_parameter("fourier", 16, 0, None, CPU)
    module()[5, 7, 1].backward()
    grad = module.spectrum.grad
    assert (grad.abs().sum(dim=(0, 3)) > 0).float().mean() > 0.9


def test_fourier_scale_favours_low_frequencies():
    size = 32
    module = make_texture_parameter("fourier", size, 0, None, CPU)
    scale = module.scale
    assert scale.shape == (size, size // 2 + 1)
    fy = torch.fft.fftfreq(size).view(-1, 1)
    fx = torch.fft.rfftfreq(size).view(1, -1)
    frequency = torch.sqrt(fx * fx + fy * fy).flatten()
    flat = scale.flatten()
    order = torch.argsort(frequency)
    # Never increasing with |f|, and the DC term scaled as much as the lowest frequency 1/size.
    assert bool((flat[order][1:] <= flat[order][:-1] * (1 + 1e-6)).all())
    assert flat[0] == pytest.approx(scale[0, 1].item(), rel=1e-6)
    highest = flat[frequency.argmax()]
    assert flat[0] / highest > size / 2  # lowest vs highest: about size * sqrt(2) / 2
    # The gradient reaching low frequencies is larger than that at high ones for white-noise input.
    texture = module()
    (texture * torch.randn(texture.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    magnitude = module.spectrum.grad.abs().sum(dim=(0, 3)).flatten()
    low = magnitude[frequency < 0.1].mean()
    high = magnitude[frequency > 0.4].mean()
    assert low > 4 * high


@pytest.mark.parametrize("kind", KINDS)
def test_original_start_ignores_the_seed(kind):
    original = random_image(16, 1)
    a = texture_of(make_texture_parameter(kind, 16, 0, original, CPU))
    b = texture_of(make_texture_parameter(kind, 16, 99, original, CPU))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_one_adam_step_changes_the_texture(kind):
    module = make_texture_parameter(kind, 16, 0, random_image(16, 2), CPU)
    before = texture_of(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    module().mean().backward()
    optimizer.step()
    after = texture_of(module)
    assert after.mean() < before.mean() - 1e-4  # minimizing the mean darkens the texture
    if kind == "pixel":
        assert (after < before).all()  # ... every texel, each with its own logit


def _reference_fourier_texture(module: torch.nn.Module) -> torch.Tensor:
    """The article's formula step by step: complex spectrum times scale, inverse FFT, colour basis
    applied to the image's pixels, sigmoid (the module mixes colours in the spectrum instead)."""
    from backend.style.parameterization import COLOR_MATRIX

    spectrum = torch.view_as_complex(module.spectrum) * module.scale
    image = torch.fft.irfft2(spectrum, s=(module.size, module.size)) / 4.0
    return torch.sigmoid(image.permute(1, 2, 0) @ COLOR_MATRIX.T)


@pytest.mark.parametrize("size", [16, 33])
def test_fourier_texture_and_gradient_match_the_step_by_step_formula(size):
    module = make_texture_parameter("fourier", size, 0, None, CPU)
    with torch.no_grad():
        module.spectrum.normal_(0, 0.05)
    weights = torch.randn(size, size, 3, generator=torch.Generator().manual_seed(2))
    fast = module()
    (fast * weights).sum().backward()
    fast_grad, module.spectrum.grad = module.spectrum.grad.clone(), None
    reference = _reference_fourier_texture(module)
    (reference * weights).sum().backward()
    torch.testing.assert_close(fast, reference, rtol=0, atol=2e-6)
    torch.testing.assert_close(fast_grad, module.spectrum.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("working, size", [(16, 64), (15, 45), (32, 64), ((8, 32), 64), ((32, 16), 64)])
def test_a_smaller_spectrum_is_interpolated_through_the_working_texels(working, size):
    module = make_texture_parameter("fourier", size, 3, None, CPU, spectrum_size=working)
    rows, columns = (working, working) if isinstance(working, int) else working
    with torch.no_grad():
        module.spectrum.normal_(0, 0.2)  # far from grey, so that every frequency shows
        small, full = module(working), module()
    assert small.shape == (rows, columns, 3) and full.shape == (size, size, 3)
    down, across = size // rows, size // columns
    torch.testing.assert_close(full[::down, ::across], small, rtol=0, atol=2e-6)
    # In between it is smooth: the full texture holds no frequency above the working texture's, axis by axis.
    spectrum = torch.fft.rfft2(torch.logit(full.double()).permute(2, 0, 1))
    fy = torch.fft.fftfreq(size).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(size).view(1, -1)
    beyond = (fy >= 0.5 / down) | (fx >= 0.5 / across)
    assert spectrum.abs()[:, beyond].max() < 1e-6 * spectrum.abs().max()


def test_spectrum_sizes_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="spectrum size"):
        make_texture_parameter("fourier", 16, 0, None, CPU, spectrum_size=32)
    with pytest.raises(ValueError, match="pixel"):
        make_texture_parameter("pixel", 16, 0, None, CPU, spectrum_size=8)
    with pytest.raises(ValueError, match="at least"):
        make_texture_parameter("fourier", 16, 0, None, CPU, spectrum_size=8)(4)


def test_a_higher_floor_slows_only_the_coarsest_frequencies():
    base = make_texture_parameter("fourier", 32, 0, None, CPU).scale
    floored = make_texture_parameter("fourier", 32, 0, None, CPU, floor=4.0).scale
    frequency = torch.sqrt(torch.fft.fftfreq(32).view(-1, 1) ** 2 + torch.fft.rfftfreq(32).view(1, -1) ** 2) * 32
    coarse, fine = frequency < 4, frequency >= 4
    torch.testing.assert_close(floored[fine], base[fine])
    assert bool((floored[coarse] <= base[coarse]).all()) and bool((floored[coarse] < base[coarse]).any())
    assert float(floored[0, 0]) == pytest.approx(float(base[0, 0]) / 4)  # the constant term, n^2 -> n^2 / 4
    assert float(floored[coarse].max()) == pytest.approx(32 * 32 / 4)  # no coarse frequency above the floor's
