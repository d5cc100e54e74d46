"""The seam term: the texture on both sides of every UV seam should agree.

A render reads each face from its own side of a seam, so no view-based loss links the two sides, and
an optimized texture can change abruptly there (a hard line on the surface, or two halves in
different colours). This term compares texel values at matching points of both sides (seams.py):
on the edge itself and in a narrow band inward, at the finest working level and at a coarser one, which
holds the colour of the band around the seam and not only its line. Inward, each point of one side is
paired with its continuation into the other side's gutter (that face extended beyond its edge, in its own
UVs), so the texture is asked to run on across the seam; mirror points at the same surface distance on
both sides ask it to be symmetric about the seam instead, which flattened a band along it (the two-island
sphere's equator, docs/BENCHMARKS.md). Such a pair moves only its gutter point: the gutter takes what lies across
the seam, and the face's inside is left to the views. Its value is a mean absolute colour difference (0 =
continuous).

All lookups (both sides, every level) are one planned bilinear gather, made once per job: the term
costs a few milliseconds of a step (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
import torch

from ..mesh.seams import SEAM_BAND, SeamSamples, UVSeams, seam_samples
from ..texture import SamplePlan, gather
from ..texture.mipmap import packed_rows
from ..texture.sample import plan_level, with_transpose
from ..texture.uv_layout import uv_fragments

SEAM_LEVELS = (0, 2)  # working mip levels compared: the edge's texels, and 4-texel footprints around it
SEAM_ACROSS = True  # inward points paired with their continuation across the seam, not with mirror points
# An inward pair's gradient reaches its gutter point only. Pulled both ways, the point inside a face was drawn towards
# the gutter's colour, which no view sees but through the filter's footprint, so it stays a blur of the two sides: a
# smooth band ran along every seam (the two-island sphere's equator, the cap sphere's border), plain to see although
# nothing stepped across it (seam ratios under 1). The edge's own pairs, inside both faces, still pull both ways.
SEAM_PULLS_GUTTERS = True


class SeamTerm:
    """Planned once per job for a pyramid of level `sizes` and `offsets` (pyramid_layout's)."""

    def __init__(self, seams: UVSeams, sizes: torch.Tensor, offsets: torch.Tensor, boundary: str = "wrap",
                 levels: tuple[int, ...] = SEAM_LEVELS, band_texels: tuple[float, ...] = SEAM_BAND,
                 uvs: torch.Tensor | None = None):
        """uvs (F, 3, 2): the mesh's, to pair inward points with their continuation into the other side's gutter
        (SEAM_ACROSS), leaving out those whose gutter point lies near another island; without them, mirror points."""
        size = int(sizes[0, 1])
        across = SEAM_ACROSS and uvs is not None
        samples = seam_samples(seams, size, band_texels, across=across)
        device = sizes.device
        levels = tuple(level for level in levels if level < len(offsets))
        # Per level: a gutter point is read over a footprint of 2^level texels, so it keeps that much more room.
        everything = np.ones(len(samples.weight), bool)
        labels = _island_labels(seams, uvs, sizes) if across else None
        keeps = [_free_gutters(samples, seams, labels, boundary, max(band_texels, default=0.0) + 2**level)
                 if across else everything for level in levels]
        self.count = int(sum(keep.sum() for keep in keeps))
        self.plan: SamplePlan | None = None
        if self.count == 0 or not levels:
            return
        weights = [torch.from_numpy(samples.weight[keep]).to(device, torch.float32) for keep in keeps]
        # Each sample's share of its pair's gradient: 0 for the point inside a face of an inward pair
        # (SEAM_PULLS_GUTTERS); rows as the gather's (side a at every level, then side b).
        gutter = torch.from_numpy(np.concatenate([samples.gutter[keep] for keep in keeps])).to(device)
        if SEAM_PULLS_GUTTERS:
            held = torch.cat([gutter == 2, gutter == 1])
        else:
            held = torch.zeros(2 * len(gutter), dtype=torch.bool, device=device)
        self.moves = (~held).to(torch.float32)[:, None]
        self.weight = torch.cat([w / (float(w.sum()) * len(levels)) for w in weights])
        # Rows: side a at every level, then side b at every level; their difference is the term.
        plans = [plan_level(sizes, offsets, torch.from_numpy(uv[keep]).to(device, torch.float32), level, boundary)
                 for uv in (samples.uv_a, samples.uv_b) for level, keep in zip(levels, keeps)]
        # with its transpose: the plan serves every step of the job (texture/sample.py)
        self.plan = with_transpose(SamplePlan(torch.cat([p.index for p in plans]), torch.cat([p.weight for p in plans])),
                                   packed_rows(sizes, offsets))

    def __call__(self, texels: torch.Tensor) -> torch.Tensor:
        """Mean over levels and band depths of the length-weighted mean |T(a) - T(b)| (per channel)."""
        if self.plan is None:
            return texels.new_zeros(())
        return self.compare(gather(texels, self.plan))

    def compare(self, samples: torch.Tensor) -> torch.Tensor:
        """The term from the texels gathered by self.plan (a step gathers them with its views')."""
        return _SeamDistance.apply(samples, self.weight, self.moves)


class _SeamDistance(torch.autograd.Function):
    """sum_p w_p mean_c |a_pc - b_pc| for samples (2P, C), side a's P rows then side b's, differentiable in the samples,
    each row's gradient scaled by `moves` (2P, 1): 0 holds a sample. One node: written out, autograd spent six passes
    over the samples, and holding some of them (detached in a torch.where) two more."""

    @staticmethod
    def forward(ctx, samples: torch.Tensor, weight: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
        side_a, side_b = samples.chunk(2)
        difference = side_a - side_b
        # abs().sum(), not vector_norm along rows of 3 values: that ran 20 times slower on the CPU
        value = (difference.abs().sum(dim=1) * weight).sum() / samples.shape[1]
        ctx.save_for_backward(difference.sign_(), weight, moves)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        sign, weight, moves = ctx.saved_tensors
        step = sign * ((grad * weight) / sign.shape[1])[:, None]  # in autograd's order: results as they were, bit for bit
        return torch.cat([step, -step]) * moves, None, None


def _island_labels(seams: UVSeams, uvs: torch.Tensor, sizes: torch.Tensor) -> np.ndarray:
    """(S, S): the UV island of the face covering each texel of a square raster as large as the working level's
    longer side, -1 where no face does."""
    side = max(int(sizes[0, 0]), int(sizes[0, 1]))
    fragments = uv_fragments(uvs.to(torch.float32), side)
    return np.where(fragments.mask.cpu().numpy(), seams.island[fragments.face_ids.clamp(min=0).cpu().numpy()], -1)


def _free_gutters(samples: SeamSamples, seams: UVSeams, labels: np.ndarray, boundary: str, depth: float
                  ) -> np.ndarray:
    """(P,) bool: samples whose gutter point, if any, has no texel of another island (`labels`: _island_labels') within
    `depth` texels of the working level. Where islands lie closer than that, their gutters are one strip claimed by both (xatlas packs its
    charts 4 texels apart at 1024^2), and a pair there would tie two unrelated places."""
    side = labels.shape[0]
    a_side = samples.gutter == 1
    point = np.where(a_side[:, None], samples.uv_a, samples.uv_b)
    own = seams.island[seams.faces[samples.edge, np.where(a_side, 0, 1)]]
    if boundary == "wrap":
        point = point - np.floor(point)
    x = np.floor(point[:, 0] * side).astype(np.int64)
    y = np.floor((1 - point[:, 1]) * side).astype(np.int64)
    reach = int(np.ceil(depth))
    foreign = np.zeros(len(point), bool)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if boundary == "wrap":
                found = labels[(y + dy) % side, (x + dx) % side]
            else:
                found = labels[np.clip(y + dy, 0, side - 1), np.clip(x + dx, 0, side - 1)]
            foreign |= (found >= 0) & (found != own)
    return (samples.gutter == 0) | ~foreign
