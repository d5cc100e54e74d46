"""Runs INSIDE a windowed Blender (not -b): Install Backend pressed in the add-on's preferences, with
screenshots of the real window before, during and after. Started by tests/ui/test_install_window.py:

    blender --factory-startup --python tests/ui/blender_install_script.py -- --zip dist/styletex-0.1.0.zip \
        --out out/ui_install

BLENDER_USER_* must point at temporary folders: the add-on and its backend environment go there.
A bpy.app.timers state machine does the work, so Blender keeps drawing while pip runs:

    setup (install the zip, open Preferences on the add-on, expanded) -> before (screenshot)
    -> installing (the operator returned at once; a screenshot once pip is at work) -> after (screenshot
    once the install ended) -> removed (Remove pressed; screenshot) -> write install_result.json -> quit
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent))  # Blender's --python adds no folder
from script_support import finisher, guarded  # noqa: E402

TICK_S = 0.25
argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
parser = argparse.ArgumentParser(prog="blender_install_script.py")
parser.add_argument("--zip", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--deadline", type=float, default=900.0)
ARGS = parser.parse_args(argv)
OUT = Path(ARGS.out)
OUT.mkdir(parents=True, exist_ok=True)
T0 = time.monotonic()
RESULT: dict = {"blender": bpy.app.version_string, "screenshots": {}, "log": [], "ui_ticks_while_installing": 0}
DRAWS = [0]  # bumped each time Blender draws a Preferences area


def log(message: str) -> None:
    line = f"[install {time.monotonic() - T0:6.1f}s] {message}"
    print(line, flush=True)
    RESULT["log"].append(line)


def setup_module():
    return sys.modules["styletex.backend_setup"]


def preferences_window():
    return next((w for w in bpy.context.window_manager.windows
                 if any(a.type == "PREFERENCES" for a in w.screen.areas)), None)


def open_preferences() -> None:
    import addon_utils

    bpy.ops.preferences.addon_install(filepath=str(Path(ARGS.zip).resolve()), overwrite=True)
    module = addon_utils.enable("styletex", default_set=True)
    if module is None or not hasattr(bpy.ops.styletex, "install_backend"):
        raise RuntimeError("the StyleTex add-on did not register")
    for listed in addon_utils.modules(refresh=False):  # the list draws these (stand-in) modules' bl_info
        if listed.__name__ == "styletex":
            addon_utils.module_bl_info(listed)["show_expanded"] = True
    bpy.context.preferences.active_section = "ADDONS"
    bpy.context.window_manager.addon_search = "StyleTex"
    bpy.types.SpacePreferences.draw_handler_add(lambda: DRAWS.__setitem__(0, DRAWS[0] + 1), (), "WINDOW", "POST_PIXEL")
    bpy.ops.screen.userpref_show(section="ADDONS")
    RESULT["data_folder"] = str(setup_module().data_folder())


def record_window() -> None:
    window = preferences_window()
    RESULT["screen"] = {"width": bpy.context.window_manager.windows[0].width,
                        "height": bpy.context.window_manager.windows[0].height}
    RESULT["preferences_window"] = None if window is None else {
        "x": window.x, "y": window.y, "width": window.width, "height": window.height}


class Machine:
    def __init__(self) -> None:
        self.state, self.since, self.asked_at = "setup", time.monotonic(), None

    def goto(self, state: str) -> None:
        log(f"-> {state}")
        self.state, self.since, self.asked_at = state, time.monotonic(), None

    def shot(self, name: str) -> bool:
        """True once the screenshot is saved: asks for a redraw, waits for Blender to draw, grabs."""
        if self.asked_at is None:
            for window in bpy.context.window_manager.windows:
                for area in window.screen.areas:
                    area.tag_redraw()
            self.asked_at = DRAWS[0]
            return False
        if DRAWS[0] <= self.asked_at:
            return False
        ppm = subprocess.run(["import", "-window", "root", "ppm:-"], check=True, capture_output=True, timeout=30).stdout
        subprocess.run(["convert", "ppm:-", str(OUT / f"{name}.png")], input=ppm, check=True, timeout=30)
        text, _ = setup_module().install_status()
        RESULT["screenshots"][name] = {"t": round(time.monotonic() - T0, 1), "status": text}
        log(f"screenshot {name}: {text}")
        self.asked_at = None
        return True

    def tick(self) -> float | None:
        if time.monotonic() - T0 > ARGS.deadline:
            raise TimeoutError(f"gave up after {ARGS.deadline:.0f} s in state {self.state!r}")
        setup = sys.modules.get("styletex.backend_setup")
        if self.state == "setup":
            open_preferences()
            self.goto("before")
        elif self.state == "before":
            if time.monotonic() - self.since > 1.5 and self.shot("before"):
                record_window()
                result = bpy.ops.styletex.install_backend()
                RESULT["operator_returned"] = sorted(result)
                RESULT["returned_after_s"] = round(time.monotonic() - self.since, 2)
                self.goto("installing")
        elif self.state == "installing":
            RESULT["ui_ticks_while_installing"] += 1  # this timer keeps running: Blender is not blocked
            installer = setup.current_installer()
            if installer.running() and installer.stage == "installing packages" and installer.last_line \
                    and "during" not in RESULT["screenshots"]:
                self.shot("during")
            elif not installer.running() and (self.asked_at is not None or time.monotonic() - self.since > 1):
                if self.shot("after"):
                    RESULT["install_state"], RESULT["install_error"] = installer.state, installer.error
                    RESULT["env_python"] = str(setup.installed_backend(setup.data_folder()).python) \
                        if installer.state == "done" else None
                    result = bpy.ops.styletex.remove_backend()
                    RESULT["remove_returned"] = sorted(result)
                    self.goto("removed")
        elif self.state == "removed":
            if time.monotonic() - self.since > 1 and self.shot("removed"):
                RESULT["env_left"] = os.path.exists(Path(RESULT["data_folder"]) / "backend-env")
                finish()
                return None
        return TICK_S


finish = finisher(RESULT, OUT / "install_result.json", log)
MACHINE = Machine()
tick = guarded(MACHINE.tick, finish)


bpy.context.preferences.view.show_splash = False
bpy.context.preferences.filepaths.temporary_directory = str(OUT)
bpy.app.timers.register(tick, first_interval=1.0)
