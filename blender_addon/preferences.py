"""Add-on preferences: where the backend is, and the local backend process (bpy-facing)."""

from __future__ import annotations

import subprocess
import sys

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

_local_backend: subprocess.Popen | None = None


class StyleTexPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    mode: EnumProperty(name="Backend", items=[
        ("local", "Local", "Start `python -m backend serve` on this machine"),
        ("remote", "Remote", "Connect to a running backend")], default="local")
    python: StringProperty(name="Backend Python", subtype="FILE_PATH",
                           description="Python interpreter of the StyleTex checkout's .venv (has torch)")
    backend_dir: StringProperty(name="StyleTex Folder", subtype="DIR_PATH", description="The StyleTex checkout")
    port: IntProperty(name="Local Port", default=5555, min=1024, max=65535)
    address: StringProperty(name="Address", default="tcp://127.0.0.1:5555")
    server_key: StringProperty(name="Server Public Key", subtype="FILE_PATH")
    client_key: StringProperty(name="Client Secret Key", subtype="FILE_PATH")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "mode")
        if self.mode == "local":
            layout.prop(self, "python")
            layout.prop(self, "backend_dir")
            layout.prop(self, "port")
        else:
            layout.prop(self, "address")
            layout.prop(self, "server_key")
            layout.prop(self, "client_key")


def preferences(context) -> "StyleTexPreferences | None":
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon else None


def backend_address(context) -> str:
    prefs = preferences(context)
    if prefs is None:
        return "tcp://127.0.0.1:5555"
    if prefs.mode == "remote":
        return prefs.address
    ensure_local_backend(prefs)
    return f"tcp://127.0.0.1:{prefs.port}"


def ensure_local_backend(prefs) -> None:
    """Starts the local backend once per Blender session; stop_local_backend() ends it at exit."""
    global _local_backend
    if _local_backend is not None and _local_backend.poll() is None:
        return
    python = bpy.path.abspath(prefs.python) if prefs.python else sys.executable
    folder = bpy.path.abspath(prefs.backend_dir) if prefs.backend_dir else None
    _local_backend = subprocess.Popen([python, "-m", "backend", "serve", "--bind", f"tcp://127.0.0.1:{prefs.port}"],
                                      cwd=folder, env=None)


def stop_local_backend() -> None:
    global _local_backend
    if _local_backend is not None and _local_backend.poll() is None:
        _local_backend.terminate()
        try:
            _local_backend.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _local_backend.kill()
    _local_backend = None
