"""Operators: stylize the active object, cancel, revert (bpy-facing).

In the UI, `stylize` returns at once; a bpy.app.timers callback drains the worker's events and
writes previews into the image (the UI never blocks longer than one tick). In background mode
(`blender -b`, where timers never fire while a script runs) it blocks, printing progress, and
raises on failure (bpy.ops turns an error report into RuntimeError).
"""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass

import bpy
from bpy.props import CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .atlas import AtlasLayout, unpack
from .client import ClientError, CurveKeys
from .controls import style_settings
from .extract import EVEN_NAME, ExtractError, add_even_uv_map, add_uv_map, evaluated_corner_uvs, extract_active
from .properties import FEATURES, JobControls, StyleTexPainting
from .session import Event, JobSession
from .write_back import (UV_MAP_KEY, ensure_image, revert, sequence_folder, show_sequence, show_styled,
                         show_styled_for, styled_image_name, write_pixels)

_sessions: dict[str, JobSession] = {}  # object name -> running job
TICK_S = 0.1
TICK_BUDGET_S = 0.02


def _settings(scene) -> "bpy.types.PropertyGroup":
    return scene.styletex


@dataclass(frozen=True)
class StyledImages:
    """Where a job's texture goes when it is an atlas of several images: (original, styled) image names in
    cell order, and the atlas's layout."""

    pairs: tuple[tuple[str, str], ...]
    layout: AtlasLayout


def _show_pixels(obj_name: str, target: "str | StyledImages", pixels) -> list:
    """Writes a preview or the result into the styled image(s); returns the images written."""
    obj = bpy.data.objects.get(obj_name)
    if isinstance(target, str):
        image = bpy.data.images.get(target)
        if image is None:
            return []
        write_pixels(image, pixels)
        if obj is not None:
            # Wired in with the first pixels, not at Start: a job that fails or is cancelled before any
            # preview leaves the material showing its original image, not an empty new one.
            show_styled(obj, image)
        return [image]
    written = []
    for (original_name, styled_name), cell in zip(target.pairs, unpack(pixels, target.layout, len(target.pairs))):
        original, image = bpy.data.images.get(original_name), bpy.data.images.get(styled_name)
        if image is None:
            continue
        write_pixels(image, cell)
        if obj is not None and original is not None:
            show_styled_for(obj, original, image)
        written.append(image)
    return written


def apply_event(scene, obj_name: str, image_name: "str | StyledImages", event: Event) -> bool:
    """Applies one worker event on the main thread; True when the job is over. image_name names the styled
    image, or is the StyledImages of an atlas job."""
    settings = _settings(scene)
    if event.kind == "accepted":
        settings.status = f"queued as job {event.fields['job']}"
        settings.note = event.fields.get("note", "")
    elif event.kind == "progress":
        f = event.fields
        settings.progress = f["step"] / max(f["steps"], 1)
        loss = f.get("loss", {}).get("total")
        settings.status = f"step {f['step']}/{f['steps']}" + (f", loss {loss:.3f}" if loss is not None else "") + \
            f", ETA {int(f.get('eta', 0))} s"
        if event.pixels is not None:
            _show_pixels(obj_name, image_name, event.pixels)
    elif event.kind == "result":
        for image in _show_pixels(obj_name, image_name, event.pixels):
            image.pack()  # or it is lost when the file is reopened
        settings.progress = 1.0
        report = event.fields.get("report", {})
        settings.status = (f"done: {report.get('steps_done', '?')} steps with {report.get('features', '?')}, "
                           f"coverage {100 * report.get('coverage', 0):.0f} %")
        obj = bpy.data.objects.get(obj_name)
        if event.frames is not None and obj is not None and isinstance(image_name, str):
            styled = bpy.data.images.get(image_name)
            show_sequence(obj, event.frames, f"{image_name}_morph", scene.frame_start,
                          styled.get(UV_MAP_KEY, "") if styled is not None else "")
            settings.status += f"; {len(event.frames)} frames in {bpy.path.relpath(sequence_folder())}"
        settings.last_error = ""
        return True
    elif event.kind == "cancelled":
        settings.status = f"cancelled after {event.fields.get('steps_done', 0)} steps"
        if event.fields.get("message"):  # stopped by a limit of the backend's (--max-job-seconds): say so
            settings.last_error = event.fields["message"]
        if event.pixels is not None:  # what the job had when it was stopped
            for image in _show_pixels(obj_name, image_name, event.pixels):
                image.pack()
        return True
    elif event.kind == "error":
        settings.last_error = event.fields.get("message", "unknown error")
        settings.status = "failed"
        return True
    return False


def _redraw() -> None:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "IMAGE_EDITOR"):
                area.tag_redraw()


def _make_drain(scene_name: str, obj_name: str, image_name: "str | StyledImages"):
    def drain() -> float | None:
        session = _sessions.get(obj_name)
        scene = bpy.data.scenes.get(scene_name)
        if session is None or scene is None:
            return None
        deadline = time.monotonic() + TICK_BUDGET_S
        over = applied = False
        while time.monotonic() < deadline:
            try:
                event = session.events.get_nowait()
            except queue.Empty:
                break
            over = apply_event(scene, obj_name, image_name, event) or over
            applied = True
        if applied:  # idle ticks must not redraw every viewport ten times a second
            _redraw()
        if over:
            _sessions.pop(obj_name, None)
            return None
        return TICK_S

    return drain


class STYLETEX_OT_stylize(JobControls, bpy.types.Operator):
    """Restyle the active object's texture with the style of a painting"""

    bl_idname = "styletex.stylize"
    bl_label = "Start"
    bl_options = {"REGISTER"}

    style_path: StringProperty(name="Style Image", subtype="FILE_PATH")
    paintings: CollectionProperty(type=StyleTexPainting, name="More Paintings",
                                  description="Further paintings mixed into the style: [{'name': path, 'weight': w}, ...]")
    steps: IntProperty(name="Steps", default=400, min=1)
    texture_size: IntProperty(name="Texture Size", default=1024, min=16, max=4096)
    render_size: IntProperty(name="Render Size", default=512, min=16, max=2048)
    style_weight: FloatProperty(name="Style Weight", default=1.0, min=0.0)
    content_weight: FloatProperty(name="Content Weight", default=1.5, min=0.0)
    features: EnumProperty(name="Network", items=FEATURES, default="auto")
    seed: IntProperty(name="Seed", default=0, min=0)
    address: StringProperty(name="Backend Address", description="Empty: from the add-on preferences")
    timeout: FloatProperty(name="Timeout", default=5.0, min=1.0, description="Seconds of silence before the backend counts as gone")

    def execute(self, context):
        try:
            job = self._prepare(context)
        except (ExtractError, ClientError) as exc:  # before anything is sent: say what is wrong, change nothing
            _settings(context.scene).last_error = str(exc)
            _settings(context.scene).status = "not started"
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        obj_name, image_name, session, warnings = job
        for warning in warnings:
            self.report({"WARNING"}, f"StyleTex: {warning}")
        if bpy.app.background:
            return self._block(context, session, obj_name, image_name)
        _sessions[obj_name] = session
        bpy.app.timers.register(_make_drain(context.scene.name, obj_name, image_name), first_interval=TICK_S,
                                persistent=True)
        return {"FINISHED"}

    def _prepare(self, context) -> tuple[str, str, JobSession, tuple[str, ...]]:
        """Checks the input, makes the new image and starts the worker; (object, image, session, what the user should
        know of the job)."""
        from .preferences import backend_address, preferences

        obj = context.active_object
        if obj is not None and obj.name in _sessions:
            raise ExtractError(f"a StyleTex job is already running for '{obj.name}'")
        if self.auto_unwrap and obj is not None and obj.type == "MESH" and not obj.data.uv_layers and obj.data.polygons:
            add_uv_map(obj)
        payload = extract_active(context, self.uv_map, self.selected_only, self.texture_size)
        texture_size = payload.layout.size if payload.layout is not None else self.texture_size
        if self.even_uvs and self.selected_only:
            raise ExtractError("Even UV Room restyles the whole object in new UVs: turn off Selected Faces Only")
        if self.even_uvs and payload.layout is not None:
            raise ExtractError("Even UV Room needs an object whose materials show one image (or none), not several")
        if self.even_uvs and self.keep_own_uvs and self.animate:
            raise ExtractError("Animate restyles in the UVs it shows the frames in: turn off Keep Own UVs")
        if self.selected_only:  # the other texels are kept bit for bit: the result must have the images' own size
            if not payload.images:
                raise ExtractError("Selected Faces Only keeps the other faces' texels, and this object has no image texture")
            side = payload.layout.cell if payload.layout is not None else payload.texture.shape[0]
            odd = [i for i in payload.images if tuple(i.size) != (side, side)]
            if odd:
                raise ExtractError(f"Selected Faces Only needs square images of one size ('{odd[0].name}' is "
                                   f"{odd[0].size[0]}x{odd[0].size[1]})")
            texture_size = payload.texture.shape[0]
        chosen = [(self.style_path, self.blend_weight)] + [(p.name, p.weight) for p in self.paintings]
        style = []
        for number, (name, _) in enumerate(chosen, 1):
            path = bpy.path.abspath(name)
            if not name or not os.path.isfile(path):
                which = "style image" if number == 1 else f"painting {number}"
                raise ExtractError(f"{which} not found: {name or '(none chosen)'}")
            with open(path, "rb") as handle:
                style.append(handle.read())
        if not any(weight > 0 for _, weight in chosen):
            raise ExtractError("every painting has weight 0: give at least one a weight")
        if self.preserve_colors and payload.texture is None:
            raise ExtractError("Preserve Colors keeps the texture's colours, and this object has neither an image "
                               "texture nor one plain material colour")
        sequence, style_to = self._animation(payload) if self.animate else (None, None)
        raw = (self.style_weight, self.content_weight) if self.advanced_weights else None
        settings = {"steps": self.steps, "texture_size": texture_size, "render_size": self.render_size,
                    "features": self.features, "seed": self.seed,
                    **style_settings([w for _, w in chosen], self.style_scale, self.preserve_colors, self.strength, raw)}
        round_trip = self.even_uvs and self.keep_own_uvs
        if round_trip:  # the backend restyles in even UVs and hands the image back in the ones sent
            settings["unwrap"] = "round-trip"
        preview = {"every": max(1, self.steps // 40), "max_size": min(texture_size, 1024), "format": "float16"}
        curve, local, address = None, None, self.address
        prefs = preferences(context)
        if not address and prefs is not None and prefs.mode == "remote" and prefs.server_key and prefs.client_key:
            curve = CurveKeys.from_files(bpy.path.abspath(prefs.server_key), bpy.path.abspath(prefs.client_key))
        if not address:
            address, local = backend_address(context)
        data = {"positions": payload.positions, "faces": payload.faces, "uvs": payload.uvs, "style": style,
                "texture": payload.texture, "editable": payload.editable, "sequence": sequence, "style_to": style_to}
        job_map = ""
        if self.even_uvs and not round_trip:  # made last: a job refused above leaves the mesh as it was
            job_map = add_even_uv_map(obj)
            data["uvs"] = evaluated_corner_uvs(context, obj, job_map)
            if payload.texture is not None:
                data["texture_uvs"] = payload.uvs  # where the original lies: the backend moves it into the new map
        if payload.layout is not None:  # several images: one styled copy each
            cell = payload.layout.cell
            target = StyledImages(tuple((i.name, ensure_image(styled_image_name(obj, i), cell).name) for i in payload.images),
                                  payload.layout)
        else:
            # Restyling a result of Even UV Room again (no Revert between) reads it through its map: so is the new one.
            layout_map = job_map or (payload.uv_map if payload.uv_map == EVEN_NAME else "")
            target = ensure_image(styled_image_name(obj, payload.image), texture_size, layout_map).name
        session = JobSession(address, data, settings, preview, curve, self.timeout,
                             before=local.wait_ready if local is not None else None).start()
        _settings(context.scene).last_error = ""
        _settings(context.scene).note = ""
        _settings(context.scene).status = "starting the local backend" if local is not None else "sending"
        return obj.name, target, session, payload.warnings

    def _animation(self, payload) -> tuple[dict, bytes | None]:
        """Animate's checks and its part of the job: the sequence request and the second painting's bytes."""
        if not bpy.data.filepath:
            raise ExtractError("Animate saves its frames beside the .blend: save the file first")
        if self.selected_only:
            raise ExtractError("Animate restyles the whole object: turn off Selected Faces Only")
        if payload.layout is not None:
            raise ExtractError("Animate needs an object whose materials show one image, not several")
        if self.animate_to == "original":
            if payload.texture is None:
                raise ExtractError("From the Original morphs from the object's texture, and this object has none")
            return {"frames": self.animate_frames, "to": "original"}, None
        path = bpy.path.abspath(self.animate_style_path)
        if not self.animate_style_path or not os.path.isfile(path):
            raise ExtractError(f"second painting not found: {self.animate_style_path or '(none chosen)'}")
        with open(path, "rb") as handle:
            return {"frames": self.animate_frames, "to": "painting"}, handle.read()

    def _block(self, context, session: JobSession, obj_name: str, image_name: "str | StyledImages"):
        """Background mode: no timers run, so poll the queue here until the job ends."""
        while True:
            try:
                event = session.events.get(timeout=0.1)
            except queue.Empty:
                continue
            over = apply_event(context.scene, obj_name, image_name, event)
            if event.kind == "progress":
                print(f"StyleTex: {_settings(context.scene).status}", flush=True)
            if over:
                break
        if event.kind == "error":
            self.report({"ERROR"}, f"StyleTex: {event.fields.get('message')}")
            return {"CANCELLED"}
        print(f"StyleTex: {_settings(context.scene).status}", flush=True)
        return {"FINISHED"} if event.kind == "result" else {"CANCELLED"}


class STYLETEX_OT_cancel(bpy.types.Operator):
    """Stop the running StyleTex job of the active object (the texture so far is kept)"""

    bl_idname = "styletex.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        obj = context.active_object
        session = _sessions.get(obj.name) if obj else None
        if session is None:
            self.report({"WARNING"}, "no StyleTex job is running for the active object")
            return {"CANCELLED"}
        session.cancel()
        return {"FINISHED"}


class STYLETEX_OT_revert(bpy.types.Operator):
    """Put the original image back into the material"""

    bl_idname = "styletex.revert"
    bl_label = "Revert to Original"

    def execute(self, context):
        if context.active_object is None or not revert(context.active_object):
            self.report({"WARNING"}, "nothing to revert on the active object")
            return {"CANCELLED"}
        return {"FINISHED"}


def running(obj_name: str) -> bool:
    return obj_name in _sessions


class STYLETEX_OT_painting_add(bpy.types.Operator):
    """Mix one more painting into the style"""

    bl_idname = "styletex.painting_add"
    bl_label = "Add Painting"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = _settings(context.scene)
        settings.paintings.add()
        settings.painting_index = len(settings.paintings) - 1
        return {"FINISHED"}


class STYLETEX_OT_painting_remove(bpy.types.Operator):
    """Remove the selected painting from the mix"""

    bl_idname = "styletex.painting_remove"
    bl_label = "Remove Painting"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(_settings(context.scene).paintings) > 0

    def execute(self, context):
        settings = _settings(context.scene)
        settings.paintings.remove(min(settings.painting_index, len(settings.paintings) - 1))
        settings.painting_index = max(0, min(settings.painting_index, len(settings.paintings) - 1))
        return {"FINISHED"}
