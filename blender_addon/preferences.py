"""Add-on preferences: where the backend is, and the local backend process (bpy-facing)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from .local_backend import LocalBackend

_local_backend: LocalBackend | None = None


class StyleTexPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    mode: EnumProperty(name="Backend", items=[
        ("local", "Local", "Start `python -m backend serve` on this machine"),
        ("remote", "Remote", "Connect to a running backend")], default="local")
    python: StringProperty(name="Backend Python", subtype="FILE_PATH",
                           description="Python interpreter of the StyleTex checkout's .venv (has torch)")
    backend_dir: StringProperty(name="StyleTex Folder", subtype="DIR_PATH",
                                description="The StyleTex checkout (empty: the one whose .venv holds Backend Python)")
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


def backend_address(context) -> tuple[str, "LocalBackend | None"]:
    """The address to connect to and, in local mode, the backend process serving it (started here
    when needed; the job's worker thread waits for it to listen). LocalBackendError when it cannot start."""
    prefs = preferences(context)
    if prefs is None:
        return "tcp://127.0.0.1:5555", None
    if prefs.mode == "remote":
        return prefs.address, None
    backend = ensure_local_backend(bpy.path.abspath(prefs.python) if prefs.python else "",
                                   bpy.path.abspath(prefs.backend_dir) if prefs.backend_dir else "", prefs.port)
    return backend.address, backend


def ensure_local_backend(python: str, folder: str, port: int) -> LocalBackend:
    """The running local backend for these settings; started (once per Blender session) when missing."""
    global _local_backend
    if _local_backend is not None and _local_backend.running() and _local_backend.same_as(python, folder, port):
        return _local_backend
    stop_local_backend()
    _local_backend = LocalBackend(python, folder, port).start()
    return _local_backend


def stop_local_backend() -> None:
    global _local_backend
    if _local_backend is not None:
        _local_backend.stop()
    _local_backend = None
