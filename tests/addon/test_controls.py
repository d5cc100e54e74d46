"""The artist's controls through the add-on against a real backend: several paintings with weights, the
strength slider against the raw weights, preserved colours, and their errors; the panel's mapping."""

from __future__ import annotations

import numpy as np
import pytest

from backend.style.settings import StyleSettings

from .support import JOB, REPO, STYLE, add_sphere, base_color_node, image_rgba, make_image, textured_material

WAVE = REPO / "data" / "styles" / "wave.jpg"
YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)


def painted_sphere(bpy):
    obj = add_sphere("Ball")
    image = make_image("Original")
    textured_material(obj, image)
    return obj, image


def styled_pixels(bpy, backend, **options) -> np.ndarray:
    """Runs the headless operator on the active object, returns the styled image's RGBA, then reverts."""
    result = bpy.ops.styletex.stylize(steps=3, address=backend.address, **{**JOB, **options})
    assert result == {"FINISHED"}
    pixels = image_rgba(bpy.data.images["Original_styled"]).copy()
    bpy.ops.styletex.revert()
    bpy.data.images.remove(bpy.data.images["Original_styled"])
    return pixels


def test_strength_maps_onto_the_loss_weights():
    from blender_addon.controls import style_settings, weights_for_strength

    assert weights_for_strength(0.0) == (1.0, 6.0)
    assert weights_for_strength(0.5) == (1.0, 1.5) == (1.0, StyleSettings().content_weight)  # the backend's default
    assert weights_for_strength(1.0) == (1.0, 0.375)
    assert weights_for_strength(0.75)[1] == pytest.approx(0.75)
    assert weights_for_strength(7.0) == weights_for_strength(1.0)  # clamped
    assert style_settings([1.0], 2.0, True, 0.5) == {"style_blend": "", "style_scale": 2.0, "preserve_colors": True,
                                                      "style_weight": 1.0, "content_weight": 1.5}
    assert style_settings([1.0, 0.5], 1.0, False, 0.5, raw_weights=(2.0, 0.0))["style_blend"] == "1.0,0.5"


def test_paintings_blend_by_weight_and_the_strength_is_the_raw_weights(bpy_clean, backend):
    bpy = bpy_clean
    painted_sphere(bpy)
    single = styled_pixels(bpy, backend, style_path=str(STYLE))
    blended_away = styled_pixels(bpy, backend, style_path=str(STYLE), paintings=[{"name": str(WAVE), "weight": 0.0}])
    mixed = styled_pixels(bpy, backend, style_path=str(STYLE), paintings=[{"name": str(WAVE), "weight": 1.0}])
    np.testing.assert_array_equal(blended_away, single)  # weights 1, 0: the first painting alone
    assert not np.array_equal(mixed, single)
    strong = styled_pixels(bpy, backend, style_path=str(STYLE), strength=1.0)
    raw = styled_pixels(bpy, backend, style_path=str(STYLE), advanced_weights=True, style_weight=1.0, content_weight=0.375)
    np.testing.assert_array_equal(strong, raw)
    assert not np.array_equal(strong, single)
    scaled = styled_pixels(bpy, backend, style_path=str(STYLE), style_scale=2.0)
    assert not np.array_equal(scaled, single)


def texel_centres_in_faces(obj, width: int, height: int) -> np.ndarray:
    """(height, width) bool in Blender's row order (row 0 at the bottom): texel centres inside a UV triangle."""
    from blender_addon.compat import corner_uvs

    mesh = obj.data
    mesh.calc_loop_triangles()
    loops = np.zeros(len(mesh.loop_triangles) * 3, np.int32)
    mesh.loop_triangles.foreach_get("loops", loops)
    tri = corner_uvs(mesh).reshape(-1, 2)[loops].reshape(-1, 3, 2).astype(np.float64)
    y, x = np.mgrid[0:height, 0:width]
    p = np.stack([(x.reshape(-1) + 0.5) / width, (y.reshape(-1) + 0.5) / height], axis=1)[:, None]  # (N, 1, 2)
    a, b, c = tri[None, :, 0], tri[None, :, 1], tri[None, :, 2]
    cross = lambda o, d, q: (d[..., 0] - o[..., 0]) * (q[..., 1] - o[..., 1]) - (d[..., 1] - o[..., 1]) * (q[..., 0] - o[..., 0])  # noqa: E731
    s1, s2, s3 = cross(a, b, p), cross(b, c, p), cross(c, a, p)
    inside = ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))
    return inside.any(axis=1).reshape(height, width)


def test_preserved_colors_keep_every_texels_chroma(bpy_clean, backend):
    bpy = bpy_clean
    obj, original = painted_sphere(bpy)
    before = image_rgba(original)[..., :3].reshape(-1, 3)
    kept = styled_pixels(bpy, backend, style_path=str(STYLE), preserve_colors=True)[..., :3].reshape(-1, 3)
    plain = styled_pixels(bpy, backend, style_path=str(STYLE))[..., :3].reshape(-1, 3)
    chroma = lambda rgb: rgb / np.clip(rgb.sum(axis=1, keepdims=True), 1e-6, None)  # noqa: E731
    # Texels whose centres lie in a face: the rim just outside the islands is gutter, continued across seams.
    inside = texel_centres_in_faces(obj, original.size[0], original.size[1]).reshape(-1)
    lit = (before @ YIQ[0] > 0.05) & (kept @ YIQ[0] > 0.05) & inside
    # Each texel keeps the original's chromaticity (only the 8-bit image moves it a little); the luminance is
    # the result's.
    kept_shift = np.abs(chroma(kept) - chroma(before))[lit].mean()
    assert kept_shift < 0.01
    assert np.abs(chroma(plain) - chroma(before))[lit].mean() > 3 * kept_shift
    assert np.abs(kept @ YIQ[0] - before @ YIQ[0]).mean() > 0.02
    assert base_color_node(obj).image == original  # reverted


def plain_material(bpy, name: str, linear_rgb):
    material = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):  # 5.0+: always node-based
        material.use_nodes = True
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = (*linear_rgb, 1.0)
    return material


def test_preserved_colors_keep_a_plain_materials_colour(bpy_clean, backend):
    """An object without an image sends the plain colour its material shows, so Preserve Colors keeps it."""
    from blender_addon.materials import linear_to_srgb

    bpy = bpy_clean
    obj = add_sphere("Red")
    obj.data.materials.append(plain_material(bpy, "Red", (0.6, 0.05, 0.02)))
    red = linear_to_srgb(np.array([0.6, 0.05, 0.02]))
    chroma = lambda rgb: rgb / np.clip(rgb.sum(axis=-1, keepdims=True), 1e-6, None)  # noqa: E731
    shifts = {}
    for preserve in (True, False):
        assert bpy.ops.styletex.stylize(steps=3, address=backend.address, style_path=str(STYLE),
                                        preserve_colors=preserve, **JOB) == {"FINISHED"}
        styled = image_rgba(bpy.data.images["StyleTex_Red"])[..., :3].reshape(-1, 3)
        inside = texel_centres_in_faces(obj, 32, 32).reshape(-1) & (styled @ YIQ[0] > 0.05)
        shifts[preserve] = np.abs(chroma(styled[inside]) - chroma(red)).max(axis=1).mean()
        bpy.data.images.remove(bpy.data.images["StyleTex_Red"])
    assert shifts[True] < 0.02  # every texel keeps red's chromaticity
    assert shifts[False] > 5 * shifts[True]  # without it the painting's colours come in


def test_preserved_colors_keep_each_plain_materials_colour(bpy_clean, backend):
    """Two plain materials (a red top, a blue bottom), no image: their colours are painted into the UVs and sent
    as the original, so Preserve Colors keeps each half's."""
    from blender_addon.compat import corner_uvs
    from blender_addon.materials import linear_to_srgb
    from blender_addon.uv_texels import covered_texels

    bpy = bpy_clean
    obj = add_sphere("Duo", segments=16, rings=8)
    linear = {0: (0.6, 0.05, 0.02), 1: (0.02, 0.05, 0.6)}
    for slot, colour in linear.items():
        obj.data.materials.append(plain_material(bpy, f"Paint{slot}", colour))
    centres = np.array([tuple(p.center) for p in obj.data.polygons])
    obj.data.polygons.foreach_set("material_index", (centres[:, 2] < 0).astype(np.int32))
    obj.data.update()
    mesh = obj.data
    mesh.calc_loop_triangles()
    loops = np.zeros(len(mesh.loop_triangles) * 3, np.int32)
    mesh.loop_triangles.foreach_get("loops", loops)
    slots = np.zeros(len(mesh.loop_triangles), np.int32)
    mesh.loop_triangles.foreach_get("material_index", slots)
    cells, faces = covered_texels(corner_uvs(mesh).reshape(-1, 2)[loops].reshape(-1, 3, 2), 32)  # row 0 at v = 0
    chroma = lambda rgb: rgb / np.clip(rgb.sum(axis=-1, keepdims=True), 1e-6, None)  # noqa: E731
    expected = chroma(np.stack([linear_to_srgb(np.array(linear[int(s)])) for s in slots[faces]]))
    shifts = {}
    for preserve in (True, False):
        assert bpy.ops.styletex.stylize(steps=3, address=backend.address, style_path=str(STYLE),
                                        preserve_colors=preserve, **JOB) == {"FINISHED"}
        styled = image_rgba(bpy.data.images["StyleTex_Duo"])[..., :3].reshape(-1, 3)[cells]  # Blender's rows: bottom first
        lit = styled @ YIQ[0] > 0.05
        shifts[preserve] = np.abs(chroma(styled) - expected).max(axis=1)[lit].mean()
        assert bpy.ops.styletex.revert() == {"FINISHED"}
        bpy.data.images.remove(bpy.data.images["StyleTex_Duo"])
    assert shifts[True] < 0.03  # each half keeps its own material's chromaticity
    assert shifts[False] > 4 * shifts[True]


def test_control_errors_are_one_line_and_change_nothing(bpy_clean, backend):
    bpy = bpy_clean
    add_sphere("Plain")  # no material: no image, nor a plain colour to keep
    cases = (
        (dict(style_path=str(STYLE), preserve_colors=True), "neither an image texture"),
        (dict(style_path=str(STYLE), paintings=[{"name": str(REPO / "missing.jpg"), "weight": 1.0}]),
         "painting 2 not found"),
        (dict(style_path=str(STYLE), blend_weight=0.0), "weight 0"),
    )
    for options, text in cases:
        with pytest.raises(RuntimeError, match=text):
            bpy.ops.styletex.stylize(steps=1, address=backend.address, **{**JOB, **options})
        assert text in bpy.context.scene.styletex.last_error
    assert not [i for i in bpy.data.images if i.name.endswith("_styled")]


def test_a_job_stopped_by_a_backend_limit_says_why_and_keeps_what_it_had(bpy_clean):
    from blender_addon.operators import apply_event
    from blender_addon.session import Event
    from blender_addon.write_back import ensure_image

    bpy = bpy_clean
    obj = add_sphere("Limited")
    textured_material(obj, make_image("Original"))
    styled = ensure_image("Original_styled", 32)
    pixels = np.full((32, 32, 3), 0.25, np.float32)
    message = "this backend stops a job after 3 s; it was stopped after 12 steps"
    over = apply_event(bpy.context.scene, obj.name, styled.name,
                       Event("cancelled", {"steps_done": 12, "code": "limit_job_seconds", "message": message}, pixels))
    settings = bpy.context.scene.styletex
    assert over and settings.last_error == message and settings.status == "cancelled after 12 steps"
    assert base_color_node(obj).image == styled and styled.packed_file is not None
    np.testing.assert_allclose(image_rgba(styled)[..., :3], 0.25, atol=1 / 255)
