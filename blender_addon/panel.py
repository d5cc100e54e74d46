"""The sidebar panel: View3D > Sidebar > StyleTex, with an Advanced sub-panel (bpy-facing)."""

from __future__ import annotations

import textwrap

import bpy

from .extract import which_uv_map
from .operators import running
from .properties import JobControls

# Settings copied from the panel onto the stylize operator when it is drawn (the paintings list apart).
OPERATOR_SETTINGS = ("style_path", *JobControls.__annotations__, "texture_size", "render_size", "steps", "style_weight",
                     "content_weight", "features", "seed")
NOTE_WIDTH = 40  # characters per line of a note: about what the sidebar shows at its default width


class STYLETEX_UL_paintings(bpy.types.UIList):
    """More paintings, each with its weight in the mix."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.prop(item, "name", text="")
        row.prop(item, "weight", text="")


class _Sidebar:
    """Where StyleTex's panels live: View3D > Sidebar > StyleTex."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "StyleTex"


class STYLETEX_PT_panel(_Sidebar, bpy.types.Panel):
    bl_label = "StyleTex"
    bl_idname = "STYLETEX_PT_panel"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.styletex
        row = layout.row(align=True)
        row.prop(settings, "style_path", text="Style")  # full names do not fit beside their fields
        if len(settings.paintings):
            row.prop(settings, "blend_weight", text="")
        layout.label(text="More paintings (mixed by weight):")
        row = layout.row()
        row.template_list("STYLETEX_UL_paintings", "", settings, "paintings", settings, "painting_index", rows=2)
        buttons = row.column(align=True)
        buttons.operator("styletex.painting_add", icon="ADD", text="")
        buttons.operator("styletex.painting_remove", icon="REMOVE", text="")
        layout.prop(settings, "strength", slider=True)
        row = layout.row()
        row.active = not settings.advanced_weights  # the raw weights of Advanced replace it
        row.label(text="Subtle")
        row.label(text="Strong")
        layout.prop(settings, "style_scale")
        layout.prop(settings, "preserve_colors")
        obj = context.active_object
        if obj is not None and obj.type == "MESH":
            layout.prop_search(settings, "uv_map", obj.data, "uv_layers", text="UV Map")
            name, why = which_uv_map(obj, settings.uv_map)
            layout.label(text=f"Uses {name} ({why})" if name else why, icon="UV" if name else "ERROR")
            if not obj.data.uv_layers:
                layout.prop(settings, "auto_unwrap")
        layout.prop(settings, "even_uvs")
        if settings.even_uvs:
            row = layout.row()
            row.separator()  # indented: an option of Even UV Room
            row.prop(settings, "keep_own_uvs")
        layout.prop(settings, "selected_only")
        layout.prop(settings, "animate")
        if settings.animate:
            box = layout.box()
            box.prop(settings, "animate_to", text="")
            if settings.animate_to == "painting":
                box.prop(settings, "animate_style_path", text="To")
            box.prop(settings, "animate_frames")
        for name in ("texture_size", "render_size", "steps"):
            layout.prop(settings, name)
        layout.prop(settings, "features", text="CNN")
        from .preferences import preferences

        prefs = preferences(context)
        if prefs is not None:  # the backend settings live in the add-on preferences; shown here too
            box = layout.box()
            box.label(text="Backend")  # the sidebar is narrow: short labels
            box.row().prop(prefs, "mode", expand=True)
            if prefs.mode == "local" and not prefs.python:
                from .backend_setup import draw_install

                draw_install(box, compact=True)
            labels = {"python": "Python", "port": "Port", "address": "Address", "server_key": "Server Key",
                      "client_key": "Client Key"}
            local = ("python", "port") if prefs.python else ("port",)
            for name in (local if prefs.mode == "local" else ("address", "server_key", "client_key")):
                box.prop(prefs, name, text=labels[name])
        row = layout.row()
        if obj is not None and running(obj.name):
            row.operator("styletex.cancel")
        else:
            op = row.operator("styletex.stylize")
            for name in OPERATOR_SETTINGS:
                setattr(op, name, getattr(settings, name))
            for painting in settings.paintings:
                item = op.paintings.add()
                item.name, item.weight = painting.name, painting.weight
        layout.operator("styletex.revert")
        if hasattr(layout, "progress"):  # 4.0+
            layout.progress(factor=settings.progress, text=settings.status or "idle")
        else:
            layout.label(text=f"{100 * settings.progress:.0f} % {settings.status}")
        if settings.note:  # a sentence: wrapped, since a label is one line cut at the panel's edge
            box = layout.box()
            for number, line in enumerate(textwrap.wrap(settings.note, NOTE_WIDTH)):
                box.label(text=line, icon="INFO" if number == 0 else "BLANK1")
        if settings.last_error:
            box = layout.box()
            box.alert = True
            box.label(text=settings.last_error, icon="ERROR")


class STYLETEX_PT_advanced(_Sidebar, bpy.types.Panel):
    """The raw loss weights (instead of the strength slider) and the seed."""

    bl_label = "Advanced"
    bl_idname = "STYLETEX_PT_advanced"
    bl_parent_id = "STYLETEX_PT_panel"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.styletex
        layout.prop(settings, "advanced_weights")
        column = layout.column()
        column.active = settings.advanced_weights
        column.prop(settings, "style_weight")
        column.prop(settings, "content_weight")
        layout.prop(settings, "seed")
