"""Aligned interpolation (style/sequence.py, `interpolate`): the shared spectrum, the per-frame objectives,
and the article's claim measured on Spot with the real EfficientNet-Lite0 at a small size: consecutive
frames of the aligned sequence are at most half as far apart as independent ones, at losses within 10 %."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.formats.images import load_image
from backend.mesh.primitives import uv_sphere
from backend.style.parameterization import SequenceTexture, make_texture_parameter
from backend.style.plain_original import PLAIN_SHARE
from backend.style.sequence import ORIGINAL_END, ORIGINAL_HOLD, SequenceJob, consecutive_differences, frame_times, stylize_sequence
from backend.style.settings import StyleSettings

REPO = Path(__file__).resolve().parents[1]
SPOT = REPO / "data" / "spot"
STARRY, WAVE = REPO / "data" / "styles" / "starry_night.jpg", REPO / "data" / "styles" / "wave.jpg"
TINY = dict(texture_size=32, render_size=32, features="random", seed=0)


def starts(frames: int, size: int = 16, seeds=None):
    seeds = seeds or [0] * frames
    return [make_texture_parameter("fourier", size, seed, None, torch.device("cpu")) for seed in seeds]


def test_aligned_frames_start_as_one_texture_and_share_every_gradient():
    texture = SequenceTexture(starts(1), frames=3)
    frames = texture(16)
    assert frames.shape == (3, 16, 16, 3)
    single = make_texture_parameter("fourier", 16, 0, None, torch.device("cpu"))(16)
    for f in range(3):  # each frame decodes shared + its own (zero) spectrum: the single texture
        torch.testing.assert_close(frames[f], single)
        torch.testing.assert_close(texture(16, frame=f), single)
    frames[1].sum().backward()  # a loss on frame 1 alone moves the shared spectrum and frame 1's own only
    assert texture.shared.grad.abs().sum() > 0
    unique = texture.unique.grad.abs().flatten(1).sum(1)
    assert unique[1] > 0 and unique[0] == 0 and unique[2] == 0
    torch.testing.assert_close(texture.shared.grad, texture.unique.grad[1])


def test_independent_frames_start_as_their_own_jobs_and_share_nothing():
    texture = SequenceTexture(starts(3, seeds=[0, 1, 2]), frames=3, independent=True)
    frames = texture(16)
    for f in range(3):
        torch.testing.assert_close(frames[f], make_texture_parameter("fourier", 16, f, None, torch.device("cpu"))(16))
    assert [n for n, _ in texture.named_parameters()] == ["unique"]
    with pytest.raises(ValueError, match="a start each"):
        SequenceTexture(starts(2), frames=3, independent=True)


def test_frame_objectives_move_from_the_first_to_the_last():
    assert frame_times(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    mesh = uv_sphere(8, 6)
    original = np.full((32, 32, 3), 0.5, np.float32)
    style = load_image(STARRY)
    job = SequenceJob(mesh, style, None, StyleSettings(**TINY), original, torch.device("cpu"), 3, from_original=True)
    content = job.content_weight
    assert job.mode == "from_original" and job.init == "original"
    assert job.frame_weights(0.0) == (0.0, content * ORIGINAL_HOLD)
    assert job.frame_weights(1.0) == (job.settings.style_weight, pytest.approx(content * ORIGINAL_END))
    # Painting to painting: the middle frame's targets are the mean of the two paintings' Gram matrices.
    job = SequenceJob(mesh, style, load_image(WAVE), StyleSettings(**TINY), original, torch.device("cpu"), 3)
    a, b = job.targets(32), job.targets_to(32)
    assert all(not torch.allclose(a[n], b[n]) for n in a)
    # Its plain original earns a share of the content weight (plain_original.py); the morph above held it all.
    assert job.content_weight == pytest.approx(content * PLAIN_SHARE)
    assert job.frame_weights(0.5) == (job.settings.style_weight, job.content_weight)


@pytest.mark.parametrize("kwargs, message", [
    (dict(frames=1, style_to=True), "at least 2 frames"),
    (dict(frames=3), "exactly one of them"),
    (dict(frames=3, style_to=True, from_original=True), "exactly one of them"),
    (dict(frames=3, objective_to="channel:rand1:0"), "needs the first objective"),
    (dict(frames=3, style_to=True, settings=dict(param="pixel")), "needs param fourier"),
    (dict(frames=3, style_to=True, settings=dict(style_loss="nnfm")), "needs style_loss gram"),
])
def test_bad_sequences_are_named(kwargs, message):
    style = load_image(STARRY)
    settings = StyleSettings(**TINY, **kwargs.pop("settings", {}))
    style_to = style if kwargs.pop("style_to", False) else None
    with pytest.raises(Exception, match=message):
        SequenceJob(uv_sphere(8, 6), style, style_to, settings, None, torch.device("cpu"), **kwargs)


def test_a_channel_sequence_excites_the_first_channel_first_and_the_last_last():
    mesh = uv_sphere(12, 8)
    settings = StyleSettings(**TINY, steps=30, objective="channel:rand1:0")
    result = stylize_sequence(mesh, None, None, settings, 3, objective_to="channel:rand1:3")
    assert result.report["mode"] == "channels" and len(result.frames) == 3
    job = SequenceJob(mesh, None, None, settings, None, torch.device("cpu"), 3, objective_to="channel:rand1:3")
    from backend.render import MeshTensors, render
    from backend.views import ring_cameras

    camera = ring_cameras(mesh.center, mesh.radius, 1)[0]
    excitation = []
    for frame in (result.frames[0], result.frames[-1]):
        image = render(MeshTensors.from_mesh(mesh, torch.device("cpu")), camera,
                       torch.from_numpy(frame), 32).permute(2, 0, 1)[None]
        features = job.net(image)["rand1"][0].mean(dim=(1, 2))
        excitation.append((features[0] - features[3]).item())
    assert excitation[0] > excitation[1], excitation  # channel 0 leads in the first frame, channel 3 in the last


def test_consecutive_differences():
    frames = [np.zeros((4, 4, 3)), np.full((4, 4, 3), 0.5), np.ones((4, 4, 3))]
    assert consecutive_differences(frames) == [0.5, 0.5]
    where = np.zeros((4, 4), bool)
    where[0, 0] = True
    frames[1][0, 0] = 0.0
    assert consecutive_differences(frames, where) == [0.0, 1.0]


def interpolate(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend", "interpolate", str(SPOT / "spot_triangulated.obj"),
                           "--texture", str(SPOT / "spot_texture.png"), "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def test_aligned_frames_are_far_closer_than_independent_ones(tmp_path):
    job = ["--style", str(STARRY), "--style-to", str(WAVE), "--frames", "4", "--steps", "80", "--texture-size", "64",
           "--render-size", "64", "--features", "efficientnet_lite0", "--quiet"]
    reports = {}
    for name, extra in (("aligned", []), ("independent", ["--independent"])):
        run = interpolate(tmp_path / name, *job, *extra)
        assert run.returncode == 0, run.stderr
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [f"frame_{i:04d}.png" for i in range(4)] + ["report.json"]
        reports[name] = json.loads((tmp_path / name / "report.json").read_text())
    aligned, independent = reports["aligned"], reports["independent"]
    assert not aligned["independent"] and independent["independent"] and aligned["mode"] == "styles"
    assert aligned["features"] == "efficientnet_lite0"
    # The frames written are the frames measured.
    written = [load_image(tmp_path / "aligned" / f"frame_{i:04d}.png") for i in range(4)]
    assert np.mean(consecutive_differences(written)) > 0
    ratio = aligned["mean_consecutive_difference"] / independent["mean_consecutive_difference"]
    assert ratio <= 0.5, (ratio, aligned["consecutive_difference"], independent["consecutive_difference"])
    a, b = np.mean(aligned["final_losses"]), np.mean(independent["final_losses"])
    assert abs(a - b) <= 0.1 * b, (aligned["final_losses"], independent["final_losses"])
    # Painting A's frame and painting B's frame differ: the sequence does morph.
    first, last = written[0], written[-1]
    assert np.abs(first - last).mean() > 2 * np.mean(aligned["consecutive_difference"]) / 3


@pytest.mark.parametrize("extra, message", [
    (["--style", str(STARRY), "--frames", "3"], "exactly one of --style-to"),
    (["--style", str(STARRY), "--style-to", str(WAVE), "--frames", "1"], "--frames must be 2 or more"),
    (["--style", str(STARRY), "--from-original", "--style-to", str(WAVE), "--frames", "3"], "exactly one of"),
    (["--objective-to", "channel:block1:0", "--frames", "3"], "--objective-to needs --objective"),
    (["--style", str(STARRY), "--style-to", "missing.jpg", "--frames", "3"], "missing.jpg"),
    (["--style", str(STARRY), "--style-to", str(WAVE), "--frames", "3", "--style-loss", "nnfm"], "style_loss gram"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, extra, message):
    run = interpolate(tmp_path / "out", *extra, "--steps", "1", "--features", "random", "--texture-size", "16",
                      "--render-size", "16")
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not (tmp_path / "out").exists()


def test_preserved_colours_hold_in_every_frame():
    """With preserve_colors every frame keeps each texel's own chromaticity, as a single texture does."""
    mesh = uv_sphere(12, 8)
    original = np.random.default_rng(3).uniform(0.2, 0.8, (32, 32, 3)).astype(np.float32)
    settings = StyleSettings(**TINY, steps=6, preserve_colors=True)
    result = stylize_sequence(mesh, load_image(STARRY), load_image(WAVE), settings, 3, original)

    def chromaticity(image):
        return image / image.sum(axis=-1, keepdims=True).clip(1e-6)

    for frame in result.frames:
        assert np.median(np.abs(chromaticity(frame) - chromaticity(original))) < 0.01
    assert np.abs(result.frames[0] - result.frames[-1]).mean() > 1e-4


def test_sequences_take_the_layout_term():
    """layout_weight counts in every frame: with everything else equal, the first step's loss grows by it."""
    mesh = uv_sphere(12, 8)
    original = np.random.default_rng(5).uniform(0.2, 0.8, (32, 32, 3)).astype(np.float32)
    first = {}
    for weight in (0.0, 2.0):
        settings = StyleSettings(**TINY, steps=1, layout_weight=weight)
        report = stylize_sequence(mesh, load_image(STARRY), load_image(WAVE), settings, 2, original).report
        first[weight] = report["loss"][0]["frames"]
    assert all(b > a + 0.05 for a, b in zip(first[0.0], first[2.0])), first


def test_sequences_take_the_balance_term():
    """balance_weight counts in every frame: with every other term off, a frame's loss is the balance term alone,
    zero without it and positive with it (the random start's patches follow no affine map of the original's)."""
    mesh = uv_sphere(12, 8)
    original = np.zeros((32, 32, 3), np.float32)
    original[:, :16] = 0.8  # patches of two luminances, so the fit has a slope to find
    original[:, 16:] = 0.3
    first = {}
    for weight in (0.0, 1e4):
        settings = StyleSettings(**TINY, steps=1, style_weight=0.0, content_weight=0.0, seam_weight=0.0,
                                 detail_weight=0.0, balance_weight=weight)
        report = stylize_sequence(mesh, load_image(STARRY), load_image(WAVE), settings, 2, original).report
        first[weight] = report["loss"][0]["frames"]
    assert first[0.0] == [0.0, 0.0] and all(value > 1e-3 for value in first[1e4]), first


def test_sequences_take_the_detail_term():
    """detail_weight counts in every frame towards that frame's mix of the two paintings' band contrasts; from the
    original it ramps up with the style weight, so frame 0 (the original itself) is not asked for strokes."""
    mesh = uv_sphere(12, 8)
    original = np.full((32, 32, 3), 0.6, np.float32)
    quiet = dict(style_weight=0.0, content_weight=0.0, seam_weight=0.0, balance_weight=0.0)
    first = {}
    for weight in (0.0, 1.0):
        settings = StyleSettings(**TINY, steps=1, **quiet, detail_weight=weight)
        report = stylize_sequence(mesh, load_image(STARRY), load_image(WAVE), settings, 3, original).report
        first[weight] = report["loss"][0]["frames"]
    assert first[0.0] == [0.0, 0.0, 0.0] and all(value > 0.1 for value in first[1.0]), first
    settings = StyleSettings(**TINY, steps=1, **{**quiet, "style_weight": 1e-9}, detail_weight=1.0)
    frames = stylize_sequence(mesh, load_image(STARRY), None, settings, 2, original, from_original=True).report
    assert frames["loss"][0]["frames"][0] == 0.0 and frames["loss"][0]["frames"][1] > 0.01, frames["loss"][0]
