"""Shared by the install tests."""

from __future__ import annotations

import os
import subprocess
import sys


def pip_cache_env() -> dict[str, str]:
    """PIP_CACHE_DIR of the user running the tests, for installs whose HOME is a temporary folder."""
    if os.environ.get("PIP_CACHE_DIR"):
        return {"PIP_CACHE_DIR": os.environ["PIP_CACHE_DIR"]}
    found = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True)
    return {"PIP_CACHE_DIR": found.stdout.strip()} if found.returncode == 0 and found.stdout.strip() else {}
