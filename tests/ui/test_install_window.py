"""Install Backend in a real Blender window: Debian's Blender 3.4 under Xvfb, the built zip installed the
legacy way, its preferences open on the add-on, the button's operator run with real pip (see
blender_install_script.py). Blender's own Python makes the environment, in the temporary user data folder.

Screenshots stay in out/ui_install/ for a human to look at. Missing tools FAIL this test (never skipped).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.install.support import pip_cache_env

from .support import ROOT, blender_env, prepare_run, run_blender, stop
from .test_blender_window import SCREEN, start_xvfb

OUT = ROOT / "out" / "ui_install"
SCRIPT = Path(__file__).resolve().parent / "blender_install_script.py"
TIMEOUT_S = 1200


@pytest.fixture(scope="module")
def install_run() -> dict:
    tools, zip_path = prepare_run(OUT)
    xvfb = None
    try:
        xvfb, display = start_xvfb(OUT / "xvfb.log")
        with tempfile.TemporaryDirectory(prefix="styletex-blender-") as home:
            env = blender_env(tools["blender"], Path(home), DISPLAY=display, LIBGL_ALWAYS_SOFTWARE="1",
                              **pip_cache_env())
            command = ["blender", "--factory-startup", "--python", str(SCRIPT), "--", "--zip", str(zip_path),
                       "--out", str(OUT), "--deadline", str(TIMEOUT_S - 60)]
            code = run_blender(command, env, OUT / "blender.log", TIMEOUT_S)
            result_file = OUT / "install_result.json"
            assert result_file.is_file(), f"Blender (exit {code}) wrote no install_result.json:\n" \
                                          f"{(OUT / 'blender.log').read_text(errors='replace')[-4000:]}"
            result = json.loads(result_file.read_text())
            result["_home"], result["_exit"] = home, code
            result["_log"] = (OUT / "blender.log").read_text(errors="replace")
    finally:
        stop(xvfb)
    assert not result.get("error"), result["error"]
    return result


def load(name: str) -> np.ndarray:
    image = np.asarray(Image.open(OUT / f"{name}.png").convert("RGB"), dtype=np.int16)
    assert image.shape[:2] == (SCREEN[1], SCREEN[0])
    return image


def test_install_backend_runs_without_blocking_blender_and_finishes(install_run):
    assert install_run["_exit"] == 0, install_run["_log"][-3000:]
    assert install_run["blender"].startswith("3.4")
    # The button returns at once; Blender's timers kept running through the whole install.
    assert install_run["operator_returned"] == ["FINISHED"] and install_run["returned_after_s"] < 5
    assert install_run["ui_ticks_while_installing"] > 20
    assert install_run["install_state"] == "done", install_run["install_error"]
    # The legacy add-on's environment lives in Blender's user data folder (moved by BLENDER_USER_DATAFILES).
    assert Path(install_run["data_folder"]) == Path(install_run["_home"]) / "datafiles" / "styletex"
    assert install_run["env_python"].startswith(install_run["data_folder"])
    shots = install_run["screenshots"]
    assert shots["before"]["status"].startswith("Not installed")
    assert shots["during"]["status"].startswith("Installing packages: "), shots["during"]
    assert shots["after"]["status"].startswith("Installed: StyleTex 0.1.0"), shots["after"]
    assert install_run["remove_returned"] == ["FINISHED"] and not install_run["env_left"]
    assert shots["removed"]["status"].startswith("Not installed")
    assert "Traceback" not in install_run["_log"], install_run["_log"][-3000:]


def test_the_preferences_window_shows_each_stage(install_run):
    window = install_run["preferences_window"]
    assert window is not None, "no Preferences window opened"
    height = install_run["screen"]["height"]
    rows = slice(max(0, height - (window["y"] + window["height"])), height - window["y"])
    cols = slice(window["x"], window["x"] + window["width"])
    before, during, after, removed = (load(name) for name in ("before", "during", "after", "removed"))

    def changed(a, b) -> float:
        return float((np.abs(a - b).sum(axis=2) > 30)[rows, cols].mean())

    # Each stage redrew the add-on's box (its status line and buttons) in the Preferences window.
    assert changed(during, before) > 0.002 and changed(after, during) > 0.002, \
        (changed(during, before), changed(after, during))
    assert changed(removed, after) > 0.002
    # Removed looks as it did before the install.
    assert changed(removed, before) < changed(after, before)
