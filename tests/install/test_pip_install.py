"""`pip install .` from the checkout: the package builds with its standard build backend and installs the
`styletex` command, which runs from a folder that has nothing of the checkout. The dependencies come from
.venv through a .pth file (a full install of them, PyTorch included, is test_install_backend.py's)."""

from __future__ import annotations

import os
import subprocess
import sysconfig
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pip_install_dot_gives_a_styletex_command_that_works_anywhere(tmp_path):
    env_dir, elsewhere = tmp_path / "env", tmp_path / "elsewhere"
    elsewhere.mkdir()
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The tests' own dependencies, seen by the new environment (but not the checkout: no PYTHONPATH).
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", "--disable-pip-version-check",
                              str(REPO)], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    styletex = python.parent / "styletex"
    shown = subprocess.run([str(styletex), "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: styletex "), shown.stdout + shown.stderr
    for command in ("render", "stylize", "interpolate", "batch", "serve", "keygen"):
        assert command in shown.stdout
    where = subprocess.run([str(python), "-c", "import backend; print(backend.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(Path(site)), where  # the installed copy, not the checkout
    bad = subprocess.run([str(styletex), "render", "no-such.obj", "--eye", "3,0,0", "--fov", "30", "--size", "16",
                          "--out", "x.png"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "no-such.obj" in bad.stderr, bad.stderr
