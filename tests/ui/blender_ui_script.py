"""Runs INSIDE a windowed Blender (not -b): drives the StyleTex add-on through its operator and takes
screenshots of the real window. Started by tests/ui/test_blender_window.py:

    blender --factory-startup --enable-event-simulate --python tests/ui/blender_ui_script.py -- \
        --zip dist/styletex-0.1.0.zip --data data --out out/ui --address tcp://127.0.0.1:PORT

Set BLENDER_USER_CONFIG / BLENDER_USER_SCRIPTS to temporary folders first: the add-on is installed
there, never into the user's own Blender.

The script holds the main thread only while it sets up its timer; everything else runs from a
bpy.app.timers state machine, so Blender keeps drawing and the add-on's own timer keeps writing
previews into the image:

    setup -> tab (sidebar on the StyleTex tab) -> empty (screenshot without the mesh)
    -> before (the mesh with its original texture, once EEVEE compiled its shaders) -> start the job -> during_1, during_2 (after several previews) -> after (status 'done')
    -> controls (the artist's controls set as a user would: a second painting, strength, style scale,
       preserved colours, Animate with its second painting, the Advanced sub-panel open) -> write ui_result.json -> quit

Screenshots are taken with ImageMagick's `import -window root` (the X display Blender draws into)
once Blender has redrawn the tagged window in its own loop; 'empty', 'before' and 'after' only once
no shader compilation runs and two consecutive grabs agree. Viewport samples are set to 1 so that one redraw gives the final frame.
Any failure is written to ui_result.json as "error" and Blender quits, so the test never waits for
a timeout to learn what went wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent))  # Blender's --python adds no folder
from script_support import finisher, guarded  # noqa: E402

TICK_S = 0.2


def parse_args() -> argparse.Namespace:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    parser = argparse.ArgumentParser(prog="blender_ui_script.py")
    parser.add_argument("--zip", required=True, help="the built add-on zip")
    parser.add_argument("--data", required=True, help="the repository's data/ folder")
    parser.add_argument("--out", required=True, help="where screenshots and ui_result.json go")
    parser.add_argument("--address", required=True, help="the backend's ZeroMQ endpoint")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--texture-size", type=int, default=256)
    parser.add_argument("--render-size", type=int, default=96)
    parser.add_argument("--deadline", type=float, default=200.0, help="give up after this many seconds")
    return parser.parse_args(argv)


ARGS = parse_args()
OUT = Path(ARGS.out)
OUT.mkdir(parents=True, exist_ok=True)
T0 = time.monotonic()
RESULT: dict = {"blender": bpy.app.version_string, "python": sys.version.split()[0], "log": [],
                "screenshots": {}, "previews": []}


def log(message: str) -> None:
    line = f"[ui {time.monotonic() - T0:6.1f}s] {message}"
    print(line, flush=True)
    RESULT["log"].append(line)


# --- the window ---------------------------------------------------------------------------------

def window_and_view3d():
    window = bpy.context.window_manager.windows[0]
    area = max((a for a in window.screen.areas if a.type == "VIEW_3D"), key=lambda a: a.width * a.height)
    region = next(r for r in area.regions if r.type == "WINDOW")
    return window, area, region


def override():
    window, area, region = window_and_view3d()
    return bpy.context.temp_override(window=window, screen=window.screen, area=area, region=region)


VIEWPORT_DRAWS = [0]  # bumped by a draw handler each time Blender itself draws the 3D viewport


def count_viewport_draws() -> None:
    bpy.types.SpaceView3D.draw_handler_add(lambda: VIEWPORT_DRAWS.__setitem__(0, VIEWPORT_DRAWS[0] + 1),
                                           (), "WINDOW", "POST_PIXEL")


def request_redraw() -> int:
    """Tags every area of the window for redrawing; returns the draw count to wait past. Blender draws in
    its own event loop between timer ticks. Forcing a draw from inside a timer (wm.redraw_timer) is not
    supported, and it crashed Blender 3.4 once in a header's draw."""
    window, _, _ = window_and_view3d()
    for area in window.screen.areas:
        area.tag_redraw()
    return VIEWPORT_DRAWS[0]


def shaders_compiling() -> bool:
    """EEVEE compiles material shaders in a background job; until it ends the mesh is drawn untextured."""
    return hasattr(bpy.app, "is_job_running") and bpy.app.is_job_running("SHADER_COMPILATION")


def grab() -> bytes:
    """The whole X screen as a binary PPM (what the user sees)."""
    return subprocess.run(["import", "-window", "root", "ppm:-"], check=True, capture_output=True,
                          timeout=30).stdout


def save(name: str, ppm: bytes) -> None:
    path = OUT / f"{name}.png"
    subprocess.run(["convert", "ppm:-", str(path)], input=ppm, check=True, timeout=30)
    image = styled_image()
    RESULT["screenshots"][name] = {"path": path.name, "t": round(time.monotonic() - T0, 2),
                                   "progress": round(bpy.context.scene.styletex.progress, 3)
                                   if hasattr(bpy.context.scene, "styletex") else None,
                                   "status": getattr(getattr(bpy.context.scene, "styletex", None), "status", None),
                                   "styled_checksum": checksum(image) if image is not None else None,
                                   "previews": len(RESULT["previews"])}
    log(f"screenshot {path.name}")


# --- the scene ----------------------------------------------------------------------------------

OBJ_NAME = "Spot"
ORIGINAL_IMAGE = "spot_texture.png"


def checksum(image: "bpy.types.Image") -> str:
    import numpy as np

    width, height = image.size
    flat = np.empty(width * height * image.channels, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return hashlib.sha1(flat.tobytes()).hexdigest()[:16]


def styled_image():
    return bpy.data.images.get(f"{ORIGINAL_IMAGE}_styled")


def install_addon() -> None:
    import addon_utils

    RESULT["zmq_preinstalled"] = importlib.util.find_spec("zmq") is not None
    bpy.ops.preferences.addon_install(filepath=str(Path(ARGS.zip).resolve()), overwrite=True)
    errors: list[str] = []
    module = addon_utils.enable("styletex", default_set=True,
                                handle_error=lambda exc: errors.append("".join(traceback.format_exception(exc))))
    if module is None or not hasattr(bpy.types, "STYLETEX_OT_stylize") or not hasattr(bpy.ops.styletex, "stylize"):
        raise RuntimeError("the StyleTex add-on did not register" + (f":\n{errors[0]}" if errors else "")
                           + f"\nsys.path: {sys.path}")
    import zmq

    RESULT["addon_file"] = module.__file__
    RESULT["zmq_file"] = zmq.__file__
    RESULT["zmq_version"] = zmq.zmq_version()
    RESULT["pyzmq_version"] = zmq.__version__
    log(f"add-on enabled from {module.__file__}; zmq {zmq.__version__} from {zmq.__file__}")


def watch_panel() -> None:
    """Counts the StyleTex panel's draws and keeps the first error a draw raised (Blender only prints it)."""
    cls = bpy.types.STYLETEX_PT_panel
    original = cls.draw
    RESULT["panel"] = {"draws": 0, "draws_while_running": 0, "error": None}

    def draw(self, context):
        RESULT["panel"]["draws"] += 1
        if MACHINE.state == "running":
            RESULT["panel"]["draws_while_running"] += 1
        try:
            original(self, context)
        except Exception:
            RESULT["panel"]["error"] = RESULT["panel"]["error"] or traceback.format_exc()
            raise

    cls.draw = draw


def build_scene() -> None:
    for obj in list(bpy.data.objects):
        if obj.type == "MESH":
            bpy.data.objects.remove(obj)
    data = Path(ARGS.data).resolve()
    if hasattr(bpy.ops.wm, "obj_import"):  # 3.2+: the C++ importer
        bpy.ops.wm.obj_import(filepath=str(data / "spot" / "spot_triangulated.obj"))
    else:
        bpy.ops.import_scene.obj(filepath=str(data / "spot" / "spot_triangulated.obj"))
    obj = next(o for o in bpy.context.selected_objects if o.type == "MESH")
    obj.name = OBJ_NAME
    # A material of our own: Principled BSDF <- Image Texture, whatever the importer made of the .mtl.
    image = bpy.data.images.load(str(data / "spot" / "spot_texture.png"), check_existing=True)
    image.name = ORIGINAL_IMAGE
    material = bpy.data.materials.new("SpotMaterial")
    material.use_nodes = True
    tree = material.node_tree
    bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.location = (bsdf.location.x - 300, bsdf.location.y)
    tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    obj.data.materials.clear()
    obj.data.materials.append(material)
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    RESULT["original_checksum"] = checksum(image)
    log(f"imported {obj.name}: {len(obj.data.vertices)} vertices, {len(obj.data.polygons)} faces")


def setup_view() -> None:
    window, area, region = window_and_view3d()
    space = area.spaces.active
    space.shading.type = "MATERIAL"
    space.overlay.show_floor = True
    space.show_region_ui = True
    bpy.context.scene.eevee.taa_samples = 1  # no sample accumulation: one redraw gives the final frame
    with override():
        bpy.ops.view3d.view_selected()
    r3d = space.region_3d
    from mathutils import Euler

    r3d.view_rotation = Euler((1.3, 0.0, 2.6), "XYZ").to_quaternion()  # three-quarter view of Spot's face
    with override():
        bpy.ops.view3d.view_selected()
    r3d.view_distance *= 0.9
    # The panel's settings as a user would set them (the operator gets the same values below).
    settings = bpy.context.scene.styletex
    settings.style_path = str(Path(ARGS.data).resolve() / "styles" / "starry_night.jpg")
    settings.steps = ARGS.steps
    settings.texture_size = max(ARGS.texture_size, 64)
    settings.render_size = max(ARGS.render_size, 64)
    settings.features = "random"


def show_styletex_tab() -> None:
    """The sidebar opens on its first tab and 3.4 has no Python API for the active tab; the mouse wheel
    over the tab strip cycles tabs. Only possible with --enable-event-simulate (the script records
    whether the panel was drawn afterwards)."""
    window, area, _ = window_and_view3d()
    sidebar = next((r for r in area.regions if r.type == "UI"), None)
    if sidebar is None or not bpy.app.use_event_simulate:
        log("sidebar tab not switched (no --enable-event-simulate)")
        return
    x, y = sidebar.x + sidebar.width - 8, sidebar.y + sidebar.height // 2  # on the vertical tab strip
    window.event_simulate(type="MOUSEMOVE", value="NOTHING", x=x, y=y)
    for _ in range(3):  # Item, Tool, View, StyleTex: the add-on's tab comes last
        window.event_simulate(type="WHEELDOWNMOUSE", value="PRESS", x=x, y=y)
    # Park the pointer in a corner of the viewport so no tooltip or highlight covers the mesh.
    _, _, region = window_and_view3d()
    window.event_simulate(type="MOUSEMOVE", value="NOTHING", x=region.x + 5, y=region.y + 5)


def set_controls() -> None:
    """The artist's controls as a user sets them, and the Advanced sub-panel opened (3.4 has no Python API
    for a panel's open state, so the sub-panel is registered again, open, under a new id)."""
    settings = bpy.context.scene.styletex
    with override():
        bpy.ops.styletex.painting_add()
    settings.paintings[0].name = str(Path(ARGS.data).resolve() / "styles" / "wave.jpg")
    settings.paintings[0].weight = 0.5
    settings.strength, settings.style_scale, settings.preserve_colors = 0.8, 2.0, True
    settings.animate, settings.animate_style_path = True, str(Path(ARGS.data).resolve() / "styles" / "shipwreck.jpg")
    advanced = bpy.types.STYLETEX_PT_advanced
    bpy.utils.unregister_class(advanced)
    advanced.bl_options = set()
    advanced.bl_idname = "STYLETEX_PT_advanced_open"  # a new id: the region remembers the old one as closed
    bpy.utils.register_class(advanced)
    RESULT["controls"] = {"paintings": len(settings.paintings), "strength": settings.strength, "animate": settings.animate}


def start_job() -> None:
    settings = bpy.context.scene.styletex
    with override():
        result = bpy.ops.styletex.stylize(style_path=settings.style_path, steps=settings.steps,
                                          texture_size=settings.texture_size, render_size=settings.render_size,
                                          features="random", seed=0, address=ARGS.address, timeout=30.0)
    log(f"stylize returned {sorted(result)}; status {settings.status!r}")
    if "FINISHED" not in result:
        raise RuntimeError(f"styletex.stylize returned {result}; last error {settings.last_error!r}")


def record_geometry() -> None:
    window, area, region = window_and_view3d()
    RESULT["window"] = {"width": window.width, "height": window.height}
    RESULT["view3d_region"] = {"x": region.x, "y": region.y, "width": region.width, "height": region.height}
    sidebar = next((r for r in area.regions if r.type == "UI"), None)
    if sidebar is not None:
        RESULT["sidebar_region"] = {"x": sidebar.x, "y": sidebar.y, "width": sidebar.width, "height": sidebar.height}


def record_material() -> None:
    obj = bpy.data.objects[OBJ_NAME]
    material = obj.active_material
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    links = bsdf.inputs["Base Color"].links
    node = links[0].from_node if links and links[0].from_node.type == "TEX_IMAGE" else None
    image = styled_image()
    RESULT["material"] = {"name": material.name, "base_color_image": node.image.name if node and node.image else None,
                          "original_key": node.get("styletex_original") if node else None}
    RESULT["styled_image"] = None if image is None else {
        "name": image.name, "size": list(image.size), "packed": image.packed_file is not None,
        "checksum": checksum(image), "colorspace": image.colorspace_settings.name}
    original = bpy.data.images.get(ORIGINAL_IMAGE)
    RESULT["original_checksum_after"] = checksum(original) if original is not None else None


# --- the state machine --------------------------------------------------------------------------

class Machine:
    def __init__(self) -> None:
        self.state = "setup"
        self.since = time.monotonic()
        self.last_grab: bytes | None = None
        self.drawn_after: int | None = None  # a redraw was requested at this draw count

    def goto(self, state: str) -> None:
        log(f"-> {state}")
        self.state, self.since, self.last_grab, self.drawn_after = state, time.monotonic(), None, None

    def fresh_frame(self) -> bytes | None:
        """The screen once Blender has drawn it again since the last call asked for a redraw."""
        if self.drawn_after is None:
            self.drawn_after = request_redraw()
            return None
        if VIEWPORT_DRAWS[0] <= self.drawn_after:
            return None
        self.drawn_after = None
        return grab()

    def settled(self, min_wait: float) -> bytes | None:
        """A frame that equals the previous grab (EEVEE done compiling), once min_wait has passed."""
        if time.monotonic() - self.since < min_wait or shaders_compiling():
            return None
        frame = self.fresh_frame()
        if frame is None:
            return None
        if frame == self.last_grab:
            return frame
        self.last_grab = frame
        return None

    def shoot(self, name: str) -> None:
        """Asks for a redraw in this tick and saves the screenshot in a later one, once Blender drew."""
        frame = self.fresh_frame()
        if frame is not None:
            save(name, frame)

    def poll_previews(self) -> None:
        image = styled_image()
        if image is None:
            return
        value = checksum(image)
        if not RESULT["previews"] or RESULT["previews"][-1]["checksum"] != value:
            settings = bpy.context.scene.styletex
            RESULT["previews"].append({"t": round(time.monotonic() - T0, 2), "checksum": value,
                                       "progress": round(settings.progress, 3), "status": settings.status})

    def job_status(self) -> str:
        settings = bpy.context.scene.styletex
        if settings.last_error or settings.status == "failed":
            raise RuntimeError(f"the job failed: {settings.last_error!r}")
        return settings.status

    def tick(self) -> float | None:
        if time.monotonic() - T0 > ARGS.deadline:
            raise TimeoutError(f"gave up after {ARGS.deadline:.0f} s in state {self.state!r}")
        if self.state == "setup":
            install_addon()
            watch_panel()
            count_viewport_draws()
            build_scene()
            setup_view()
            self.goto("tab")
        elif self.state == "tab":  # the sidebar opened in the last tick: its tabs exist once it was drawn
            if time.monotonic() - self.since >= 0.6:
                show_styletex_tab()
                record_geometry()
                bpy.data.objects[OBJ_NAME].hide_set(True)
                self.goto("empty")
        elif self.state == "empty":
            frame = self.settled(2.0)
            if frame:
                save("empty", frame)
                bpy.data.objects[OBJ_NAME].hide_set(False)
                self.goto("before")
        elif self.state == "before":
            frame = self.settled(2.0)
            if frame:
                save("before", frame)
                start_job()
                self.goto("running")
        elif self.state == "running":
            self.poll_previews()
            status = self.job_status()
            progress = bpy.context.scene.styletex.progress
            shots = RESULT["screenshots"]
            if status.startswith("done") or status.startswith("cancelled"):
                if "during_2" not in shots:
                    raise RuntimeError(f"the job ended ({status!r}) before two 'during' screenshots; "
                                       "raise --steps")
                self.goto("after")
            elif progress >= 1.0:
                pass  # the last step's preview: "during" means a step is still to come
            elif "during_1" not in shots and len(RESULT["previews"]) >= 3 and progress >= 0.2:
                self.shoot("during_1")
            elif "during_1" in shots and "during_2" not in shots and progress >= 0.5 \
                    and len(RESULT["previews"]) > shots["during_1"]["previews"]:
                self.shoot("during_2")
        elif self.state == "after":
            self.poll_previews()
            frame = self.settled(1.0)
            if frame:
                save("after", frame)
                record_material()
                RESULT["status"] = bpy.context.scene.styletex.status
                set_controls()
                self.goto("controls")
        elif self.state == "controls":
            frame = self.settled(1.0)
            if frame:
                save("controls", frame)
                finish()
                return None
        return TICK_S


finish = finisher(RESULT, OUT / "ui_result.json", log, lambda: {"elapsed_s": round(time.monotonic() - T0, 1)})
MACHINE = Machine()
tick = guarded(MACHINE.tick, finish)


prefs = bpy.context.preferences
prefs.view.show_splash = False
prefs.filepaths.temporary_directory = str(OUT)  # quit.blend goes here, not into /tmp
log(f"Blender {bpy.app.version_string}, Python {RESULT['python']}, DISPLAY={os.environ.get('DISPLAY')}")
bpy.app.timers.register(tick, first_interval=1.0)
