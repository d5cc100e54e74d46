"""Cameras: look-at frames, the OpenGL perspective matrix, validation, and the view samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.errors import StyleTexError
from backend.views import (
    Camera,
    framing_distance,
    look_at,
    orbit_camera,
    perspective,
    random_cameras,
    ring_cameras,
    rolled,
)


def normalize(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def transform(matrix: np.ndarray, points) -> np.ndarray:
    """Applies a 4x4 matrix to (N, 3) points; returns (N, 4) homogeneous results."""
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    return homogeneous @ matrix.T


def assert_rigid(view: np.ndarray) -> None:
    """A proper rotation (orthonormal, det +1) plus translation, bottom row (0, 0, 0, 1)."""
    assert view.shape == (4, 4)
    assert np.isfinite(view).all()
    rotation = view[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(view[3], [0, 0, 0, 1])


# --- look_at -------------------------------------------------------------------------------------

FRAMES = [
    ((0, -5, 0), (0, 0, 0), (0, 0, 1)),
    ((3, 4, 5), (0, 0, 0), (0, 0, 1)),
    ((1, 2, 3), (-2, 0.5, 1), (0, 0, 1)),
    ((-7, 0.1, -2), (4, 4, 4), (0, 1, 0)),
    ((2, 2, 2), (2, 3, 2.5), (1, 1, 1)),
]


@pytest.mark.parametrize("eye,target,up", FRAMES)
def test_look_at_builds_the_documented_frame(eye, target, up):
    view = look_at(eye, target, up)
    assert_rigid(view)
    f = normalize(np.subtract(target, eye))
    r = normalize(np.cross(f, up))
    u = np.cross(r, f)
    np.testing.assert_allclose(view[0, :3], r, atol=1e-12)
    np.testing.assert_allclose(view[1, :3], u, atol=1e-12)
    np.testing.assert_allclose(view[2, :3], -f, atol=1e-12)
    # The camera's up axis leans towards the requested up.
    assert np.dot(u, up) > 0


@pytest.mark.parametrize("eye,target,up", FRAMES)
def test_look_at_eye_goes_to_origin_and_target_down_minus_z(eye, target, up):
    view = look_at(eye, target, up)
    np.testing.assert_allclose(transform(view, eye)[0], [0, 0, 0, 1], atol=1e-12)
    distance = np.linalg.norm(np.subtract(target, eye))
    np.testing.assert_allclose(transform(view, target)[0], [0, 0, -distance, 1], atol=1e-12)


def test_look_at_axes_in_a_simple_case():
    # Looking from -Y towards the origin with Z up: right is +X, up is +Z.
    view = look_at((0, -5, 0), (0, 0, 0), (0, 0, 1))
    np.testing.assert_allclose(transform(view, (1, 0, 0))[0, :3], [1, 0, -5], atol=1e-12)
    np.testing.assert_allclose(transform(view, (0, 0, 1))[0, :3], [0, 1, -5], atol=1e-12)
    np.testing.assert_allclose(transform(view, (0, -4, 0))[0, :3], [0, 0, -1], atol=1e-12)


def test_look_at_does_not_modify_its_inputs():
    eye = np.array([1.0, 2.0, 3.0])
    target = np.array([0.0, 0.0, 0.0])
    look_at(eye, target)
    np.testing.assert_array_equal(eye, [1, 2, 3])
    np.testing.assert_array_equal(target, [0, 0, 0])


@pytest.mark.parametrize(
    "eye,target,up",
    [
        ((0, 0, 5), (0, 0, 0), (0, 0, 1)),  # looking straight down, up along the view axis
        ((0, 0, -5), (0, 0, 0), (0, 0, 1)),  # looking straight up
        ((0, 0, 5), (0, 0, 0), (0, 0, -3)),  # antiparallel, not unit length
        ((0, 7, 0), (0, 0, 0), (0, 1, 0)),  # parallel to the first fallback axis too
        ((1, 1, 1), (2, 2, 2), (1, 1, 1)),
        ((0, 0, 5), (0, 0, 0), (0, 0, 0)),  # degenerate up vector
    ],
)
def test_look_at_up_parallel_to_view_direction_still_gives_a_frame(eye, target, up):
    view = look_at(eye, target, up)
    assert_rigid(view)
    f = normalize(np.subtract(target, eye))
    np.testing.assert_allclose(view[2, :3], -f, atol=1e-12)
    np.testing.assert_allclose(transform(view, eye)[0], [0, 0, 0, 1], atol=1e-12)
    distance = np.linalg.norm(np.subtract(target, eye))
    np.testing.assert_allclose(transform(view, target)[0, :3], [0, 0, -distance], atol=1e-12)


def test_camera_view_matrix_is_look_at():
    camera = Camera((1, 2, 3), (0, 1, 0), (0, 0, 1), 40, 0.5, 20)
    np.testing.assert_array_equal(camera.view_matrix(), look_at((1, 2, 3), (0, 1, 0), (0, 0, 1)))
    np.testing.assert_array_equal(camera.projection_matrix(), perspective(40, 0.5, 20))
    np.testing.assert_allclose(camera.world_to_clip(), perspective(40, 0.5, 20) @ look_at((1, 2, 3), (0, 1, 0)))


# --- perspective ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fov", [10.0, 30.0, 60.0, 90.0, 150.0])
@pytest.mark.parametrize("depth", [0.5, 3.0, 40.0])
def test_perspective_top_and_right_edges_of_the_fov(fov, depth):
    proj = perspective(fov, 0.1, 100.0)
    half = depth * math.tan(math.radians(fov) / 2)
    points = [(0, half, -depth), (0, -half, -depth), (half, 0, -depth), (-half, 0, -depth)]
    clip = transform(proj, points)
    ndc = clip[:, :3] / clip[:, 3:]
    np.testing.assert_allclose(ndc[:, 1], [1, -1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(ndc[:, 0], [0, 0, 1, -1], atol=1e-12)


@pytest.mark.parametrize("near,far", [(0.1, 100.0), (1.0, 2.0), (0.01, 5.0), (3.0, 1000.0)])
def test_perspective_depth_range_and_w(near, far):
    proj = perspective(45.0, near, far)
    depths = np.array([near, far, (near + far) / 2, near + (far - near) / 4])
    clip = transform(proj, np.stack([np.full(4, 0.3), np.full(4, -0.2), -depths], axis=1))
    np.testing.assert_allclose(clip[:, 3], depths, rtol=1e-14)  # clip w is the view depth
    ndc_z = clip[:, 2] / clip[:, 3]
    assert ndc_z[0] == pytest.approx(-1.0, abs=1e-12)
    assert ndc_z[1] == pytest.approx(1.0, abs=1e-12)
    assert -1 < ndc_z[3] < ndc_z[2] < 1  # monotonic in depth


def test_perspective_aspect_scales_x_only():
    square = perspective(50.0, 0.1, 10.0)
    wide = perspective(50.0, 0.1, 10.0, aspect=2.0)
    assert wide[0, 0] == pytest.approx(square[0, 0] / 2)
    np.testing.assert_array_equal(wide[1:], square[1:])


def test_point_behind_the_camera_has_negative_w():
    proj = perspective(45.0, 0.1, 100.0)
    assert transform(proj, (0, 0, 2.0))[0, 3] == pytest.approx(-2.0)


def test_camera_world_to_clip_end_to_end():
    camera = Camera(eye=(0, -10, 0), target=(0, 0, 0), fov_deg=60.0, near=1.0, far=50.0)
    top = 10 * math.tan(math.radians(30))
    clip = transform(camera.world_to_clip(), [(0, 0, top), (top, 0, 0), (0, 0, 0)])
    ndc = clip[:, :3] / clip[:, 3:]
    np.testing.assert_allclose(ndc[0, :2], [0, 1], atol=1e-12)  # world up is image up
    np.testing.assert_allclose(ndc[1, :2], [1, 0], atol=1e-12)  # world +X is image right here
    np.testing.assert_allclose(clip[:, 3], [10, 10, 10], atol=1e-12)


# --- Camera validation ---------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
BAD_CAMERAS = {
    "fov_zero": dict(fov_deg=0.0),
    "fov_negative": dict(fov_deg=-30.0),
    "fov_180": dict(fov_deg=180.0),
    "fov_200": dict(fov_deg=200.0),
    "near_after_far": dict(near=10.0, far=1.0),
    "near_equals_far": dict(near=5.0, far=5.0),
    "near_zero": dict(near=0.0),
    "near_negative": dict(near=-1.0),
    "eye_is_target": dict(eye=(1.0, 2.0, 3.0), target=(1.0, 2.0, 3.0)),
    "nan_eye": dict(eye=(NAN, 0.0, 5.0)),
    "nan_target": dict(target=(0.0, NAN, 0.0)),
    "nan_up": dict(up=(0.0, 0.0, NAN)),
    "nan_fov": dict(fov_deg=NAN),
    "nan_near": dict(near=NAN),
    "nan_far": dict(far=NAN),
    "inf_eye": dict(eye=(INF, 0.0, 5.0)),
    "inf_far": dict(far=INF),
}


@pytest.mark.parametrize("case", sorted(BAD_CAMERAS))
def test_camera_rejects_bad_settings(case):
    settings = dict(eye=(0.0, 0.0, 5.0))
    settings.update(BAD_CAMERAS[case])
    with pytest.raises(StyleTexError) as info:
        Camera(**settings)
    message = str(info.value)
    assert message and "\n" not in message


def test_camera_accepts_good_settings():
    camera = Camera((0.0, -3.0, 1.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 179.0, 1e-4, 1e6)
    assert camera.fov_deg == 179.0
    assert np.isfinite(camera.world_to_clip()).all()


# --- samplers ------------------------------------------------------------------------------------


def sphere_points(center, radius: float, count: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(1)
    d = rng.standard_normal((count, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(center, dtype=np.float64) + radius * d


def test_framing_distance():
    # A sphere at that distance is tangent to the cone of half-angle fov/2.
    assert framing_distance(1.0, 60.0) == pytest.approx(2.0)
    assert framing_distance(2.5, 90.0) == pytest.approx(2.5 * math.sqrt(2))


def test_random_camera_directions_are_uniform_on_the_sphere():
    center = np.array([1.0, -2.0, 0.5])
    cameras = random_cameras(center, 0.8, 4000, np.random.default_rng(123))
    assert len(cameras) == 4000
    eyes = np.array([c.eye for c in cameras])
    directions = eyes - center
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    assert np.linalg.norm(directions.mean(axis=0)) < 0.05
    second_moments = (directions**2).mean(axis=0)
    np.testing.assert_allclose(second_moments, 1 / 3, atol=0.03)
    # No octant is missing or crowded (each should hold about 1/8).
    octant = (directions > 0) @ np.array([1, 2, 4])
    counts = np.bincount(octant, minlength=8) / len(directions)
    np.testing.assert_allclose(counts, 1 / 8, atol=0.03)
    # Hemispheres split evenly about the Z axis (up/down views are not favoured or avoided).
    assert abs((directions[:, 2] > 0.5).mean() - 0.25) < 0.03  # cap above z=0.5 covers 1/4
    # Archimedes: each coordinate of a uniform direction is uniform on [-1, 1]. A Kolmogorov-Smirnov
    # distance of 0.03 at n = 4000 is far in the tail for a uniform sampler (p < 0.002), while
    # normalizing cube samples (a classic mistake, which passes the moment tests) gives about 0.04.
    n = len(directions)
    for axis in range(3):
        cdf = (np.sort(directions[:, axis]) + 1) / 2
        ks = max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max())
        assert ks < 0.03, (axis, ks)


def test_random_cameras_aim_at_the_center_and_are_reproducible():
    center = (0.25, 0.5, -1.0)
    first = random_cameras(center, 2.0, 50, np.random.default_rng(9), fov_deg=40.0)
    again = random_cameras(center, 2.0, 50, np.random.default_rng(9), fov_deg=40.0)
    other = random_cameras(center, 2.0, 50, np.random.default_rng(10), fov_deg=40.0)
    assert [c.eye for c in first] == [c.eye for c in again]
    assert [c.eye for c in first] != [c.eye for c in other]
    for camera in first:
        np.testing.assert_allclose(camera.target, center, atol=1e-12)
        assert camera.fov_deg == 40.0
        distance = np.linalg.norm(np.subtract(camera.eye, center))
        assert distance == pytest.approx(framing_distance(2.0, 40.0))


@pytest.mark.parametrize("fov", [20.0, 30.0, 60.0])
def test_random_cameras_frame_the_bounding_sphere(fov):
    center, radius = np.array([0.3, -0.1, 0.7]), 1.7
    points = sphere_points(center, radius)
    cameras = random_cameras(center, radius, 40, np.random.default_rng(5), fov_deg=fov)
    for camera in cameras:
        clip = transform(camera.world_to_clip(), points)
        assert (clip[:, 3] > 0).all()  # the whole sphere is in front of the camera
        ndc = clip[:, :3] / clip[:, 3:]
        assert np.abs(ndc[:, :2]).max() <= 1.02
        assert np.abs(ndc[:, 0]).max() > 0.9 or np.abs(ndc[:, 1]).max() > 0.9
        # Near and far bracket the sphere, so no part of it is clipped in depth.
        assert ndc[:, 2].min() > -1 and ndc[:, 2].max() < 1


def test_zoom_range_moves_cameras_closer():
    center, radius = np.zeros(3), 1.0
    cameras = random_cameras(center, radius, 200, np.random.default_rng(3), fov_deg=30.0, zoom_range=(1.5, 2.0))
    full = framing_distance(radius, 30.0)
    distances = np.array([np.linalg.norm(c.eye) for c in cameras])
    assert (distances >= full / 2.0 - 1e-9).all() and (distances <= full / 1.5 + 1e-9).all()
    assert distances.max() - distances.min() > 0.1 * full / 2  # zooms actually vary
    for camera in cameras:
        assert camera.near < np.linalg.norm(camera.eye) - radius or camera.near < 1e-2 * full
        assert camera.far > np.linalg.norm(camera.eye) + radius


def test_orbit_camera_looks_along_the_direction():
    camera = orbit_camera((1.0, 1.0, 1.0), 0.5, (0.0, 0.0, 2.0), fov_deg=30.0)
    distance = framing_distance(0.5, 30.0)
    np.testing.assert_allclose(camera.eye, (1.0, 1.0, 1.0 + distance), atol=1e-12)
    assert_rigid(camera.view_matrix())  # straight down with up = Z still works


@pytest.mark.parametrize("count,elevation", [(1, 0.0), (4, 20.0), (8, -30.0), (12, 60.0)])
def test_ring_cameras_count_and_elevation(count, elevation):
    center, radius = np.array([0.5, 0.0, -0.25]), 1.2
    cameras = ring_cameras(center, radius, count, elevation_deg=elevation, fov_deg=35.0)
    assert len(cameras) == count
    directions = np.array([normalize(np.subtract(c.eye, center)) for c in cameras])
    elevations = np.degrees(np.arcsin(directions[:, 2]))
    np.testing.assert_allclose(elevations, elevation, atol=1e-9)
    azimuths = np.degrees(np.arctan2(directions[:, 1], directions[:, 0])) % 360
    np.testing.assert_allclose(azimuths, np.arange(count) * 360 / count, atol=1e-9)
    for camera in cameras:
        np.testing.assert_allclose(camera.target, center, atol=1e-12)
        assert camera.fov_deg == 35.0
        distance = np.linalg.norm(np.subtract(camera.eye, center))
        assert distance == pytest.approx(framing_distance(radius, 35.0))


@pytest.mark.parametrize("degrees", [0.0, 30.0, 90.0, -135.0, 180.0])
def test_rolled_camera_turns_the_image_about_its_centre(degrees):
    camera = random_cameras((0.2, -0.4, 0.1), 1.5, 1, np.random.default_rng(4), fov_deg=35.0)[0]
    turned = rolled(camera, degrees)
    assert (turned.eye, turned.target, turned.fov_deg, turned.near, turned.far) == (
        camera.eye, camera.target, camera.fov_deg, camera.near, camera.far)
    assert_rigid(turned.view_matrix())
    points = sphere_points(np.array(camera.target), 1.5)
    before, after = transform(camera.world_to_clip(), points), transform(turned.world_to_clip(), points)
    np.testing.assert_allclose(after[:, 2:], before[:, 2:], atol=1e-9)  # depth and w: the same
    angle = math.radians(degrees)
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    np.testing.assert_allclose(after[:, :2], before[:, :2] @ turn.T, atol=1e-9)
