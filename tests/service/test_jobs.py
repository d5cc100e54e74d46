"""Jobs through a real server: round trips, the same texture as the command line, several clients,
cancelling, and clients or servers that go away."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq
import zmq.auth
from PIL import Image

from blender_addon.client import ServerError, ServerUnreachable, StyleTexClient
from blender_addon.protocol import PROTOCOL_VERSION, encode

from .support import (
    CLIENT_TIMEOUT,
    EQUIVALENCE,
    LONG,
    MAX_MESSAGE_MB,
    MESH,
    STYLE,
    STYLE_BYTES,
    environment,
    finish,
    job_settings,
    no_traceback,
    ready,
    submit,
    wait_for,
)

# --- basics ----------------------------------------------------------------------------------------


def test_raw_one_frame_ping_from_a_plain_dealer(main):
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    try:
        dealer.connect(main.address)
        before = time.time()
        dealer.send(b'{"type": "ping", "protocol": 1}')
        assert dealer.poll(5000), "no reply to a raw ping"
        frames = dealer.recv_multipart()
    finally:
        dealer.close()
    assert len(frames) == 1
    reply = json.loads(frames[0].decode("utf-8"))
    assert reply["type"] == "pong" and reply["protocol"] == 1
    assert isinstance(reply["time"], float) and abs(reply["time"] - before) < 60


def test_hello(main):
    with main.client() as client:
        info = client.hello()
        rtt = client.ping()
    assert info["server"].startswith("styletex ") and len(info["server"]) > len("styletex ")
    assert info["protocols"] == [PROTOCOL_VERSION]
    assert info["device"] == "cpu"  # --device cpu
    assert info["features"] == ["auto", "efficientnet_lite0", "vgg19", "vgg16", "random"]
    assert info["queue"] == 0
    assert info["limits"]["max_message_bytes"] == MAX_MESSAGE_MB << 20  # --max-message-mb reaches the server
    assert info["limits"]["max_texture_size"] >= 64 and info["limits"]["max_render_size"] >= 64
    assert 0 < rtt < 5


@pytest.mark.parametrize("fmt, max_size, size, preview_size", [
    ("uint8", 16, 32, 16),  # downscaled to max_size
    ("float16", 0, 48, 48),  # 0: full size
    ("float32", 64, 32, 32),  # never upscaled
])
def test_job_round_trip(main, fmt, max_size, size, preview_size):
    steps = 5
    with main.client() as client:
        job = submit(client, {"every": 2, "max_size": max_size, "format": fmt}, steps=steps, texture_size=size,
                     render_size=32, seed=4)
        assert isinstance(job, str) and job
        assert client.accepted["job"] == job
        # The mesh has UV room everywhere; no texture was sent, so the grey standing in is said.
        assert client.accepted["note"] == ("No original texture: a uniform grey of 0.8 stands in for it, as an "
                                           "untextured object shows.")
        events = finish(client, job)
    assert all(e.fields["job"] == job for e in events)
    progress, result = events[:-1], events[-1]
    assert result.type == "result", (result.type, result.fields)
    assert [e.type for e in progress] == ["progress"] * steps
    assert [e.fields["step"] for e in progress] == list(range(1, steps + 1))  # every step, in order
    for event in progress:
        f = event.fields
        assert f["steps"] == steps
        assert set(f["loss"]) == {"total", "style", "content"}
        assert isinstance(f["loss"]["total"], float) and math.isfinite(f["loss"]["total"])
        assert f["elapsed"] >= 0 and f["eta"] >= 0
    assert progress[-1].fields["eta"] == pytest.approx(0, abs=1e-9)
    # Previews at every 2nd step and at the last one.
    with_preview = [e.fields["step"] for e in progress if "preview" in e.arrays]
    assert with_preview == [2, 4, 5]
    for event in progress:
        if "preview" not in event.arrays:
            assert event.arrays == {}
            continue
        preview = event.arrays["preview"]
        assert preview.shape == (preview_size, preview_size, 4)
        assert preview.dtype == np.dtype(fmt)
        opaque = 255 if fmt == "uint8" else 1.0
        assert (preview[..., 3] == opaque).all()
        assert np.isfinite(preview.astype(np.float32)).all()
    texture = result.arrays["texture"]
    assert texture.shape == (size, size, 3) and texture.dtype == np.float32
    assert np.isfinite(texture).all() and texture.min() >= 0 and texture.max() <= 1
    assert texture.std() > 0.01
    report = result.fields["report"]
    assert report["steps_done"] == steps and report["cancelled"] is False
    assert [entry["step"] for entry in report["loss"]] == list(range(1, steps + 1))
    assert report["settings"]["steps"] == steps and report["settings"]["texture_size"] == size
    assert report["settings"]["features"] == "random" and report["settings"]["seed"] == 4
    assert report["settings"]["preview_every"] == 2
    assert report["features"] == "random" and report["device"] == "cpu"
    assert 0 < report["coverage"] <= 1 and report["seconds"] > 0 and report["seconds_per_step"] > 0
    assert report["uv_note"] == "" and set(report["uv_room"]) == {"starved_share", "stretched_share", "median_density",
                                                                  "shared_share"}


def test_a_job_that_names_no_network_gets_auto_and_the_pretrained_efficientnet(main):
    settings = {k: v for k, v in job_settings(steps=2, render_size=48).items() if k != "features"}
    with main.client() as client:
        job = client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, settings)
        events = finish(client, job)
    result = events[-1]
    assert result.type == "result", result.fields
    report = result.fields["report"]
    assert report["settings"]["features"] == "auto" and report["features"] == "efficientnet_lite0"
    assert report["features_reason"].startswith("auto: on the CPU") and report["quality_note"] == ""
    networks = {e.fields["network"] for e in events if e.type == "progress"}
    assert networks == {f"efficientnet_lite0 ({report['features_reason']})"}


def test_job_without_preview_sends_no_arrays_with_progress(main):
    with main.client() as client:
        events = finish(client, submit(client, steps=3))
    assert [e.type for e in events] == ["progress"] * 3 + ["result"]
    assert all(e.arrays == {} for e in events[:-1])



# --- the same job through the server and the command line ---------------------------------------


def test_server_and_command_line_give_the_same_texture(world, main):
    cli = world["cli"]
    out, err = cli.communicate(timeout=240)
    assert cli.returncode == 0, err
    with Image.open(world["root"] / "cli.png") as image:
        expected = np.asarray(image.convert("RGB"))
    texture = np.asarray(Image.open(world["root"] / "texture.png").convert("RGB"))
    with main.client() as client:
        job = client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, job_settings(**EQUIVALENCE),
                            texture=texture)
        assert client.accepted["note"] == ""  # a texture, and UV room everywhere: nothing to say
        events = finish(client, job)
    assert events[-1].type == "result", events[-1].fields
    served = events[-1].arrays["texture"]
    assert served.shape == expected.shape == (32, 32, 3)
    quantized = (np.clip(served, 0, 1) * 255 + 0.5).astype(np.uint8)  # as backend.formats.images.save_image
    difference = np.abs(quantized.astype(int) - expected.astype(int))
    assert difference.max() <= 1, difference.max()
    assert (difference == 0).mean() >= 0.99, (difference == 0).mean()
    # The losses agree too (the report travels as JSON).
    cli_report = json.loads((world["root"] / "cli.json").read_text())
    served_report = events[-1].fields["report"]
    assert served_report["init"] == cli_report["init"] == "original"
    np.testing.assert_allclose([e["total"] for e in served_report["loss"]], [e["total"] for e in cli_report["loss"]],
                               rtol=1e-4)



def test_a_round_trip_job_comes_back_in_the_uvs_it_was_sent_in(main):
    """unwrap round-trip over the service: the backend restyles in even UVs of its own and hands result and previews
    back in the client's, as the same job run in process does; 'even' (new UVs) and round trips of selected faces or
    sequences are refused with bad_settings."""
    import torch

    from backend.formats.images import load_image
    from backend.style.engine import stylize
    from backend.style.settings import StyleSettings

    texture = np.random.default_rng(7).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    settings = job_settings(unwrap="round-trip", init="original", steps=2)
    with main.client() as client:
        job = client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, settings, texture=texture,
                            preview={"every": 1, "max_size": 0, "format": "float32"})
        events = finish(client, job)
        result = events[-1]
        assert result.type == "result", result.fields
        assert result.fields["report"]["settings"]["unwrap"] == "round-trip"
        previews = [e.arrays["preview"] for e in events[:-1] if "preview" in e.arrays]
        assert len(previews) == 2 and all(p.shape == (32, 32, 4) for p in previews)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the server runs (environment()): sums in the same order
        try:
            local = stylize(MESH, [load_image(STYLE)], StyleSettings(**settings).validate(), texture / np.float32(255))
        finally:
            torch.set_num_threads(threads)
        served = np.asarray(result.arrays["texture"])
        assert np.abs(served - local.texture).max() < 1e-4
        for bad, extra, words in (({"unwrap": "even"}, {}, "keep or round-trip"),
                                  ({}, {"editable": np.ones(len(MESH.faces), bool)}, "no 'editable' faces")):
            with pytest.raises(ServerError) as info:
                client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, {**settings, **bad}, texture=texture,
                              **extra)
            assert info.value.code == "bad_settings" and words in str(info.value), str(info.value)

# --- several clients -----------------------------------------------------------------------------


def spy(client: StyleTexClient) -> list:
    """Records every message the client library receives, whatever it does with it afterwards."""
    seen = []
    receive = client._receive

    def recording(*args, **kwargs):
        message = receive(*args, **kwargs)
        seen.append(message)
        return message

    client._receive = recording
    return seen


def test_two_clients_at_once_see_only_their_own_job(main):
    jobs = {"a": {"steps": 3, "texture_size": 32}, "b": {"steps": 5, "texture_size": 48}}
    barrier = threading.Barrier(len(jobs))
    outcome: dict[str, dict] = {}

    def run(name: str) -> None:
        try:
            with main.client() as client:
                seen = spy(client)
                barrier.wait(timeout=30)
                job = submit(client, **jobs[name])
                events = finish(client, job)
                outcome[name] = {"job": job, "events": events, "seen": seen}
        except Exception as exc:  # reported by the main thread
            outcome[name] = {"error": exc}

    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    for name, spec in jobs.items():
        assert "error" not in outcome[name], outcome[name]
    assert outcome["a"]["job"] != outcome["b"]["job"]
    for name, spec in jobs.items():
        mine = outcome[name]
        events = mine["events"]
        assert events[-1].type == "result"
        assert [e.fields["step"] for e in events[:-1]] == list(range(1, spec["steps"] + 1))
        assert all(e.fields["steps"] == spec["steps"] for e in events[:-1])
        size = spec["texture_size"]
        assert events[-1].arrays["texture"].shape == (size, size, 3)
        # Everything that reached this client's socket: its own job's messages and pongs only.
        jobs_seen = {m.fields["job"] for m in mine["seen"] if "job" in m.fields}
        assert jobs_seen == {mine["job"]}
        assert {m.type for m in mine["seen"]} <= {"accepted", "progress", "result", "pong"}


# --- cancelling, and clients that go away -------------------------------------------------------


def test_cancel_mid_job_then_serve_the_next(main):
    with main.client() as client:
        job = submit(client, steps=LONG)
        events = []
        cancelled_at = math.inf
        for event in client.events(job):
            events.append(event)
            if event.type == "progress" and event.fields["step"] == 3:
                client.cancel(job)
                cancelled_at = time.monotonic()
            assert time.monotonic() - cancelled_at < 10, "the job goes on after cancel"
        assert events[-1].type == "cancelled", events[-1].fields
        assert time.monotonic() - cancelled_at < 10
        steps_done = events[-1].fields["steps_done"]
        assert 3 <= steps_done < LONG
        assert steps_done == events[-2].fields["step"]  # every step it did was reported
        assert [e.type for e in events[:-1]] == ["progress"] * len(events[:-1])
        # The server goes on: a new job from the same client.
        events = finish(client, submit(client, steps=2))
        assert events[-1].type == "result"
    no_traceback(main)


def test_a_live_client_keeps_its_long_job(main):
    # The client library must keep showing it is alive while progress pours in: a job that runs for
    # several client timeouts is not cancelled as long as its client is listening.
    hold = 2 * CLIENT_TIMEOUT
    with main.client() as client:
        job = submit(client, steps=LONG)
        start = None
        last = None
        for event in client.events(job):
            if start is None:
                start = time.monotonic()
            if event.type != "progress":
                last = event
                break
            if time.monotonic() - start > hold:
                client.cancel(job)
                cancelled_at, start = time.monotonic(), math.inf  # cancel once
            if start == math.inf:
                assert time.monotonic() - cancelled_at < 10, "the job goes on after cancel"
        assert last is not None and last.type == "cancelled"
    log = main.log()
    assert f"job {job}: client" not in log, "the server thought a listening client was silent"


CLIENT_SCRIPT = """
import sys
import numpy as np
from blender_addon.client import StyleTexClient
data = np.load(sys.argv[2])
client = StyleTexClient(sys.argv[1])
job = client.submit(data["positions"], data["faces"], data["uvs"], data["style"].tobytes(),
                    {"features": "random", "texture_size": 32, "render_size": 32, "steps": 100000})
for event in client.events(job):
    if event.type == "progress":
        print("PROGRESS", job, flush=True)
    else:
        print("ENDED", event.type, flush=True)
        break
"""


def test_a_killed_client_loses_its_job_and_the_next_one_runs(world, main):
    data = world["root"] / "job.npz"
    np.savez(data, positions=MESH.positions, faces=MESH.faces, uvs=MESH.uvs, style=np.frombuffer(STYLE_BYTES, np.uint8))
    child = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, main.address, str(data)], env=environment(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith("PROGRESS"), (line, child.stderr.read() if child.poll() is not None else "")
        job = line.split()[1]
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    with main.client() as client:
        events = finish(client, submit(client, steps=3))
        done = time.monotonic() - killed
    assert events[-1].type == "result"
    assert done < CLIENT_TIMEOUT + 15, done
    assert wait_for(lambda: f"job {job}: cancelled after" in main.log(), 10), main.log()[-3000:]
    log = main.log()
    silent = [line for line in log.splitlines() if f"job {job}: client" in line]
    assert len(silent) == 1 and "silent" in silent[0] and "cancelling" in silent[0], silent
    no_traceback(main)


def test_a_killed_server_is_reported_and_the_client_reconnects(world):
    server = ready(world, "killable")
    client = server.client()  # default timeout: 5 s
    assert client.timeout == 5.0
    try:
        job = submit(client, steps=LONG)
        events = client.events(job)
        for _ in range(2):
            assert next(events).type == "progress"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        killed = time.monotonic()
        outcome = {}

        def drain():  # in a thread, so that a client that hangs fails the test instead
            try:
                for _ in events:
                    pass
                outcome["ended"] = True
            except Exception as exc:
                outcome["error"] = exc
            outcome["waited"] = time.monotonic() - killed

        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        thread.join(client.timeout + 10)
        assert not thread.is_alive(), "the client hangs on a dead server"
        assert isinstance(outcome.get("error"), ServerUnreachable), outcome
        waited = outcome["waited"]
        assert waited <= client.timeout + 1.5, waited
        assert server.address in str(outcome["error"])
        # A new server on the same port: the same client object works again.
        world["servers"]["killable_again"].go().wait_ready()
        assert client.hello()["protocols"] == [PROTOCOL_VERSION]
        events = finish(client, submit(client, steps=2))
        assert events[-1].type == "result"
    finally:
        client.close()



# --- the artist's controls -------------------------------------------------------------------------


def test_several_paintings_blend_and_the_controls_are_checked(main):
    wave = (STYLE.parent / "wave.jpg").read_bytes()
    with main.client() as client:
        textures = []
        for style, blend in ((STYLE_BYTES, ""), ([STYLE_BYTES, wave], "1,0"), ([STYLE_BYTES, wave], "1,1")):
            job = client.submit(MESH.positions, MESH.faces, MESH.uvs, style, job_settings(style_blend=blend, style_scale=1.5))
            events = finish(client, job)
            assert events[-1].type == "result", events[-1].fields
            assert events[-1].fields["report"]["settings"]["style_scale"] == 1.5
            textures.append(np.asarray(events[-1].arrays["texture"]))
        assert np.array_equal(textures[0], textures[1]) and not np.array_equal(textures[0], textures[2])
        refused = (
            (dict(style=[STYLE_BYTES, wave], settings=job_settings(style_blend="1,1,1")), "bad_settings", "3 weights for 2"),
            (dict(style=STYLE_BYTES, settings=job_settings(preserve_colors=True)), "bad_settings", "send a 'texture'"),
            (dict(style=STYLE_BYTES, settings=job_settings(style_scale=50.0)), "bad_settings", "style_scale"),
        )
        for request, code, text in refused:
            with pytest.raises(ServerError) as info:
                client.submit(MESH.positions, MESH.faces, MESH.uvs, request["style"], request["settings"])
            assert info.value.code == code and text in str(info.value)
        # Selected faces only: one flag per face, and a texture to keep the others' texels.
        for editable, texture, text in ((np.ones(len(MESH.faces) - 1, bool), np.zeros((8, 8, 3), np.uint8), "one flag per face"),
                                        (np.ones(len(MESH.faces), bool), None, "need a 'texture'")):
            with pytest.raises(ServerError) as info:
                client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, job_settings(), texture=texture,
                              editable=editable)
            assert info.value.code == "bad_mesh" and text in str(info.value)
        texture = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        top = MESH.positions[MESH.faces].mean(axis=1)[:, 2] > 0.3
        job = client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, job_settings(), texture=texture, editable=top)
        events = finish(client, job)
        assert events[-1].type == "result", events[-1].fields
        served = np.asarray(events[-1].arrays["texture"])
        unchanged = np.all(np.round(served * 255).astype(np.uint8) == texture, axis=2)
        assert 0.2 < unchanged.mean() < 1  # the faces below the cap kept their texels, the cap did not
        # A gap in the paintings' numbering: style and style_3 without style_2.
        header = {"settings": job_settings()}
        arrays = {"positions": MESH.positions.astype(np.float32), "faces": MESH.faces.astype(np.int32),
                  "uvs": MESH.uvs.astype(np.float32), "style": np.frombuffer(STYLE_BYTES, np.uint8),
                  "style_3": np.frombuffer(wave, np.uint8)}
        with pytest.raises(ServerError) as info:
            client._request(encode("submit", header, arrays), ("accepted",))
        assert info.value.code == "bad_image" and "without gaps" in str(info.value)


def test_a_textures_alpha_comes_back_in_the_result_and_every_preview(main):
    """An original with transparency (as the add-on sends a cutout's image): its alpha is not styled, it is moved
    into the job's UVs with the colours, and the result and previews carry it."""
    from backend.texture.transfer import transfer_texture

    texture = np.random.default_rng(6).integers(0, 256, (32, 32, 4), dtype=np.uint8)
    texture[..., 3] = np.where(np.arange(32) < 16, 0, 255)[None, :]  # the left half see-through
    mirrored = MESH.uvs.copy()
    mirrored[..., 0] = 1 - mirrored[..., 0]
    moved = transfer_texture(texture[..., 3:] / 255.0, MESH.uvs, mirrored, 32)[..., 0]
    with main.client() as client:
        job = client.submit(MESH.positions, MESH.faces, mirrored, STYLE_BYTES, job_settings(), texture=texture,
                            texture_uvs=MESH.uvs, preview={"every": 1, "max_size": 32, "format": "float32"})
        events = finish(client, job)
    assert events[-1].type == "result", events[-1].fields
    served = np.asarray(events[-1].arrays["texture"])
    assert served.shape == (32, 32, 4) and np.abs(served[..., 3] - moved).max() < 1e-5
    assert served[:, :12, 3].min() > 0.99 and served[:, 20:, 3].max() < 0.01  # mirrored: the right half see-through now
    previews = [np.asarray(e.arrays["preview"]) for e in events if e.type == "progress" and "preview" in e.arrays]
    assert previews and all(np.abs(p[..., 3] - moved).max() < 1e-5 for p in previews)


def test_a_texture_laid_out_in_other_uvs_is_moved_into_the_jobs(main):
    """texture_uvs: the texture lies in the mesh's old UVs, the job runs in new ones (here mirrored), and the
    backend moves it across first: a job that barely leaves the original returns the moved texture."""
    from backend.texture.transfer import transfer_texture

    texture = np.random.default_rng(5).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mirrored = MESH.uvs.copy()
    mirrored[..., 0] = 1 - mirrored[..., 0]
    moved = transfer_texture(texture / 255.0, MESH.uvs, mirrored, 32)
    settings = job_settings(init="original", steps=1, learning_rate=1e-4)
    with main.client() as client:
        job = client.submit(MESH.positions, MESH.faces, mirrored, STYLE_BYTES, settings, texture=texture,
                            texture_uvs=MESH.uvs)
        events = finish(client, job)
        assert events[-1].type == "result", events[-1].fields
        served = np.asarray(events[-1].arrays["texture"])
        near, far = np.abs(served - moved).mean(), np.abs(served - texture / 255.0).mean()
        assert near < 0.06 and far > 0.2, (near, far)
        for extra, text in ((dict(texture=None), "send the texture too"),
                            (dict(texture=texture, editable=np.ones(len(MESH.faces), bool)), "editable faces"),
                            (dict(texture=texture, texture_uvs=MESH.uvs[:-1]), "texture_uvs: uvs must have shape")):
            with pytest.raises(ServerError) as info:
                client.submit(MESH.positions, MESH.faces, mirrored, STYLE_BYTES, settings,
                              **{"texture_uvs": MESH.uvs, **extra})
            assert info.value.code == "bad_mesh" and text in str(info.value), str(info.value)
