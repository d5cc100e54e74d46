#!/usr/bin/env python3
"""StyleTex task runner (standard library only).

    python3 build.py setup   create .venv/ with the pinned requirements (quick when up to date)
    python3 build.py test    run the test suite          (extra arguments go to pytest)
    python3 build.py demo    run the demo on bundled data (writes out/demo/)
    python3 build.py bench   run the benchmarks           (writes out/bench/bench.json)
    python3 build.py addon   build the Blender add-on     (writes dist/styletex-VERSION.zip)

Every command sets up what it needs first.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".styletex-requirements"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], **kwargs) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def setup() -> int:
    """Creates .venv and installs requirements.txt when its content changed since the last install."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if venv_python().exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return 0
    if not venv_python().exists():
        print(f"creating {VENV.name}/", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    code = run([venv_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", REQUIREMENTS])
    if code == 0:
        STAMP.write_text(digest + "\n")
    return code


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


def addon() -> int:
    """dist/styletex-VERSION.zip: the add-on under styletex/ with pyzmq wheels, installable as a 4.2+
    extension (blender_manifest.toml lists the wheels) and as a legacy add-on (vendor.py unpacks one)."""
    import re
    import zipfile

    code = setup()
    if code:
        return code
    manifest = (ADDON / "blender_manifest.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', manifest, re.M).group(1)
    wheels_dir = DIST / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    for plat, py in WHEEL_TARGETS:
        code = run([venv_python(), "-m", "pip", "download", "--disable-pip-version-check", "-q", PYZMQ,
                    "--only-binary=:all:", "--no-deps", "--platform", plat, "--python-version", py, "-d", wheels_dir])
        if code:
            return code
    wheels = sorted(wheels_dir.glob("pyzmq-*.whl"))
    listed = ",\n".join(f'  "./wheels/{w.name}"' for w in wheels)
    manifest = manifest.replace("wheels = []", f"wheels = [\n{listed},\n]")
    out = DIST / f"styletex-{version}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(ADDON.rglob("*")):
            relative = path.relative_to(ADDON)
            if path.is_dir() or "__pycache__" in relative.parts or relative.parts[0] == "_vendor":
                continue
            if relative.name == "blender_manifest.toml":
                archive.writestr(f"styletex/{relative.as_posix()}", manifest)
            else:
                archive.write(path, f"styletex/{relative.as_posix()}")
        for wheel in wheels:
            archive.write(wheel, f"styletex/wheels/{wheel.name}")
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size >> 10} KiB, {len(wheels)} pyzmq wheels)")
    return 0


COMMANDS = {
    "setup": lambda extra: setup(),
    "test": lambda extra: in_venv(["-m", "pytest", *extra]),
    "demo": lambda extra: in_venv(["-m", "backend.demo", *extra]),
    "bench": lambda extra: in_venv(["-m", "bench", *extra]),
    "addon": lambda extra: addon(),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
