"""blender_addon/backend_env.py without Blender: the Installer's failures and Cancel, with real venv and pip.

Each failure must be one line naming its cause, and no failure or cancel may leave an environment that
Local mode would use (installed_backend() is None and the folder is gone).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blender_addon.backend_env import ENV_NAME, GB, Installer, bundled_package, installed_backend, pip_failure

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory) -> Path:
    """A backend_package/ as `build.py addon` makes it: the wheel and the runtime lock."""
    folder = tmp_path_factory.mktemp("backend_package")
    run = subprocess.run([sys.executable, str(REPO / "build.py"), "wheel"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    wheel = next((REPO / "dist").glob("styletex-*-py3-none-any.whl"))
    (folder / wheel.name).write_bytes(wheel.read_bytes())
    (folder / "runtime.lock").write_bytes((REPO / "requirements" / "runtime.lock").read_bytes())
    return folder


def finished(installer: Installer, limit_s: float = 300) -> Installer:
    assert installer.wait(limit_s) != "running", installer.status()
    return installer


def assert_nothing_kept(folder: Path) -> None:
    assert installed_backend(folder) is None
    assert not (folder / ENV_NAME).exists()


def test_no_bundled_package_is_named(tmp_path):
    installer = finished(Installer(tmp_path / "data", sys.executable, package_dir=tmp_path / "empty").start())
    assert installer.state == "failed"
    assert "carries no backend package" in installer.error and "build.py addon" in installer.error
    assert_nothing_kept(tmp_path / "data")
    with pytest.raises(Exception, match="carries no backend package"):
        bundled_package(tmp_path / "empty")


def test_too_little_disk_is_said_before_anything_is_made(tmp_path, package_dir):
    installer = finished(Installer(tmp_path, sys.executable, package_dir, required_bytes=1 << 60).start())
    assert installer.state == "failed"
    assert f"needs about {(1 << 60) // GB} GB free in {tmp_path}" in installer.error and "GB are free" in installer.error
    assert "\n" not in installer.status()
    assert_nothing_kept(tmp_path)


@pytest.mark.parametrize("python, expected", [
    ("/no/such/python", "is not an executable file"),
    (str(REPO / "README.md"), "is not an executable file"),
    ("/bin/false", "cannot create virtual environments"),
])
def test_a_python_that_cannot_make_the_environment_is_named(tmp_path, package_dir, python, expected):
    installer = finished(Installer(tmp_path, python, package_dir).start())
    assert installer.state == "failed" and expected in installer.error, installer.error
    assert_nothing_kept(tmp_path)


def test_no_registry_reachable_is_one_line_naming_it(tmp_path, package_dir, monkeypatch):
    # pip reads only these settings: an index on a port where nothing listens, no other source.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "1")  # a user's pip retries 5 times; its warnings name the cause
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    installer = finished(Installer(tmp_path, sys.executable, package_dir).start())
    assert installer.state == "failed"
    assert installer.error.startswith("no package registry reachable"), installer.error
    assert f"(log: {tmp_path / 'install.log'})" in installer.error
    assert "NewConnectionError" in (tmp_path / "install.log").read_text() or "Connection refused" in (
        tmp_path / "install.log").read_text()
    assert_nothing_kept(tmp_path)


def test_pip_failures_are_named_from_its_output(tmp_path):
    log = tmp_path / "install.log"
    assert pip_failure("OSError: [Errno 28] No space left on device", log).startswith("no space left on the disk")
    assert pip_failure("x\nERROR: Could not find a version that satisfies the requirement torch==9\n", log) == \
        f"ERROR: Could not find a version that satisfies the requirement torch==9 (log: {log})"


def test_cancel_mid_install_keeps_nothing(tmp_path, package_dir):
    installer = Installer(tmp_path, sys.executable, package_dir).start()
    deadline = time.monotonic() + 240
    while not (installer.stage == "installing packages" and installer.last_line) and installer.running():
        assert time.monotonic() < deadline, installer.status()
        time.sleep(0.05)
    assert installer.running(), installer.status()  # pip is at work
    assert installer.status().startswith("Installing packages: ")
    installer.cancel()
    assert finished(installer, 60).state == "cancelled"
    assert installer.status() == "Install cancelled; nothing was kept"
    assert_nothing_kept(tmp_path)
    assert (tmp_path / "install.log").is_file()  # the log stays for whoever wants to know what happened
