"""Fixtures for the Blender add-on tests: bpy (Blender as a Python module, headless) in this process,
the real backend in a subprocess.

These tests run under two interpreters: the main .venv (bpy 4.2, numpy 2, torch) and .venv-bpy5
(bpy 5.0, numpy 1.26, no torch; see `python3 build.py test`). Nothing here imports `backend`: the
server always runs with the MAIN venv's Python, which has torch. A test module that imports the
backend would not even be collected under an interpreter without torch (pytest_ignore_collect).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.net import free_port

from .support import MAIN_PYTHON, REPO

HAS_TORCH = importlib.util.find_spec("torch") is not None


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if HAS_TORCH or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    text = collection_path.read_text(encoding="utf-8")
    return True if re.search(r"^\s*(from|import)\s+(backend|torch)\b", text, re.M) else None


# -- the backend ----------------------------------------------------------------------------------


class Backend:
    """`python -m backend serve` on a free loopback port, run by the main venv's Python."""

    def __init__(self, log: Path, client_timeout: float = 5.0):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.log = log
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [str(MAIN_PYTHON), "-m", "backend", "serve", "--bind", self.address,
                 "--client-timeout", str(client_timeout)],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, limit_s: float = 120.0) -> "Backend":
        from blender_addon.client import ClientError, StyleTexClient

        deadline = time.monotonic() + limit_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the backend exited with {self.process.returncode}:\n{self.output()}")
            try:
                with StyleTexClient(self.address, timeout=1.0) as client:
                    client.ping()
                return self
            except ClientError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the backend did not answer within {limit_s:.0f} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to say goodbye."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def start_backend(tmp_path_factory, addon):
    """Starts backends (a test may kill its own); all are stopped at the end of the session."""
    started: list[Backend] = []

    def start(client_timeout: float = 5.0) -> Backend:
        assert MAIN_PYTHON.exists(), f"{MAIN_PYTHON} is missing: run `python3 build.py setup`"
        backend = Backend(tmp_path_factory.mktemp("backend") / "server.log", client_timeout)
        started.append(backend)
        return backend.wait_ready()

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture(scope="session")
def backend(start_backend) -> Backend:
    """The shared backend; tests that break theirs start their own."""
    return start_backend()


# -- Blender ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def addon():
    """The add-on registered in this process's bpy, once. Unregistering matters: a bpy module that
    exits with a Python-defined operator still registered crashes (SIGSEGV) on 4.2."""
    import bpy  # noqa: F401

    import blender_addon

    blender_addon.register()
    yield blender_addon
    blender_addon.unregister()


@pytest.fixture
def bpy_clean(addon):
    """An empty factory-settings scene (no objects), with the add-on registered."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert len(bpy.data.objects) == 0
    return bpy
