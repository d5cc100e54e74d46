"""Interpolation jobs through a real server: previews of the middle frame while it works, every frame in the
result, and sequence requests that make no sense refused with a code."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.client import ServerError

from .support import MESH, REPO, STYLE_BYTES, finish, job_settings

WAVE_BYTES = (REPO / "data" / "styles" / "wave.jpg").read_bytes()


def submit_sequence(client, sequence: dict, style_to=WAVE_BYTES, texture=None, **overrides) -> str:
    return client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, job_settings(**overrides), texture=texture,
                         preview={"every": 2, "format": "float32"}, sequence=sequence, style_to=style_to)


def test_a_sequence_streams_its_middle_frame_and_returns_every_frame(main):
    with main.client() as client:
        job = submit_sequence(client, {"frames": 3, "to": "painting"}, steps=4, texture_size=32)
        events = finish(client, job)
    result = events[-1]
    assert result.type == "result", result.fields
    frames = result.arrays["frames"]
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.float16
    assert np.isfinite(frames.astype(np.float32)).all() and frames.min() >= 0 and frames.max() <= 1
    np.testing.assert_allclose(result.arrays["texture"], frames[-1].astype(np.float32), atol=1e-3)
    assert np.abs(frames[0].astype(np.float32) - frames[2].astype(np.float32)).mean() > 1e-4  # the frames differ
    report = result.fields["report"]
    assert report["frames"] == 3 and report["mode"] == "styles" and not report["independent"]
    assert len(report["final_losses"]) == 3 and len(report["consecutive_difference"]) == 2
    assert all(len(entry["frames"]) == 3 for entry in report["loss"])
    previews = [e for e in events[:-1] if "preview" in e.arrays]
    assert [e.fields["step"] for e in previews] == [2, 4]
    # The last preview is the middle frame as it stood after the last step, before finishing (which only
    # fills texels no view saw): on the seen texels they agree.
    last = previews[-1].arrays["preview"][..., :3]
    middle = frames[1].astype(np.float32)
    assert np.median(np.abs(last - middle)) < 2e-3


def test_a_sequence_from_the_original(main):
    texture = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    with main.client() as client:
        job = submit_sequence(client, {"frames": 2, "to": "original"}, style_to=None, texture=texture, steps=2)
        result = finish(client, job)[-1]
    assert result.type == "result", result.fields
    assert result.fields["report"]["mode"] == "from_original" and result.fields["report"]["init"] == "original"


@pytest.mark.parametrize("sequence, style_to, code, words", [
    ({"frames": 1, "to": "painting"}, WAVE_BYTES, "bad_settings", "2 or more"),
    ({"frames": 10_000, "to": "painting"}, WAVE_BYTES, "limit_frames", "up to 240 frames"),
    ({"frames": 3, "to": "sideways"}, WAVE_BYTES, "bad_settings", "must be one of"),
    ({"frames": 3, "to": "painting"}, None, "bad_image", "needs a 'style_to' image"),
    ({"frames": 3, "to": "original"}, None, "bad_settings", "needs a 'texture'"),
    ({"frames": 3, "to": "painting", "speed": 2}, WAVE_BYTES, "bad_settings", "must be an object with"),
    (None, WAVE_BYTES, "bad_image", "belongs to a 'sequence' job"),
])
def test_bad_sequences_are_refused_with_a_code(main, sequence, style_to, code, words):
    with main.client() as client:
        with pytest.raises(ServerError) as caught:
            submit_sequence(client, sequence, style_to=style_to)
    assert caught.value.code == code and words in str(caught.value), (caught.value.code, str(caught.value))


def test_a_sequence_takes_no_round_trip(main):
    """Its frames are shown through the UVs they are made in; a round trip would hand them back in others."""
    with main.client() as client:
        with pytest.raises(ServerError) as caught:
            submit_sequence(client, {"frames": 3, "to": "painting"}, unwrap="round-trip")
    assert caught.value.code == "bad_settings" and "it takes no unwrap" in str(caught.value)
