"""Differentiable texture sampling: bilinear, or trilinear across mip levels.

Conventions: u runs left to right and v bottom to top of the texture image (OBJ and Blender), so
texel row = (1 - v) * H - 0.5 and column = u * W - 0.5 at texel centres. 'wrap' repeats the
texture (GL_REPEAT), 'clamp' extends its edge texels (GL_CLAMP_TO_EDGE).

Every lookup is a weighted sum of texels gathered from one packed table (4 taps bilinear, 8 taps
trilinear); the backward pass scatters the weighted gradient back with index_add_, which is
deterministic on the CPU. Gradients flow to the texture only, not to the UVs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .mipmap import MipPyramid, build_pyramid

FILTERS = ("linear", "linear-mipmap-linear", "anisotropic")
ANISOTROPY = 4  # probes of the anisotropic filter along a footprint's longer axis, and the largest ratio it resolves
BOUNDARIES = ("wrap", "clamp")


class _WeightedGather(torch.autograd.Function):
    """out_i[n] = sum_k weight_i[n, k] * table[index_i[n, k]] for one or more plans i over one table,
    differentiable in `table`. The forward pass is embedding_bag's fused gather-and-sum (five times faster
    on the CPU than gathering every tap and then weighting); its backward pass is slow, so the gradient is
    scattered here, by the plan's transpose where it has one, else with index_add_, every plan's into one buffer:
    a step that reads the texture through several plans (its views and the seam term) zeroes and accumulates one
    table gradient, not one each."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, plans: tuple["SamplePlan", ...], weights: tuple[torch.Tensor, ...]
                ) -> tuple[torch.Tensor, ...]:
        ctx.plans, ctx.weights, ctx.rows = plans, weights, table.shape[0]
        return tuple(F.embedding_bag(plan.index, table, plan.offsets, mode="sum", per_sample_weights=weight)
                     for plan, weight in zip(plans, weights))

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        table_grad = grads[0].new_zeros(ctx.rows, grads[0].shape[1])
        for plan, weight, grad in zip(ctx.plans, ctx.weights, grads):
            if plan.transpose is not None:
                table_grad.addmm_(plan.transpose.to(grad.dtype), grad)
                continue
            if plan.offsets is not None:  # one row of taps, each tap's lookup in plan.owner
                spread = grad.index_select(0, plan.owner).mul_(weight[:, None])
                table_grad.index_add_(0, plan.index, spread)
                continue
            # weight[n, k] * grad[n, c] written channel by channel: broadcasting over both trailing axes
            # at once was several times slower.
            spread = grad.new_empty(*weight.shape, grad.shape[1])
            for c in range(grad.shape[1]):
                torch.mul(weight, grad[:, c : c + 1], out=spread[..., c])
            table_grad.index_add_(0, plan.index.reshape(-1), spread.view(-1, grad.shape[1]))
        return table_grad, None, None


def _bilinear_taps(sizes: torch.Tensor, offsets: torch.Tensor, levels: torch.Tensor, uv: torch.Tensor, boundary: str,
                   level_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and weights (N, 4 L) into a packed texel table of the bilinear lookups of uv (N, 2) at
    mip levels (L, N), each level's taps scaled by level_weights (L, N); taps ordered by level, then
    (row y0, y0 + 1) x (column x0, x0 + 1). The arithmetic runs over contiguous rows of N lookups and
    each tap is written straight into its column: broadcasting over short trailing axes, or
    transposing a tap-major result, cost several times more on the CPU."""
    h = torch.take(sizes[:, 0].contiguous(), levels)
    w = torch.take(sizes[:, 1].contiguous(), levels)
    x = uv[:, 0] * w - 0.5
    y = (1 - uv[:, 1]) * h - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.to(torch.int64), y0.to(torch.int64)
    xs = torch.stack([x0, x0 + 1], dim=1)  # (L, 2, N)
    ys = torch.stack([y0, y0 + 1], dim=1)
    if boundary == "wrap":
        xs, ys = torch.remainder(xs, w[:, None]), torch.remainder(ys, h[:, None])
    else:
        xs = torch.minimum(xs.clamp(min=0), w[:, None] - 1)
        ys = torch.minimum(ys.clamp(min=0), h[:, None] - 1)
    rows = torch.take(offsets, levels)[:, None] + ys * w[:, None]  # (L, 2, N): first texel of each row
    wx = torch.stack([1 - fx, fx], dim=1)
    wy = torch.stack([1 - fy, fy], dim=1) * level_weights[:, None]
    n, count = len(uv), 4 * len(levels)
    index = torch.empty(n, count, dtype=torch.int64, device=uv.device)
    weight = torch.empty(n, count, dtype=uv.dtype, device=uv.device)
    for level in range(len(levels)):
        for r in range(2):
            for c in range(2):
                k = 4 * level + 2 * r + c
                torch.add(rows[level, r], xs[level, c], out=index[:, k])
                torch.mul(wy[level, r], wx[level, c], out=weight[:, k])
    return index, weight


def level_of_detail(uv_dxy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Mip level (N,) from UV screen derivatives (N, 2, 2): log2 of the longer pixel footprint in texels."""
    along_x = (uv_dxy[:, 0, 0] * width).square() + (uv_dxy[:, 1, 0] * height).square()  # squared lengths
    along_y = (uv_dxy[:, 0, 1] * width).square() + (uv_dxy[:, 1, 1] * height).square()
    return 0.5 * torch.log2(torch.maximum(along_x, along_y).clamp(min=1e-20))


@dataclass(frozen=True)
class SamplePlan:
    """Where N lookups read a packed texel table: rows `index` (N, K) blended by `weight` (N, K); or, where
    lookups take different numbers of taps, `index` and `weight` (M,) in one row, lookup n's taps from
    offsets[n] (N,) to the next lookup's, `owner` (M,) the lookup of each tap (the anisotropic filter's).

    A plan depends on the pyramid's level sizes, not on its texel values, so the lookups of a view
    that is shown again are planned once and reused while the texture changes."""

    index: torch.Tensor
    weight: torch.Tensor
    offsets: torch.Tensor | None = None
    owner: torch.Tensor | None = None
    # The taps' transpose: a sparse CSR matrix (table rows, N lookups) of their weights (with_transpose()). Its
    # product with the lookups' gradient is the table's, which index_add_ scatters otherwise.
    transpose: torch.Tensor | None = None

    @property
    def lookups(self) -> int:
        return len(self.offsets) if self.offsets is not None else len(self.index)


def with_transpose(plan: SamplePlan, rows: int) -> SamplePlan:
    """`plan` with the transpose of its taps into a table of `rows` rows, for the plans a job reads again and again
    (a pooled view's, the seam term's): its gradient pass is then one sparse product, which took 0.45 ms where
    index_add_ took 1.4 for the 323k taps of a 256^2 view of Spot on 2 CPU cores (index_add_ adds three floats at a
    time, one tap after another). Building it costs a sort of the taps, some 3 ms. A ragged plan's `owner` is
    dropped: only index_add_ needs it."""
    if plan.offsets is not None:
        index, weight, owner = plan.index, plan.weight, plan.owner
    else:
        index, weight = plan.index.reshape(-1), plan.weight.reshape(-1)
        owner = torch.arange(len(index), device=index.device) // plan.index.shape[1]
    order = torch.argsort(index.to(torch.int32), stable=True)  # 32-bit keys sort in half the time
    crow = torch.zeros(rows + 1, dtype=torch.int32, device=index.device)
    torch.cumsum(torch.bincount(index, minlength=rows), 0, out=crow[1:])
    with warnings.catch_warnings():  # "sparse CSR support is in beta": its product with a dense matrix is long-standing
        warnings.simplefilter("ignore")
        transpose = torch.sparse_csr_tensor(crow, owner.index_select(0, order).to(torch.int32),
                                            weight.index_select(0, order), size=(rows, plan.lookups),
                                            check_invariants=False)
    return SamplePlan(plan.index, plan.weight, plan.offsets, None, transpose)


def plan_samples(
    sizes: torch.Tensor,
    offsets: torch.Tensor,
    uv: torch.Tensor,
    uv_dxy: torch.Tensor | None = None,
    filter: str = "linear-mipmap-linear",
    boundary: str = "wrap",
) -> SamplePlan:
    """Plans N lookups into a pyramid with level `sizes` (L, 2) and row `offsets` (L,) (a MipPyramid's,
    or pyramid_layout's); the arguments are those of `sample`."""
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    mipmapped = filter != "linear"
    if mipmapped and uv_dxy is None:
        raise ValueError(f"filter {filter!r} needs uv_dxy (UV screen derivatives)")
    uv = uv.detach()
    levels = len(offsets)
    if filter == "anisotropic" and levels > 1:
        return _anisotropic_plan(sizes, offsets, uv, uv_dxy.detach().to(uv.dtype), boundary)
    if not mipmapped or levels == 1:
        zero = torch.zeros(1, len(uv), dtype=torch.int64, device=uv.device)
        index, weight = _bilinear_taps(sizes, offsets, zero, uv, boundary, torch.ones(1, len(uv), dtype=uv.dtype, device=uv.device))
    else:
        height, width = sizes[0].tolist()
        lod = level_of_detail(uv_dxy.detach().to(uv.dtype), height, width).clamp(0, levels - 1)
        fine = torch.floor(lod).to(torch.int64).clamp(max=levels - 2)
        blend = lod - fine
        index, weight = _bilinear_taps(sizes, offsets, torch.stack([fine, fine + 1]), uv, boundary,
                                       torch.stack([1 - blend, blend]))
    return SamplePlan(index, weight)


def plan_level(sizes: torch.Tensor, offsets: torch.Tensor, uv: torch.Tensor, level: int, boundary: str = "wrap"
               ) -> SamplePlan:
    """Bilinear lookups (4 taps) of uv (N, 2) in one mip `level` of a packed pyramid of level `sizes` and
    `offsets` (clamped to its coarsest level)."""
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    uv = uv.detach()
    at = torch.full((1, len(uv)), min(level, len(offsets) - 1), dtype=torch.int64, device=uv.device)
    return SamplePlan(*_bilinear_taps(sizes, offsets, at, uv, boundary, torch.ones(1, len(uv), dtype=uv.dtype,
                                                                                    device=uv.device)))


def _anisotropic_plan(sizes: torch.Tensor, offsets: torch.Tensor, uv: torch.Tensor, uv_dxy: torch.Tensor,
                      boundary: str) -> SamplePlan:
    """Trilinear probes spread along each footprint's longer screen axis, at the level of its length over the ratio
    of the two axes (at most ANISOTROPY): where UVs are stretched, trilinear filtering would read the level the
    longer axis needs and blur the texture along the other. A footprint takes the ratio, rounded, in probes (at most
    ANISOTROPY), as a GPU's anisotropic filter does: one probe below 1.5, which is trilinear filtering at the shorter
    axis's level (a spread of less than half a texel of that level), so a texture seen mostly head-on costs little
    more than trilinear."""
    height, width = sizes[0].tolist()
    scale = torch.tensor([width, height], dtype=uv.dtype, device=uv.device).view(1, 2)
    along_x, along_y = uv_dxy[:, :, 0], uv_dxy[:, :, 1]  # (N, 2) UV per pixel step in x and y
    length_x, length_y = (along_x * scale).norm(dim=1), (along_y * scale).norm(dim=1)
    longer = torch.where((length_x >= length_y)[:, None], along_x, along_y)
    major, minor = torch.maximum(length_x, length_y), torch.minimum(length_x, length_y)
    ratio = (major / minor.clamp(min=1e-20)).clamp(1, ANISOTROPY)
    lod = torch.log2((major / ratio).clamp(min=1e-20)).clamp(0, len(offsets) - 1)
    fine = torch.floor(lod).to(torch.int64).clamp(max=len(offsets) - 2)
    blend = lod - fine
    probes = torch.floor(ratio + 0.5).clamp(1, ANISOTROPY).to(torch.int64)
    spread = longer * (1 - 1 / ratio)[:, None]  # the probes cover what one probe's level does not
    taps = 8  # a trilinear probe's
    # Lookup `who`'s probe `k`, lookup by lookup: their taps, in this order, are the ragged plan's row.
    first = torch.cumsum(probes, 0) - probes  # each lookup's first probe
    who = torch.repeat_interleave(torch.arange(len(uv), device=uv.device), probes)
    k = torch.arange(len(who), device=uv.device) - torch.repeat_interleave(first, probes)
    pick = lambda values: values.index_select(0, who)  # noqa: E731
    share, level, part = pick(probes).to(uv.dtype), pick(fine), pick(blend)
    at = pick(uv) + ((k + 0.5) / share - 0.5)[:, None] * pick(spread)
    index, weight = _bilinear_taps(sizes, offsets, torch.stack([level, level + 1]), at, boundary,
                                   torch.stack([1 - part, part]) / share)
    return SamplePlan(index.reshape(-1), weight.reshape(-1), taps * first, who.repeat_interleave(taps))


def gather(texels: torch.Tensor, plan: SamplePlan) -> torch.Tensor:
    """(T, C) packed texels, planned lookups -> (N, C), differentiable with respect to `texels`."""
    return gather_all(texels, [plan])[0]


def gather_all(texels: torch.Tensor, plans: Sequence[SamplePlan]) -> tuple[torch.Tensor, ...]:
    """gather() of several plans over one texel table, with one table gradient for them all."""
    return _WeightedGather.apply(texels, tuple(plans), tuple(plan.weight.to(texels.dtype) for plan in plans))


def as_pyramid(texture: torch.Tensor | MipPyramid, filter: str = "linear-mipmap-linear") -> MipPyramid:
    """The pyramid a lookup with `filter` reads: `texture` itself when it is one, else built from it (all
    levels for mip-mapping, level 0 alone for bilinear)."""
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    if isinstance(texture, MipPyramid):
        return texture
    return build_pyramid(texture, None if filter != "linear" else 1)


def sample(
    texture: torch.Tensor | MipPyramid,
    uv: torch.Tensor,
    uv_dxy: torch.Tensor | None = None,
    filter: str = "linear-mipmap-linear",
    boundary: str = "wrap",
) -> torch.Tensor:
    """Samples a texture at N points.

    texture: (H, W, C) float tensor, or a MipPyramid built once with build_pyramid and reused.
    uv:      (N, 2) texture coordinates.
    uv_dxy:  (N, 2, 2) d uv / d (x, y) in pixels, from surface_uv; needed for mip-mapping.
    filter:  'linear' (bilinear on the full-resolution level), 'linear-mipmap-linear'
             (trilinear: bilinear on the two mip levels around the level of detail, blended) or
             'anisotropic' (ANISOTROPY trilinear probes along the footprint's longer axis).
    Returns (N, C), differentiable with respect to the texture.
    """
    pyramid = as_pyramid(texture, filter)
    plan = plan_samples(pyramid.sizes, pyramid.offsets, uv.to(pyramid.texels.dtype), uv_dxy, filter, boundary)
    return gather(pyramid.texels, plan)
