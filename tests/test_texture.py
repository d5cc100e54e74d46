"""Texture tests: gradchecks, known values and conventions, mip selection, gradients through a
render, and attribute interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.mesh.primitives import cube, quad
from backend.raster import rasterize
from backend.render import MeshTensors, render
from backend.texture import build_pyramid, interpolate, pyramid_layout, sample, surface_uv
from backend.views import Camera
from tests.helpers import SNAP, bilinear, bilinear_taps, mesh_clip, project

FILTERS = ("linear", "linear-mipmap-linear")
BOUNDARIES = ("wrap", "clamp")
HEAD_ON = Camera(eye=(0, 0, 5), target=(0, 0, 0), up=(0, 1, 0), fov_deg=30)


def _random_lookups(n: int, height: int, width: int, seed: int):
    """uv in [-0.5, 1.5]^2 and uv_dxy with pixel footprints of 2^-2 .. 2^5 texels, random directions."""
    g = torch.Generator().manual_seed(seed)
    uv = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 0.5
    length = torch.exp2(torch.rand(n, 2, generator=g, dtype=torch.float64) * 7 - 2)  # texels per pixel
    angle = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 * math.pi
    du = length * torch.cos(angle) / width
    dv = length * torch.sin(angle) / height
    uv_dxy = torch.stack([du, dv], dim=1)  # (N, 2 components, 2 screen axes)
    return uv, uv_dxy


def _level_of(pyramid, k: int) -> np.ndarray:
    """Level k of a pyramid as an (h, w, C) array."""
    h, w = pyramid.sizes[k].tolist()
    start = int(pyramid.offsets[k])
    return pyramid.texels[start : start + h * w].detach().reshape(h, w, -1).numpy()


def _level(texture: torch.Tensor, k: int) -> np.ndarray:
    """Level k of build_pyramid(texture) as an (h, w, C) array."""
    return _level_of(build_pyramid(texture), k)


def _texel_centre_uv(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> torch.Tensor:
    return torch.tensor(np.stack([(cols + 0.5) / width, 1 - (rows + 0.5) / height], 1), dtype=torch.float64)


# --- gradcheck -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 8, 3), (6, 10, 2)])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("filter", FILTERS)
def test_gradcheck(shape, boundary, filter):
    torch.manual_seed(0)
    texture = torch.rand(*shape, dtype=torch.float64, requires_grad=True)
    uv, uv_dxy = _random_lookups(24, shape[0], shape[1], seed=1)
    assert (uv < 0).any() and (uv > 1).any()
    levels = 0.5 * torch.log2((uv_dxy * torch.tensor([shape[1], shape[0]])[:, None]).square().sum(1).amax(1))
    assert levels.min() < 0 and levels.max() > 3  # the lookups span every mip level
    fn = lambda tex: sample(tex, uv, uv_dxy, filter=filter, boundary=boundary)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (texture,), eps=1e-6, atol=1e-8)


# --- known values --------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_texel_centres_return_texels(boundary):
    torch.manual_seed(1)
    for shape in ((8, 16, 3), (6, 10, 2)):
        h, w, _ = shape
        texture = torch.rand(*shape, dtype=torch.float64)
        rows, cols = np.divmod(np.arange(h * w), w)
        got = sample(texture, _texel_centre_uv(rows, cols, h, w), filter="linear", boundary=boundary)
        want = texture.reshape(-1, shape[2])
        if w & (w - 1) == 0 and h & (h - 1) == 0:
            assert torch.equal(got, want)  # exact for power-of-two sizes
        else:
            torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_v_zero_is_the_bottom_row():
    h, w = 8, 4
    texture = torch.arange(h * w * 1, dtype=torch.float64).reshape(h, w, 1)
    for boundary in BOUNDARIES:
        got = sample(texture, torch.tensor([[0.5 / w, 0.5 / h]], dtype=torch.float64), boundary=boundary, filter="linear")
        assert got.item() == texture[h - 1, 0, 0].item()
        top_right = sample(texture, torch.tensor([[1 - 0.5 / w, 1 - 0.5 / h]], dtype=torch.float64), filter="linear")
        assert top_right.item() == texture[0, w - 1, 0].item()


def test_wrap_and_clamp_beyond_u_one():
    torch.manual_seed(2)
    h, w = 4, 8
    texture = torch.rand(h, w, 2, dtype=torch.float64)
    row = 1
    uv = torch.tensor([[1 + 0.25 / w, 1 - (row + 0.5) / h]], dtype=torch.float64)  # x = w - 0.25
    wrapped = sample(texture, uv, filter="linear", boundary="wrap")[0]
    clamped = sample(texture, uv, filter="linear", boundary="clamp")[0]
    torch.testing.assert_close(wrapped, 0.25 * texture[row, w - 1] + 0.75 * texture[row, 0], atol=1e-12, rtol=0)
    torch.testing.assert_close(clamped, texture[row, w - 1], atol=1e-12, rtol=0)
    assert not torch.allclose(wrapped, clamped)
    # Below v = 0 and left of u = 0 as well.
    uv = torch.tensor([[-0.25 / w, -0.25 / h]], dtype=torch.float64)  # x = -0.75, y = h - 0.25
    wrapped = sample(texture, uv, filter="linear", boundary="wrap")[0]
    clamped = sample(texture, uv, filter="linear", boundary="clamp")[0]
    # Columns -1 (= w - 1) and 0 weigh 0.75 and 0.25; rows h - 1 and h (= 0) weigh 0.25 and 0.75.
    want = 0.25 * (0.75 * texture[h - 1, w - 1] + 0.25 * texture[h - 1, 0]) + 0.75 * (0.75 * texture[0, w - 1] + 0.25 * texture[0, 0])
    torch.testing.assert_close(wrapped, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(clamped, texture[h - 1, 0], atol=1e-12, rtol=0)


def test_bilinear_midpoint_is_the_average():
    torch.manual_seed(3)
    h, w = 8, 8
    texture = torch.rand(h, w, 3, dtype=torch.float64)
    row, col = 2, 5
    between_cols = torch.tensor([[(col + 1) / w, 1 - (row + 0.5) / h]], dtype=torch.float64)
    between_rows = torch.tensor([[(col + 0.5) / w, 1 - (row + 1) / h]], dtype=torch.float64)
    torch.testing.assert_close(sample(texture, between_cols, filter="linear")[0], (texture[row, col] + texture[row, col + 1]) / 2)
    torch.testing.assert_close(sample(texture, between_rows, filter="linear")[0], (texture[row, col] + texture[row + 1, col]) / 2)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_linear_matches_numpy_bilinear(boundary):
    torch.manual_seed(4)
    for shape in ((8, 8, 3), (6, 10, 2), (5, 3, 1)):
        texture = torch.rand(*shape, dtype=torch.float64)
        uv, _ = _random_lookups(200, shape[0], shape[1], seed=5)
        got = sample(texture, uv, filter="linear", boundary=boundary)
        np.testing.assert_allclose(got.numpy(), bilinear(texture.numpy(), uv.numpy(), boundary), atol=1e-12)


def test_pyramid_levels_are_box_filtered():
    torch.manual_seed(5)
    texture = torch.rand(16, 8, 3, dtype=torch.float64)
    pyramid = build_pyramid(texture)
    assert pyramid.sizes.tolist() == [[16, 8], [8, 4], [4, 2], [2, 1], [1, 1]]
    level = texture.numpy()
    for k in range(1, pyramid.levels):
        h, w = pyramid.sizes[k].tolist()
        level = level.reshape(h, level.shape[0] // h, w, level.shape[1] // w, 3).mean(axis=(1, 3))
        np.testing.assert_allclose(_level(texture, k), level, atol=1e-12)
    np.testing.assert_allclose(_level(texture, pyramid.levels - 1)[0, 0], texture.numpy().mean(axis=(0, 1)), atol=1e-12)


def test_tent_pyramid_levels_match_a_wrapping_convolution_and_keep_the_mean():
    torch.manual_seed(7)
    texture = torch.rand(16, 8, 3, dtype=torch.float64)
    pyramid = build_pyramid(texture, kernel="tent")
    assert pyramid.sizes.tolist() == [[16, 8], [8, 4], [4, 2], [2, 1], [1, 1]]
    # Independent reference: each level by hand, out[i] = (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8
    # along each axis with indices taken modulo the size; box averages where a side is below 4.
    level = texture.numpy()
    for k in range(1, pyramid.levels):
        h, w = level.shape[:2]
        if min(h, w) >= 4:
            taps = {-1: 1 / 8, 0: 3 / 8, 1: 3 / 8, 2: 1 / 8}
            rows = sum(c * level[(np.arange(0, h, 2) + d) % h] for d, c in taps.items())
            level = sum(c * rows[:, (np.arange(0, w, 2) + d) % w] for d, c in taps.items())
        else:
            nh, nw = max(h // 2, 1), max(w // 2, 1)
            level = level.reshape(nh, h // nh, nw, w // nw, 3).mean(axis=(1, 3))
        np.testing.assert_allclose(_level_of(pyramid, k), level, atol=1e-12)
    np.testing.assert_allclose(_level_of(pyramid, pyramid.levels - 1)[0, 0], texture.numpy().mean(axis=(0, 1)),
                               atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 8, 3), (12, 20, 2)])
@pytest.mark.parametrize("kernel", ("box", "tent"))
@pytest.mark.parametrize("tail_side", (0, 64))
def test_pyramid_gradcheck(shape, kernel, tail_side):
    # The backward pass is written by hand (each filter's transpose, or the tail's products), so check it against
    # finite differences.
    torch.manual_seed(8)
    texture = torch.rand(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: build_pyramid(t, kernel=kernel, tail_side=tail_side).texels, (texture,))


@pytest.mark.parametrize("shape", [(256, 128, 3), (96, 160, 2), (300, 64, 1)])
@pytest.mark.parametrize("kernel", ("box", "tent"))
def test_pyramid_tail_by_matrix_products_equals_level_by_level(shape, kernel):
    # The small levels come from one product each side (tail_side); the reference filters every level from
    # the one above. Same values and same gradient (odd sides included: 96 x 160 reaches 3 x 5).
    torch.manual_seed(9)
    texture = torch.rand(*shape, dtype=torch.float64, requires_grad=True)
    upstream = torch.rand(build_pyramid(texture, kernel=kernel, tail_side=0).texels.shape, dtype=torch.float64)
    results = []
    for tail_side in (0, 64):
        texture.grad = None
        texels = build_pyramid(texture, kernel=kernel, tail_side=tail_side).texels
        (texels * upstream).sum().backward()
        results.append((texels.detach(), texture.grad.clone()))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=1e-12)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=0, atol=1e-12)


def test_pyramid_layout_is_the_built_pyramids():
    for shape in ((16, 8), (12, 20), (1, 5), (7, 7)):
        pyramid = build_pyramid(torch.zeros(*shape, 2), kernel="tent")
        sizes, offsets = pyramid_layout(*shape)
        assert torch.equal(sizes, pyramid.sizes) and torch.equal(offsets, pyramid.offsets)
        assert int(offsets[-1] + sizes[-1].prod()) == pyramid.texels.shape[0]


def test_tent_pyramid_gradient_has_no_blocks():
    # A gradient on one texel of level 3 reaches level 0 spread smoothly, not as a constant 8 x 8 block.
    texture = torch.zeros(32, 32, 1, dtype=torch.float64, requires_grad=True)
    for kernel, blocky in (("box", True), ("tent", False)):
        texture.grad = None
        pyramid = build_pyramid(texture, kernel=kernel)
        offset = int(pyramid.offsets[3])
        pyramid.texels[offset + 4 * 1 + 1, 0].backward()  # level 3 is 4 x 4: row 1, column 1
        grad = texture.grad[..., 0]
        support = grad[grad > 0]
        assert abs(float(grad.sum()) - 1) < 1e-12  # both filters preserve the mean
        assert (support.max() == support.min()) == blocky


# --- mip selection -------------------------------------------------------------------------------


def _footprint(n: int, texels: float, height: int, width: int, seed: int) -> torch.Tensor:
    """uv_dxy (N, 2, 2) whose longer screen axis covers exactly `texels` texels of level 0, in a
    random direction (the other axis half as many)."""
    g = torch.Generator().manual_seed(seed)
    angle = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    du, dv = texels * torch.cos(angle) / width, texels * torch.sin(angle) / height
    along_x = torch.stack([du, dv], 1)
    along_y = torch.stack([-dv * height / width, du * width / height], 1) * 0.5  # perpendicular in texels
    return torch.stack([along_x, along_y], 2)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape", [(16, 16, 3), (16, 32, 2), (12, 20, 2)])
def test_trilinear_at_power_of_two_footprints_is_one_level(shape, boundary):
    torch.manual_seed(6)
    h, w, _ = shape
    texture = torch.rand(*shape, dtype=torch.float64)
    levels = build_pyramid(texture).levels
    uv, _ = _random_lookups(64, h, w, seed=7)
    for k in range(levels):
        got = sample(texture, uv, _footprint(len(uv), 2.0**k, h, w, seed=k), boundary=boundary)
        want = bilinear(_level(texture, k), uv.numpy(), boundary)
        np.testing.assert_allclose(got.numpy(), want, atol=1e-9, err_msg=f"level {k}")
    # Half way between levels 1 and 2 in log2: the mean of the two lookups.
    got = sample(texture, uv, _footprint(len(uv), 2.0**1.5, h, w, seed=9), boundary=boundary)
    want = 0.5 * (bilinear(_level(texture, 1), uv.numpy(), boundary) + bilinear(_level(texture, 2), uv.numpy(), boundary))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-9)
    # Footprints below one texel use level 0: the same as 'linear'; beyond the coarsest, the 1x1 level.
    linear = sample(texture, uv, filter="linear", boundary=boundary)
    for texels in (1.0, 0.5, 1e-3):
        torch.testing.assert_close(sample(texture, uv, _footprint(len(uv), texels, h, w, seed=10), boundary=boundary), linear, atol=1e-12, rtol=0)
    coarsest = sample(texture, uv, _footprint(len(uv), 2.0**12, h, w, seed=11), boundary=boundary)
    np.testing.assert_allclose(coarsest.numpy(), np.broadcast_to(_level(texture, levels - 1)[0, 0], coarsest.shape), atol=1e-12)


def test_pyramid_input_equals_texture_input():
    torch.manual_seed(8)
    texture = torch.rand(16, 16, 3, dtype=torch.float64)
    uv, uv_dxy = _random_lookups(50, 16, 16, seed=3)
    for boundary in BOUNDARIES:
        assert torch.equal(sample(build_pyramid(texture), uv, uv_dxy, boundary=boundary), sample(texture, uv, uv_dxy, boundary=boundary))


def test_bad_arguments():
    texture = torch.rand(4, 4, 3)
    uv = torch.rand(3, 2)
    with pytest.raises(ValueError):
        sample(texture, uv, filter="nearest")
    with pytest.raises(ValueError):
        sample(texture, uv, filter="linear", boundary="mirror")
    with pytest.raises(ValueError):
        sample(texture, uv, None, filter="linear-mipmap-linear")


# --- through the render pipeline -----------------------------------------------------------------


def test_render_uv_orientation_and_derivatives():
    """Head-on quad: u runs left to right, v bottom to top, and uv_dxy is the exact screen rate."""
    size = 16
    mesh = quad()
    clip, faces = mesh_clip(mesh, HEAD_ON)
    frags = rasterize(clip, faces, size)
    pixel, uv, uv_dxy = surface_uv(torch.from_numpy(mesh.uvs), frags)
    # The quad spans [lo, hi] pixels on both axes (see test_rasterize), u = (x - lo) / (hi - lo).
    half = 1 / (5 * math.tan(math.radians(15)))
    lo, extent = (1 - half) / 2 * size, half * size
    y, x = np.divmod(pixel.numpy(), size)
    np.testing.assert_allclose(uv[:, 0].numpy(), (x + 0.5 - lo) / extent, atol=SNAP / extent * 2)
    np.testing.assert_allclose(uv[:, 1].numpy(), 1 - (y + 0.5 - lo) / extent, atol=SNAP / extent * 2)
    want = np.array([[1 / extent, 0], [0, -1 / extent]])
    np.testing.assert_allclose(uv_dxy.numpy(), np.broadcast_to(want, uv_dxy.shape), rtol=1e-3, atol=1e-6)
    # A texture whose top row is 1 and bottom row 0 (clamped): bright at the top of the image.
    texture = torch.tensor([[[1.0]], [[0.0]]])  # (2, 1, 1)
    image = render(MeshTensors.from_mesh(mesh), HEAD_ON, texture, size, filter="linear", boundary="clamp")[..., 0]
    v = 1 - (np.arange(size) + 0.5 - lo) / extent
    expected_rows = 1 - np.clip((1 - v) * 2 - 0.5, 0, 1)
    np.testing.assert_allclose(image.numpy()[2:14, 2:14], np.broadcast_to(expected_rows[2:14, None], (12, 12)), atol=2e-3)
    assert (image.numpy()[:2] == 0).all()  # background


def test_render_gradients():
    size, texels = 16, 128  # the texture is 8x larger than the render
    mesh = MeshTensors.from_mesh(quad())
    frags = rasterize(mesh_clip(quad(), HEAD_ON)[0], mesh.faces, size)
    covered = int(frags.mask.sum())
    assert covered == 144
    pixel, uv, _ = surface_uv(mesh.uvs, frags)
    rows, cols, weights = bilinear_taps(uv.numpy(), texels, texels, "wrap")
    touched = np.zeros((texels, texels), bool)
    touched[rows[weights > 0], cols[weights > 0]] = True

    fractions = {}
    for filter in FILTERS:
        texture = torch.rand(texels, texels, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
        image = render(mesh, HEAD_ON, texture, size, filter=filter, background=0.5)
        image.sum().backward()
        grad = texture.grad
        # Every lookup's weights sum to one, and the box filters conserve mass: each channel's
        # gradient sums to the number of covered pixels.
        torch.testing.assert_close(grad.sum(dim=(0, 1)), torch.full((3,), float(covered)), rtol=1e-5, atol=0)
        assert (grad >= 0).all()
        nonzero = (grad != 0).any(dim=2).numpy()
        if filter == "linear":
            assert not (nonzero & ~touched).any()  # only texels the lookups touch
            assert nonzero.sum() <= 4 * covered and nonzero.sum() >= 0.9 * touched.sum()
        fractions[filter] = nonzero.mean()
    assert fractions["linear"] < 0.05
    assert fractions["linear-mipmap-linear"] > 0.5 > fractions["linear"]


@pytest.mark.parametrize("filter", FILTERS)
def test_a_planned_view_shades_like_shade_for_any_texels_of_the_same_layout(filter):
    from backend.render import plan_shading, rasterize_view, shade, shade_planned

    mesh = MeshTensors.from_mesh(cube())
    camera = Camera(eye=(2.5, 1.5, 3.0), target=(0, 0, 0), up=(0, 1, 0), fov_deg=40)
    fragments = rasterize_view(mesh, camera, 40)
    generator = torch.Generator().manual_seed(9)
    first = build_pyramid(torch.rand(32, 32, 3, generator=generator), kernel="tent")
    plan = plan_shading(fragments, mesh.uvs, first.sizes, first.offsets, filter, "wrap")
    for _ in range(2):  # the plan holds for a later texture too: it depends on the layout alone
        pyramid = build_pyramid(torch.rand(32, 32, 3, generator=generator), kernel="tent")
        background = torch.rand(3, generator=generator)
        expected = shade(fragments, mesh.uvs, pyramid, filter, "wrap", background)
        torch.testing.assert_close(shade_planned(plan, pyramid.texels, background), expected, rtol=0, atol=0)


def test_interpolate_positions_reproduce_the_pixel():
    size = 48
    mesh = cube()
    camera = Camera(eye=(3.0, -2.5, 2.0), target=(0, 0, 0), up=(0, 0, 1), fov_deg=40)
    clip, faces = mesh_clip(mesh, camera)
    frags = rasterize(clip, faces, size)
    attributes = torch.from_numpy(mesh.positions[mesh.faces]).requires_grad_(True)  # (F, 3, 3)
    points = interpolate(attributes, frags)
    mask = frags.mask.numpy()
    assert mask.sum() > 500
    assert (points.detach().numpy()[~mask] == 0).all()
    ys, xs = np.nonzero(mask)
    sx, sy, depth = project(points.detach().numpy()[mask], camera, size)
    assert np.hypot(sx - (xs + 0.5), sy - (ys + 0.5)).max() < SNAP
    np.testing.assert_allclose(depth, frags.depth.numpy()[mask], rtol=1e-5)
    # The points lie on the cube's surface: one coordinate is +-1.
    assert (np.abs(np.abs(points.detach().numpy()[mask]).max(axis=1) - 1) < 1e-5).all()
    # d(sum of values) / d attribute[f, k, :] is the sum of bary_k over the pixels of face f.
    points.sum().backward()
    want = torch.zeros(len(faces), 3, dtype=torch.float64)
    want.index_add_(0, frags.face_ids[frags.mask], frags.bary[frags.mask].double())
    torch.testing.assert_close(attributes.grad, want[..., None].expand(-1, -1, 3).float(), rtol=1e-5, atol=1e-5)


def test_anisotropic_filtering_keeps_detail_along_a_stretched_footprint():
    """Columns 4 texels wide, read by footprints 8 texels long along v and half a texel along u: trilinear reads
    the level the longer axis needs and averages the columns away; four probes along v at a finer level keep
    them. An isotropic footprint reads exactly what trilinear does."""
    size = 64
    texture = torch.zeros(size, size, 3)
    texture[:, (torch.arange(size) // 4) % 2 == 0] = 1.0
    uv = torch.rand(500, 2, generator=torch.Generator().manual_seed(0))
    stretched = torch.zeros(500, 2, 2)
    stretched[:, 0, 0], stretched[:, 1, 1] = 0.5 / size, 8.0 / size
    assert float(sample(texture, uv, stretched, "linear-mipmap-linear")[:, 0].std()) < 1e-3
    assert float(sample(texture, uv, stretched, "anisotropic")[:, 0].std()) > 0.3
    isotropic = torch.eye(2).expand(500, 2, 2) * (2.0 / size)
    torch.testing.assert_close(sample(texture, uv, isotropic, "anisotropic"), sample(texture, uv, isotropic),
                               atol=1e-6, rtol=0)


def test_anisotropic_probes_follow_the_footprints_ratio():
    """A footprint takes its ratio, rounded, in probes (8 taps each, up to ANISOTROPY): one below 1.5."""
    from backend.texture import pyramid_layout
    from backend.texture.sample import ANISOTROPY, plan_samples

    sizes, offsets = pyramid_layout(64, 64)
    ratios = torch.tensor([1.0, 1.4, 1.6, 2.4, 2.6, 3.6, 8.0])
    derivatives = torch.zeros(len(ratios), 2, 2)
    derivatives[:, 0, 0], derivatives[:, 1, 1] = 1.0 / 64, ratios / 64
    plan = plan_samples(sizes, offsets, torch.full((len(ratios), 2), 0.3), derivatives, "anisotropic")
    taps = torch.diff(torch.cat([plan.offsets, torch.tensor([len(plan.index)])]))
    assert taps.tolist() == [8 * p for p in (1, 1, 2, 2, 3, 4, ANISOTROPY)]
    torch.testing.assert_close(plan.owner, torch.repeat_interleave(torch.arange(len(ratios)), taps))
    sums = torch.zeros(len(ratios), dtype=plan.weight.dtype).index_add_(0, plan.owner, plan.weight)
    torch.testing.assert_close(sums, torch.ones(len(ratios)))  # each lookup's taps blend to 1


def test_anisotropic_gradient_matches_autograd_of_its_own_taps():
    texture = torch.rand(16, 16, 3, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    derivatives = torch.randn(40, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) / 8
    assert torch.autograd.gradcheck(lambda t: sample(t, uv, derivatives, "anisotropic"), (texture,))


def test_several_plans_gathered_at_once_give_each_gather_and_the_summed_gradient():
    """gather_all (a step's views and seam term in one pass) equals separate gathers, forward and backward."""
    from backend.texture import SamplePlan, gather
    from backend.texture.sample import gather_all

    generator = torch.Generator().manual_seed(3)
    texels = torch.rand(500, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    plans = [SamplePlan(torch.randint(0, 500, (n, k), generator=generator), torch.rand(n, k, generator=generator))
             for n, k in ((40, 8), (70, 4))]
    # the second made ragged (lookups of 1 to 4 taps): it reads what its taps weighted by the mask do
    keep = torch.rand(70, 4, generator=generator) < 0.6
    keep[:, 0] = True
    masked = SamplePlan(plans[1].index, plans[1].weight * keep)
    counts = keep.sum(dim=1)
    plans[1] = SamplePlan(plans[1].index[keep], plans[1].weight[keep], torch.cumsum(counts, 0) - counts,
                          torch.repeat_interleave(torch.arange(70), counts))
    torch.testing.assert_close(gather(texels, plans[1]), gather(texels, masked))
    upstream = [torch.rand(40, 3, generator=generator, dtype=torch.float64),
                torch.rand(70, 3, generator=generator, dtype=torch.float64)]
    together = gather_all(texels, plans)
    sum((out * g).sum() for out, g in zip(together, upstream)).backward()
    merged = texels.grad.clone()
    texels.grad = None
    apart = [gather(texels, plan) for plan in plans]
    sum((out * g).sum() for out, g in zip(apart, upstream)).backward()
    for a, b in zip(together, apart):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(merged, texels.grad)
    assert merged.abs().sum() > 0


def test_a_plans_transpose_scatters_its_gradient_as_index_add_does():
    """with_transpose (the seam term's plan, pooled views'): the transpose is the plan's taps, and the table's gradient
    through it is index_add_'s, bit for bit in float32 with many taps on each row, for fixed and ragged plans alike."""
    from backend.texture import SamplePlan
    from backend.texture.sample import gather_all, with_transpose

    generator = torch.Generator().manual_seed(5)
    rows = 60
    texels = torch.rand(rows, 3, generator=generator)
    fixed = SamplePlan(torch.randint(0, rows, (300, 4), generator=generator), torch.rand(300, 4, generator=generator))
    counts = torch.randint(1, 9, (200,), generator=generator)
    ragged = SamplePlan(torch.randint(0, rows - 10, (int(counts.sum()),), generator=generator),
                        torch.rand(int(counts.sum()), generator=generator), torch.cumsum(counts, 0) - counts,
                        torch.repeat_interleave(torch.arange(200), counts))
    for plan, lookups in ((fixed, 300), (ragged, 200)):
        kept = with_transpose(plan, rows)
        dense = torch.zeros(rows, lookups)
        owner = plan.owner if plan.offsets is not None else torch.arange(300).repeat_interleave(4)
        dense.index_put_((plan.index.reshape(-1), owner), plan.weight.reshape(-1), accumulate=True)
        torch.testing.assert_close(kept.transpose.to_dense(), dense)
        upstream = torch.randn(lookups, 3, generator=generator)
        grads = []
        for used in (plan, kept):
            table = texels.clone().requires_grad_()
            (grad,) = torch.autograd.grad(gather_all(table, [used])[0], table, upstream)
            grads.append(grad)
        assert torch.equal(grads[0], grads[1])
    assert grads[0][rows - 10 :].abs().sum() == 0 and grads[0][: rows - 10].abs().min() > 0
