"""The add-on in a real Blender window: Debian's Blender 3.4 under Xvfb with the built zip installed.

blender_ui_script.py (run inside that Blender) selects the textured Spot mesh, starts a job through
the add-on's operator against a local backend, waits for several previews and takes screenshots in
Material Preview shading before, during and after; it writes out/ui/ui_result.json. This test
asserts that the styled image datablock changed from preview to preview and is wired into the
material, and that the screenshots change where the mesh is (and hardly anywhere else).

Needs `blender`, `Xvfb`, ImageMagick (`import`, `convert`) and Debian's python3-numpy; `build.py test`
installs them. Missing tools FAIL this test (it is never skipped): CI must exercise the UI.
Screenshots and logs stay in out/ui/ for a human to look at.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.net import free_port

from .support import INSTALL_HINT, ROOT, blender_env, prepare_run, run_blender, start_backend, stop

OUT = ROOT / "out" / "ui"
SCRIPT = Path(__file__).resolve().parent / "blender_ui_script.py"
SCREEN = (1280, 800)
BLENDER_TIMEOUT_S = 300


def start_xvfb(log: Path) -> tuple[subprocess.Popen, str]:
    """Xvfb on a free display number (it picks one itself and reports it through -displayfd)."""
    read, write = os.pipe()
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                                "-nolisten", "tcp"], pass_fds=(write,), stdout=log.open("w"), stderr=subprocess.STDOUT)
    os.close(write)
    number = b""
    deadline = time.monotonic() + 30
    with os.fdopen(read, "rb", buffering=0) as pipe:
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = pipe.read(16)
            if not chunk:
                break
            number += chunk
    if not number.strip():
        stop(process)
        pytest.fail(f"Xvfb did not start; see {log}", pytrace=False)
    return process, f":{number.decode().strip()}"


@pytest.fixture(scope="module")
def ui_run() -> dict:
    """Runs Blender with the UI script once; returns ui_result.json (screenshots are in OUT)."""
    tools, zip_path = prepare_run(OUT)
    xvfb = backend = None
    try:
        xvfb, display = start_xvfb(OUT / "xvfb.log")
        address = f"tcp://127.0.0.1:{free_port()}"
        backend = start_backend(address, OUT / "backend.log")
        with tempfile.TemporaryDirectory(prefix="styletex-blender-") as home:
            env = blender_env(tools["blender"], Path(home), DISPLAY=display, LIBGL_ALWAYS_SOFTWARE="1")
            command = ["blender", "--factory-startup", "--enable-event-simulate", "--python", str(SCRIPT), "--",
                       "--zip", str(zip_path), "--data", str(ROOT / "data"), "--out", str(OUT),
                       "--address", address, "--steps", "120", "--texture-size", "256", "--render-size", "64",
                       "--deadline", str(BLENDER_TIMEOUT_S - 40)]
            started = time.monotonic()
            code = run_blender(command, env, OUT / "blender.log", BLENDER_TIMEOUT_S)
            seconds = time.monotonic() - started
    finally:
        stop(backend)
        stop(xvfb)
    blender_log = (OUT / "blender.log").read_text(errors="replace")
    result_file = OUT / "ui_result.json"
    assert result_file.is_file(), (f"Blender (exit {code}, {seconds:.0f} s) wrote no ui_result.json; "
                                   f"last output:\n{blender_log[-4000:]}")
    result = json.loads(result_file.read_text())
    result["_blender_exit"], result["_blender_seconds"], result["_blender_log"] = code, seconds, blender_log
    error = result.get("error")
    hint = f"\n(Blender's Python has no numpy: {INSTALL_HINT})" if error and "numpy" in error else ""
    assert not error, (f"the UI script failed:\n{error}{hint}\nbackend log:\n"
                       f"{(OUT / 'backend.log').read_text()[-2000:]}")
    return result


def load(name: str) -> np.ndarray:
    path = OUT / f"{name}.png"
    assert path.is_file(), f"screenshot {path} is missing"
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    assert image.shape[:2] == (SCREEN[1], SCREEN[0]), f"{path}: {image.shape[1]}x{image.shape[0]}, not the screen"
    return image


def viewport_box(result: dict) -> tuple[slice, slice]:
    """The 3D viewport's main region in image rows/columns (Blender counts y from the bottom)."""
    region, height = result["view3d_region"], result["window"]["height"]
    top = height - (region["y"] + region["height"])
    return slice(top, top + region["height"]), slice(region["x"], region["x"] + region["width"])


def test_blender_is_debian_3_4_with_the_bundled_pyzmq(ui_run):
    assert ui_run["blender"].startswith("3.4"), ui_run["blender"]
    assert ui_run["python"].startswith("3.11"), ui_run["python"]
    assert ui_run["_blender_exit"] == 0, f"Blender exited with {ui_run['_blender_exit']}"
    if not ui_run["zmq_preinstalled"]:  # vendor.py must have unpacked the cp311 x86_64/aarch64 wheel
        assert "/_vendor/pyzmq-" in ui_run["zmq_file"] and "-cp311-cp311-manylinux" in ui_run["zmq_file"], ui_run["zmq_file"]
    assert "Traceback" not in ui_run["_blender_log"], ui_run["_blender_log"][-4000:]


def test_the_panel_draws_in_3_4(ui_run):
    panel = ui_run["panel"]
    assert panel["error"] is None, panel["error"]
    assert panel["draws_while_running"] > 0, f"the StyleTex sidebar panel was not drawn during the job: {panel}"


def test_previews_changed_the_styled_image_datablock(ui_run):
    styled = ui_run["styled_image"]
    assert styled is not None, "no 'spot_texture.png_styled' image after the job"
    assert styled["name"] == "spot_texture.png_styled"
    assert styled["size"] == [256, 256] and styled["packed"], styled
    assert ui_run["status"].startswith("done"), ui_run["status"]
    # The datablock took several distinct states while the job ran (previews), then the result.
    previews = [p for p in ui_run["previews"] if p["status"].startswith("step")]
    assert len({p["checksum"] for p in previews}) >= 5, f"too few previews reached the image: {ui_run['previews']}"
    progress = [p["progress"] for p in previews]
    assert progress == sorted(progress), progress
    shots = ui_run["screenshots"]
    checksums = [shots[name]["styled_checksum"] for name in ("during_1", "during_2", "after")]
    assert len(set(checksums)) == 3, f"the image did not change between the screenshots: {checksums}"
    assert 0 < shots["during_1"]["progress"] < shots["during_2"]["progress"] < 1 == shots["after"]["progress"]
    # The original image is untouched and remembered; the styled one is in the material.
    assert ui_run["original_checksum_after"] == ui_run["original_checksum"]
    assert ui_run["material"]["base_color_image"] == styled["name"], ui_run["material"]
    assert ui_run["material"]["original_key"] == "spot_texture.png", ui_run["material"]


def test_screenshots_change_where_the_mesh_is(ui_run):
    rows, cols = viewport_box(ui_run)
    empty, before, during_1, during_2, after = (load(name)[rows, cols] for name in
                                                ("empty", "before", "during_1", "during_2", "after"))
    # Where the mesh is: pixels that the mesh changed from the empty viewport.
    mesh = np.abs(before - empty).sum(axis=2) > 40
    assert mesh.mean() > 0.05, f"the mesh covers only {100 * mesh.mean():.1f} % of the viewport in 'before'"

    def change(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
        return float(np.abs(a - b)[where].mean())

    report = {name: round(change(image, before, mesh), 1) for name, image in
              (("during_1", during_1), ("during_2", during_2), ("after", after))}
    for name, value in report.items():
        assert value > 12, f"'{name}' hardly differs from 'before' on the mesh (mean |diff| {report})"
    assert change(during_2, during_1, mesh) > 3, "the mesh did not change between the two 'during' screenshots"
    assert change(after, during_1, mesh) > 3, "the mesh did not change between 'during_1' and 'after'"
    # Elsewhere in the viewport (floor grid, overlays, the sidebar's status line) almost nothing changes.
    background = ~mesh
    assert change(after, before, background) < 3, "'after' differs from 'before' away from the mesh"


def test_the_artists_controls_draw_in_the_panel_and_its_advanced_sub_panel(ui_run):
    assert ui_run["panel"]["error"] is None, ui_run["panel"]["error"]
    assert ui_run["controls"] == {"paintings": 1, "strength": pytest.approx(0.8), "animate": True}
    after, controls = load("after"), load("controls")
    height = ui_run["window"]["height"]
    bar = ui_run["sidebar_region"]
    sidebar = np.zeros(after.shape[:2], bool)
    sidebar[height - (bar["y"] + bar["height"]):height - bar["y"], bar["x"]:bar["x"] + bar["width"]] = True
    # The sidebar redrew with the new values, the list's new row and the opened sub-panel ...
    assert (np.abs(controls - after).sum(axis=2) > 30)[sidebar].mean() > 0.02
    # ... and nothing else on the screen changed.
    assert np.abs(controls - after)[~sidebar].mean() < 1
