"""What a person sees on the surface, as numbers: seams, halves in different colours, faint strokes.

- seam step ratio: the mean colour step |c(p) - c(q)| between neighbouring pixels p, q that show two
  different UV islands next to each other on the surface (a seam runs between them), or one island whose UVs
  jump between them (a seam inside an island: a wrapped texture joins islands whose edges meet a whole tile
  apart, as a cube's faces that each take the whole texture), over the mean
  step of their controls: the neighbour pairs just before and after them in the same direction, inside
  one island (the same place and foreshortening, so that a seam seen at a grazing angle is not blamed
  for the larger steps all grazing pixels have). A texture continuous on the surface scores about 1; a
  visible line at the seams scores several times that.
- seam balance: on both sides of each seam, the mean colour of a band of pixels (BAND pixels wide at
  256^2) in each view; the length-weighted mean distance between the two sides' means, over the
  painting's colour spread (the root of its summed channel variances). Two halves in different
  colours score high even where the seam itself is blended.
- region balance: the surface cut into REGIONS patches of about equal area (k-means of its points, so
  UV islands play no part); per patch, the mean luminance of the renders that show it. The result's
  patch means are fitted by an affine map of the original's (a global recolouring or inversion is
  free); what the fit leaves, the root mean square over patches weighted by their pixels, over the
  painting's luminance spread, is a split: a light head over a dark body on a cow whose head and body
  were alike. A uniform original leaves the result's patch means no structure to follow: there the
  score is their spread.
- local contrast: the standard deviation of luminance minus its 9x9 mean, over pixels whose whole
  window is covered; the benchmark reports it against the painting's at the same scale (1 = as vivid).
- dense islands: the local contrast on UV islands packed more than DENSE (backend.mesh.uv_room) times as densely as the surface's
  median (texels per unit of length), over that on the rest. One Fourier basis gives strokes one size in
  texels, so such islands come out calmer and finer (Bob's head): about 1 when they do not.

Pixels are neighbours on the surface when their surface points are closer than CONTIGUOUS times the
view's typical distance between neighbours of one island: across a silhouette they are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from backend.mesh.regions import surface_regions as cut_regions
from backend.raster import Fragments
from backend.render import MeshTensors, surface_points
from backend.style.balance import affine_residual
from backend.style.colors import luminance
from backend.texture import interpolate
from backend.texture.uv_layout import grow, uv_fragments

CONTIGUOUS = 3.0
MIN_PAIRS = 20  # seam pairs over all views, at least, for a seam step ratio
JUMP = 4.0  # a neighbour pair's UV step over the larger of the steps just before and after it, above which UVs jump
BAND = 12  # pixels at 256^2 renders, scaled with the render size
WINDOW = 9
REGIONS = 8


@dataclass(frozen=True)
class ViewPairs:
    """Neighbouring pixel pairs of one view, as flat pixel indices: those across a seam, their controls (the
    pairs just before and after each of them in the same direction, inside one island: the same place and
    foreshortening, without the seam), and the islands on each side of the seam pairs."""

    seam: tuple[torch.Tensor, torch.Tensor]
    control: tuple[torch.Tensor, torch.Tensor]
    islands: tuple[torch.Tensor, torch.Tensor]
    labels: torch.Tensor  # (H, W) island of each pixel, -1 on background


def view_pairs(mesh: MeshTensors, fragments: Fragments, island: torch.Tensor, wrap: bool = True) -> ViewPairs:
    """Neighbour pairs of a view (`island`: (F,) label of every face; `wrap`: the texture wraps, so UVs a whole
    tile apart are the same place)."""
    h, w = fragments.face_ids.shape
    labels = torch.where(fragments.mask, island[fragments.face_ids.clamp(min=0)], torch.full_like(fragments.face_ids, -1))
    points = surface_points(mesh, fragments)
    uv = interpolate(mesh.uvs, fragments)
    index = torch.arange(h * w, device=labels.device).view(h, w)
    found: dict[str, list[torch.Tensor]] = {"seam_p": [], "seam_q": [], "control_p": [], "control_q": []}
    for transpose in (False, True):  # horizontal pairs, then vertical ones (as rows of the transposed grid)
        lab, pts, idx, tex = ((labels.T, points.transpose(0, 1), index.T, uv.transpose(0, 1)) if transpose
                              else (labels, points, index, uv))
        covered = (lab[:, :-1] >= 0) & (lab[:, 1:] >= 0)
        distance = (pts[:, :-1] - pts[:, 1:]).norm(dim=-1)
        step = tex[:, :-1] - tex[:, 1:]
        step = (step - step.round() if wrap else step).norm(dim=-1)
        jumps = torch.zeros_like(covered)  # against both neighbouring steps, so a crease's change of scale is no jump
        jumps[:, 1:-1] = step[:, 1:-1] > JUMP * torch.maximum(step[:, :-2], step[:, 2:])
        same = covered & (lab[:, :-1] == lab[:, 1:]) & ~jumps
        typical = distance[same].median() if bool(same.any()) else distance[covered].median()
        near = covered & (distance < CONTIGUOUS * typical)
        seam, inside = near & ~same, near & same
        # A seam pair at column x counts when the pairs at x - 1 and x + 1 are inside pairs: its controls.
        counted = seam.clone()
        counted[:, 0] = counted[:, -1] = False
        counted[:, 1:-1] &= inside[:, :-2] & inside[:, 2:]
        rows, cols = torch.nonzero(counted, as_tuple=True)
        found["seam_p"].append(idx[rows, cols])
        found["seam_q"].append(idx[rows, cols + 1])
        found["control_p"] += [idx[rows, cols - 1], idx[rows, cols + 1]]
        found["control_q"] += [idx[rows, cols], idx[rows, cols + 2]]
    p, q = torch.cat(found["seam_p"]), torch.cat(found["seam_q"])
    flat = labels.reshape(-1)
    return ViewPairs((p, q), (torch.cat(found["control_p"]), torch.cat(found["control_q"])), (flat[p], flat[q]), labels)


def _steps(image: torch.Tensor, pairs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """|c(p) - c(q)| (Euclidean in RGB) of an image (3, H, W) at pixel pairs."""
    flat = image.reshape(image.shape[0], -1)
    return (flat[:, pairs[0]] - flat[:, pairs[1]]).norm(dim=0)


def seam_step_ratio(images: torch.Tensor, pairs: list[ViewPairs]) -> float:
    """Mean colour step across seams over the mean step inside islands, pooled over the views (V, 3, H, W);
    NaN where the views show fewer than MIN_PAIRS seam pairs (a handful says nothing: a thin tube's open end seen
    end-on gives four pairs whose UVs jump from its outer wall to its inner one)."""
    seam = torch.cat([_steps(image, p.seam) for image, p in zip(images, pairs)])
    control = torch.cat([_steps(image, p.control) for image, p in zip(images, pairs)])
    if seam.numel() < MIN_PAIRS:
        return float("nan")
    return float(seam.mean() / control.mean().clamp(min=1e-6))


def colour_spread(image: torch.Tensor) -> float:
    """Root of the summed per-channel variances of an image (3, H, W) (or (1, 3, H, W))."""
    return float(image.reshape(3, -1).var(dim=1).sum().sqrt())


def seam_balance(images: torch.Tensor, pairs: list[ViewPairs], spread: float) -> float:
    """Length-weighted mean distance of the mean colours of the bands on the two sides of each seam (per view
    and island pair), over `spread`; NaN where no view shows a seam."""
    total, weight = 0.0, 0
    for image, p in zip(images, pairs):
        h, w = p.labels.shape
        radius = max(1, round(BAND * h / 256))
        a, b = p.islands
        key = torch.minimum(a, b) * (int(p.labels.max()) + 1) + torch.maximum(a, b)
        flat = image.reshape(3, -1)
        for pair in torch.unique(key):
            chosen = key == pair
            first, second = int(torch.minimum(a, b)[chosen][0]), int(torch.maximum(a, b)[chosen][0])
            if first == second:  # a seam inside one island: its two sides have no labels to tell them apart
                continue
            seam_pixels = torch.zeros(h * w, device=image.device)
            seam_pixels[p.seam[0][chosen]] = 1
            seam_pixels[p.seam[1][chosen]] = 1
            band = F.max_pool2d(seam_pixels.view(1, 1, h, w), 2 * radius + 1, stride=1, padding=radius).reshape(-1) > 0
            side_a = band & (p.labels.reshape(-1) == first)
            side_b = band & (p.labels.reshape(-1) == second)
            if not (bool(side_a.any()) and bool(side_b.any())):
                continue
            difference = (flat[:, side_a].mean(dim=1) - flat[:, side_b].mean(dim=1)).norm()
            count = int(chosen.sum())
            total += float(difference) * count
            weight += count
    return total / weight / max(spread, 1e-6) if weight else float("nan")


def luminance_spread(image: torch.Tensor) -> float:
    """Standard deviation of the luminance of an image (3, H, W) (or (1, 3, H, W))."""
    return float(luminance(image.reshape(3, -1), dim=0).std())


def local_contrast(images: torch.Tensor, masks: torch.Tensor | None = None) -> float:
    """Standard deviation of luminance minus its WINDOW x WINDOW mean over pixels whose whole window is covered:
    images (V, 3, H, W), masks (V, 1, H, W) (None: every pixel)."""
    luma = luminance(images, dim=1)
    detail = luma[..., WINDOW // 2 : -(WINDOW // 2), WINDOW // 2 : -(WINDOW // 2)] - F.avg_pool2d(luma, WINDOW, stride=1)
    if masks is None:
        inside = torch.ones_like(detail, dtype=torch.bool)
    else:
        inside = -F.max_pool2d(-masks.float(), WINDOW, stride=1) > 0.5
    values = detail[inside]
    return float(values.std()) if values.numel() > 1 else 0.0


def dense_island_contrast(images: torch.Tensor, fragments: list[Fragments], dense: torch.Tensor) -> float:
    """Local contrast of renders (V, 3, H, W) on the faces `dense` (F,) bool over that on the other covered faces."""
    groups = []
    for flag in (True, False):
        masks = torch.stack([(f.face_ids >= 0) & (dense[f.face_ids.clamp(min=0)] == flag) for f in fragments])
        groups.append(local_contrast(images, masks[:, None]))
    return groups[0] / max(groups[1], 1e-12)


def bake(mesh: MeshTensors, size: int, colour) -> np.ndarray:
    """A size^2 texture whose texels show colour(points (N, 3)) -> (N, 3) of their place on the surface (0
    outside every island): a texture that is continuous on the surface whatever the UV layout. For tests."""
    fragments = uv_fragments(mesh.uvs, size)
    corners = mesh.positions[:, :3][mesh.faces[fragments.face_ids.clamp(min=0)]]
    points = (fragments.bary[..., None] * corners).sum(dim=2)
    out = torch.zeros(size, size, 3)
    out[fragments.mask] = torch.as_tensor(colour(points[fragments.mask].cpu().numpy()), dtype=torch.float32)
    # Texels on an island's rim whose centres no triangle covers still get read: grown in from inside.
    return grow(out, fragments.mask.cpu(), 2)[0].numpy()


def surface_regions(mesh: MeshTensors, count: int = REGIONS) -> torch.Tensor:
    """(F,) the patch of every face: REGIONS patches of about equal area (backend.mesh.regions)."""
    return cut_regions(mesh.positions, mesh.faces, count)


def region_luminance(images: torch.Tensor, fragments: list[Fragments], regions: torch.Tensor,
                     count: int = REGIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean luminance (R,) of each surface patch over every view (V, 3, H, W) that shows it, and its pixels (R,)."""
    total = torch.zeros(count, dtype=torch.float64)
    pixels = torch.zeros(count, dtype=torch.float64)
    for image, frag in zip(images, fragments):
        patch = regions[frag.face_ids[frag.mask]]
        luma = luminance(image, dim=0)[0][frag.mask].double()
        total.index_add_(0, patch, luma)
        pixels.index_add_(0, patch, torch.ones_like(luma))
    return total / pixels.clamp(min=1), pixels


def region_balance(result: torch.Tensor, original: torch.Tensor | None, fragments: list[Fragments],
                   regions: torch.Tensor, luminance_spread: float) -> float:
    """What an affine map of the original's patch luminances leaves unexplained of the result's (weighted root
    mean square), over `luminance_spread`; with no original (or a uniform one), the result's own spread."""
    means, pixels = region_luminance(result, fragments, regions)
    shown = pixels > 0
    y, w = means[shown], pixels[shown] / pixels[shown].sum()
    x = region_luminance(original, fragments, regions)[0][shown] if original is not None else None
    if x is not None and float((w * (x - (w * x).sum()) ** 2).sum()) <= 1e-8:
        x = None
    residual = affine_residual(y, x, w)
    return float((w * residual ** 2).sum().sqrt()) / max(luminance_spread, 1e-6)
