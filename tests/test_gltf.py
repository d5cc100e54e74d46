"""glTF 2.0 in and out (backend.formats.gltf): models written here with pygltflib and one exported by Blender (bpy)
read back as the same mesh and texture; the restyled model round-trips; bad files give one line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from PIL import Image

from backend.errors import MeshError
from backend.formats.gltf import read_gltf, write_gltf_with_texture
from backend.formats.images import load_image
from backend.formats.obj import read_obj

REPO = Path(__file__).resolve().parent.parent
SPOT = REPO / "data" / "spot"
FLOAT, UINT = 5126, 5125


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def spot_gltf(path: Path, node: dict | None = None, image_file: bool = False, **primitive_extra) -> None:
    """Spot as a glTF: one vertex per corner, Y-up, V at the top, the texture embedded (or beside it)."""
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    corners = mesh.positions[mesh.faces].reshape(-1, 3)
    positions = np.stack([corners[:, 0], corners[:, 2], -corners[:, 1]], axis=1).astype(np.float32)  # Z-up -> Y-up
    uv = mesh.uvs.reshape(-1, 2).copy()
    uv[:, 1] = 1 - uv[:, 1]
    indices = np.arange(len(positions), dtype=np.uint32)
    png = _png(load_image(SPOT / "spot_texture.png"))
    blob = positions.tobytes() + uv.astype(np.float32).tobytes() + indices.tobytes()
    views = [pygltflib.BufferView(buffer=0, byteOffset=0, byteLength=positions.nbytes),
             pygltflib.BufferView(buffer=0, byteOffset=positions.nbytes, byteLength=uv.nbytes),
             pygltflib.BufferView(buffer=0, byteOffset=positions.nbytes + uv.nbytes, byteLength=indices.nbytes)]
    image = pygltflib.Image(uri="spot.png") if image_file else pygltflib.Image(bufferView=3, mimeType="image/png")
    if image_file:
        (path.parent / "spot.png").write_bytes(png)
    else:
        views.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(png)))
        blob += png
    attributes = pygltflib.Attributes(POSITION=0, TEXCOORD_0=1) if "attributes" not in primitive_extra \
        else primitive_extra.pop("attributes")
    gltf = pygltflib.GLTF2(
        scene=0, scenes=[pygltflib.Scene(nodes=[0])], nodes=[pygltflib.Node(mesh=0, **(node or {}))],
        meshes=[pygltflib.Mesh(primitives=[pygltflib.Primitive(attributes=attributes, indices=2, material=0,
                                                               **primitive_extra)])],
        materials=[pygltflib.Material(pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
            baseColorTexture=pygltflib.TextureInfo(index=0)))],
        textures=[pygltflib.Texture(source=0)], images=[image],
        accessors=[pygltflib.Accessor(bufferView=0, componentType=FLOAT, count=len(positions), type="VEC3",
                                      min=positions.min(0).tolist(), max=positions.max(0).tolist()),
                   pygltflib.Accessor(bufferView=1, componentType=FLOAT, count=len(uv), type="VEC2"),
                   pygltflib.Accessor(bufferView=2, componentType=UINT, count=len(indices), type="SCALAR")],
        bufferViews=views, buffers=[pygltflib.Buffer(byteLength=len(blob))])
    gltf.set_binary_blob(blob)
    if path.suffix == ".glb":
        gltf.save_binary(str(path))
    else:
        gltf.convert_buffers(pygltflib.BufferFormat.DATAURI)
        gltf.save_json(str(path))


def test_a_glb_reads_as_the_same_mesh_and_texture_in_blenders_axes(tmp_path):
    spot = read_obj(SPOT / "spot_triangulated.obj")
    spot_gltf(tmp_path / "spot.glb")
    mesh, texture = read_gltf(tmp_path / "spot.glb")
    np.testing.assert_allclose(mesh.positions[mesh.faces], spot.positions[spot.faces], atol=1e-6)
    np.testing.assert_allclose(mesh.uvs, spot.uvs, atol=1e-6)
    expected = load_image(SPOT / "spot_texture.png")
    assert texture.shape == expected.shape and np.abs(texture - expected).max() <= 1 / 255 + 1e-6


def test_node_transforms_external_images_and_data_uri_buffers(tmp_path):
    spot = read_obj(SPOT / "spot_triangulated.obj")
    # Translate by (1, 2, 3) and turn a quarter about Y, scale 2, in glTF's Y-up frame.
    s = np.sqrt(0.5)
    spot_gltf(tmp_path / "spot.gltf", node={"translation": [1, 2, 3], "rotation": [0, s, 0, s], "scale": [2, 2, 2]},
              image_file=True)
    mesh, texture = read_gltf(tmp_path / "spot.gltf")
    corners = spot.positions[spot.faces].reshape(-1, 3).astype(np.float64)
    y_up = np.stack([corners[:, 0], corners[:, 2], -corners[:, 1]], axis=1)
    turned = np.stack([y_up[:, 2], y_up[:, 1], -y_up[:, 0]], axis=1) * 2 + (1, 2, 3)  # quarter turn about +Y
    back = np.stack([turned[:, 0], -turned[:, 2], turned[:, 1]], axis=1)
    np.testing.assert_allclose(mesh.positions[mesh.faces].reshape(-1, 3), back, atol=1e-4)
    assert texture is not None and texture.shape[2] == 3


def test_a_model_blender_exported_reads_back(tmp_path):
    script = f"""
import bpy, json
import numpy as np
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.mesh.primitive_uv_sphere_add(segments=12, ring_count=8, location=(0.5, -1.0, 2.0))
obj = bpy.context.active_object
image = bpy.data.images.new("Painted", 16, 8)
image.pixels.foreach_set(np.random.default_rng(0).random(16 * 8 * 4).astype(np.float32))
material = bpy.data.materials.new("M")
material.use_nodes = True
bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
node = material.node_tree.nodes.new("ShaderNodeTexImage")
node.image = image
material.node_tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
obj.data.materials.append(material)
bpy.ops.export_scene.gltf(filepath={str(tmp_path / 'sphere.glb')!r}, export_format="GLB")
obj.data.calc_loop_triangles()
world = [list(obj.matrix_world @ v.co) for v in obj.data.vertices]
print("RESULT " + json.dumps({{"triangles": len(obj.data.loop_triangles), "world": world}}), flush=True)
import os
os._exit(0)  # bpy from PyPI may crash while it tears down at exit; the result is out
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stdout[-2000:] + run.stderr[-2000:]
    blender = json.loads(lines[-1][len("RESULT "):])
    mesh, texture = read_gltf(tmp_path / "sphere.glb")
    assert len(mesh.faces) == blender["triangles"]
    world = np.array(blender["world"])
    # Every vertex read is one of Blender's (the exporter splits vertices at UV seams), in Blender's axes.
    distance = np.abs(mesh.positions[:, None, :] - world[None, :, :]).sum(-1).min(axis=1)
    assert distance.max() < 1e-4
    assert texture is not None and texture.shape == (8, 16, 3)


def test_the_restyled_model_round_trips(tmp_path):
    spot_gltf(tmp_path / "spot.glb")
    texture = np.random.default_rng(2).random((64, 64, 3)).astype(np.float32)
    write_gltf_with_texture(tmp_path / "spot.glb", tmp_path / "styled.glb", texture)
    mesh, read_back = read_gltf(tmp_path / "styled.glb")
    original, _ = read_gltf(tmp_path / "spot.glb")
    np.testing.assert_array_equal(mesh.positions, original.positions)
    np.testing.assert_array_equal(mesh.uvs, original.uvs)
    assert np.abs(read_back - texture).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(MeshError, match="give it a .glb name"):
        write_gltf_with_texture(tmp_path / "spot.glb", tmp_path / "styled.gltf", texture)


def test_a_textures_alpha_is_read_and_written_back(tmp_path):
    """A cutout's base colour image keeps its alpha through reading and writing (a job keeps it: test_alpha.py); an
    opaque one reads as RGB."""
    spot_gltf(tmp_path / "spot.glb")
    assert read_gltf(tmp_path / "spot.glb")[1].shape[-1] == 3
    texture = np.random.default_rng(3).random((64, 64, 4)).astype(np.float32)
    texture[..., 3] = np.where(np.arange(64) < 20, 0.0, 1.0)[None, :]
    write_gltf_with_texture(tmp_path / "spot.glb", tmp_path / "cutout.glb", texture)
    read_back = read_gltf(tmp_path / "cutout.glb")[1]
    assert read_back.shape == (64, 64, 4) and np.abs(read_back - texture).max() <= 0.5 / 255 + 1e-6


def test_bad_models_give_one_line_naming_file_and_reason(tmp_path):
    spot_gltf(tmp_path / "draco.glb")
    gltf = pygltflib.GLTF2().load(str(tmp_path / "draco.glb"))
    gltf.extensionsRequired = ["KHR_draco_mesh_compression"]
    gltf.extensionsUsed = ["KHR_draco_mesh_compression"]
    gltf.save_binary(str(tmp_path / "draco.glb"))
    spot_gltf(tmp_path / "no_uv.glb", attributes=pygltflib.Attributes(POSITION=0))
    spot_gltf(tmp_path / "points.glb", mode=0)
    (tmp_path / "junk.glb").write_bytes(b"glTF\x02\x00\x00\x00garbage")
    cases = {"draco.glb": "Draco-compressed", "no_uv.glb": "TEXCOORD_0", "points.glb": "TEXCOORD_0",
             "junk.glb": "not a readable glTF file", "missing.glb": "no such file"}
    for name, reason in cases.items():
        with pytest.raises(MeshError) as info:
            read_gltf(tmp_path / name)
        assert name in str(info.value) and reason in str(info.value) and "\n" not in str(info.value)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-m", "backend", "stylize", str(tmp_path / "draco.glb"), "--style",
                          str(REPO / "data" / "styles" / "wave.jpg"), "--out", str(tmp_path / "o.png")],
                         capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert run.returncode == 2 and "Draco-compressed" in run.stderr and run.stderr.count("\n") == 1, run.stderr


def test_stylize_reads_a_glb_and_writes_the_restyled_model(tmp_path):
    spot_gltf(tmp_path / "spot.glb")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out, model = tmp_path / "styled.png", tmp_path / "styled.glb"
    run = subprocess.run([sys.executable, "-m", "backend", "stylize", str(tmp_path / "spot.glb"), "--style",
                          str(REPO / "data" / "styles" / "wave.jpg"), "--out", str(out), "--out-model", str(model),
                          "--features", "random", "--steps", "3", "--texture-size", "64", "--render-size", "32",
                          "--report", str(tmp_path / "r.json"), "--quiet"],
                         capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "r.json").read_text())["init"] == "random"
    _, texture = read_gltf(model)
    np.testing.assert_allclose(texture, load_image(out), atol=1e-6)  # the same bytes in the model as in the PNG
    run = subprocess.run([sys.executable, "-m", "backend", "stylize", str(SPOT / "spot_triangulated.obj"), "--style",
                          str(REPO / "data" / "styles" / "wave.jpg"), "--out", str(out), "--out-model", str(model)],
                         capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert run.returncode == 2 and "needs a glTF input" in run.stderr


def test_render_draws_a_glb_with_its_own_texture_as_the_obj_with_that_texture(tmp_path):
    spot_gltf(tmp_path / "spot.glb")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    common = ["--eye", "3,-3,1.5", "--fov", "30", "--size", "64", "--device", "cpu"]
    runs = [subprocess.run([sys.executable, "-m", "backend", "render", *args, *common], capture_output=True, text=True,
                           timeout=120, env=env, cwd=REPO)
            for args in ([str(tmp_path / "spot.glb"), "--out", str(tmp_path / "glb.png")],
                         [str(SPOT / "spot_triangulated.obj"), "--texture", str(SPOT / "spot_texture.png"),
                          "--out", str(tmp_path / "obj.png")])]
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    glb, obj = load_image(tmp_path / "glb.png"), load_image(tmp_path / "obj.png")
    assert np.abs(glb - obj).max() <= 2 / 255 and obj.std() > 0.05


def test_the_texture_coordinates_a_viewer_uses_are_read(tmp_path):
    """A base colour texture reading TEXCOORD_1, and one moved by KHR_texture_transform: the UVs read are where a
    viewer shows the texture (the transform worked out here from the extension's definition)."""
    spot = read_obj(SPOT / "spot_triangulated.obj")
    spot_gltf(tmp_path / "spot.glb")
    gltf = pygltflib.GLTF2().load(str(tmp_path / "spot.glb"))
    zeros = np.zeros((gltf.accessors[1].count, 2), np.float32)
    blob = gltf.binary_blob() + zeros.tobytes()
    gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob) - zeros.nbytes, byteLength=zeros.nbytes))
    gltf.accessors.append(pygltflib.Accessor(bufferView=len(gltf.bufferViews) - 1, componentType=FLOAT,
                                             count=len(zeros), type="VEC2"))
    primitive = gltf.meshes[0].primitives[0]
    primitive.attributes.TEXCOORD_1 = primitive.attributes.TEXCOORD_0  # the real UVs as the second set
    primitive.attributes.TEXCOORD_0 = len(gltf.accessors) - 1  # and all zeros as the first
    gltf.materials[0].pbrMetallicRoughness.baseColorTexture.texCoord = 1
    gltf.buffers[0].byteLength = len(blob)
    gltf.set_binary_blob(blob)
    gltf.save_binary(str(tmp_path / "second.glb"))
    np.testing.assert_allclose(read_gltf(tmp_path / "second.glb")[0].uvs, spot.uvs, atol=1e-6)

    (x, y), angle, (sx, sy) = (0.25, 0.1), 0.3, (2.0, 0.5)
    gltf.materials[0].pbrMetallicRoughness.baseColorTexture.extensions = {
        "KHR_texture_transform": {"offset": [x, y], "rotation": angle, "scale": [sx, sy]}}
    gltf.save_binary(str(tmp_path / "moved.glb"))
    u, v = spot.uvs[..., 0], 1 - spot.uvs[..., 1]  # glTF's V runs down
    # The extension's GLSL: matrix = translation * rotation * scale, rotation = mat3(cos, sin, 0, -sin, cos, 0, 0, 0, 1)
    # (column-major: u' = cos u - sin v, v' = sin u + cos v)
    moved_u = np.cos(angle) * sx * u - np.sin(angle) * sy * v + x
    moved_v = np.sin(angle) * sx * u + np.cos(angle) * sy * v + y
    np.testing.assert_allclose(read_gltf(tmp_path / "moved.glb")[0].uvs, np.stack([moved_u, 1 - moved_v], -1), atol=1e-5)


def test_a_tinted_base_colour_is_read_as_shown_and_written_back_untinted(tmp_path):
    """glTF shows a base colour texture times the material's colour factor (on linear values): the original read is
    what a viewer shows, and the model written back shows the restyled texture itself (its factor set to white, the
    alpha factor kept)."""
    spot_gltf(tmp_path / "spot.glb")
    gltf = pygltflib.GLTF2().load(str(tmp_path / "spot.glb"))
    gltf.materials[0].pbrMetallicRoughness.baseColorFactor = [0.5, 0.25, 1.0, 0.75]
    gltf.save_binary(str(tmp_path / "tinted.glb"))
    image = load_image(SPOT / "spot_texture.png").astype(np.float64)
    linear = np.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4) * [0.5, 0.25, 1.0]
    shown = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    texture = read_gltf(tmp_path / "tinted.glb")[1]
    assert np.abs(texture - shown).max() < 1.5 / 255
    styled = np.random.default_rng(5).random((32, 32, 3)).astype(np.float32)
    write_gltf_with_texture(tmp_path / "tinted.glb", tmp_path / "styled.glb", styled)
    written = pygltflib.GLTF2().load(str(tmp_path / "styled.glb"))
    assert written.materials[0].pbrMetallicRoughness.baseColorFactor == [1.0, 1.0, 1.0, 0.75]
    assert np.abs(read_gltf(tmp_path / "styled.glb")[1] - styled).max() <= 0.5 / 255 + 1e-6
