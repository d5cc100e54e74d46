"""pyzmq for Blender versions that do not install an extension's wheels (3.4 to 4.1, or the add-on
installed the legacy way): unpack the bundled wheel that fits this interpreter and put it on sys.path.
Blender 4.2+ installs the wheels listed in blender_manifest.toml itself, and then this does nothing."""

from __future__ import annotations

import importlib
import platform
import sys
import sysconfig
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _platform_tags() -> tuple[str, ...]:
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        return (f"manylinux_2_28_{'aarch64' if machine in ('aarch64', 'arm64') else 'x86_64'}",)
    if sys.platform == "darwin":
        return ("macosx_10_15_universal2", "universal2")
    return ("win_amd64",) if machine in ("amd64", "x86_64") else ("win_arm64",)


def _fits(wheel: Path) -> bool:
    name = wheel.name
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    abi_ok = f"-{py}-{py}-" in name or ("-abi3-" in name and sys.version_info >= (3, 12))
    return abi_ok and any(tag in name for tag in _platform_tags())


def ensure_zmq() -> None:
    """Makes `import zmq` work, or raises ImportError saying what is missing."""
    try:
        importlib.import_module("zmq")
        return
    except ImportError:
        pass
    wheels = sorted((HERE / "wheels").glob("pyzmq-*.whl"))
    match = next((w for w in wheels if _fits(w)), None)
    if match is None:
        raise ImportError(f"StyleTex: no bundled pyzmq wheel fits Python {platform.python_version()} on "
                          f"{sysconfig.get_platform()}; install pyzmq into Blender's Python")
    target = HERE / "_vendor" / match.stem
    if not (target / "zmq").is_dir():
        with zipfile.ZipFile(match) as archive:
            archive.extractall(target)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    importlib.import_module("zmq")
