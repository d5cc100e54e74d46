#!/usr/bin/env python3
"""StyleTex task runner (standard library only).

    python3 build.py setup   create .venv/ with the pinned requirements (quick when up to date)
    python3 build.py test    run the test suite          (extra arguments go to pytest)
    python3 build.py demo    run the demo on bundled data (writes out/demo/)
    python3 build.py bench   run the benchmarks           (writes out/bench/bench.json)

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


COMMANDS = {
    "setup": lambda extra: setup(),
    "test": lambda extra: in_venv(["-m", "pytest", *extra]),
    "demo": lambda extra: in_venv(["-m", "backend.demo", *extra]),
    "bench": lambda extra: in_venv(["-m", "bench", *extra]),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
