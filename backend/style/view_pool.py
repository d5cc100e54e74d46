"""Random views kept for several steps: rasterized, planned and seen by the network once each.

A fresh view costs a rasterization, the planning of its texture lookups, the content render and
the network's pass over it: on 2 CPU cores with EfficientNet-Lite0 at 256^2 about half as much
as the step's own network work. The pool draws each view independently (direction uniform on the
sphere, zoom, jitter and background as before), keeps `capacity` of them, and replaces the oldest
by a fresh one every `reuse` steps; each step shows views drawn uniformly from the pool. So the
view of any one step is distributed exactly as a fresh view would be, and each view is shown
`reuse` times on average. What changes is only that steps share views: over a run of S steps about
capacity + S / reuse distinct views are seen instead of S. capacity 1 and reuse 1 is the article's
way, a fresh view every step.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..render import ShadingPlan
from ..views import Camera
from .balance import ViewRegions
from .losses import Coverage

POOL_BYTES = 2**30  # what the pooled views may hold at most, were every pixel covered (a third is, typically)
# The anisotropic filter's probes a pixel, on average with room to spare: a footprint takes its ratio in probes
# (texture/sample.py), and most are near round (1.3 a pixel on Spot's views).
ANISOTROPIC_PROBES = 2
# A covered pixel's plan (8 taps: int64 index + float32 weight, and in the transpose int32 lookup + float32 weight),
# mask, pixel index.
BYTES_PER_PIXEL = 164


def pool_capacity(wanted: int, views_per_step: int, render_size: int, probes: float = 1, table_rows: int = 0) -> int:
    """`wanted`, bounded so that the pool's views fit in POOL_BYTES (at least one step's views); `probes`
    trilinear lookups per pixel on average (the anisotropic filter's) make each view's plan that many times larger,
    and each view's transpose has a row pointer for each of the `table_rows` rows of the texel table."""
    per_view = BYTES_PER_PIXEL * probes * render_size * render_size + 4 * (table_rows + 1)
    return max(views_per_step, min(wanted, int(POOL_BYTES // per_view)))


@dataclass(frozen=True)
class PooledView:
    """One view, ready to shade with the learned texture's texel table."""

    plan: ShadingPlan  # the lookups into the learned texture's pyramid
    coverage: Coverage  # of this view alone, (1, 1, R, R), with its per-layer resizings kept
    background: torch.Tensor  # (C,) the colour behind the mesh, shared with the content render
    content: torch.Tensor | None  # the content layer's features of the original texture's render, (1, C', h, w)
    # Pixels of faces that may not change (selected-only jobs): flat indices (n,) and their colours (n, C) in the
    # original texture's render, shown as they are in the learned render too.
    fixed: tuple[torch.Tensor, torch.Tensor] | None = None
    # The colour layout term's target: the recoloured original render's mean colour per grid cell (1, 3, g, g)
    # and each cell's covered fraction (1, 1, g, g).
    layout: tuple[torch.Tensor, torch.Tensor] | None = None
    scale: float = 1.0  # the painting's enlargement for this view's style targets (a close-up's zoom, closeups.py)
    regions: ViewRegions | None = None  # the balance term's patches of this view (balance.py)
    # How opaque the original's alpha makes each pixel (R, R, 1), where it has one: both renders show the background
    # through the rest, and the coverage weighs each pixel by it.
    opacity: torch.Tensor | None = None
    camera: Camera | None = None  # where it was seen from


class ViewPool:
    def __init__(self, capacity: int, reuse: int, make_view: Callable[[], PooledView], rng: np.random.Generator):
        if capacity < 1 or reuse < 1:
            raise ValueError(f"a view pool needs capacity and reuse of at least 1, got {capacity} and {reuse}")
        self.capacity, self.reuse = capacity, reuse
        self.make_view, self.rng = make_view, rng
        self.views: deque[PooledView] = deque()
        self.steps = 0
        self.made = 0  # views made so far

    def _add(self) -> None:
        self.views.append(self.make_view())
        self.made += 1

    def draw(self, count: int) -> list[PooledView]:
        """The views of one step: `count` distinct ones, uniformly from the pool (refreshed first)."""
        if count > self.capacity:
            raise ValueError(f"cannot show {count} distinct views from a pool of {self.capacity}")
        if not self.views:
            for _ in range(self.capacity):
                self._add()
        elif self.steps % self.reuse == 0:
            self.views.popleft()
            self._add()
        self.steps += 1
        chosen = self.rng.choice(len(self.views), size=count, replace=False)
        return [self.views[i] for i in chosen]

    def clear(self) -> None:
        """Forgets every view (when the render size changes, the plans no longer fit)."""
        self.views.clear()
