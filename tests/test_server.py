"""The job server as it runs: real `python -m backend serve` processes, real sockets on loopback,
the real client library (blender_addon/client.py) and raw DEALER sockets. (Two servers bind
0.0.0.0, to test where a server may listen; they too are only ever reached over 127.0.0.1.)

Every process this module needs is started once, all of them at the same time, by the module
fixture `world` (each one imports torch, which costs seconds); tests then wait for the one they
use. Servers log to files (a pipe nobody reads could fill up and stall a server). Every process is
terminated, or killed, in the fixture's teardown.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth
from PIL import Image

from backend.obj_io import write_obj
from backend.primitives import uv_sphere
from blender_addon.client import ClientError, CurveKeys, ServerError, ServerUnreachable, StyleTexClient
from blender_addon.protocol import PROTOCOL_VERSION, encode

REPO = Path(__file__).resolve().parent.parent
STYLE = REPO / "data" / "styles" / "starry_night.jpg"
STYLE_BYTES = STYLE.read_bytes()
MESH = uv_sphere(6, 12)
CLIENT_TIMEOUT = 3.0  # the main server's --client-timeout (pings come every second)
MAX_MESSAGE_MB = 2  # the main server's --max-message-mb
LONG = 100_000  # steps of a job that only ends when cancelled (the server's limit)
READY_S = 120  # a server start may take this long on a busy machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment() -> dict:
    # One thread per process: several run side by side and the scenes are tiny.
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def job_settings(**overrides) -> dict:
    return {"features": "random", "texture_size": 32, "render_size": 32, "steps": 4, "seed": 1, **overrides}


def submit(client: StyleTexClient, preview: dict | None = None, **overrides) -> str:
    return client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, job_settings(**overrides), preview=preview)


def finish(client: StyleTexClient, job: str, within: float = 90.0) -> list:
    """All of a job's events; fails after `within` seconds instead of waiting forever (the client
    pings every second while it waits, so a pong arrives at least that often to check the time)."""
    deadline = time.monotonic() + within
    receive = client._receive

    def bounded(*args, **kwargs):
        message = receive(*args, **kwargs)
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job} did not end within {within} s")
        return message

    client._receive = bounded
    try:
        return list(client.events(job))
    finally:
        client._receive = receive


# `python -m backend serve ...` that imports everything first and binds once a line arrives on stdin:
# the same entry point as `python -m backend` (backend/__main__.py), warmed up ahead of time.
STANDBY = ("import sys, backend.cli, backend.service.server; sys.stdin.readline(); "
           "sys.exit(backend.cli.main(sys.argv[1:]))")


class Server:
    """One `python -m backend serve` process, logging to a file."""

    def __init__(self, name: str, root: Path, args: list[str], port: int | None = None, curve: CurveKeys | None = None,
                 bind_host: str = "127.0.0.1", standby: bool = False):
        self.name, self.root, self.args, self.curve, self.standby = name, root, args, curve, standby
        self.port = port or free_port()
        self.bind = f"tcp://{bind_host}:{self.port}"
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log_path = root / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.ready = False

    def start(self) -> "Server":
        self.log_file = open(self.log_path, "wb")
        launcher = ["-c", STANDBY] if self.standby else ["-m", "backend"]
        self.process = subprocess.Popen([sys.executable, *launcher, "serve", "--bind", self.bind, *self.args],
                                        cwd=self.root, env=environment(),
                                        stdin=subprocess.PIPE if self.standby else subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self.log_file)
        return self

    def go(self) -> "Server":
        """A standby server binds now."""
        self.process.stdin.write(b"\n")
        self.process.stdin.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> "Server":
        """Pings with the client library until the server answers (or fails the test)."""
        deadline = time.monotonic() + READY_S
        while not self.ready:
            if self.process.poll() is not None:
                pytest.fail(f"server {self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                with StyleTexClient(self.address, timeout=0.5, curve=self.curve) as client:
                    client.ping()
                self.ready = True
            except ServerUnreachable:
                if time.monotonic() > deadline:
                    pytest.fail(f"server {self.name} did not answer within {READY_S} s:\n{self.log()}")
        return self

    def client(self, **kwargs) -> StyleTexClient:
        return StyleTexClient(self.address, curve=self.curve, **kwargs)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.log_file.close()


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def keygen(root: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "backend", "keygen", str(root / "keys"), "--name", name],
                            cwd=root, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    processes: list[subprocess.Popen] = []
    servers: dict[str, Server] = {}
    try:
        # The equivalence reference: the same job through the command line.
        write_obj(root / "mesh.obj", MESH)
        texture = np.random.default_rng(7).integers(0, 256, (24, 20, 3), dtype=np.uint8)
        Image.fromarray(texture).save(root / "texture.png")
        cli = subprocess.Popen(
            [sys.executable, "-m", "backend", "stylize", str(root / "mesh.obj"), "--style", str(STYLE),
             "--texture", str(root / "texture.png"), "--out", str(root / "cli.png"), "--device", "cpu",
             "--report", str(root / "cli.json"), "--quiet", *EQUIVALENCE_ARGS],
            cwd=root, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(cli)
        servers["main"] = Server("main", root, ["--device", "cpu", "--client-timeout", str(CLIENT_TIMEOUT),
                                                "--max-message-mb", str(MAX_MESSAGE_MB)])
        # Non-loopback with --insecure (reached over 127.0.0.1: 0.0.0.0 includes it); also the queue
        # test's server, and the last test stops it with SIGINT.
        servers["open"] = Server("open", root, ["--device", "cpu", "--insecure", "--max-queue", "1",
                                                "--client-timeout", "30"], bind_host="0.0.0.0")
        servers["killable"] = Server("killable", root, ["--device", "cpu"])
        servers["killable_again"] = Server("killable_again", root, ["--device", "cpu"], port=servers["killable"].port,
                                           standby=True)
        for server in servers.values():
            server.start()
        refused_port = free_port()
        refused = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--bind", f"tcp://0.0.0.0:{refused_port}"],
                                   cwd=root, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(refused)
        servers["no_cuda"] = Server("no_cuda", root, ["--device", "cuda"]).start()
        # CURVE: key pairs for the server and the client from `keygen`, and an intruder's pair made
        # directly (one torch start less); only the client's public key is in the allowed folder.
        keygens = {name: keygen(root, name) for name in ("server", "client")}
        keygen_runs = {}
        for name, process in keygens.items():
            out, err = process.communicate(timeout=120)
            keygen_runs[name] = (process.returncode, out, err)
        allowed = root / "allowed"
        allowed.mkdir()
        keys = root / "keys"
        (root / "intruder").mkdir()
        zmq.auth.create_certificates(str(root / "intruder"), "intruder")
        if (keys / "client.key").exists():
            shutil.copy(keys / "client.key", allowed / "client.key")
        curve = None
        if all(run[0] == 0 for run in keygen_runs.values()):
            curve = CurveKeys.from_files(str(keys / "server.key"), str(keys / "client.key_secret"))
            # Not loopback: allowed, since CURVE keys are given.
            servers["curve"] = Server("curve", root, ["--device", "cpu", "--curve-secret", str(keys / "server.key_secret"),
                                                      "--curve-clients", str(allowed)], curve=curve,
                                      bind_host="0.0.0.0").start()
        yield {"root": root, "servers": servers, "cli": cli, "refused": refused, "refused_port": refused_port,
               "keygen": keygen_runs, "keys": keys, "allowed": allowed, "curve": curve,
               "intruder": root / "intruder" / "intruder.key_secret"}
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.stop()
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()


def ready(world, name: str) -> Server:
    if name not in world["servers"]:
        pytest.fail(f"server {name} was not started (see test_keygen_writes_key_pairs)")
    return world["servers"][name].wait_ready()


@pytest.fixture(scope="module")
def main(world) -> Server:
    return ready(world, "main")


def no_traceback(server: Server) -> None:
    log = server.log()
    assert "Traceback" not in log, log[-4000:]


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
    assert "random" in info["features"] and set(info["features"]) >= {"vgg19", "vgg16", "random"}
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


def test_job_without_preview_sends_no_arrays_with_progress(main):
    with main.client() as client:
        events = finish(client, submit(client, steps=3))
    assert [e.type for e in events] == ["progress"] * 3 + ["result"]
    assert all(e.arrays == {} for e in events[:-1])


# --- the same job through the server and the command line ---------------------------------------

EQUIVALENCE = {"steps": 6, "texture_size": 32, "render_size": 48, "seed": 5, "views_per_step": 2, "learning_rate": 0.08,
               "content_weight": 0.3, "style_weight": 2.0, "init": "original"}
EQUIVALENCE_ARGS = ["--features", "random", "--steps", "6", "--texture-size", "32", "--render-size", "48", "--seed", "5",
                    "--views-per-step", "2", "--learning-rate", "0.08", "--content-weight", "0.3", "--style-weight", "2.0",
                    "--init", "original"]


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
        events = finish(client, job)
    assert events[-1].type == "result", events[-1].fields
    served = events[-1].arrays["texture"]
    assert served.shape == expected.shape == (32, 32, 3)
    quantized = (np.clip(served, 0, 1) * 255 + 0.5).astype(np.uint8)  # as backend.images.save_image
    difference = np.abs(quantized.astype(int) - expected.astype(int))
    assert difference.max() <= 1, difference.max()
    assert (difference == 0).mean() >= 0.99, (difference == 0).mean()
    # The losses agree too (the report travels as JSON).
    cli_report = json.loads((world["root"] / "cli.json").read_text())
    served_report = events[-1].fields["report"]
    assert served_report["init"] == cli_report["init"] == "original"
    np.testing.assert_allclose([e["total"] for e in served_report["loss"]], [e["total"] for e in cli_report["loss"]],
                               rtol=1e-4)


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


# --- malformed input -----------------------------------------------------------------------------

SMALL = uv_sphere(3, 6)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


TINY_STYLE = png_bytes(np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8))
VALID_SETTINGS = {"features": "random", "texture_size": 32, "render_size": 32, "steps": 2}


def decodes(blob: bytes) -> bool:
    """Whether the server could decode these image bytes (as it does: PIL, then RGB)."""
    try:
        with Image.open(io.BytesIO(blob)) as image:
            image.convert("RGB")
        return True
    except Exception:
        return False


def header_and_frames(settings=None, preview=None, drop=(), replace=None, style=TINY_STYLE) -> tuple[dict, list[bytes]]:
    """A valid submit as (header, array frames), with arrays replaced or dropped."""
    arrays = {"positions": SMALL.positions.astype(np.float32), "faces": SMALL.faces.astype(np.int32),
              "uvs": SMALL.uvs.astype(np.float32), "style": np.frombuffer(style, np.uint8)}
    arrays.update(replace or {})
    for name in drop:
        arrays.pop(name)
    header = {"type": "submit", "protocol": 1, "settings": VALID_SETTINGS if settings is None else settings}
    if preview is not None:
        header["preview"] = preview
    header["arrays"] = [{"name": n, "dtype": a.dtype.name, "shape": list(a.shape)} for n, a in arrays.items()]
    return header, [np.ascontiguousarray(a).tobytes() for a in arrays.values()]


def message(header, frames=()) -> list[bytes]:
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return [head, *frames]


def fuzz_cases(rng: np.random.Generator, count: int) -> list[tuple[str, list[bytes], set | None]]:
    """Malformed messages: (what, frames, acceptable error codes or None for any)."""
    valid_header, valid_frames = header_and_frames()
    valid_json = json.dumps(valid_header)

    def random_frames():
        frames = [rng.bytes(int(rng.integers(0, 200))) for _ in range(int(rng.integers(1, 5)))]
        return "random frames", frames, None

    def truncated_json():
        cut = int(rng.integers(1, len(valid_json)))
        return "truncated JSON", [valid_json[:cut].encode(), *valid_frames], {"bad_json"}

    def wrong_version():
        version = [0, 2, -1, 3, 99, 2**40][int(rng.integers(0, 6))] if rng.random() < 0.6 else \
            ["1", 1.5, 1.0, None, True, [1], {"v": 1}][int(rng.integers(0, 7))]
        header = {**valid_header, "protocol": version}
        expected = {"bad_version"} if type(version) is int else {"bad_header"}
        return f"protocol {version!r}", message(header, valid_frames), expected

    def unknown_type():
        kind = ["pong", "accepted", "progress", "result", "cancelled", "error", "bogus", "", None, 7, "SUBMIT",
                "submit ", ["submit"]][int(rng.integers(0, 13))]
        return f"type {kind!r}", message({**valid_header, "type": kind}, valid_frames), {"unknown_type"}

    def wrong_frame_count():
        frames = list(valid_frames)
        if rng.random() < 0.5:
            frames.pop(int(rng.integers(0, len(frames))))
        else:
            frames.insert(int(rng.integers(0, len(frames) + 1)), rng.bytes(int(rng.integers(0, 64))))
        return f"{len(frames)} frames for 4 arrays", message(valid_header, frames), {"bad_frames"}

    def bad_dtype():
        header = json.loads(valid_json)
        dtype = ["float64", "int8", "bool", "object", "<f4", "f4", None, 5, "complex64", "uint32", "Float32", ""][
            int(rng.integers(0, 12))]
        header["arrays"][int(rng.integers(0, 4))]["dtype"] = dtype
        return f"dtype {dtype!r}", message(header, valid_frames), {"bad_dtype"}

    def huge_shape():
        header = json.loads(valid_json)
        shape = [[2**28 + 1], [2**20, 2**20], [2**40, 3], [2**15, 2**15, 2**15], [10**30]][int(rng.integers(0, 5))]
        header["arrays"][int(rng.integers(0, 4))]["shape"] = shape
        return f"shape {shape}", message(header, valid_frames), {"too_large"}

    def frame_size_mismatch():
        header = json.loads(valid_json)
        k = int(rng.integers(0, 4))
        header["arrays"][k]["shape"][0] += int(rng.choice([-1, 1, 5]))
        return "frame size mismatch", message(header, valid_frames), {"bad_frames"}

    def nan_positions():
        positions = SMALL.positions.astype(np.float32).copy()
        positions[int(rng.integers(0, len(positions))), int(rng.integers(0, 3))] = rng.choice([np.nan, np.inf, -np.inf])
        return "NaN/Inf positions", message(*header_and_frames(replace={"positions": positions})), {"bad_mesh"}

    def nan_uvs():
        uvs = SMALL.uvs.astype(np.float32).copy()
        uvs.reshape(-1)[int(rng.integers(0, uvs.size))] = np.nan
        return "NaN uvs", message(*header_and_frames(replace={"uvs": uvs})), {"bad_mesh"}

    def bad_faces():
        faces = SMALL.faces.astype(np.int64).copy()
        value = [len(SMALL.positions), len(SMALL.positions) + 7, -1, -(2**31), 2**31 - 1, 2**62][int(rng.integers(0, 6))]
        faces[int(rng.integers(0, len(faces))), int(rng.integers(0, 3))] = value
        return f"face index {value}", message(*header_and_frames(replace={"faces": faces})), {"bad_mesh"}

    def bad_mesh_shapes():
        f = len(SMALL.faces)
        options = [
            ("positions (V, 2)", {"positions": np.zeros((5, 2), np.float32)}, ()),
            ("positions (V, 3, 1)", {"positions": np.zeros((5, 3, 1), np.float32)}, ()),
            ("positions int32", {"positions": SMALL.positions.astype(np.int32)}, ()),
            ("faces float32", {"faces": SMALL.faces.astype(np.float32)}, ()),
            ("faces (F, 4)", {"faces": np.zeros((f, 4), np.int32)}, ()),
            ("faces (F,)", {"faces": np.zeros(f, np.int32)}, ()),
            ("no faces", {"faces": np.zeros((0, 3), np.int32), "uvs": np.zeros((0, 3, 2), np.float32)}, ()),
            ("uvs (F, 3, 3)", {"uvs": np.zeros((f, 3, 3), np.float32)}, ()),
            ("uvs (F + 1, 3, 2)", {"uvs": np.zeros((f + 1, 3, 2), np.float32)}, ()),
            ("uvs uint16", {"uvs": np.zeros((f, 3, 2), np.uint16)}, ()),
            ("no positions", {}, ("positions",)),
            ("no faces array", {}, ("faces",)),
            ("no uvs", {}, ("uvs",)),
        ]
        what, replace, drop = options[int(rng.integers(0, len(options)))]
        return what, message(*header_and_frames(replace=replace, drop=drop)), {"bad_mesh"}

    def zero_dim_positions():
        header, frames = header_and_frames()
        header["arrays"][0]["shape"] = []
        frames[0] = np.float32(1).tobytes()
        return "0-d positions", message(header, frames), {"bad_mesh"}

    def undecodable_style():
        choice = int(rng.integers(0, 4))
        if choice == 0:
            blob = b"\x00not an image" + rng.bytes(int(rng.integers(0, 300)))
        elif choice == 1:
            blob = STYLE_BYTES[: int(rng.integers(2, 3000))]
        else:
            blob = bytearray(TINY_STYLE)
            for _ in range(int(rng.integers(1, 6))):
                position = int(rng.integers(8, len(blob)))  # keep the signature: a "PNG" that is broken
                blob[position] ^= int(rng.integers(1, 256))
            blob = bytes(blob)
        if decodes(blob):
            blob = b"\x00" + blob  # no image format starts like this
        return "undecodable style bytes", message(*header_and_frames(style=blob)), {"bad_image"}

    def bad_style_array():
        options = [
            ("style (H, W, 2)", np.zeros((4, 4, 2), np.uint8)),
            ("style (H, W)", np.zeros((4, 4), np.uint8)),
            ("style (H, W, 5)", np.zeros((4, 4, 5), np.uint8)),
            ("style (0, 4, 3)", np.zeros((0, 4, 3), np.uint8)),
            ("style NaN", np.full((4, 4, 3), np.nan, np.float32)),
            ("style Inf", np.full((4, 4, 3), np.inf, np.float16)),
            ("style 1-D uint16", np.zeros(10, np.uint16)),
            ("style empty bytes", np.zeros(0, np.uint8)),
            ("style (H, W, 3, 1)", np.zeros((4, 4, 3, 1), np.uint8)),
        ]
        what, style = options[int(rng.integers(0, len(options)))]
        return what, message(*header_and_frames(replace={"style": style})), {"bad_image"}

    def missing_style():
        return "no style and no objective", message(*header_and_frames(drop=("style",))), {"bad_image"}

    bad_settings_list = [
        {"steps": "10"}, {"steps": 1.5}, {"steps": True}, {"steps": 0}, {"steps": -3}, {"steps": None},
        {"texture_size": 4}, {"texture_size": "64"}, {"render_size": 8}, {"features": 3}, {"features": "resnet"},
        {"style_weight": "x"}, {"style_weight": -1}, {"style_weight": [1]}, {"seed": -1}, {"seed": 2**64},
        {"unknown_setting": 1}, {"weights": "/etc/passwd"}, {"weights": None}, {"device": "cuda"}, {"device": "cpu"},
        {"objective": 5}, {"objective": "bogus"}, {"objective": "channel:relu4_1:x"}, {"param": None},
        {"param": "wavelet"}, {"learning_rate": 0}, {"learning_rate": False}, {"views_per_step": 1000},
        {"zoom_min": 2.0, "zoom_max": 1.0}, {"style_decay": 1.0}, {"fov_deg": 180}, {"filter": "cubic"},
        {"boundary": 7}, {"init": "zeros"}, {"margin": -1}, {"style_size": 1.5},
    ]

    def bad_settings():
        bad = bad_settings_list[int(rng.integers(0, len(bad_settings_list)))]
        header, frames = header_and_frames(settings={**VALID_SETTINGS, **bad})
        return f"settings {bad}", message(header, frames), {"bad_settings"}

    def not_an_object_settings():
        settings = [[], "steps", 5, [["steps", 2]]][int(rng.integers(0, 4))]
        return f"settings {settings!r}", message(*header_and_frames(settings=settings)), {"bad_settings"}

    def infinite_setting():
        # 1e999 is valid JSON syntax, and Python reads it as infinity.
        header, frames = header_and_frames()
        text = json.dumps(header).replace('"steps": 2', '"steps": 2, "style_weight": 1e999')
        return "style_weight 1e999", [text.encode(), *frames], {"bad_settings"}

    def too_large_settings():
        bad = [{"texture_size": 8192}, {"steps": LONG + 1}, {"steps": 10**6}][int(rng.integers(0, 3))]
        return f"settings {bad}", message(*header_and_frames(settings={**VALID_SETTINGS, **bad})), {"too_large"}

    def bad_preview():
        preview = [{"every": -1}, {"every": 1.5}, {"every": True}, {"format": "float64"}, {"format": None},
                   {"max_size": "x"}, {"extra": 1}, [], "every", {"every": 10**7}][int(rng.integers(0, 10))]
        return f"preview {preview!r}", message(*header_and_frames(preview=preview)), {"bad_settings"}

    def bad_header():
        frame0 = [b"[]", b'"submit"', b"5", b"null", b"true", b'{"type": "ping"}', b'{"type": "ping", "protocol": "1"}'][
            int(rng.integers(0, 7))]
        return f"header {frame0!r}", [frame0], {"bad_header"}

    def bad_json():
        frame0 = [b"\xff\xfe\xfd", b'{"type": "ping", "protocol": 1, "x": NaN}',
                  b'{"type": "ping", "protocol": 1, "x": -Infinity}', b"{'type': 'ping'}", b"", b"{", b"\x00" * 8,
                  b'{"type": "ping", "protocol": 1}}'][int(rng.integers(0, 8))]
        return f"frame 0 {frame0[:30]!r}", [frame0], {"bad_json"}

    def deep_json():
        depth = int(rng.integers(2000, 30000))
        return f"nesting {depth}", [b"[" * depth + b"]" * depth], {"bad_json"}

    def big_header():
        return "header over 64 KB", message({"type": "ping", "protocol": 1, "pad": "x" * 70000}), {"bad_header"}

    def bad_descriptors():
        header = json.loads(valid_json)
        k = int(rng.integers(0, 4))
        options = [
            lambda: header.__setitem__("arrays", {"positions": 1}),
            lambda: header["arrays"].__setitem__(k, "positions"),
            lambda: header["arrays"][k].pop("name"),
            lambda: header["arrays"][k].__setitem__("name", ""),
            lambda: header["arrays"][k].__setitem__("name", "x" * 100),
            lambda: header["arrays"][k].__setitem__("shape", [1, 1, 1, 1, 1]),
            lambda: header["arrays"][k].__setitem__("shape", [-1]),
            lambda: header["arrays"][k].__setitem__("shape", [True]),
            lambda: header["arrays"][k].__setitem__("shape", "3"),
            lambda: header["arrays"][k].__setitem__("name", header["arrays"][(k + 1) % 4]["name"]),
        ]
        options[int(rng.integers(0, len(options)))]()
        return f"descriptors {header['arrays']!r}"[:120], message(header, valid_frames), {"bad_arrays"}

    def too_many_arrays():
        header = {"type": "submit", "protocol": 1, "settings": VALID_SETTINGS,
                  "arrays": [{"name": f"a{k}", "dtype": "uint8", "shape": [1]} for k in range(17)]}
        return "17 arrays", message(header, [b"\x00"] * 17), {"bad_arrays"}

    def unknown_cancel():
        job = [rng.bytes(6).hex(), None, 5, [], "", {"job": 1}][int(rng.integers(0, 6))]
        return f"cancel {job!r}", message({"type": "cancel", "protocol": 1, "job": job}), {"unknown_job"}

    def too_large_message():
        # Two frames under libzmq's per-frame backstop (--max-message-mb), together over the limit:
        # the application check answers.
        half = (MAX_MESSAGE_MB << 20) // 2 + 1000
        header = {"type": "submit", "protocol": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [half]},
                                                              {"name": "b", "dtype": "uint8", "shape": [half]}]}
        return "message over --max-message-mb", message(header, [bytes(half), bytes(half)]), {"too_large"}

    generators = [random_frames, truncated_json, wrong_version, unknown_type, wrong_frame_count, bad_dtype, huge_shape,
                  frame_size_mismatch, nan_positions, nan_uvs, bad_faces, bad_mesh_shapes, zero_dim_positions,
                  undecodable_style, bad_style_array, missing_style, bad_settings, not_an_object_settings,
                  infinite_setting, too_large_settings, bad_preview, bad_header, bad_json, deep_json, bad_descriptors,
                  unknown_cancel]
    cases = [g() for g in generators]  # each at least once
    cases += [big_header(), too_many_arrays(), too_large_message(), too_large_message()]
    cases += [generators[int(k)]() for k in rng.integers(0, len(generators), size=count - len(cases))]
    # And every bad setting at least once.
    for bad in bad_settings_list:
        cases.append((f"settings {bad}", message(*header_and_frames(settings={**VALID_SETTINGS, **bad})), {"bad_settings"}))
    return cases


def receive_reply(dealer: zmq.Socket, what: str) -> dict:
    assert dealer.poll(10_000), f"no reply to {what}"
    frames = dealer.recv_multipart()
    assert len(frames) == 1, (what, len(frames))
    return json.loads(frames[0])


def test_fuzz_every_malformed_message_gets_an_error_and_the_server_goes_on(main):
    rng = np.random.default_rng(20240607)
    cases = fuzz_cases(rng, 1100)
    assert len(cases) >= 1000
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(main.address)
    codes: dict[str, int] = {}
    try:
        for what, frames, expected in cases:
            dealer.send_multipart(frames)
            reply = receive_reply(dealer, what)
            assert reply.get("type") == "error", (what, reply)
            code, text = reply.get("code"), reply.get("message")
            assert isinstance(code, str) and code, (what, reply)
            assert isinstance(text, str) and text.strip(), (what, reply)
            if expected is not None:
                assert code in expected, (what, reply)
            codes[code] = codes.get(code, 0) + 1
        assert not dealer.poll(300), "a message got more than one reply"
    finally:
        dealer.close()
    assert main.process.poll() is None, main.log()[-3000:]
    no_traceback(main)
    assert set(codes) >= {"bad_json", "bad_header", "bad_version", "unknown_type", "bad_arrays", "bad_dtype", "bad_frames",
                          "too_large", "bad_mesh", "bad_image", "bad_settings", "unknown_job"}, codes
    with main.client() as client:
        events = finish(client, submit(client, steps=2))
    assert events[-1].type == "result"


@pytest.mark.parametrize("bad, needle", [
    ({"weights": "/etc/passwd"}, "weights"),
    ({"device": "cuda"}, "device"),
    ({"steps": "10"}, "steps"),
    ({"texture_size": 4}, "texture_size"),
])
def test_bad_settings_are_named(main, bad, needle):
    with main.client() as client:
        with pytest.raises(ServerError) as info:
            client.submit(SMALL.positions, SMALL.faces, SMALL.uvs, TINY_STYLE, {**VALID_SETTINGS, **bad})
    assert info.value.code == "bad_settings"
    assert needle in str(info.value)


def test_an_oversized_style_image_is_too_large(main):
    # A tiny file of a huge image: refused from its header, as too_large.
    wide = png_bytes(np.zeros((1, 9000, 3), np.uint8))
    with main.client() as client:
        with pytest.raises(ServerError) as info:
            client.submit(SMALL.positions, SMALL.faces, SMALL.uvs, wide, VALID_SETTINGS)
    assert info.value.code == "too_large", str(info.value)
    assert "9000" in str(info.value)


def test_a_client_that_never_reads_does_not_stall_the_server(main):
    flood = zmq.Context.instance().socket(zmq.DEALER)
    flood.setsockopt(zmq.LINGER, 0)
    flood.setsockopt(zmq.SNDHWM, 0)
    flood.setsockopt(zmq.RCVHWM, 1)
    flood.setsockopt(zmq.RCVBUF, 4096)
    flood.connect(main.address)
    try:
        # Each of these gets a 2 KB error reply (the job id comes back in it); a few thousand fill
        # the server's queue for this peer and the socket buffers.
        cancel = encode("cancel", {"job": "x" * 2000})
        for _ in range(4000):
            flood.send_multipart(cancel)
        time.sleep(1)
        with main.client() as client:
            start = time.monotonic()
            answered = False
            while time.monotonic() - start < 30 and not answered:
                try:
                    client.hello()
                    answered = True
                except ServerUnreachable:
                    pass
        assert answered, "the server stalled on a client that does not read its replies"
    finally:
        flood.close()
    assert main.process.poll() is None
    no_traceback(main)


# --- the queue -----------------------------------------------------------------------------------


def test_queue_limit(world):
    server = ready(world, "open")
    running, waiting, third = server.client(), server.client(), server.client()
    try:
        job1 = submit(running, steps=LONG)
        assert next(running.events(job1)).type == "progress"  # job 1 runs
        job2 = submit(waiting, steps=2)  # waits: the queue holds one job
        with pytest.raises(ServerError) as info:
            submit(third, steps=2)
        assert info.value.code == "queue_full"
        assert "1" in str(info.value)
        assert third.hello()["queue"] == 2  # not `running`: a request while a job streams drops its events
        waiting.cancel(job2)
        events2 = finish(waiting, job2)
        assert events2[-1].type == "cancelled" and events2[-1].fields["steps_done"] == 0
        # Room again: the third client gets in while job 1 still runs.
        job3 = submit(third, steps=2)
        running.cancel(job1)
        assert finish(running, job1)[-1].type == "cancelled"
        assert finish(third, job3)[-1].type == "result"
    finally:
        for client in (running, waiting, third):
            client.close()
    no_traceback(server)


# --- CURVE ---------------------------------------------------------------------------------------


def test_keygen_writes_key_pairs(world):
    keys = world["keys"]
    for name, (code, out, err) in world["keygen"].items():
        assert code == 0, err
        assert "public key" in out
        public, secret = (keys / f"{name}.key").read_text(), (keys / f"{name}.key_secret").read_text()
        assert "public-key" in public and "secret-key" not in public
        assert "public-key" in secret and "secret-key" in secret
    assert sorted(p.name for p in world["allowed"].iterdir()) == ["client.key"]


def test_curve_client_with_the_right_keys_is_served(world):
    server = ready(world, "curve")
    with server.client() as client:
        info = client.hello()
        assert info["protocols"] == [PROTOCOL_VERSION]
        assert client.ping() < 5
        # A submit (several frames, one of 300 KB) passes through CURVE too: a bad one is answered.
        with pytest.raises(ServerError) as error:
            submit(client, steps=0)
        assert error.value.code == "bad_settings"
    assert f"listening on tcp://0.0.0.0:{server.port}" in server.log()  # not loopback: fine with keys


def test_curve_refuses_an_unknown_key(world):
    server = ready(world, "curve")
    keys = world["keys"]
    intruder = CurveKeys.from_files(str(keys / "server.key"), str(world["intruder"]))
    start = time.monotonic()
    with StyleTexClient(server.address, curve=intruder) as client:
        with pytest.raises(ServerUnreachable) as info:
            client.hello()
    assert time.monotonic() - start < 6
    assert "refused this client's CURVE key" in str(info.value)


def test_curve_refuses_a_client_without_keys(world):
    server = ready(world, "curve")
    start = time.monotonic()
    with StyleTexClient(server.address) as client:
        with pytest.raises(ServerUnreachable):
            client.hello()
    assert time.monotonic() - start < 6.5


def test_client_curve_keys_from_a_public_file_are_refused(world):
    with pytest.raises(ClientError) as info:
        CurveKeys.from_files(str(world["keys"] / "server.key"), str(world["keys"] / "client.key"))
    assert "client.key" in str(info.value)


# --- where a server may listen -------------------------------------------------------------------


def test_non_loopback_without_keys_is_refused(world):
    refused = world["refused"]
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "CURVE" in lines[0] and "--insecure" in lines[0] and f"0.0.0.0:{world['refused_port']}" in lines[0]
    assert out == ""


def test_non_loopback_with_insecure_starts(world):
    server = ready(world, "open")  # 0.0.0.0 includes loopback: pinged on 127.0.0.1
    assert "--insecure" in server.args and "--curve-secret" not in server.args
    assert f"listening on tcp://0.0.0.0:{server.port}" in server.log()
    with server.client() as client:
        assert client.hello()["protocols"] == [PROTOCOL_VERSION]
    # Stopped by test_ctrl_c_stops_the_server_cleanly (or the fixture): it does not stay running.


def test_loopback_needs_no_keys(main):
    assert "--curve-secret" not in main.args and "--insecure" not in main.args
    assert main.bind.startswith("tcp://127.0.0.1:")
    assert f"listening on {main.bind}" in main.log()


@pytest.mark.parametrize("endpoint, loopback", [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.1.2.3:1", True), ("tcp://[::1]:5555", True),
    ("tcp://localhost:5555", True), ("ipc:///tmp/styletex", True), ("inproc://x", True),
    ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False), ("tcp://eth0:5555", False),
    ("tcp://192.168.1.2:5555", False), ("tcp://[::]:5555", False), ("tcp://example.com:5555", False),
])
def test_is_loopback(endpoint, loopback):
    from backend.serve_command import is_loopback

    assert is_loopback(endpoint) is loopback


def test_device_cuda_without_cuda_fails_at_start_or_serves(world):
    # Without CUDA: a one-line error and status 2 at startup, not a crash at the first request.
    server = world["servers"]["no_cuda"]
    assert wait_for(lambda: server.process.poll() is not None or "listening on" in server.log(), READY_S)
    if server.process.poll() is None:  # it listens: then it must serve (a machine with CUDA)
        with server.client() as client:
            try:
                info = client.hello()
            except ClientError:
                info = None
        assert server.process.poll() is None, f"the server died at its first request:\n{server.log()}"
        assert info is not None and info["device"] != "cpu"
        return
    log = server.log()
    assert server.process.returncode == 2, log
    assert len(log.splitlines()) == 1 and "cuda" in log.lower(), log


# --- stopping --------------------------------------------------------------------------------------


def test_ctrl_c_stops_the_server_cleanly(world):
    server = ready(world, "open")  # the last test that needs it
    with server.client() as client:
        job = submit(client, steps=LONG)
        events = client.events(job)
        assert next(events).type == "progress"  # stopped in the middle of a job
        server.process.send_signal(signal.SIGINT)
        start = time.monotonic()
        code = server.process.wait(timeout=15)
    assert code == 0
    assert time.monotonic() - start < 5
    log = server.log()
    assert "Traceback" not in log
    assert log.rstrip().endswith("stopped"), log[-2000:]


def test_sigterm_stops_the_server_cleanly(world):
    server = ready(world, "curve")  # the last test that needs it
    server.process.terminate()
    assert server.process.wait(timeout=15) == 0
    log = server.log()
    assert "Traceback" not in log and log.rstrip().endswith("stopped"), log[-2000:]
