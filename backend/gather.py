"""Fast gathers along the last axis of struct-of-arrays tensors.

On CPUs `torch.take` on a contiguous row is several times faster than `index_select` along a
trailing dimension or advanced indexing (measured: 2.5 ms against 11-40 ms for 1.5M float64), so
the rasterizer and the texel tables keep each quantity in its own contiguous row and gather row by row.
"""

from __future__ import annotations

import math

import torch


def take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (..., P), index (N,) int64 -> (..., N) with out[..., n] = values[..., index[n]]."""
    values = values.contiguous()
    if values.dim() == 1:
        return torch.take(values, index)
    leading = values.shape[:-1]
    rows = values.reshape(math.prod(leading), values.shape[-1])
    out = values.new_empty((rows.shape[0], index.shape[0]))
    for k in range(rows.shape[0]):
        torch.take(rows[k], index, out=out[k])
    return out.view(*leading, index.shape[0])
