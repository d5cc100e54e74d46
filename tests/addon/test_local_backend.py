"""blender_addon/local_backend.py without Blender: the real `python -m backend serve` as a child process."""

from __future__ import annotations

import os
import socket
import time

import pytest

from blender_addon.client import StyleTexClient
from blender_addon.local_backend import LocalBackend, LocalBackendError, find_checkout
from tests.net import free_port

from .support import MAIN_PYTHON, REPO


def test_the_checkout_is_found_from_its_venv_python_or_given():
    assert find_checkout(str(MAIN_PYTHON)) == REPO
    assert find_checkout(str(MAIN_PYTHON), str(REPO)) == REPO


def test_a_folder_that_is_no_checkout_is_named(tmp_path):
    with pytest.raises(LocalBackendError, match=f"StyleTex Folder '{tmp_path}' holds no StyleTex checkout"):
        LocalBackend(str(MAIN_PYTHON), str(tmp_path), free_port())
    python = tmp_path / "bin" / "python"  # an interpreter outside any checkout, folder not set
    python.parent.mkdir()
    python.symlink_to(MAIN_PYTHON)
    with pytest.raises(LocalBackendError, match="set 'StyleTex Folder'"):
        LocalBackend(str(python), "", free_port())


@pytest.mark.parametrize("python", ["", "/no/such/python", os.fspath(REPO / "README.md")])
def test_a_bad_interpreter_is_named(python):
    expected = "set 'Backend Python'" if not python else f"Backend Python '{python}' is not an executable file"
    with pytest.raises(LocalBackendError, match=expected):
        LocalBackend(python, "", free_port())


def test_start_wait_serve_stop():
    backend = LocalBackend(str(MAIN_PYTHON), "", free_port()).start()
    try:
        backend.wait_ready(timeout=120)
        assert backend.running() and backend.address.startswith("tcp://127.0.0.1:")
        with StyleTexClient(backend.address, timeout=5) as client:
            assert client.hello()["protocols"] == [1]
    finally:
        backend.stop()
    assert not backend.running() and backend.process.returncode is not None
    backend.stop()  # a second stop is harmless


def test_a_backend_that_cannot_start_says_why():
    with socket.socket() as taken:  # the port is in use: serve exits with one line saying so
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        backend = LocalBackend(str(MAIN_PYTHON), "", taken.getsockname()[1]).start()
        started = time.monotonic()
        with pytest.raises(LocalBackendError, match=r"exited \(status 2\): error: cannot bind .*Address already in use"):
            backend.wait_ready(timeout=120)
    assert time.monotonic() - started < 60
    assert not backend.running()


def test_waiting_gives_up_at_its_timeout():
    backend = LocalBackend(str(MAIN_PYTHON), "", free_port()).start()
    try:  # importing torch alone takes longer than this: the backend cannot be listening yet
        with pytest.raises(LocalBackendError, match=r"did not start within 0 s \(log: .*backend.log\)"):
            backend.wait_ready(timeout=0.05)
        assert backend.running()
    finally:
        backend.stop()
