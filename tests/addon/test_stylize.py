"""Jobs against a real backend: the headless (blocking) operator end to end, with save and reload;
the live write-back path of the UI (a JobSession drained on the main thread through apply_event, as
the timer does); cancelling; and a backend that dies mid-job."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from tests.net import free_port

from .support import (JOB, STYLE, add_sphere, base_color_node, image_rgba, make_image, style_bytes,
                      textured_material)

BYTE = 1 / 255 + 1e-6  # byte images hold 8-bit values


def painted_sphere(name: str = "Ball", image_name: str = "Original"):
    obj = add_sphere(name)
    image = make_image(image_name)
    textured_material(obj, image)
    return obj, image


def test_operator_end_to_end_save_reload_revert(bpy_clean, backend, tmp_path):
    bpy = bpy_clean
    obj, original = painted_sphere()
    before = image_rgba(original).copy()

    result = bpy.ops.styletex.stylize(style_path=str(STYLE), steps=3, address=backend.address, **JOB)

    assert result == {"FINISHED"}
    styled = bpy.data.images.get("Original_styled")
    assert styled is not None and tuple(styled.size) == (32, 32)
    assert styled.packed_file is not None
    assert base_color_node(obj).image == styled
    pixels = image_rgba(styled).copy()
    assert not np.allclose(pixels, before, atol=0.05)  # restyled, not a copy of the original
    # The original is untouched and still there.
    assert bpy.data.images.get("Original") == original
    np.testing.assert_array_equal(image_rgba(original), before)
    status = bpy.context.scene.styletex.status
    assert status.startswith("done: 3 steps"), status

    path = tmp_path / "styled.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.data.images.get("Original_styled") is None
    bpy.ops.wm.open_mainfile(filepath=str(path))

    obj = bpy.data.objects["Ball"]
    styled = bpy.data.images["Original_styled"]
    assert styled.packed_file is not None
    assert base_color_node(obj).image == styled
    np.testing.assert_allclose(image_rgba(styled), pixels, atol=BYTE)

    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.styletex.revert() == {"FINISHED"}
    assert base_color_node(obj).image == bpy.data.images["Original"]
    np.testing.assert_allclose(image_rgba(bpy.data.images["Original"]), before, atol=BYTE)
    assert bpy.ops.styletex.revert() == {"CANCELLED"}  # nothing left to revert (a warning, not an error)


def test_a_cutouts_alpha_stays_and_the_material_still_reads_it(bpy_clean, backend):
    """An image whose left half is see-through, its Alpha wired into the shader (a leaf's card): the styled image
    keeps that alpha texel for texel and the node's Alpha link stays, so the cutout is still cut."""
    bpy = bpy_clean
    obj, original = painted_sphere()
    rgba = image_rgba(original).copy()
    rgba[..., 3] = np.where(np.arange(32) < 16, 0.0, 1.0)[None, :]
    original.pixels.foreach_set(rgba.ravel())
    original.update()
    tree = obj.active_material.node_tree
    bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
    tree.links.new(base_color_node(obj).outputs["Alpha"], bsdf.inputs["Alpha"])

    assert bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, address=backend.address, **JOB) == {"FINISHED"}

    styled = bpy.data.images["Original_styled"]
    node = base_color_node(obj)
    assert node.image == styled and bsdf.inputs["Alpha"].links[0].from_node == node
    pixels = image_rgba(styled)
    np.testing.assert_allclose(pixels[..., 3], rgba[..., 3], atol=BYTE)
    assert np.abs(pixels[..., :3] - rgba[..., :3]).mean() > 0.05  # the colours restyled


def test_materials_sharing_the_original_all_get_the_result_and_all_revert(bpy_clean, backend):
    bpy = bpy_clean
    obj, original = painted_sphere()  # material 'Painted' (active, slot 0) shows 'Original'
    other = make_image("Other", seed=2)
    sharing = textured_material(obj, original, "Painted Too")  # slot 1: the same atlas
    separate = textured_material(obj, other, "Elsewhere")  # slot 2: a texture of its own
    for polygon in obj.data.polygons:
        polygon.material_index = polygon.index % 3
    obj.active_material_index = 0

    assert bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, address=backend.address, **JOB) == {"FINISHED"}
    styled = bpy.data.images["Original_styled"]
    assert base_color_node(obj).image == styled and sharing.image == styled
    assert separate.image == bpy.data.images["Other_styled"]  # another texture: restyled in the same run

    assert bpy.ops.styletex.revert() == {"FINISHED"}
    assert base_color_node(obj).image == original and sharing.image == original and separate.image == other
    assert bpy.ops.styletex.revert() == {"CANCELLED"}


def test_operator_raises_when_no_backend_answers(bpy_clean):
    bpy = bpy_clean
    obj, original = painted_sphere()
    before = image_rgba(original).copy()
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=f"StyleTex: no answer from the StyleTex backend at {address} within 1 s"):
        bpy.ops.styletex.stylize(style_path=str(STYLE), steps=1, address=address, timeout=1.0, **JOB)
    assert time.monotonic() - start < 5
    assert bpy.context.scene.styletex.status == "failed"
    assert "no answer" in bpy.context.scene.styletex.last_error
    np.testing.assert_array_equal(image_rgba(original), before)
    assert base_color_node(obj).image == original  # no preview came: the material still shows the original


def test_operator_refuses_a_second_job_on_the_same_object(bpy_clean):
    from blender_addon import operators

    bpy = bpy_clean
    obj, _ = painted_sphere()
    operators._sessions[obj.name] = object()  # as while the UI's timer drains a running job
    try:
        with pytest.raises(RuntimeError, match="already running for 'Ball'"):
            bpy.ops.styletex.stylize(style_path=str(STYLE), steps=1, address="tcp://127.0.0.1:9", **JOB)
    finally:
        operators._sessions.pop(obj.name, None)
    assert bpy.data.images.get("Original_styled") is None


def start_session(bpy, address: str, steps: int, timeout: float = 5.0):
    """What the operator does in the UI, up to the timer: extract, make and wire the new image, start
    the worker thread. Returns (session, image name)."""
    from blender_addon.extract import extract_active
    from blender_addon.session import JobSession
    from blender_addon.write_back import ensure_image, show_styled, styled_image_name

    obj = bpy.context.active_object
    payload = extract_active(bpy.context)
    image = ensure_image(styled_image_name(obj, payload.image), JOB["texture_size"])
    show_styled(obj, image)
    data = {"positions": payload.positions, "faces": payload.faces, "uvs": payload.uvs, "style": style_bytes(),
            "texture": payload.texture}
    settings = dict(JOB, steps=steps)
    preview = {"every": 1, "max_size": JOB["texture_size"], "format": "float16"}
    return JobSession(address, data, settings, preview, timeout=timeout).start(), image.name


def next_event(session, limit_s: float = 60.0):
    try:
        return session.events.get(timeout=limit_s)
    except queue.Empty:
        pytest.fail(f"no event from the job session within {limit_s} s")


def test_live_previews_are_written_into_the_new_image(bpy_clean, backend):
    from blender_addon.operators import apply_event

    bpy = bpy_clean
    obj, original = painted_sphere()
    before = image_rgba(original).copy()
    steps = 4
    session, name = start_session(bpy, backend.address, steps)
    scene = bpy.context.scene

    kinds, snapshots, progress_steps = [], [], []
    while True:
        event = next_event(session)
        kinds.append(event.kind)
        over = apply_event(scene, obj.name, name, event)
        if event.kind == "progress":
            progress_steps.append(event.fields["step"])
            assert scene.styletex.status.startswith(f"step {event.fields['step']}/{steps}")
            assert scene.styletex.progress == pytest.approx(event.fields["step"] / steps)
            assert event.pixels is not None and event.pixels.shape == (32, 32, 4)
            written = image_rgba(bpy.data.images[name]).copy()
            # The preview (row 0 at the top) lands in the image (row 0 at the bottom), as 8-bit values.
            np.testing.assert_allclose(written, np.clip(event.pixels[::-1], 0, 1), atol=BYTE)
            snapshots.append(written)
            np.testing.assert_array_equal(image_rgba(original), before)
        if over:
            break
    assert kinds[0] == "accepted" and kinds[-1] == "result", kinds
    assert progress_steps == list(range(1, steps + 1))
    assert not np.array_equal(snapshots[0], snapshots[-1])  # the previews change as the job goes on
    assert sum(not np.array_equal(a, b) for a, b in zip(snapshots, snapshots[1:])) >= steps // 2

    image = bpy.data.images[name]
    assert name == "Original_styled" and base_color_node(obj).image == image
    assert image.packed_file is not None
    np.testing.assert_allclose(image_rgba(image)[..., :3], np.clip(event.pixels[::-1], 0, 1), atol=BYTE)
    np.testing.assert_allclose(image_rgba(image)[..., 3], 1.0)
    assert scene.styletex.progress == 1.0 and scene.styletex.status.startswith(f"done: {steps} steps")
    np.testing.assert_array_equal(image_rgba(original), before)
    assert session.done.wait(5)


def test_cancel_mid_job(bpy_clean, backend):
    from blender_addon.operators import apply_event

    bpy = bpy_clean
    obj, _ = painted_sphere()
    session, name = start_session(bpy, backend.address, steps=500)
    scene = bpy.context.scene
    kinds, preview = [], None
    while True:
        event = next_event(session)
        kinds.append(event.kind)
        if event.kind == "progress" and not session._cancel.is_set():
            session.cancel()
        if apply_event(scene, obj.name, name, event):
            break
        if event.pixels is not None:
            preview = np.clip(event.pixels[::-1], 0, 1)
    assert event.kind == "cancelled", kinds
    assert 1 <= event.fields["steps_done"] < 500
    assert scene.styletex.status == f"cancelled after {event.fields['steps_done']} steps"
    # The last preview before the cancel stays in the image (it is not cleared).
    assert preview is not None
    np.testing.assert_allclose(image_rgba(bpy.data.images[name]), preview, atol=BYTE)
    assert session.done.wait(5)


def test_dead_backend_is_reported_and_the_last_preview_kept(bpy_clean, start_backend):
    from blender_addon.operators import apply_event

    bpy = bpy_clean
    doomed = start_backend()
    obj, _ = painted_sphere()
    session, name = start_session(bpy, doomed.address, steps=500, timeout=5.0)
    scene = bpy.context.scene
    while True:
        event = next_event(session)
        assert apply_event(scene, obj.name, name, event) is False, event
        if event.kind == "progress" and event.pixels is not None:
            break
    doomed.kill()
    killed = time.monotonic()
    last_preview = image_rgba(bpy.data.images[name]).copy()
    np.testing.assert_allclose(last_preview, np.clip(event.pixels[::-1], 0, 1), atol=BYTE)
    assert last_preview[..., :3].mean() > 0.1  # not the new image's black

    while True:  # progress already on its way may still arrive
        event = next_event(session, limit_s=15)
        over = apply_event(scene, obj.name, name, event)
        if event.kind == "progress" and event.pixels is not None:
            last_preview = image_rgba(bpy.data.images[name]).copy()
        if over:
            break
    elapsed = time.monotonic() - killed
    assert event.kind == "error", event
    assert "no answer from the StyleTex backend" in event.fields["message"]
    assert "within 5 s" in event.fields["message"]
    assert 4.0 < elapsed < 6.5, elapsed
    assert scene.styletex.status == "failed"
    assert "no answer" in scene.styletex.last_error
    np.testing.assert_array_equal(image_rgba(bpy.data.images[name]), last_preview)  # not cleared
    assert session.done.wait(5)


def test_the_network_defaults_to_auto_and_the_backend_runs_the_pretrained_efficientnet(bpy_clean, backend):
    from blender_addon.protocol import FEATURE_CHOICES

    bpy = bpy_clean
    settings = bpy.context.scene.styletex
    assert settings.features == "auto"  # the panel's dropdown
    items = [(item.identifier, item.name) for item in settings.bl_rna.properties["features"].enum_items]
    assert items == [(value, label) for value, label, _ in FEATURE_CHOICES]
    assert "tests" in dict(items)["random"].lower()  # random says what it is, where it can be chosen
    assert bpy.ops.styletex.stylize.get_rna_type().properties["features"].default == "auto"  # the operator's

    painted_sphere()
    job = {k: v for k, v in JOB.items() if k != "features"}
    assert bpy.ops.styletex.stylize(style_path=str(STYLE), steps=2, address=backend.address, **job) == {"FINISHED"}
    assert "with efficientnet_lite0" in settings.status, settings.status


def test_a_note_names_the_share_of_the_surface_without_uv_room(bpy_clean, backend):
    """The backend's note on the UVs reaches the panel with the job's acceptance; a grid whose right half
    has its last quarter's UVs squeezed twenty times across gets it, the same grid unsqueezed does not."""
    bpy = bpy_clean
    for squeeze, expected in ((1.0, ""), (20.0, "25.0 % of the surface has too little UV room")):
        bpy.ops.mesh.primitive_grid_add(x_subdivisions=4, y_subdivisions=4, size=2.0)  # 4 x 4 faces, x in [-1, 1]
        obj = bpy.context.active_object
        textured_material(obj, make_image(f"Grid{squeeze:g}"))
        mesh = obj.data
        uv = mesh.uv_layers.active.data
        for polygon in mesh.polygons:
            if polygon.center.x > 0.5:
                for loop in polygon.loop_indices:
                    u, v = uv[loop].uv
                    uv[loop].uv = (0.75 + (u - 0.75) / squeeze, v)
        assert bpy.ops.styletex.stylize(style_path=str(STYLE), steps=1, address=backend.address, **JOB) == {"FINISHED"}
        note = bpy.context.scene.styletex.note
        assert note.startswith(expected) if expected else note == "", note
