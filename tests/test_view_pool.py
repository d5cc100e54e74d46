"""The view pool (backend.style.view_pool): filling, refresh cadence, distinct draws, and the
article's fresh-view-per-step mode as its smallest case."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from backend.style.losses import Coverage
from backend.style.view_pool import PooledView, ViewPool


def counting_pool(capacity: int, reuse: int, seed: int = 0) -> tuple[ViewPool, list[int]]:
    """A pool whose views are numbered in the order they were made."""
    made: list[int] = []

    def make() -> PooledView:
        made.append(len(made))
        return PooledView(None, Coverage(torch.full((1,), float(made[-1]))), torch.zeros(3), None)

    return ViewPool(capacity, reuse, make, np.random.default_rng(seed)), made


def ids(views: list[PooledView]) -> list[int]:
    return [int(v.coverage.mask[0]) for v in views]


def test_fills_once_then_replaces_the_oldest_every_reuse_steps():
    pool, made = counting_pool(capacity=4, reuse=3)
    pool.draw(1)
    assert len(made) == 4 and pool.made == 4
    for step in range(1, 13):
        pool.draw(1)
        assert pool.made == 4 + (step // 3)
    assert ids(list(pool.views)) == [4, 5, 6, 7]  # the four oldest are gone, in order


def test_each_step_draws_distinct_views_uniformly_from_the_pool():
    pool, _ = counting_pool(capacity=5, reuse=10**6)
    counts = Counter()
    for _ in range(2000):
        chosen = ids(pool.draw(3))
        assert len(set(chosen)) == 3
        counts.update(chosen)
    assert set(counts) == set(range(5))
    assert max(counts.values()) / min(counts.values()) < 1.15  # 1200 each on average


def test_capacity_one_and_reuse_one_is_a_fresh_view_every_step():
    pool, made = counting_pool(capacity=1, reuse=1)
    assert [ids(pool.draw(1)) for _ in range(5)] == [[0], [1], [2], [3], [4]]
    assert len(made) == 5


def test_each_view_is_shown_reuse_times_on_average():
    pool, _ = counting_pool(capacity=8, reuse=4, seed=3)
    shown = Counter()
    for _ in range(4000):
        shown.update(ids(pool.draw(1)))
    retired = [shown[i] for i in range(pool.made - pool.capacity)]  # views whose whole life was seen
    assert np.mean(retired[8:]) == pytest.approx(4, rel=0.1)


def test_clear_refills_and_bad_sizes_are_refused():
    pool, made = counting_pool(capacity=3, reuse=2)
    pool.draw(1)
    pool.clear()
    pool.draw(2)
    assert len(made) == 6
    with pytest.raises(ValueError, match="distinct views"):
        pool.draw(4)
    with pytest.raises(ValueError, match="at least 1"):
        ViewPool(0, 1, lambda: None, np.random.default_rng(0))


def test_the_pool_shrinks_to_fit_its_memory_bound_for_large_renders():
    from backend.style.view_pool import BYTES_PER_PIXEL, POOL_BYTES, pool_capacity

    assert pool_capacity(16, 1, 256) == 16
    assert pool_capacity(16, 1, 1024) == POOL_BYTES // (BYTES_PER_PIXEL * 1024 * 1024) < 16
    assert pool_capacity(16, 1, 4096) == 1  # one view per step still fits the rule
    assert pool_capacity(16, 3, 4096) == 3


def test_each_views_transpose_row_pointers_count_against_the_pool():
    from backend.style.view_pool import BYTES_PER_PIXEL, POOL_BYTES, pool_capacity

    rows = 349_525  # a 512^2 pyramid's table
    assert pool_capacity(32, 1, 256, 2, rows) == 32  # the default job's pool is whole
    assert pool_capacity(32, 1, 512, 2, rows) == POOL_BYTES // (BYTES_PER_PIXEL * 2 * 512**2 + 4 * (rows + 1))
    assert pool_capacity(32, 1, 512, 2, 10**8) < pool_capacity(32, 1, 512, 2)
