"""A slow, obviously correct twin of `rasterize`, for tests only.

Same arguments and the same Fragments, computed in float64 with numpy, one triangle at a time:
each triangle is tested against every pixel centre at once (the per-pixel formula, vectorized
over the pixels), and a pixel keeps the nearest triangle seen so far (ties: the lower face index).

- Projection: sx = (x/w + 1) / 2 * size, sy = (1 - y/w) / 2 * size (row 0 at the top).
- Snapping: `subpixel` (default 256, the rasterizer's documented fixed-point precision) rounds the
  projected vertices to 1/subpixel pixel, so both rasterizers test the same triangles; None keeps
  exact float64 positions.
- Coverage: a centre is covered when its three 2D barycentrics l_i are all > 0. Centres exactly on
  an edge are left uncovered (no fill rule): comparisons must tolerate those rare ties.
- Perspective: b_i = (l_i / w_i) / sum_j (l_j / w_j), depth = 1 / sum_j (l_j / w_j) = view depth w.
- No clipping: a triangle with any corner behind the near plane (z < -w) or at w <= 0 is skipped.
  Fragments beyond the far plane (interpolated z > w) are dropped per pixel.
- bary_dxy: central finite differences of the perspective-correct barycentric function of the
  winning triangle, step FD_STEP pixels (truncation error ~ FD_STEP^2, negligible in float64).
"""

from __future__ import annotations

import numpy as np
import torch

from .fragments import Fragments

FD_STEP = 1e-3  # pixels


def _barycentrics(sx, sy, q, px, py):
    """Screen barycentrics l (3, N), perspective-correct b (3, N) and s = sum l_i q_i (N,)."""
    area = (sx[1] - sx[0]) * (sy[2] - sy[0]) - (sy[1] - sy[0]) * (sx[2] - sx[0])
    lam = []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        lam.append(((sx[j] - px) * (sy[k] - py) - (sy[j] - py) * (sx[k] - px)) / area)
    lam = np.stack(lam)
    s = (lam * q[:, None]).sum(axis=0)
    return lam, lam * q[:, None] / s, s


def rasterize(clip: torch.Tensor, faces: torch.Tensor, size: int, chunk: int = 0, *, subpixel: int | None = 256) -> Fragments:
    """Reference rasterization; `chunk` is accepted for signature parity and ignored."""
    clip = clip.detach().cpu().to(torch.float64).numpy()
    faces = faces.detach().cpu().numpy()
    n = size * size
    py, px = np.divmod(np.arange(n), size)
    px, py = px + 0.5, py + 0.5  # pixel centres
    face_ids = np.full(n, -1, np.int64)
    best = np.full(n, np.inf)
    bary = np.zeros((n, 3))
    dxy = np.zeros((n, 3, 2))
    for f, tri in enumerate(faces):
        x, y, z, w = clip[tri].T
        if (w <= 0).any() or (z < -w).any():
            continue  # touches or crosses the near plane: no clipping here
        sx, sy = (x / w + 1) / 2 * size, (1 - y / w) / 2 * size
        if subpixel:
            sx, sy = np.round(sx * subpixel) / subpixel, np.round(sy * subpixel) / subpixel
        if (sx[1] - sx[0]) * (sy[2] - sy[0]) == (sy[1] - sy[0]) * (sx[2] - sx[0]):
            continue  # degenerate: zero screen area
        q = 1 / w
        lam, b, s = _barycentrics(sx, sy, q, px, py)
        depth = 1 / s
        z_interp = (b * z[:, None]).sum(axis=0)
        win = (lam > 0).all(axis=0) & (z_interp <= depth) & (depth < best)
        if not win.any():
            continue
        idx = np.nonzero(win)[0]
        face_ids[idx], best[idx], bary[idx] = f, depth[idx], b[:, idx].T
        h = FD_STEP
        for d, (ox, oy) in enumerate([(h, 0.0), (0.0, h)]):
            plus = _barycentrics(sx, sy, q, px[idx] + ox, py[idx] + oy)[1]
            minus = _barycentrics(sx, sy, q, px[idx] - ox, py[idx] - oy)[1]
            dxy[idx, :, d] = ((plus - minus) / (2 * h)).T
    return Fragments(
        torch.from_numpy(face_ids).view(size, size),
        torch.from_numpy(bary).to(torch.float32).view(size, size, 3),
        torch.from_numpy(best).to(torch.float32).view(size, size),
        torch.from_numpy(dxy).to(torch.float32).view(size, size, 3, 2),
    )
