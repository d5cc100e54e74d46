"""Gatys-style losses: masked Gram matrices, style memory, content and channel objectives.

Each loss is normalized by the size of its target, so the weights are dimensionless and mean the
same for VGG and for the random feature bank: a style loss of 1 means the Gram matrices are off by
as much as the style's own Gram matrices are large.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def resize_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) coverage in [0, 1] -> the spatial size of `like` (B, C, h, w), by area averaging."""
    if mask.shape[-2:] == like.shape[-2:]:
        return mask
    return F.adaptive_avg_pool2d(mask, like.shape[-2:])


class Coverage:
    """A coverage mask (B, 1, H, W) and what the losses need of it at each feature map's size:
    the area-averaged weights, the positions some view covers and their square-rooted weights.
    Computed once per size and kept, since a pooled view is shown many times."""

    def __init__(self, mask: torch.Tensor):
        self.mask = mask
        self._at: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._cells: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._made: dict[str, object] = {}

    def kept(self, key: str, make: Callable[[torch.Tensor], object]):
        """make(mask), computed on first use under `key` and kept (for terms outside this module)."""
        if key not in self._made:
            self._made[key] = make(self.mask)
        return self._made[key]

    def at(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For features `like` (B, C, h, w): weight (B, 1, h, w), covered (n,) flat positions,
        their weights' square roots (B, 1, n) and the weights' sums (B, 1, 1)."""
        size = tuple(like.shape[-2:])
        if size not in self._at:
            weight = resize_mask(self.mask, like).to(like.dtype)
            flat = weight.reshape(weight.shape[0], 1, -1)
            covered = torch.nonzero((flat > 0).any(dim=0)[0]).squeeze(1)
            total = flat.sum(dim=-1, keepdim=True).clamp(min=1e-6)
            self._at[size] = (weight, covered, flat.index_select(2, covered).sqrt(), total)
        return self._at[size]

    def cells(self, like: torch.Tensor, tiles: int) -> tuple[torch.Tensor, list[int], torch.Tensor, torch.Tensor]:
        """For features `like` (B, C, h, w) cut into a tiles x tiles grid (fewer along an axis shorter than that): the
        flat positions some view covers, cell by cell (n,), where each cell's run starts and ends in them (cells + 1
        bounds), their weights' square roots over their cell's summed weight's (B, n) and each cell's summed weight
        (B, cells)."""
        h, w = like.shape[-2:]
        key = (h, w, tiles)
        if key not in self._cells:
            weight, covered, root, _ = self.at(like)
            down, across = min(tiles, h), min(tiles, w)
            cell = ((covered // w) * down // h) * across + (covered % w) * across // w  # each covered position's cell
            cells = down * across
            order = torch.argsort(cell, stable=True)
            counts = torch.bincount(cell, minlength=cells)
            bounds = [0, *torch.cumsum(counts, 0).tolist()]
            flat = weight.reshape(weight.shape[0], -1)
            total = torch.zeros(weight.shape[0], cells, dtype=weight.dtype, device=weight.device)
            total.index_add_(1, cell, flat.index_select(1, covered))
            # each cell's normalization (1 / its summed weight) folded in here, not divided out of C x C products
            roots = root[:, 0, order] / total.clamp(min=1e-6).sqrt()[:, cell[order]]
            self._cells[key] = (covered[order], bounds, roots, total)
        return self._cells[key]


def _coverage(mask: torch.Tensor | Coverage) -> Coverage:
    return mask if isinstance(mask, Coverage) else Coverage(mask)


def select_rows(rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, N, C) rows -> (B, n, C) = rows[:, index]. Selected from the (B * N, C) table along its first axis:
    the gradient's scatter (index_add_) is then four times faster on the CPU than along a middle axis
    (0.33 against 1.45 ms for 11824 of 16384 rows of 32 channels)."""
    b, n, c = rows.shape
    if b > 1:
        index = (torch.arange(b, device=index.device) * n)[:, None] + index
    return rows.reshape(b * n, c).index_select(0, index.reshape(-1)).view(b, -1, c)


def select_columns(columns: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, C, N) -> (B, C, n) = columns[..., index]. A gather along an expanded index: index_select along the last
    axis ran at a third of its speed on the CPU, forward and backward (1.24 against 0.54 ms for EfficientNet-Lite0's
    five style layers of a 256^2 render, 40 % covered); the values and gradients are the same."""
    b, c = columns.shape[:2]
    return torch.gather(columns, 2, index.expand(b, c, -1))


def covered_rows(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) features at the flat positions `index` (n,) -> (B, n, C). Channels-last maps (what the CPU's
    convolutions return for the renders) are read as (B, N, C) rows without a copy, where selecting rows is ten
    times faster than columns of (B, C, N); other maps are gathered as columns and seen transposed (so a product
    with them reads the gathered memory as it lies)."""
    b, c = features.shape[:2]
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        return select_rows(features.permute(0, 2, 3, 1).reshape(b, -1, c), index)
    return select_columns(features.reshape(b, c, -1), index).transpose(1, 2)


def gram(features: torch.Tensor, mask: torch.Tensor | Coverage | None = None) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, C) = sum_p m_p f_p f_p^T / sum_p m_p.

    With a coverage mask only the mesh contributes: the background (a flat colour) would otherwise
    dominate the statistics of every view and teach the texture nothing.
    """
    b, c = features.shape[:2]
    if mask is None:
        flat = features.reshape(b, c, -1)
        return _SelfProduct.apply(flat) / flat.shape[-1]
    _, covered, root, total = _coverage(mask).at(features)
    # Only positions some view covers contribute, so the product runs over those alone: a mesh
    # fills a third to a half of a typical view, and the products are the loss's largest cost.
    return _SelfProduct.apply((covered_rows(features, covered) * root.transpose(1, 2)).transpose(1, 2)) / total


class _SelfProduct(torch.autograd.Function):
    """A A^T for (B, C, N) A. Autograd would treat A and A^T as two operands and spend two
    products on the backward pass; the gradient (dG + dG^T) A needs one. The Gram matrices are a
    twentieth of a VGG step at 256^2, so this third of their cost is worth its few lines."""

    @staticmethod
    def forward(ctx, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        return a @ a.transpose(1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (a,) = ctx.saved_tensors
        return (grad + grad.transpose(1, 2)) @ a


class StyleMemory:
    """Exponential moving average of each layer's Gram matrix over recent views.

    The loss sees G + (average - G).detach(): its value is the average (so one view need not carry
    every element of the style), its gradient that of the current view's G. Unlike the reference
    code the average is bias-corrected (divided by 1 - decay^t), so the first steps compare the
    style with a real average instead of one shrunk towards zero.
    """

    def __init__(self, decay: float = 0.95):
        self.decay = decay
        self.steps = 0
        self.shadow: dict[str, torch.Tensor] = {}

    def __call__(self, grams: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The Grams the loss sees, G + (average - G).detach(): the plain autograd form, which remembered_style_loss
        (what the engine uses) is tested against."""
        averages = self.update(grams)
        return {name: current + (averages[name] - current).detach() for name, current in grams.items()}

    def update(self, grams: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Takes in a step's Grams (B, C, C) and gives each layer's bias-corrected average (1, C, C), without gradient."""
        self.steps += 1
        correction = 1.0 - self.decay**self.steps
        averages = {}
        for name, current in grams.items():
            # One average over every view of the step: steps may show a different number of views of a kind
            # (close-ups), and the memory is of recent views, not of places in a batch.
            step_mean = current.detach().mean(dim=0, keepdim=True)
            previous = self.shadow.get(name, torch.zeros_like(step_mean))
            self.shadow[name] = self.decay * previous + (1 - self.decay) * step_mean
            averages[name] = self.shadow[name] / correction
        return averages


def style_loss(grams: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Weighted mean over layers of mean |G - G_style| / mean |G_style|; G (B, C, C), targets (C, C)."""
    total = sum(weights.values())
    loss = 0.0
    for name, weight in weights.items():
        target = targets[name]
        loss = loss + weight * (grams[name] - target).abs().mean() / target.abs().mean().clamp(min=1e-12)
    return loss / total


def remembered_style_loss(grams: dict[str, torch.Tensor], memory: StyleMemory, targets: dict[str, torch.Tensor],
                          weights: dict[str, float]) -> torch.Tensor:
    """style_loss(memory(grams), targets, weights), one autograd node a layer: its value the averages', its gradient
    reaching each current Gram as sign(average - target) (autograd spent some twenty passes over the C x C matrices a
    layer on the detached sum, the differences, absolute values and means: 1.3 ms a step for EfficientNet-Lite0's)."""
    averages = memory.update(grams)
    total = sum(weights.values())
    loss = 0.0
    for name, weight in weights.items():
        target = targets[name]
        scale = weight / total / target.abs().mean().clamp(min=1e-12)
        loss = loss + _AveragedDistance.apply(grams[name], averages[name], target, scale)
    return loss


class _AveragedDistance(torch.autograd.Function):
    """mean |A - T| * scale for the memory's average A (1, C, C) standing in for the current Grams G (B, C, C) (the
    value of G + (A - G).detach()), differentiable in G."""

    @staticmethod
    def forward(ctx, grams: torch.Tensor, average: torch.Tensor, target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        difference = average - target
        ctx.save_for_backward(difference.sign(), scale)
        ctx.shape = grams.shape
        return difference.abs().mean() * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        sign, scale = ctx.saved_tensors
        b, c, _ = ctx.shape
        return (sign * (grad * scale / (b * c * c))).expand(ctx.shape), None, None, None


def content_loss(learned: torch.Tensor, content: torch.Tensor, mask: torch.Tensor | Coverage | None = None) -> torch.Tensor:
    """mean |A_learned - A_content| over covered positions, / mean |A_content| there."""
    weight = _coverage(mask).at(learned)[0] if mask is not None else torch.ones_like(learned[:, :1])
    total = (weight.sum() * learned.shape[1]).clamp(min=1e-6)
    difference = ((learned - content).abs() * weight).sum() / total
    scale = (content.abs() * weight).sum() / total
    return difference / scale.clamp(min=1e-12)


def channel_objective(features: torch.Tensor, channel: int, mask: torch.Tensor | Coverage | None = None) -> torch.Tensor:
    """Mean activation of one channel over covered positions (to be maximized)."""
    activation = features[:, channel : channel + 1]
    weight = _coverage(mask).at(activation)[0] if mask is not None else torch.ones_like(activation)
    return (activation * weight).sum() / weight.sum().clamp(min=1e-6)


LAYOUT_GRID = 8  # cells per side of the colour layout term's grid


def colour_layout(image: torch.Tensor, mask: torch.Tensor, grid: int = LAYOUT_GRID) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) renders and (B, 1, H, W) coverage -> the mean colour of the covered pixels in each cell of
    a grid x grid layout (B, 3, g, g), and each cell's covered fraction (B, 1, g, g)."""
    covered = F.adaptive_avg_pool2d(mask, grid)
    colour = F.adaptive_avg_pool2d(image * mask, grid) / covered.clamp(min=1e-6)
    return colour, covered


def layout_loss(image: torch.Tensor, mask: torch.Tensor, target: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
    """mean |cell colour - target| over the cells, weighted by their coverage, / mean |target|."""
    colour, _ = colour_layout(image, mask, target.shape[-1])
    weight = covered.expand_as(target)
    total = weight.sum().clamp(min=1e-6)
    return ((colour - target).abs() * weight).sum() / total / ((target.abs() * weight).sum() / total).clamp(min=1e-6)


MIN_CELL = 16  # positions per side of a cell, at least, for a layer to have cells


def gram_style(features: dict[str, torch.Tensor], mask: Coverage, targets: dict[str, torch.Tensor],
               weights: dict[str, float], memory: StyleMemory, tile_weight: float = 0.0, tiles: int = 2) -> torch.Tensor:
    """The Gram style term: the views' Grams through the style memory against the painting's, plus (tile_weight)
    each cell's of a tiles x tiles grid against it; the whole views' Grams are then merged from their cells'.
    Layers too coarse for cells of MIN_CELL^2 positions have none: a Gram of fewer positions says little, and
    the deepest layers' C x C matrices are the most costly (EfficientNet-Lite0's last style layer, 16^2 at
    256^2 renders, would cost four times its whole-view Gram)."""
    cells = {name: tile_grams(features[name], mask, tiles) for name in weights
             if tile_weight > 0 and min(features[name].shape[-2:]) >= MIN_CELL * tiles}
    grams = {name: merged_gram(*cells[name]) if name in cells else gram(features[name], mask) for name in weights}
    loss = remembered_style_loss(grams, memory, targets, weights)
    if cells:
        loss = loss + tile_weight * tiled_style_loss(cells, targets, weights)
    return loss


def tile_grams(features: torch.Tensor, mask: Coverage, tiles: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, h, w) features -> the masked Gram matrix of each cell of a tiles x tiles grid over the map
    (B, tiles^2, C, C) and each cell's summed coverage weight (B, tiles^2). Along an axis shorter than the grid the
    map has one cell per position; an uncovered cell's Gram is zero.

    Only covered positions enter the products, as in gram(), each cell's its own product over its run of them: so
    the cells' products together cost what the whole view's does (cells padded to the fullest one's count, as one
    batched product, did half as much work again on Spot's views)."""
    index, bounds, root, total = mask.cells(features, tiles)
    return _CellProducts.apply(covered_rows(features, index) * root[..., None], bounds), total


class _CellProducts(torch.autograd.Function):
    """(B, n, C) rows in runs (bounds: where each of K runs starts, and the last ends) -> (B, K, C, C): each run's
    A^T A, one matrix product a run, and one a run for the gradient ((dG + dG^T) applied to the run's rows)."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, bounds: list[int]) -> torch.Tensor:
        b, _, c = rows.shape
        out = rows.new_empty(b, len(bounds) - 1, c, c)
        for v in range(b):
            for k, (start, end) in enumerate(zip(bounds, bounds[1:])):
                run = rows[v, start:end]
                torch.mm(run.transpose(0, 1), run, out=out[v, k])
        ctx.save_for_backward(rows)
        ctx.bounds = bounds
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (rows,) = ctx.saved_tensors
        symmetric = grad + grad.transpose(-1, -2)
        out = torch.empty(rows.shape, dtype=rows.dtype, device=rows.device)
        for v in range(rows.shape[0]):
            for k, (start, end) in enumerate(zip(ctx.bounds, ctx.bounds[1:])):
                torch.mm(rows[v, start:end], symmetric[v, k], out=out[v, start:end])
        return out, None


def merged_gram(grams: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """The whole view's masked Gram (B, C, C) from its cells' (tile_grams()): their coverage-weighted mean."""
    return torch.einsum("bt,btij->bij", total / total.sum(dim=1, keepdim=True).clamp(min=1e-6), grams)


def tiled_style_loss(cells: dict[str, tuple[torch.Tensor, torch.Tensor]], targets: dict[str, torch.Tensor],
                     weights: dict[str, float]) -> torch.Tensor:
    """Each grid cell's Gram matrix (tile_grams()) against the painting's whole one, weighted by the cell's share
    of the coverage: every part of a view must carry the whole palette, so regions cannot each take a different
    part of it (the style memory lets them, as does one Gram over a view). Layers without cells add nothing."""
    loss = 0.0
    for name, (grams, total) in cells.items():
        weight = weights[name]
        target = targets[name]
        share = total / total.sum().clamp(min=1e-6) / (target.numel() * target.abs().mean().clamp(min=1e-12))
        loss = loss + weight * _WeightedDistance.apply(grams, target, share)
    return loss / sum(weights.values())


class _WeightedDistance(torch.autograd.Function):
    """sum_k w_k sum_ij |G_kij - T_ij| for (B, K, C, C) G, a (C, C) target and (B, K) weights w, differentiable
    in G. Written out, autograd spends eight passes over the C x C matrices, and those passes are most of the
    cells' cost; this takes four."""

    @staticmethod
    def forward(ctx, grams: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        difference = grams - target
        distance = torch.linalg.vector_norm(difference, 1, dim=(-2, -1))
        ctx.save_for_backward(difference.sign_(), weight)
        return (distance * weight).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        sign, weight = ctx.saved_tensors
        return sign * (grad * weight)[..., None, None], None, None
