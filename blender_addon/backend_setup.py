"""Install Backend, Cancel and Remove (bpy-facing): the add-on's own backend environment, in its user folder.

In the UI, install returns at once: the Installer works in a thread of subprocesses, and a timer redraws
the preferences and the panel until it ends. In background mode (`blender -b`) the operator blocks,
printing each stage and pip's progress, and fails with the one-line reason.
"""

from __future__ import annotations

import time
from pathlib import Path

import bpy
from bpy.props import StringProperty

from .backend_env import (DOWNLOAD_TEXT, BackendInstallError, InstalledBackend, Installer, installed_backend,
                          remove_backend)

_installer: Installer | None = None
TICK_S = 0.5


def data_folder() -> Path:
    """Where the environment lives: the extension's user folder (4.2+), else Blender's user data folder;
    both move with HOME and with Blender's user-folder variables (BLENDER_USER_RESOURCES and others)."""
    package = __package__
    if hasattr(bpy.utils, "extension_path_user"):
        try:
            return Path(bpy.utils.extension_path_user(package, create=True))
        except (ValueError, RuntimeError, TypeError):  # a legacy add-on on 4.2+: not an extension
            pass
    return Path(bpy.utils.user_resource("DATAFILES", path="styletex", create=True))


def current_installer() -> Installer | None:
    return _installer


def installing() -> bool:
    return _installer is not None and _installer.running()


def install_status(compact: bool = False, found: InstalledBackend | None = None) -> tuple[str, str]:
    """(one line, icon) for the preferences and (`compact`, the narrow sidebar) the panel; `found`: the
    installed environment when the caller has looked it up already."""
    if installing():
        return _installer.status(), "SORTTIME"
    if _installer is not None and _installer.state in ("failed", "cancelled"):
        return _installer.status(), "ERROR" if _installer.state == "failed" else "INFO"
    found = found or installed_backend(data_folder())
    if found is not None:
        return ("Installed" if compact else f"Installed: StyleTex {found.version}, Python {found.python_version}"), "CHECKMARK"
    return ("Not installed" if compact else f"Not installed ({DOWNLOAD_TEXT}; a few minutes)"), "INFO"


def _redraw() -> None:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in ("PREFERENCES", "VIEW_3D"):
                area.tag_redraw()


def _watch() -> float | None:
    _redraw()
    return TICK_S if installing() else None


def _stop_local_backend() -> None:
    from .preferences import stop_local_backend

    stop_local_backend()  # it may run from the environment about to change


class STYLETEX_OT_install_backend(bpy.types.Operator):
    """Create the StyleTex backend's own Python environment in Blender's user folder and install the
    backend with PyTorch into it (downloads from the Python package registry)"""

    bl_idname = "styletex.install_backend"
    bl_label = "Install Backend"

    python: StringProperty(name="Python", subtype="FILE_PATH",
                           description="Python 3.10+ for the environment (empty: the preferences' choice, else Blender's own)")

    def execute(self, context):
        global _installer
        if installing():
            self.report({"ERROR"}, "the StyleTex backend is already being installed")
            return {"CANCELLED"}
        from .preferences import preferences

        prefs = preferences(context)
        python = self.python or (bpy.path.abspath(prefs.install_python) if prefs is not None and prefs.install_python else "")
        _stop_local_backend()
        _installer = Installer(data_folder(), python).start()
        if not bpy.app.background:
            bpy.app.timers.register(_watch, first_interval=TICK_S)
            return {"FINISHED"}
        shown = ""
        while _installer.running():  # background mode: no timers; print what changes
            line = _installer.status()
            if line != shown:
                print(f"StyleTex: {line}", flush=True)
                shown = line
            time.sleep(0.2)
        if _installer.state != "done":
            self.report({"ERROR"}, f"StyleTex: {_installer.status()}")
            return {"CANCELLED"}
        print(f"StyleTex: backend installed in {_installer.env}", flush=True)
        return {"FINISHED"}


class STYLETEX_OT_cancel_backend_install(bpy.types.Operator):
    """Stop installing the StyleTex backend (what was installed so far is removed)"""

    bl_idname = "styletex.cancel_backend_install"
    bl_label = "Cancel"

    def execute(self, context):
        if installing():
            _installer.cancel()
        return {"FINISHED"}


class STYLETEX_OT_remove_backend(bpy.types.Operator):
    """Remove the StyleTex backend's environment from Blender's user folder"""

    bl_idname = "styletex.remove_backend"
    bl_label = "Remove"

    def execute(self, context):
        global _installer
        if installing():
            self.report({"ERROR"}, "the StyleTex backend is being installed: cancel that first")
            return {"CANCELLED"}
        _stop_local_backend()
        try:
            remove_backend(data_folder())
        except BackendInstallError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _installer = None
        if bpy.app.background:
            print("StyleTex: backend removed", flush=True)
        return {"FINISHED"}


def draw_install(layout, compact: bool = False) -> None:
    """The environment's state and its buttons (the preferences; the panel, `compact`)."""
    found = installed_backend(data_folder())
    text, icon = install_status(compact, found)
    layout.label(text=text, icon=icon)
    if installing():
        if not compact and _installer.stage:
            layout.label(text=f"Log: {_installer.log_path}")
        layout.operator("styletex.cancel_backend_install")
        return
    if _installer is not None and _installer.state == "failed" and not compact:
        layout.label(text=f"Log: {_installer.log_path}")
    row = layout.row()
    if found is None:
        row.operator("styletex.install_backend", icon="IMPORT")
    elif not compact:
        row.operator("styletex.install_backend", text="Reinstall")
        row.operator("styletex.remove_backend")
