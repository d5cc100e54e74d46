"""Helpers for the tests that drive Debian's Blender 3.4 (a real `blender` executable, not bpy)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = ("install them with `apt-get install -y blender xvfb imagemagick python3-numpy` "
                "(Debian 12; `python3 build.py test` does this when it runs as root)")


def require_tools(*names: str) -> dict[str, str]:
    """Paths of the named programs; missing ones FAIL the test (never skip: CI must exercise Blender)."""
    tools = {name: shutil.which(name) for name in names}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        pytest.fail(f"this test needs {', '.join(missing)} on PATH: {INSTALL_HINT}", pytrace=False)
    return tools


def blender_env(blender: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment for a `blender` run whose user folders (where the add-on is installed) are
    under `home`, never the user's own."""
    env = dict(os.environ, BLENDER_USER_CONFIG=f"{home}/config", BLENDER_USER_SCRIPTS=f"{home}/scripts",
               BLENDER_USER_DATAFILES=f"{home}/datafiles", **extra)
    env.pop("PYTHONPATH", None)  # Blender's own (system) Python must not see the venv's packages
    env.pop("PYTHONHOME", None)
    # Debian's Blender finds its Python's home through `python3` on PATH: with a pyenv or venv Python
    # first (as under `python3 build.py test`), it would load that stdlib and miss Debian's numpy.
    # Blender's own folder first makes it the system Python it was built against.
    env["PATH"] = os.pathsep.join([str(Path(blender).resolve().parent), env.get("PATH", "")])
    return env


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_backend(address: str, log: Path) -> subprocess.Popen:
    """On the CPU, also where CUDA is available: a GPU would finish before the 'during' screenshots."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--bind", address, "--device", "cpu"], cwd=ROOT, env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "listening on" in log.read_text():
            return process
        if process.poll() is not None:
            pytest.fail(f"the backend exited with {process.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
        time.sleep(0.2)
    stop(process)
    pytest.fail(f"the backend did not start within 120 s:\n{log.read_text()[-3000:]}", pytrace=False)


def build_zip() -> Path:
    """dist/styletex-VERSION.zip from this tree (build.py addon; quick once the wheels are downloaded)."""
    done = subprocess.run([sys.executable, "build.py", "addon"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"build.py addon failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    zips = sorted((ROOT / "dist").glob("styletex-*.zip"), key=lambda p: p.stat().st_mtime)
    assert zips, "build.py addon wrote no dist/styletex-*.zip"
    return zips[-1]




def prepare_run(out: Path) -> tuple[dict[str, str], Path]:
    """For a window test: the tools it needs (missing ones fail it), the built zip, and `out` emptied."""
    tools = require_tools("blender", "Xvfb", "import", "convert")
    zip_path = build_zip()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return tools, zip_path


def run_blender(command: list[str], env: dict[str, str], log: Path, timeout: float) -> int | None:
    """Runs Blender to its end, its output into `log`; the exit status, or None when it ran past `timeout`."""
    with log.open("w") as out:
        try:
            return subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            return None
