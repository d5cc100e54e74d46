"""Animate: an interpolation job from the operator (blocking, as in background mode) against a real backend.
The frames are saved beside the .blend and wired into the material as an image sequence that plays from the
scene's start frame; saving and reopening keeps it; Revert restores the original; bad requests are refused
before anything is sent."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from .support import JOB, REPO, STYLE, add_sphere, base_color_node, make_image, textured_material

WAVE = REPO / "data" / "styles" / "wave.jpg"


def saved_sphere(bpy, tmp_path):
    obj = add_sphere("Ball")
    textured_material(obj, make_image("Original"))
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    return bpy.data.objects["Ball"]


def render_at(bpy, obj, frame: int, tmp_path) -> np.ndarray:
    """A tiny Cycles render of the object at scene frame `frame` (the image sequence is evaluated per frame)."""
    scene = bpy.context.scene
    if scene.camera is None:
        bpy.ops.object.camera_add(location=(0, -4, 0), rotation=(1.5708, 0, 0))
        scene.camera = bpy.context.active_object
        bpy.context.view_layer.objects.active = obj
        scene.world = scene.world or bpy.data.worlds.new("World")
        scene.world.color = (1, 1, 1)
        scene.render.engine = "CYCLES"
        scene.cycles.samples, scene.cycles.device = 1, "CPU"
        scene.render.resolution_x = scene.render.resolution_y = 24
        scene.render.resolution_percentage = 100
        scene.render.image_settings.file_format = "PNG"
    scene.frame_set(frame)
    scene.render.filepath = str(tmp_path / f"render_{frame}.png")
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(tmp_path / f"render_{frame}.png").convert("RGB"), np.float32) / 255


def test_animate_to_a_second_painting_plays_from_the_timeline(bpy_clean, backend, tmp_path):
    bpy = bpy_clean
    obj = saved_sphere(bpy, tmp_path)
    bpy.context.view_layer.objects.active = obj
    bpy.context.scene.frame_start = 10
    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=3, address=backend.address, animate=True,
                                      animate_frames=3, animate_to="painting", animate_style_path=str(WAVE), **JOB)
    assert result == {"FINISHED"}
    status = bpy.context.scene.styletex.status
    assert status.startswith("done: 3 steps") and "3 frames in //scene_styletex" in status, status
    files = sorted((tmp_path / "scene_styletex").iterdir())
    assert [f.name for f in files] == [f"Original_styled_morph_{n:04d}.png" for n in (1, 2, 3)]
    frames = [np.asarray(Image.open(f).convert("RGB"), np.float32) / 255 for f in files]
    assert all(frame.shape == (32, 32, 3) for frame in frames)
    assert np.abs(frames[0] - frames[2]).mean() > 1 / 255  # the morph changes the texture
    node = base_color_node(obj)
    image = node.image
    assert image.name == "Original_styled_morph" and image.source == "SEQUENCE"
    assert image.filepath == "//scene_styletex/Original_styled_morph_0001.png"
    user = node.image_user
    assert (user.frame_duration, user.frame_start, user.frame_offset) == (3, 10, 0)
    assert user.use_auto_refresh and not user.use_cyclic
    # Pressing Play: renders at successive frames show successive texture frames; past the end the last holds. The
    # renders are deterministic (frame 20 equals frame 12 to 1e-6), so a difference of 1e-4 means another texture
    # frame is shown; how far the three-step morph moves is the frames' own check above (measured: 9e-4 between
    # the renders of the first and last frames with the detail term on, above 1e-3 without).
    renders = {frame: render_at(bpy, obj, frame, tmp_path) for frame in (10, 11, 12, 20)}
    assert np.abs(renders[10] - renders[12]).mean() > 1e-4
    assert np.abs(renders[11] - renders[10]).mean() > 1e-4 and np.abs(renders[11] - renders[12]).mean() > 1e-4
    np.testing.assert_allclose(renders[20], renders[12], atol=1e-6)
    # Saved and reopened, the material still plays the sequence.
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "scene.blend"))
    obj = bpy.data.objects["Ball"]
    node = base_color_node(obj)
    assert node.image.name == "Original_styled_morph" and node.image.source == "SEQUENCE"
    assert node.image_user.frame_duration == 3
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.styletex.revert() == {"FINISHED"}
    assert base_color_node(obj).image.name == "Original"


def test_animate_from_the_original(bpy_clean, backend, tmp_path):
    bpy = bpy_clean
    obj = saved_sphere(bpy, tmp_path)
    bpy.context.view_layer.objects.active = obj
    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, address=backend.address, animate=True,
                                      animate_frames=2, animate_to="original", **JOB)
    assert result == {"FINISHED"}
    assert base_color_node(obj).image.source == "SEQUENCE"
    assert len(list((tmp_path / "scene_styletex").iterdir())) == 2


@pytest.mark.parametrize("saved, extra, words", [
    (False, dict(animate_style_path=str(WAVE)), "save the file first"),
    (True, dict(animate_style_path=str(REPO / "missing.jpg")), "second painting not found"),
    (True, dict(animate_style_path=str(WAVE), selected_only=True), "turn off Selected Faces Only"),
])
def test_bad_animations_are_refused_before_anything_is_sent(bpy_clean, tmp_path, saved, extra, words):
    bpy = bpy_clean
    obj = saved_sphere(bpy, tmp_path) if saved else add_sphere("Ball")
    if not saved:
        textured_material(obj, make_image("Original"))
    bpy.context.view_layer.objects.active = obj
    with pytest.raises(RuntimeError, match=words):
        bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, address="tcp://127.0.0.1:9", animate=True,
                                 animate_frames=2, **extra, **JOB)
    assert base_color_node(obj).image.name == "Original"
