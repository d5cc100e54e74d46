"""Checks that a command's output paths can be written, made before its job runs: a job of minutes must not end
in an error for want of a place to put its result."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StyleTexError


def check_output(path: str | Path, option: str, folder: bool = False) -> None:
    """Raises a one-line StyleTexError naming `option` unless `path` (a file, or with `folder` a folder) can be
    written: it is not the other kind, and the nearest folder above it that exists (the ones below are made when
    writing) is a folder this process may write in."""
    target = Path(path)
    if folder and target.exists() and not target.is_dir():
        raise StyleTexError(f"{option} {target}: not a folder")
    if not folder and target.is_dir():
        raise StyleTexError(f"{option} {target}: is a folder; give a file name")
    if target.exists() and not os.access(target, os.W_OK):
        raise StyleTexError(f"{option} {target}: cannot write it (no permission)")
    above = target if folder and target.exists() else target.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise StyleTexError(f"{option} {target}: {above} is a file, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise StyleTexError(f"{option} {target}: cannot write in {above} (no permission)")
