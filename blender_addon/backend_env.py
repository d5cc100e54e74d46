"""The add-on's own backend environment: a virtual environment with the bundled backend wheel installed
by pip, pinned by the bundled runtime lock (no bpy; the preferences drive it from a timer).

`Installer` runs each stage as a subprocess from a worker thread, so Blender never waits on it: the UI
reads `stage`, `last_line` and `state`. The environment only counts as installed once its marker file
is written, after the backend has been started once; a failed or cancelled install removes the folder,
so Local mode never runs a half environment.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent / "backend_package"  # filled by `python3 build.py addon`
ENV_NAME = "backend-env"
MARKER = "styletex-backend.json"
LOG_NAME = "install.log"
MIN_PYTHON = (3, 10)
GB = 1 << 30
# Linux x86_64 and Windows get PyTorch's CUDA build (5.5 GB in the venv here, plus the wheels while pip
# unpacks them); macOS and ARM Linux get a CPU build under 1 GB.
CUDA_PLATFORM = (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")) or os.name == "nt"
REQUIRED_BYTES = (9 if CUDA_PLATFORM else 3) * GB
DOWNLOAD_TEXT = "about 3 GB to download, 6 GB on disk" if CUDA_PLATFORM else "about 1 GB to download and on disk"

NETWORK_SIGNS = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                 "Name or service not known", "ConnectTimeout", "Read timed out", "Connection refused",
                 "ProxyError", "SSLError", "No route to host")


class BackendInstallError(Exception):
    pass


def env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@dataclass(frozen=True)
class InstalledBackend:
    folder: Path
    python: Path
    version: str
    python_version: str


def installed_backend(data_folder: Path) -> InstalledBackend | None:
    """The finished environment under `data_folder`, or None (never a half-installed one)."""
    env = data_folder / ENV_NAME
    try:
        marker = json.loads((env / MARKER).read_text())
    except (OSError, ValueError):
        return None
    python = env_python(env)
    if not python.is_file():
        return None
    return InstalledBackend(env, python, str(marker.get("version", "?")), str(marker.get("python", "?")))


def bundled_package(package_dir: Path = PACKAGE_DIR) -> tuple[Path, Path]:
    """The backend wheel and runtime lock the add-on carries."""
    wheels = sorted(package_dir.glob("styletex-*.whl"))
    lock = package_dir / "runtime.lock"
    if not wheels or not lock.is_file():
        raise BackendInstallError(f"this add-on carries no backend package ({package_dir} is missing or empty); "
                                  "install the add-on from a zip made by `python3 build.py addon`")
    return wheels[-1], lock


def default_python() -> str:
    """Blender's own interpreter, when Blender says where it is."""
    name = Path(sys.executable or "").name.lower()
    return sys.executable if "python" in name else ""


def remove_backend(data_folder: Path) -> None:
    """Removes the environment (the marker first, so nothing half-removed counts as installed)."""
    env = data_folder / ENV_NAME
    (env / MARKER).unlink(missing_ok=True)
    shutil.rmtree(env, ignore_errors=True)
    if env.exists():
        raise BackendInstallError(f"could not remove {env} completely; delete that folder by hand")


def free_bytes(folder: Path) -> int:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def pip_failure(log_text: str, log_path: Path) -> str:
    """One line naming why pip failed, from its output."""
    if "No space left on device" in log_text or "[Errno 28]" in log_text:
        return f"no space left on the disk while installing (log: {log_path})"
    if any(sign in log_text for sign in NETWORK_SIGNS):
        return f"no package registry reachable: pip could not download the backend's packages (log: {log_path})"
    errors = [line.strip() for line in log_text.splitlines() if line.strip().startswith("ERROR:")]
    reason = errors[-1] if errors else "pip failed"
    return f"{reason} (log: {log_path})"


class Installer:
    """One install of the backend environment into `data_folder`/backend-env; `start()` returns at once."""

    def __init__(self, data_folder: Path, python: str = "", package_dir: Path = PACKAGE_DIR,
                 required_bytes: int = REQUIRED_BYTES):
        self.data_folder = Path(data_folder)
        self.env = self.data_folder / ENV_NAME
        self.log_path = self.data_folder / LOG_NAME
        self.python = python or default_python()
        self.package_dir = package_dir
        self.required_bytes = required_bytes
        self.state = "idle"  # idle | running | done | failed | cancelled
        self.stage = ""
        self.last_line = ""
        self.error = ""
        self._cancel = threading.Event()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- what the UI calls ---------------------------------------------------------------------------

    def start(self) -> "Installer":
        self.state, self.stage = "running", "checking"
        self._thread = threading.Thread(target=self._run, name="styletex-install", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()

    def running(self) -> bool:
        return self.state == "running"

    def wait(self, timeout: float | None = None) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def status(self) -> str:
        """One line for the preferences and the panel."""
        if self.state == "running":
            stage = self.stage[:1].upper() + self.stage[1:]
            return f"{stage}: {self.last_line}" if self.last_line else f"{stage}…"
        if self.state == "failed":
            return f"Install failed: {self.error}"
        if self.state == "cancelled":
            return "Install cancelled; nothing was kept"
        return "Installed" if self.state == "done" else ""

    # -- the worker ----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.data_folder.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("w", encoding="utf-8", errors="replace") as log:
                self._install(log)
            self.state = "done"
            self.stage, self.last_line = "done", ""
        except BackendInstallError as exc:
            self._discard()
            if self._cancel.is_set():
                self.state = "cancelled"
            else:
                self.error, self.state = str(exc), "failed"
        except Exception as exc:  # a bug or an OSError: still one line, and nothing half installed
            self._discard()
            self.error, self.state = f"{type(exc).__name__}: {exc} (log: {self.log_path})", "failed"

    def _install(self, log) -> None:
        wheel, lock = bundled_package(self.package_dir)
        self._check_python()
        free = free_bytes(self.data_folder)
        if free < self.required_bytes:
            raise BackendInstallError(f"the backend needs about {self.required_bytes / GB:.0f} GB free in "
                                      f"{self.data_folder}; {free / GB:.1f} GB are free")
        remove_backend(self.data_folder)  # a reinstall starts clean
        self.stage = "creating the environment"
        self._step(log, [self.python, "-m", "venv", str(self.env)], "could not create a virtual environment")
        python = env_python(self.env)
        self.stage = "installing packages"
        self._step(log, [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                         "--progress-bar", "off", str(wheel), "-c", str(lock)], None)
        self.stage = "checking the backend"
        self._step(log, [str(python), "-m", "backend", "--help"], "the installed backend does not start")
        version = subprocess.run([str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        (self.env / MARKER).write_text(json.dumps({"version": wheel.name.split("-")[1], "python": version,
                                                   "wheel": wheel.name}) + "\n")

    def _check_python(self) -> None:
        if not self.python:
            raise BackendInstallError("Blender does not say where its Python is; choose a Python 3.10 or later "
                                      "for the backend in the StyleTex preferences")
        if not (os.path.isfile(self.python) and os.access(self.python, os.X_OK)):
            raise BackendInstallError(f"Python {self.python!r} is not an executable file; choose another in the "
                                      "StyleTex preferences")
        probe = subprocess.run([self.python, "-c", "import sys, venv, ensurepip; print(*sys.version_info[:2])"],
                               capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if probe.returncode != 0:
            raise BackendInstallError(f"Python {self.python!r} cannot create virtual environments (no venv or "
                                      "ensurepip; on Debian and Ubuntu: apt install python3-venv); choose another "
                                      "in the StyleTex preferences")
        major, minor = (int(part) for part in probe.stdout.split()[:2])
        if (major, minor) < MIN_PYTHON:
            raise BackendInstallError(f"Python {self.python!r} is {major}.{minor}; the backend needs 3.10 or later")

    def _step(self, log, command: list[str], failure: str | None) -> None:
        """Runs one stage, its output to the log and its last line to the UI; raises on failure or cancel."""
        if self._cancel.is_set():
            raise BackendInstallError("cancelled")
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        with self._lock:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.data_folder, text=True,
                                             errors="replace", env=dict(os.environ, PYTHONUNBUFFERED="1"))
        captured: list[str] = []
        for line in self._process.stdout:
            log.write(line)
            log.flush()
            captured.append(line)
            del captured[:-200]
            if line.strip() and not line.startswith("WARNING:"):  # pip's warnings would hide its progress
                self.last_line = line.strip()[:160]
        code = self._process.wait()
        with self._lock:
            self._process = None
        if self._cancel.is_set():
            raise BackendInstallError("cancelled")
        if code != 0:
            if failure is None:
                raise BackendInstallError(pip_failure(self.log_path.read_text(errors="replace"), self.log_path))
            last = next((line.strip() for line in reversed(captured) if line.strip()), "")
            raise BackendInstallError(f"{failure}: {last} (log: {self.log_path})" if last else
                                      f"{failure} (log: {self.log_path})")

    def _discard(self) -> None:
        try:
            remove_backend(self.data_folder)
        except BackendInstallError:
            pass
