"""Close-up views (backend/style/closeups.py): where they look, what they are compared with, and their errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import StyleTexError
from backend.formats.images import load_image
from backend.mesh import make_mesh
from backend.mesh.primitives import uv_sphere
from backend.render import MeshTensors, facing, rasterize_view
from backend.texture import build_pyramid
from backend.style.closeups import CloseupPlanner, from_inside, sees_point
from backend.style.engine import StyleJob, views_coverage
from backend.style.sequence import SequenceJob
from tests.helpers import tiny
from backend.views import closeup_camera, orbit_camera

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def starry():
    return load_image(REPO / "data" / "styles" / "starry_night.jpg")


def sphere_and_moon() -> tuple:
    """A unit sphere at the origin and one of radius 0.1 at x = 3: the small one is what full views neglect.
    Returns the mesh and the number of the big sphere's faces (they come first)."""
    big, small = uv_sphere(12, 24), uv_sphere(6, 12, radius=0.1)
    positions = np.concatenate([big.positions, small.positions + np.float32([3, 0, 0])])
    faces = np.concatenate([big.faces, small.faces + len(big.positions)])
    uvs = np.concatenate([big.uvs * 0.5, small.uvs * 0.5 + 0.5])
    return make_mesh(positions, faces, uvs), len(big.faces)


def test_a_closeup_camera_centres_its_point_and_frames_a_sphere_zoom_times_smaller():
    point, radius, zoom = np.array([0.3, -0.2, 0.5]), 2.0, 4.0
    camera = closeup_camera(point, (0, 1, 1), radius, zoom, fov_deg=30)
    clip = camera.world_to_clip() @ np.append(point, 1)
    assert np.allclose(clip[:2] / clip[3], 0, atol=1e-9)  # at the image centre
    distance = np.linalg.norm(np.subtract(camera.eye, point))
    assert math.isclose(distance, (radius / zoom) / math.sin(math.radians(15)))
    assert np.allclose((np.subtract(camera.eye, point)) / distance, np.array([0, 1, 1]) / math.sqrt(2))
    assert camera.far > distance + radius  # the whole object lies in front of the far plane


def test_a_hidden_point_and_an_eye_inside_the_object_are_told_apart_from_a_good_closeup():
    mesh = MeshTensors.from_mesh(uv_sphere(16, 32), CPU)
    front = closeup_camera((0, 0, 1), (0, 0, 1), 1.0, 3.0)  # the north pole, seen from above
    behind = closeup_camera((0, 0, -1), (0, 0, 1), 1.0, 0.5)  # the south pole, from above: the north in front
    inside = closeup_camera((0, 0, -1), (0, 0, 1), 1.0, 3.0)  # the south pole from within the sphere
    views = {name: (camera, rasterize_view(mesh, camera, 32)) for name, camera in
             [("front", front), ("behind", behind), ("inside", inside)]}
    seen = {name: sees_point(f.depth, c) for name, (c, f) in views.items()}
    assert seen == {"front": True, "behind": False, "inside": True}
    within = {name: from_inside(facing(mesh, f, c.eye, signed=True), f.mask) for name, (c, f) in views.items()}
    assert CloseupPlanner(uv_sphere(16, 32), 3.0, 30.0, CPU).outward
    assert within == {"front": False, "behind": False, "inside": True}


def test_closeups_go_to_the_faces_the_views_so_far_have_covered_least():
    mesh, big_faces = sphere_and_moon()
    planner = CloseupPlanner(mesh, 3.0, 30.0, CPU)
    rng = np.random.default_rng(0)
    before = sum(planner.draw(rng)[0] >= big_faces for _ in range(200)) / 200
    # Before any view, by area: the small sphere holds 1 % of it.
    assert before < 0.05
    # Views of the big sphere from all sides, framing it alone: its faces are covered, the small one's not.
    tensors = MeshTensors.from_mesh(mesh, CPU)
    for direction in [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]:
        planner.record(rasterize_view(tensors, orbit_camera((0, 0, 0), 1.0, direction), 64).face_ids)
    after = sum(planner.draw(rng)[0] >= big_faces for _ in range(200)) / 200
    assert after > 0.5
    weights, areas = planner.face_weights(), planner.areas
    per_area = [weights[part].sum() / areas[part].sum() for part in (slice(0, big_faces), slice(big_faces, None))]
    assert per_area[1] > 5 * per_area[0]


def test_a_closeup_views_style_is_compared_with_the_painting_enlarged_as_much(starry):
    job = StyleJob(uv_sphere(10, 20), starry, tiny(closeup_share=1.0, closeup_zoom=2.0), None, CPU)
    for _ in range(3):
        losses = job.step()
    assert all(math.isfinite(v) for v in losses.values())
    assert {v.scale for v in job.pool.views} == {2.0}
    assert sorted(job.targets_by_size) == [(32, 2.0)] and job.painting_side(32, 2.0) == 2 * job.painting_side(32)
    assert job.memory(2.0).steps == 3 and 1.0 not in job.memory_by_scale
    full, close = job.targets(32), job.targets(32, 2.0)
    assert any((full[n] - close[n]).abs().max() > 1e-4 for n in full)  # the painting at two scales


def test_views_of_both_kinds_in_one_step_each_meet_their_own_targets(starry):
    # Decay 0: the memory passes each Gram through, so the terms can be recomputed group by group.
    job = StyleJob(uv_sphere(10, 20), starry, tiny(closeup_share=0.5, views_per_step=4, view_pool=8, style_decay=0.0),
                   None, CPU)
    job.step()
    views = list(job.pool.views)
    assert {v.scale for v in views} == {1.0, 3.0}
    with torch.no_grad():
        pyramid = build_pyramid(job.parameter(job.working_shape))
        images, _ = job.shade_views(pyramid.texels, views)
        features = job.net(torch.stack(images).permute(0, 3, 1, 2))
        mixed = job.style_term(features, views_coverage(views), views, 32)
        parts = 0.0
        for scale in (1.0, 3.0):
            pick = [i for i, v in enumerate(views) if v.scale == scale]
            group = [views[i] for i in pick]
            alone = job.style_term({n: f[pick] for n, f in features.items()}, views_coverage(group), group, 32)
            parts += len(pick) / len(views) * alone
        learned = torch.stack(images).permute(0, 3, 1, 2)
        detail = job.detail_term(learned, views, views_coverage(views), 32)
        # each view through its own windows (a close-up's are wider), the mean over the views
        each = [job.detail_term(learned[i : i + 1], [v], v.coverage, 32) for i, v in enumerate(views)]
    assert float(mixed) == pytest.approx(float(parts), rel=1e-5)
    assert float(mixed) > 0
    assert job.detail_windows(32, 3.0) != job.detail_windows(32, 1.0)
    assert float(detail) == pytest.approx(float(sum(each)) / len(views), rel=1e-5) and float(detail) > 0


def test_a_mesh_wound_inside_out_gets_closeups_from_outside(starry):
    sphere = uv_sphere(10, 20)
    flipped = make_mesh(sphere.positions, sphere.faces[:, ::-1], sphere.uvs[:, ::-1])
    for mesh, outward in ((sphere, True), (flipped, False)):
        planner = CloseupPlanner(mesh, 3.0, 30.0, CPU)
        assert planner.outward == outward  # the flipped one's normals are turned round
        rng = np.random.default_rng(1)
        eyes = np.array([planner.draw(rng)[2].eye for _ in range(50)])
        assert (np.linalg.norm(eyes, axis=1) > 1.05).mean() > 0.9  # outside the unit sphere (a few tilt steeply)
    job = StyleJob(flipped, starry, tiny(closeup_share=1.0), None, CPU)
    job.step()
    assert {v.scale for v in job.pool.views} == {3.0}  # not one refused as seen from inside


def test_without_closeups_the_views_are_those_of_before(starry):
    one = StyleJob(uv_sphere(10, 20), starry, tiny(), None, CPU)
    two = StyleJob(uv_sphere(10, 20), starry, tiny(closeup_share=0.0, closeup_zoom=5.0), None, CPU)
    for _ in range(2):
        assert one.step() == two.step()
    assert one.closeups is None and all(v.scale == 1.0 for v in one.pool.views)


def test_interpolation_refuses_closeups(starry):
    with pytest.raises(StyleTexError, match="closeup_share"):
        SequenceJob(uv_sphere(6, 12), [starry], [starry[::-1]], tiny(closeup_share=0.5), None, CPU, frames=2)
