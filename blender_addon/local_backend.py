"""The backend as a child process of Blender ("local" mode): start it, wait until it listens, stop it.

Pure Python (no bpy, no numpy): the add-on's preferences hold one LocalBackend; the job's worker
thread waits for it to listen, so the UI never blocks while torch loads (seconds on a cold start).
The process writes its log to a file, whose last line explains a failed start.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from .client import ClientError

READY_MARK = "listening on"  # what `python -m backend serve` prints once its socket is bound
START_TIMEOUT_S = 120.0


class LocalBackendError(ClientError):
    pass


def find_checkout(python: str, folder: str = "") -> Path:
    """The StyleTex checkout to run in: `folder`, or the one whose .venv holds `python`."""
    # <checkout>/.venv/bin/python (or .venv/Scripts/python.exe): the checkout is two folders up.
    candidates = [Path(folder)] if folder else list(Path(python).absolute().parents)[1:3]
    for candidate in candidates:
        if (candidate / "backend" / "__main__.py").is_file():
            return candidate
    if folder:
        raise LocalBackendError(f"StyleTex Folder {folder!r} holds no StyleTex checkout (no backend/ in it); "
                                "set it in the StyleTex add-on preferences")
    raise LocalBackendError(f"cannot tell which StyleTex checkout {python!r} belongs to: set 'StyleTex Folder' "
                            "in the StyleTex add-on preferences")


class LocalBackend:
    """`python -m backend serve` run by `python`: the installed environment's (`installed`: the backend is a
    package there, so any folder will do), or a checkout's .venv (run in the checkout)."""

    def __init__(self, python: str, folder: str, port: int, installed: bool = False):
        if not python:
            raise LocalBackendError("Install the backend in the StyleTex preferences, or set 'Backend Python' "
                                    "there (the .venv Python of a StyleTex checkout), or choose a remote backend")
        if not (os.path.isfile(python) and os.access(python, os.X_OK)):
            raise LocalBackendError(f"Backend Python {python!r} is not an executable file; set it in the StyleTex "
                                    "add-on preferences")
        self.python, self.port = python, port
        self.folder = Path(python).absolute().parents[1] if installed else find_checkout(python, folder)
        self.address = f"tcp://127.0.0.1:{port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="styletex-backend-")) / "backend.log"
        self.process: subprocess.Popen | None = None

    def same_as(self, python: str, folder: str, port: int) -> bool:
        return (python, port) == (self.python, self.port) and (not folder or Path(folder) == self.folder)

    def start(self) -> "LocalBackend":
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([self.python, "-m", "backend", "serve", "--bind", self.address],
                                            cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _last_line(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Returns once the backend listens; LocalBackendError when it exits or stays silent."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if READY_MARK in self.log_path.read_text(errors="replace"):
                    return
            except OSError:
                pass
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise LocalBackendError(f"the local StyleTex backend exited (status {code}): "
                                        f"{self._last_line() or 'no output'} (log: {self.log_path})")
            if time.monotonic() > deadline:
                raise LocalBackendError(f"the local StyleTex backend did not start within {timeout:.0f} s "
                                        f"(log: {self.log_path})")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
