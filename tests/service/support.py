"""Shared pieces of the service tests: the job used everywhere, a `python -m backend serve` process
wrapper, and small waiting helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.mesh.primitives import uv_sphere
from blender_addon.client import CurveKeys, ServerUnreachable, StyleTexClient
from tests.net import free_port

REPO = Path(__file__).resolve().parents[2]
STYLE = REPO / "data" / "styles" / "starry_night.jpg"
STYLE_BYTES = STYLE.read_bytes()
MESH = uv_sphere(6, 12)
CLIENT_TIMEOUT = 3.0  # the main server's --client-timeout (pings come every second)
MAX_MESSAGE_MB = 2  # the main server's --max-message-mb
LONG = 100_000  # steps of a job that only ends when cancelled (the server's limit)
READY_S = 120  # a server start may take this long on a busy machine
EQUIVALENCE = {"steps": 6, "texture_size": 32, "render_size": 48, "seed": 5, "views_per_step": 2, "learning_rate": 0.08,
               "content_weight": 0.3, "style_weight": 2.0, "init": "original"}
EQUIVALENCE_ARGS = ["--features", "random", "--steps", "6", "--texture-size", "32", "--render-size", "48", "--seed", "5",
                    "--views-per-step", "2", "--learning-rate", "0.08", "--content-weight", "0.3", "--style-weight", "2.0",
                    "--init", "original"]


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
STANDBY = ("import sys, backend.commands.main, backend.service.server; sys.stdin.readline(); "
           "sys.exit(backend.commands.main.main(sys.argv[1:]))")


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



def ready(world, name: str) -> Server:
    if name not in world["servers"]:
        pytest.fail(f"server {name} was not started (see test_keygen_writes_key_pairs)")
    return world["servers"][name].wait_ready()


def no_traceback(server: Server) -> None:
    log = server.log()
    assert "Traceback" not in log, log[-4000:]

