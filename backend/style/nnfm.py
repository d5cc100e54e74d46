"""Nearest-neighbour feature matching (NNFM; Zhang et al., "ARF: Artistic Radiance Fields", ECCV 2022).

Each rendered feature vector is pulled towards the painting's feature vector nearest to it in cosine
distance. A Gram matrix only asks that the renders' features have the painting's second moments, which a
soft blend of the painting's colours meets as well as its strokes do (ARF reports Gram results as blurry,
lacking faithful style detail); NNFM asks that every place look like some place of the painting, so
strokes keep their contrast.

The search is exact and chunked: at most NEAREST_BYTES of similarities exist at once, whatever the
sizes, and it runs without gradient; the loss then takes the cosine with the chosen vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import Coverage, _coverage, covered_rows

NEAREST_BYTES = 32 * 2**20
MIN_STRIDE = 4  # NNFM runs on style layers of stride 4 or more: finer maps cost the most and carry pixels


def nnfm_layers(layers: dict[str, float], shapes: dict[str, int], render_size: int) -> dict[str, float]:
    """The layers (with their weights) among `layers` whose maps are at most render_size / MIN_STRIDE wide
    (`shapes`: each layer's width at that render size); all of them if none is."""
    chosen = {name: weight for name, weight in layers.items() if shapes[name] * MIN_STRIDE <= render_size}
    return chosen or dict(layers)


def feature_rows(features: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B h w, C) unit vectors."""
    rows = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    return F.normalize(rows, dim=1)


def nearest(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Index (N,) of the key (M, C) with the largest dot product with each query (N, C), in chunks."""
    chunk = max(1, NEAREST_BYTES // (4 * max(len(keys), 1)))
    with torch.no_grad():
        return torch.cat([(part @ keys.T).argmax(dim=1) for part in queries.detach().split(chunk)])


def nnfm_loss(features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], weights: dict[str, float],
              mask: torch.Tensor | Coverage | None = None) -> torch.Tensor:
    """Weighted mean over layers of the coverage-weighted mean of 1 - cos(f, nearest painting feature).
    features (B, C, h, w) per layer; targets (M, C) unit rows of the painting's features (feature_rows)."""
    total = sum(weights.values())
    loss = 0.0
    for name, weight in weights.items():
        layer = features[name]
        c = layer.shape[1]
        if mask is None:
            rows = layer.permute(0, 2, 3, 1).reshape(-1, c)
            share = torch.ones(len(rows), device=layer.device, dtype=layer.dtype)
        else:
            _, covered, root, _ = _coverage(mask).at(layer)
            rows = covered_rows(layer, covered).reshape(-1, c)  # (B n, C)
            share = root.square().reshape(-1)
        rows = F.normalize(rows, dim=1)
        match = targets[name][nearest(rows, targets[name])]
        distance = 1 - (rows * match).sum(dim=1)
        loss = loss + weight * (distance * share).sum() / share.sum().clamp(min=1e-6)
    return loss / total
