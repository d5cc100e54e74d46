"""The add-on as users get it: dist/styletex-VERSION.zip from `python3 build.py addon`, installed into a
fresh Blender user folder in a subprocess (this process's bpy stays clean) both ways: as a 4.2+
extension (Blender installs the bundled pyzmq wheel) and the legacy way (vendor.py unpacks it).
In both, the pyzmq of the venv running the tests is hidden, so the add-on must get its own."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from .support import REPO

LINUX_X86_64 = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
# (Python tag, ABI tag): Blender 3.4-4.0 embed CPython 3.10, 4.1-5.0 3.11, 5.1+ 3.13 (abi3 wheels).
PYTHONS = [("cp310", "cp310"), ("cp311", "cp311"), ("cp312", "abi3")]
PLATFORMS = ["manylinux_2_28_x86_64", "macosx_10_15_universal2", "win_amd64"]

# Runs in the subprocess, before bpy: `import zmq` finds only a pyzmq under the temporary Blender user
# folder (the extension's installed wheel, or the legacy add-on's _vendor/), never the venv's.
HIDE_ZMQ = r'''
import importlib.machinery, os, sys
ALLOWED = os.path.realpath(os.environ["BLENDER_USER_RESOURCES"])

class HideOtherZmq:
    def find_spec(self, name, path=None, target=None):
        if name != "zmq":
            return None
        allowed = [p for p in sys.path if os.path.realpath(p or ".").startswith(ALLOWED)]
        spec = importlib.machinery.PathFinder.find_spec(name, allowed)
        if spec is None:
            raise ModuleNotFoundError("No module named 'zmq' (the venv's is hidden by the test)", name=name)
        return spec

sys.meta_path.insert(0, HideOtherZmq())
'''

EXTENSION = HIDE_ZMQ + r'''
import json, bpy
zip_path = sys.argv[1]
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
import zmq
module = sys.modules.get("bl_ext.user_default.styletex")
addon = bpy.context.preferences.addons.get("bl_ext.user_default.styletex")
print("RESULT " + json.dumps({
    "result": sorted(result), "operator": hasattr(bpy.types, "STYLETEX_OT_stylize"),
    "operator_module": bpy.types.STYLETEX_OT_stylize.__module__ if hasattr(bpy.types, "STYLETEX_OT_stylize") else None,
    "module_file": getattr(module, "__file__", None), "zmq_file": zmq.__file__, "zmq_version": zmq.zmq_version(),
    "preferences_mode": addon.preferences.mode if addon else None,
    "scene_settings": hasattr(bpy.context.scene, "styletex"),
}))
'''

LEGACY = HIDE_ZMQ + r'''
import json, bpy
import addon_utils
zip_path = sys.argv[1]
result = bpy.ops.preferences.addon_install(filepath=zip_path)
module = addon_utils.enable("styletex", default_set=True)
import zmq
addon = bpy.context.preferences.addons.get("styletex")
print("RESULT " + json.dumps({
    "result": sorted(result), "enabled": module is not None, "module_file": getattr(module, "__file__", None),
    "operator": hasattr(bpy.types, "STYLETEX_OT_stylize"), "zmq_file": zmq.__file__,
    "zmq_version": zmq.zmq_version(), "preferences_mode": addon.preferences.mode if addon else None,
}))
'''


@pytest.fixture(scope="module")
def addon_zip() -> Path:
    """Builds the zip once for this module (quick once dist/wheels holds the wheels)."""
    run = subprocess.run([sys.executable, str(REPO / "build.py"), "addon"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = tomllib.loads((REPO / "blender_addon" / "blender_manifest.toml").read_text())
    path = REPO / "dist" / f"styletex-{manifest['version']}.zip"
    assert path.is_file()
    return path


def blender_subprocess(script: str, zip_path: Path, tmp_path: Path, *args: str, timeout: float = 180) -> dict:
    """Runs `script` with bpy in a fresh interpreter whose Blender user folder is under tmp_path;
    sys.argv[1:] is the zip's path, then args."""
    home, resources = tmp_path / "home", tmp_path / "blender"
    home.mkdir()
    resources.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the add-on must come from the zip
    env.update(HOME=str(home), BLENDER_USER_RESOURCES=str(resources))
    run = subprocess.run([sys.executable, "-c", script, str(zip_path), *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=timeout)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, output
    return json.loads(lines[-1][len("RESULT "):])


def test_zip_layout_and_manifest(addon_zip):
    with zipfile.ZipFile(addon_zip) as archive:
        names = archive.namelist()
        manifest = tomllib.loads(archive.read("styletex/blender_manifest.toml").decode())
        init = archive.read("styletex/__init__.py").decode()
    assert all(name.startswith("styletex/") for name in names)
    sources = {p.name for p in (REPO / "blender_addon").glob("*.py")}
    assert {name.split("/", 1)[1] for name in names if name.count("/") == 1 and name.endswith(".py")} == sources
    assert not [name for name in names if "__pycache__" in name or "_vendor" in name]
    wheels = sorted(name.split("/", 1)[1] for name in names if name.endswith(".whl") and "/wheels/" in name)
    assert all(name.startswith("styletex/wheels/pyzmq-") for name in names if name.endswith(".whl") and "/wheels/" in name)
    # Install Backend's package: the backend wheel of this version and the runtime lock, as in the checkout.
    version_text = manifest["version"]
    assert sorted(name for name in names if name.startswith("styletex/backend_package/")) == [
        "styletex/backend_package/runtime.lock", f"styletex/backend_package/styletex-{version_text}-py3-none-any.whl"]
    with zipfile.ZipFile(addon_zip) as archive:
        assert archive.read("styletex/backend_package/runtime.lock") == (REPO / "requirements" / "runtime.lock").read_bytes()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == version_text  # the wheel and the add-on are one version
    # The manifest lists exactly the wheels the zip holds, as paths relative to the add-on folder.
    assert sorted(w.removeprefix("./") for w in manifest["wheels"]) == wheels
    assert manifest["id"] == "styletex" and manifest["type"] == "add-on"
    version = re.search(r'"version": \((\d+), (\d+), (\d+)\)', init).groups()
    assert manifest["version"] == ".".join(version)  # bl_info and the manifest agree
    for python, abi in PYTHONS:
        for plat in PLATFORMS:
            assert [w for w in wheels if f"-{python}-{abi}-" in w and plat in w], (python, abi, plat, wheels)


def test_installs_as_an_extension(addon_zip, tmp_path):
    info = blender_subprocess(EXTENSION, addon_zip, tmp_path)
    installed = tmp_path / "blender" / "extensions" / "user_default" / "styletex"
    assert info["result"] == ["FINISHED"]
    assert info["operator"] and info["scene_settings"]
    assert info["operator_module"].startswith("bl_ext.user_default.styletex")
    assert Path(info["module_file"]) == installed / "__init__.py"
    assert info["preferences_mode"] == "local"  # the preferences class found its add-on
    # Blender installed the bundled wheel into the extensions' site-packages; vendor.py had nothing to do.
    site = tmp_path / "blender" / "extensions" / ".local" / "lib"
    assert Path(info["zmq_file"]).is_relative_to(site), info["zmq_file"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["zmq_version"])
    assert not (installed / "_vendor").exists()


def test_installs_the_legacy_way(addon_zip, tmp_path):
    info = blender_subprocess(LEGACY, addon_zip, tmp_path)
    installed = tmp_path / "blender" / "scripts" / "addons" / "styletex"
    assert info["result"] == ["FINISHED"] and info["enabled"] and info["operator"]
    assert Path(info["module_file"]) == installed / "__init__.py"
    assert info["preferences_mode"] == "local"
    # No wheel installer here: vendor.ensure_zmq unpacked the bundled wheel that fits this Python.
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    vendored = installed / "_vendor"
    assert Path(info["zmq_file"]).is_relative_to(vendored), info["zmq_file"]
    unpacked = [p.name for p in vendored.iterdir()]
    assert len(unpacked) == 1 and (f"-{tag}-{tag}-" in unpacked[0] or "-abi3-" in unpacked[0]), unpacked


VENDOR_CHECK = r'''
import importlib.util, json, sys
try:
    import zmq
    print("RESULT " + json.dumps({"visible_before": zmq.__file__}))
    raise SystemExit(0)
except ImportError:
    pass
spec = importlib.util.spec_from_file_location("vendor", sys.argv[1])
vendor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vendor)
try:
    vendor.ensure_zmq()
except ImportError as exc:
    print("RESULT " + json.dumps({"error": str(exc)}))
    raise SystemExit(0)
import zmq
context = zmq.Context()
a, b = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
a.bind("inproc://check")
b.connect("inproc://check")
a.send(b"ping")
print("RESULT " + json.dumps({"zmq_file": zmq.__file__, "echo": b.recv().decode()}))
a.close(); b.close(); context.term()
'''


def run_vendor(folder: Path) -> dict:
    """`ensure_zmq()` in a Python with no site-packages at all (-I -S): only what vendor.py provides."""
    run = subprocess.run([sys.executable, "-I", "-S", "-c", VENDOR_CHECK, str(folder / "vendor.py")], cwd=folder,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, run.stdout + run.stderr
    return json.loads(lines[-1][len("RESULT "):])


def unpack(addon_zip: Path, folder: Path, keep) -> list[str]:
    """vendor.py and the wheels for which keep(name) is true, from the zip, into folder (and wheels/)."""
    (folder / "wheels").mkdir(parents=True)
    kept = []
    with zipfile.ZipFile(addon_zip) as archive:
        (folder / "vendor.py").write_bytes(archive.read("styletex/vendor.py"))
        for name in archive.namelist():
            wheel = name.rsplit("/", 1)[1]
            if name.endswith(".whl") and keep(wheel):
                (folder / "wheels" / wheel).write_bytes(archive.read(name))
                kept.append(wheel)
    return kept


@pytest.mark.skipif(not LINUX_X86_64, reason="the expected wheel is the Linux x86_64 one")
def test_vendor_unpacks_the_fitting_wheel_in_an_isolated_python(addon_zip, tmp_path):
    kept = unpack(addon_zip, tmp_path, lambda name: True)  # all of them: it must pick the right one
    assert len(kept) >= 9
    info = run_vendor(tmp_path)
    assert "visible_before" not in info, "pyzmq must not be importable before ensure_zmq()"
    assert "error" not in info, info
    assert info["echo"] == "ping"
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    relative = Path(info["zmq_file"]).relative_to(tmp_path / "_vendor")
    assert relative.parts[0] == f"pyzmq-27.1.0-{tag}-{tag}-manylinux_2_26_x86_64.manylinux_2_28_x86_64", relative
    assert relative.parts[1:] == ("zmq", "__init__.py")


@pytest.mark.skipif(sys.platform == "win32", reason="the one wheel kept is a Windows one")
def test_vendor_says_which_wheel_is_missing(addon_zip, tmp_path):
    kept = unpack(addon_zip, tmp_path, lambda name: "win_amd64" in name and "cp310" in name)
    assert len(kept) == 1
    info = run_vendor(tmp_path)
    assert "no bundled pyzmq wheel fits Python" in info["error"]
    assert "install pyzmq into Blender's Python" in info["error"]
    assert not (tmp_path / "_vendor").exists()


# The "local" backend mode as a user sets it up: the installed add-on's preferences name the .venv
# Python of the checkout (the folder is found from it), Start launches `python -m backend serve`, the
# job waits for it to listen, and disabling the add-on (as quitting Blender does) stops it.
LOCAL_MODE = HIDE_ZMQ + r'''
import json, os, socket, bpy
import addon_utils
zip_path, python, style = sys.argv[1], sys.argv[2], sys.argv[3]
bpy.ops.preferences.addon_install(filepath=zip_path)
addon_utils.enable("styletex", default_set=True)
prefs = bpy.context.preferences.addons["styletex"].preferences
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    prefs.port = probe.getsockname()[1]
bpy.ops.mesh.primitive_uv_sphere_add(segments=8, ring_count=6)
job = dict(style_path=style, steps=2, texture_size=32, render_size=32, features="random", seed=0)
out = {}
prefs.python = os.path.join(os.path.dirname(python), "no-such-python")
try:
    bpy.ops.styletex.stylize(**job)
except RuntimeError as exc:
    out["bad_python"] = str(exc)
out["bad_python_panel"] = bpy.context.scene.styletex.last_error
prefs.python = python
out["result"] = sorted(bpy.ops.styletex.stylize(**job))
out["status"] = bpy.context.scene.styletex.status
image = bpy.data.images.get("StyleTex_Sphere")
out["image"] = None if image is None else list(image.size)
module = sys.modules["styletex.preferences"]
backend = module._local_backend
out["folder"] = str(backend.folder)
out["running"] = backend.running()
process = backend.process
addon_utils.disable("styletex", default_set=True)
out["exit_code_after_disable"] = process.wait(timeout=10)
print("RESULT " + json.dumps(out))
'''


def test_local_backend_mode_starts_serves_and_stops(addon_zip, tmp_path):
    from .support import MAIN_PYTHON, STYLE

    assert MAIN_PYTHON.exists(), f"{MAIN_PYTHON} is missing: run `python3 build.py setup`"
    info = blender_subprocess(LOCAL_MODE, addon_zip, tmp_path, str(MAIN_PYTHON), str(STYLE), timeout=300)
    assert "Backend Python" in info["bad_python"] and "not an executable file" in info["bad_python"], info
    assert "not an executable file" in info["bad_python_panel"]  # the panel shows it too
    assert info["result"] == ["FINISHED"], info
    assert info["status"].startswith("done: 2 steps"), info
    assert info["image"] == [32, 32]
    assert Path(info["folder"]) == REPO  # found from <checkout>/.venv/bin/python
    assert info["running"]
    assert info["exit_code_after_disable"] is not None
