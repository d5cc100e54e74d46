#!/usr/bin/env python3
"""StyleTex task runner (standard library only).

    python3 build.py setup   create .venv/: the backend package (editable) with the pinned dependencies of
                             requirements/*.lock (quick when up to date)
    python3 build.py test    run the test suite, then the add-on tests on bpy 5.0 (in .venv-bpy5/);
                             extra arguments go to the first pytest run, and skip the second
    python3 build.py demo    run the demo on bundled data (writes out/demo/)
    python3 build.py bench   run the benchmarks           (writes out/bench/bench.json)
    python3 build.py addon   build the Blender add-on     (writes dist/styletex-VERSION.zip, with the
                             backend's wheel and runtime lock for its Install Backend)
    python3 build.py wheel   build the backend's wheel    (writes dist/styletex-VERSION-py3-none-any.whl)

Every command sets up what it needs first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCKS = ROOT / "requirements"
RUNTIME_LOCK = LOCKS / "runtime.lock"
# .venv: the package with its `batch` and `dev` extras, every version from the two locks.
SETUP_INSTALL = ["-e", ".[batch,dev]", "-c", RUNTIME_LOCK, "-c", LOCKS / "dev.lock"]
SETUP_INPUTS = [ROOT / "pyproject.toml", RUNTIME_LOCK, LOCKS / "dev.lock"]
# The add-on tests also run on Blender 5.0 (bpy 5.0.1 needs numpy < 2, so a venv of its own, without torch).
VENV_BPY5 = ROOT / ".venv-bpy5"
BPY5_LOCK = LOCKS / "bpy5.lock"
STAMP_NAME = ".styletex-requirements"


def venv_python(folder: Path = VENV) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], **kwargs) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def ensure_venv(folder: Path, install: list, inputs: list[Path]) -> int:
    """Creates the venv `folder` and runs `pip install *install` when `inputs` changed since the last install."""
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in inputs) + repr(install).encode()).hexdigest()
    python, stamp = venv_python(folder), folder / STAMP_NAME
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return 0
    if not python.exists():
        print(f"creating {folder.name}/", flush=True)
        venv.EnvBuilder(with_pip=True).create(folder)
    code = run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *install])
    if code == 0:
        stamp.write_text(digest + "\n")
    return code


def setup() -> int:
    """Creates .venv and installs the package and its locked dependencies when they changed since the last install."""
    return ensure_venv(VENV, SETUP_INSTALL, SETUP_INPUTS)


def in_venv(args: list[str]) -> int:
    code = setup()
    if code:
        return code
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return run([venv_python(), *args], env=env)


ADDON = ROOT / "blender_addon"
DIST = ROOT / "dist"
PYZMQ = "pyzmq==27.1.0"
# (platform tag, Python version): Blender 3.4-4.0 embed 3.10, 4.1-5.0 3.11, 5.1+ 3.13 (abi3 wheels).
WHEEL_TARGETS = [(plat, py) for py in ("3.10", "3.11", "3.13")
                 for plat in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "macosx_10_15_universal2", "win_amd64")]


def project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def wheel() -> int:
    """dist/styletex-VERSION-py3-none-any.whl: the backend package (pure Python; no dependencies inside)."""
    code = setup()
    if code:
        return code
    out = DIST / f"styletex-{project_version()}-py3-none-any.whl"
    out.unlink(missing_ok=True)
    code = run([venv_python(), "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps", "-w", DIST, "."])
    if code == 0 and not out.is_file():
        print(f"error: pip wheel did not write {out.relative_to(ROOT)}", file=sys.stderr)
        return 1
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' scratch folder
    return code


def addon() -> int:
    """dist/styletex-VERSION.zip: the add-on under styletex/ with pyzmq wheels, installable as a 4.2+
    extension (blender_manifest.toml lists the wheels) and as a legacy add-on (vendor.py unpacks one);
    backend_package/ holds the backend's wheel and runtime lock, which Install Backend installs."""
    import re
    import zipfile

    code = wheel()
    if code:
        return code
    manifest = (ADDON / "blender_manifest.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', manifest, re.M).group(1)
    if version != project_version():
        print(f"error: blender_manifest.toml says version {version}, pyproject.toml {project_version()}", file=sys.stderr)
        return 1
    backend_wheel = DIST / f"styletex-{version}-py3-none-any.whl"
    wheels_dir = DIST / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    # pip asks the index even when the wheel is already there (a second or so per target): skip it
    # while the stamp says this pin and these targets were downloaded and the wheels are still there.
    stamp = wheels_dir / ".downloaded"
    key = f"{PYZMQ} {WHEEL_TARGETS}"
    lines = stamp.read_text().splitlines() if stamp.exists() else []
    if not (lines and lines[0] == key and all((wheels_dir / name).is_file() for name in lines[1:])):
        for plat, py in WHEEL_TARGETS:
            code = run([venv_python(), "-m", "pip", "download", "--disable-pip-version-check", "-q", PYZMQ,
                        "--only-binary=:all:", "--no-deps", "--platform", plat, "--python-version", py,
                        "-d", wheels_dir])
            if code:
                return code
        stamp.write_text("\n".join([key, *(w.name for w in sorted(wheels_dir.glob("pyzmq-*.whl")))]) + "\n")
    wheels = sorted(wheels_dir.glob("pyzmq-*.whl"))
    listed = ",\n".join(f'  "./wheels/{w.name}"' for w in wheels)
    manifest = manifest.replace("wheels = []", f"wheels = [\n{listed},\n]")
    out = DIST / f"styletex-{version}.zip"
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")  # readers never see a half-written zip
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(ADDON.rglob("*")):
            relative = path.relative_to(ADDON)
            if path.is_dir() or "__pycache__" in relative.parts or relative.parts[0] in ("_vendor", "backend_package"):
                continue
            if relative.name == "blender_manifest.toml":
                archive.writestr(f"styletex/{relative.as_posix()}", manifest)
            else:
                archive.write(path, f"styletex/{relative.as_posix()}")
        for zmq_wheel in wheels:
            archive.write(zmq_wheel, f"styletex/wheels/{zmq_wheel.name}")
        archive.write(backend_wheel, f"styletex/backend_package/{backend_wheel.name}")
        archive.write(RUNTIME_LOCK, "styletex/backend_package/runtime.lock")
    os.replace(partial, out)
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size >> 10} KiB, {len(wheels)} pyzmq wheels, the backend's wheel)")
    return 0


# tests/ui drives Debian's Blender 3.4 in a real window under Xvfb, screenshots by ImageMagick; that
# Blender runs on the system Python, which needs Debian's numpy for the add-on and its venv module for
# Install Backend.
UI_PACKAGES = ["blender", "xvfb", "imagemagick", "python3-numpy", "python3-venv"]
UI_COMMANDS = ["blender", "Xvfb", "import", "convert"]


def ensure_ui_packages() -> None:
    """Installs the window test's Debian packages when missing and this user may (root, or sudo without
    a password); otherwise says so, and that test fails with the same hint."""
    packages_there = all(subprocess.call(["dpkg", "-s", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0
                         for name in ("python3-numpy", "python3-venv")) if shutil.which("dpkg") else True
    if all(shutil.which(c) for c in UI_COMMANDS) and packages_there:
        return
    if not shutil.which("apt-get"):
        print(f"warning: no apt-get to install {' '.join(UI_PACKAGES)}; the Blender window test will fail", flush=True)
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and subprocess.call(["sudo", "-n", "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        print(f"warning: installing {' '.join(UI_PACKAGES)} needs root; the Blender window test will fail", flush=True)
        return
    print(f"installing {' '.join(UI_PACKAGES)} (apt) for the Blender window test", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if run([*sudo, "apt-get", "update", "-qq"], env=env) == 0:
        run([*sudo, "apt-get", "install", "-y", "-qq", *UI_PACKAGES], env=env, stdout=subprocess.DEVNULL)


def test(extra: list[str]) -> int:
    """pytest in .venv (everything, the add-on on bpy 4.2 included); when that passes and no arguments
    were given, the add-on tests again on bpy 5.0 in .venv-bpy5 (their backend runs with .venv's Python)."""
    ensure_ui_packages()
    code = in_venv(["-m", "pytest", *extra])
    if code or extra:
        return code
    code = ensure_venv(VENV_BPY5, ["-r", BPY5_LOCK], [BPY5_LOCK])
    if code:
        return code
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return run([venv_python(VENV_BPY5), "-m", "pytest", "-q", "tests/addon"], env=env)


COMMANDS = {
    "setup": lambda extra: setup(),
    "test": test,
    "demo": lambda extra: in_venv(["-m", "examples.demo", *extra]),
    "bench": lambda extra: in_venv(["-m", "bench", *extra]),
    "addon": lambda extra: addon(),
    "wheel": lambda extra: wheel(),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
