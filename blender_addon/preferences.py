"""Add-on preferences: where the backend is, its own environment, and the local backend process (bpy-facing)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from .local_backend import LocalBackend, LocalBackendError

_local_backend: LocalBackend | None = None


class StyleTexPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    mode: EnumProperty(name="Backend", items=[
        ("local", "Local", "Start `python -m backend serve` on this machine"),
        ("remote", "Remote", "Connect to a running backend")], default="local")
    install_python: StringProperty(name="Python for Install", subtype="FILE_PATH",
                                   description="Python 3.10+ that Install Backend makes the environment from "
                                               "(empty: Blender's own)")
    python: StringProperty(name="Backend Python", subtype="FILE_PATH",
                           description="Expert: the Python of a StyleTex checkout's .venv, used instead of the "
                                       "installed backend (empty: the installed backend)")
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
            from .backend_setup import draw_install

            box = layout.box()
            box.label(text="Backend environment")
            draw_install(box)
            box.prop(self, "install_python")
            expert = layout.box()
            expert.label(text="Expert: a StyleTex checkout instead of the installed backend")
            expert.prop(self, "python")
            expert.prop(self, "backend_dir")
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
    if prefs.python:  # expert: a checkout's .venv
        backend = ensure_local_backend(bpy.path.abspath(prefs.python),
                                       bpy.path.abspath(prefs.backend_dir) if prefs.backend_dir else "", prefs.port)
        return backend.address, backend
    from .backend_env import installed_backend
    from .backend_setup import data_folder, installing

    if installing():
        raise LocalBackendError("the StyleTex backend is still being installed; Start again once it is done")
    found = installed_backend(data_folder())
    if found is None:
        raise LocalBackendError("Install the backend in the StyleTex preferences (Edit > Preferences > Add-ons > "
                                "StyleTex), or choose a remote backend")
    backend = ensure_local_backend(str(found.python), "", prefs.port, installed=True)
    return backend.address, backend


def ensure_local_backend(python: str, folder: str, port: int, installed: bool = False) -> LocalBackend:
    """The running local backend for these settings; started (once per Blender session) when missing."""
    global _local_backend
    if _local_backend is not None and _local_backend.running() and _local_backend.same_as(python, folder, port):
        return _local_backend
    stop_local_backend()
    _local_backend = LocalBackend(python, folder, port, installed).start()
    return _local_backend


def stop_local_backend() -> None:
    global _local_backend
    if _local_backend is not None:
        _local_backend.stop()
    _local_backend = None
