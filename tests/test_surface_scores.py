"""The quality benchmark's surface measures (bench/surface_scores.py): they must tell a seam, two halves
in different colours and faint strokes from their absence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.mesh.primitives import cube, many_island_sphere, two_island_sphere, uv_sphere
from backend.render import MeshTensors, rasterize_view, shade
from backend.mesh.seams import find_seams
from backend.mesh.uv_room import dense_islands
from backend.style.engine import resize_longer_side
from backend.texture.transfer import resize_square
from backend.style.finishing import finish_texture, uv_island_mask
from bench.quality_score import score_cameras
from bench.surface_scores import (REGIONS, bake, colour_spread, dense_island_contrast, local_contrast,
                                  region_balance, seam_balance, seam_step_ratio, surface_regions, view_pairs)

STARRY = Path(__file__).resolve().parent.parent / "data" / "styles" / "starry_night.jpg"


def detailed(points: np.ndarray) -> np.ndarray:
    return 0.5 + 0.2 * np.sin(30 * points) + 0.2 * np.sin(9 * points[:, [1, 2, 0]])


def views(mesh, island, size=128):
    tensors = MeshTensors.from_mesh(mesh)
    fragments = [rasterize_view(tensors, camera, size) for camera in score_cameras(mesh.center, mesh.radius)]
    return tensors, fragments, [view_pairs(tensors, f, island) for f in fragments]


def renders(tensors, fragments, texture):
    texture = torch.as_tensor(texture)
    return torch.stack([shade(f, tensors.uvs, texture, background=0.5).permute(2, 0, 1) for f in fragments])


def test_a_seam_that_is_not_cut_in_the_texture_scores_about_one():
    """A continuous UV sphere with its faces labelled as two islands at the equator: the pairs across that
    line see a continuous texture, and their controls (same place, same foreshortening) step as much."""
    mesh = uv_sphere(32, 64)
    north = torch.from_numpy((mesh.positions[mesh.faces].mean(axis=1)[:, 2] > 0).astype(np.int64))
    tensors, fragments, pairs = views(mesh, north)
    assert sum(len(p.seam[0]) for p in pairs) > 200
    ratio = seam_step_ratio(renders(tensors, fragments, bake(tensors, 512, detailed)), pairs)
    assert 0.85 < ratio < 1.15


def test_a_painting_cut_at_the_seam_scores_far_above_a_texture_continued_across_it():
    mesh = two_island_sphere()
    seams = find_seams(mesh)
    tensors, fragments, pairs = views(mesh, torch.from_numpy(seams.island))
    pasted = seam_step_ratio(renders(tensors, fragments, resize_square(load_image(STARRY), 512)), pairs)
    baked = torch.from_numpy(bake(tensors, 512, detailed))
    island = uv_island_mask(tensors.uvs, 512)
    continued, _ = finish_texture(baked, island, island, None, 16, seams, tensors.uvs)
    continuous = seam_step_ratio(renders(tensors, fragments, continued), pairs)
    assert pasted > 3 and continuous < 1.3


def test_a_seam_inside_one_island_is_found_where_the_uvs_jump():
    """A cube whose faces each take the whole texture: it wraps, so faces meeting a whole tile apart join into one
    island, and its six other edges are seams inside that island. Spot's UVs jump only between his islands."""
    mesh = cube()
    seams = find_seams(mesh)
    assert len(np.unique(seams.island)) == 1
    tensors, fragments, pairs = views(mesh, torch.from_numpy(seams.island))
    assert sum(len(p.seam[0]) for p in pairs) > 100
    assert seam_step_ratio(renders(tensors, fragments, resize_square(load_image(STARRY), 256)), pairs) > 2
    # the balance compares two islands' bands: one island's seams have no sides to tell apart
    assert np.isnan(seam_balance(renders(tensors, fragments, np.full((64, 64, 3), 0.6, np.float32)), pairs, 0.25))
    bob = read_obj(Path(__file__).resolve().parent.parent / "data" / "bob" / "bob_tri.obj")
    seams = find_seams(bob)
    _, fragments, bob_pairs = views(bob, torch.from_numpy(seams.island))
    inside = [(f.face_ids.reshape(-1)[p.seam[0]], f.face_ids.reshape(-1)[p.seam[1]], p.islands[0] == p.islands[1])
              for f, p in zip(fragments, bob_pairs)]
    found = [(int(a), int(b)) for one, other, same in inside for a, b in zip(one[same], other[same])]
    assert len(found) > 100  # Bob's islands hold cuts that do not part them
    # each pair's faces touch a seam edge's faces (a pair may span a few faces at 128^2)
    near_seam = np.zeros(len(bob.positions), bool)
    near_seam[bob.faces[seams.faces.reshape(-1)].reshape(-1)] = True
    assert all(near_seam[bob.faces[a]].any() and near_seam[bob.faces[b]].any() for a, b in found)


def test_halves_in_different_colours_unbalance_the_seam():
    mesh = two_island_sphere()
    tensors, fragments, pairs = views(mesh, torch.from_numpy(find_seams(mesh).island))
    even = np.full((256, 256, 3), 0.6, np.float32)
    halves = even.copy()
    halves[:, :128] = 0.9  # the north island light, the south one as before
    assert seam_balance(renders(tensors, fragments, even), pairs, 0.25) < 0.01
    assert seam_balance(renders(tensors, fragments, halves), pairs, 0.25) > 1.5  # |0.3 (1, 1, 1)| / 0.25


def test_local_contrast_sees_strokes_not_flat_colour_or_the_silhouette():
    painting = resize_longer_side(load_image(STARRY), 128, torch.device("cpu"))
    flat = torch.full((1, 3, 64, 64), 0.4)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    assert local_contrast(flat, mask) == 0.0
    assert local_contrast(painting) > 0.05
    blurred = torch.nn.functional.avg_pool2d(painting, 5, stride=1, padding=2)
    assert local_contrast(blurred) < 0.6 * local_contrast(painting)
    assert 0.2 < colour_spread(painting) < 0.6


def test_a_light_half_over_a_dark_half_is_a_split_and_a_recolouring_is_not():
    """Region balance: a uniform sphere given a light north and a dark south (strokes on both) scores high;
    the same strokes over an even tone score low; an inversion of a structured original scores zero."""
    mesh = uv_sphere(32, 64)
    tensors = MeshTensors.from_mesh(mesh)
    fragments = [rasterize_view(tensors, camera, 128) for camera in score_cameras(mesh.center, mesh.radius)]
    regions = surface_regions(tensors)
    area = torch.bincount(regions, minlength=REGIONS)
    assert len(area) == REGIONS and int(area.min()) > 0.5 * len(mesh.faces) / REGIONS
    uniform = renders(tensors, fragments, np.full((64, 64, 3), 0.8, np.float32))
    strokes = lambda p: detailed(p) * 0.5 + 0.25  # noqa: E731
    split = lambda p: strokes(p) + np.where(p[:, 2:3] > 0, 0.25, -0.25)  # noqa: E731
    even = renders(tensors, fragments, bake(tensors, 512, strokes))
    halves = renders(tensors, fragments, bake(tensors, 512, split))
    assert region_balance(even, uniform, fragments, regions, 0.25) < 0.15
    assert region_balance(halves, uniform, fragments, regions, 0.25) > 0.6
    # A structured original (light north) inverted: its patches follow the original's exactly.
    original = renders(tensors, fragments, bake(tensors, 512, lambda p: np.repeat(0.3 + 0.4 * (p[:, 2:3] > 0), 3, axis=1)))
    assert region_balance(halves, original, fragments, regions, 0.25) < 0.1
    assert region_balance(1 - halves, original, fragments, regions, 0.25) < 0.1


def test_the_many_island_sphere_has_dense_islands_and_the_two_island_sphere_none():
    """The many-island sphere packs every third column of islands at 0.85 of an atlas cell and the rest at 0.45:
    those columns, a third of its faces, are the dense ones."""
    islands = many_island_sphere()
    dense = dense_islands(islands, find_seams(islands, True).island)
    assert dense is not None and 0.3 < dense.mean() < 0.37
    sphere = two_island_sphere()
    assert dense_islands(sphere, find_seams(sphere, True).island) is None


def test_dense_island_contrast_is_one_for_strokes_sized_by_the_surface_and_low_for_calm_islands():
    mesh = many_island_sphere()
    dense = dense_islands(mesh, find_seams(mesh, True).island)
    tensors = MeshTensors.from_mesh(mesh)
    fragments = [rasterize_view(tensors, camera, 256) for camera in score_cameras(mesh.center, mesh.radius)]
    texture = bake(tensors, 1024, detailed)  # the same strokes everywhere on the surface
    even = dense_island_contrast(renders(tensors, fragments, texture), fragments, torch.from_numpy(dense))
    assert 0.8 < even < 1.25
    calm = torch.from_numpy(texture).clone()
    dense_texels = uv_island_mask(tensors.uvs[torch.from_numpy(dense)], 1024)
    calm[dense_texels] = 0.5  # the dense islands flat
    # shading and the mip levels' bleed from neighbouring islands leave a little (0.20)
    assert dense_island_contrast(renders(tensors, fragments, calm), fragments, torch.from_numpy(dense)) < 0.35
