"""Imported by the scripts that run INSIDE Blender (blender_ui_script.py, blender_install_script.py): how
a timer-driven script ends, with its result written and Blender quit, whatever went wrong."""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Callable


def finisher(result: dict, path: Path, log: Callable[[str], None], extra: Callable[[], dict] = dict):
    """finish(error=None): writes `result` (with `extra()` and the error, if any) to `path`, then quits."""
    def finish(error: str | None = None) -> None:
        import bpy

        if error:
            result["error"] = error
            log(f"ERROR {error}")
        result.update(extra())
        path.write_text(json.dumps(result, indent=2))
        bpy.ops.wm.quit_blender()

    return finish


def guarded(step: Callable[[], float | None], finish: Callable[[str | None], None]) -> Callable[[], float | None]:
    """A bpy.app.timers callback: `step`, and on any exception the traceback as the result's error."""
    def tick() -> float | None:
        try:
            return step()
        except Exception:
            try:
                finish(traceback.format_exc())
            except Exception:
                traceback.print_exc()
                os._exit(3)
            return None

    return tick
