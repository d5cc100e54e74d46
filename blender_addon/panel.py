"""The sidebar panel: View3D > Sidebar > StyleTex (bpy-facing)."""

from __future__ import annotations

import bpy

from .operators import running


class STYLETEX_PT_panel(bpy.types.Panel):
    bl_label = "StyleTex"
    bl_idname = "STYLETEX_PT_panel"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "StyleTex"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.styletex
        short = {"style_path": "Style", "features": "CNN"}  # full names do not fit beside their fields
        for name in ("style_path", "texture_size", "render_size", "steps", "style_weight", "content_weight",
                     "features", "seed"):
            layout.prop(settings, name, **({"text": short[name]} if name in short else {}))
        from .preferences import preferences

        prefs = preferences(context)
        if prefs is not None:  # the backend settings live in the add-on preferences; shown here too
            box = layout.box()
            box.label(text="Backend")  # the sidebar is narrow: short labels
            box.row().prop(prefs, "mode", expand=True)
            labels = {"python": "Python", "port": "Port", "address": "Address", "server_key": "Server Key",
                      "client_key": "Client Key"}
            for name in (("python", "port") if prefs.mode == "local" else ("address", "server_key", "client_key")):
                box.prop(prefs, name, text=labels[name])
        obj = context.active_object
        row = layout.row()
        if obj is not None and running(obj.name):
            row.operator("styletex.cancel")
        else:
            op = row.operator("styletex.stylize")
            for name in ("style_path", "texture_size", "render_size", "steps", "style_weight", "content_weight",
                         "features", "seed"):
                setattr(op, name, getattr(settings, name))
        layout.operator("styletex.revert")
        if hasattr(layout, "progress"):  # 4.0+
            layout.progress(factor=settings.progress, text=settings.status or "idle")
        else:
            layout.label(text=f"{100 * settings.progress:.0f} % {settings.status}")
        if settings.last_error:
            box = layout.box()
            box.alert = True
            box.label(text=settings.last_error, icon="ERROR")
