"""Median wall-clock timing with warm-up and device synchronisation."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int = 5, warmup: int = 1) -> float:
    """Median of `repeats` timed calls after `warmup` untimed ones (CUDA work is waited for)."""
    return interleaved_medians([fn], device, repeats, warmup)[0]


def interleaved_medians(
    fns: list[Callable[[], object]], device: torch.device, repeats: int = 5, warmup: int = 1
) -> list[float]:
    """Median time of each function, timed in turn within every round, so that a slow spell of a
    shared machine hits all of them alike and their ratio stays meaningful."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        for fn in fns:
            fn()
    sync()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, times in zip(fns, samples):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in samples]
