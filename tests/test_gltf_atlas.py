"""A glTF model whose materials show several base colour images: read as one atlas of them (each face's UVs moved
into its image's cell, a plain material in a cell of its colour), restyled in one job, and written back image by
image."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import torch
from PIL import Image

from backend.errors import MeshError
from backend.formats.gltf import read_gltf, write_gltf_with_texture
from backend.formats.model import read_model
from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.texture.sample import sample

REPO = Path(__file__).resolve().parent.parent
SPOT = REPO / "data" / "spot"
FLOAT, UINT = 5126, 5125
RED = (0.6, 0.05, 0.05)  # the plain material's linear base colour


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def spot_parts(size: int) -> tuple:
    """Spot, the part of each of his faces (0: his left half, 1: his right half, 2: his head) and two images of his
    layout (size^2; the second with the colours reversed)."""
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    centres = mesh.positions[mesh.faces].mean(axis=1)
    part = np.where(centres[:, 0] > mesh.center[0], 1, 0)
    part[centres[:, 2] > np.quantile(centres[:, 2], 0.9)] = 2
    # smooth (Spot's texture at 8^2, enlarged), so the half-texel inset of the atlas's cells moves no sharp edge
    small = Image.open(SPOT / "spot_texture.png").convert("RGB").resize((8, 8), Image.BOX)
    spot = np.asarray(small.resize((size, size), Image.BILINEAR), np.float32) / 255
    return mesh, part, [spot, np.ascontiguousarray(spot[..., ::-1])]


def parts_gltf(path: Path, size: int = 64, one_image: bool = False) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Spot in three primitives: his left half shows image A, his right half image B (one_image: A too), his head a
    plain red material. Returns the order in which the model holds Spot's faces, the two images and the part of each
    of Spot's faces (0, 1, 2)."""
    mesh, part, images = spot_parts(size)
    blob, views, accessors, primitives = b"", [], [], []
    for k in range(3):
        corners = mesh.positions[mesh.faces[part == k]].reshape(-1, 3)
        positions = np.stack([corners[:, 0], corners[:, 2], -corners[:, 1]], axis=1).astype(np.float32)
        uv = mesh.uvs[part == k].reshape(-1, 2).astype(np.float32)
        uv[:, 1] = 1 - uv[:, 1]
        indices = np.arange(len(positions), dtype=np.uint32)
        for array, kind, component in ((positions, "VEC3", FLOAT), (uv, "VEC2", FLOAT), (indices, "SCALAR", UINT)):
            views.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=array.nbytes))
            blob += array.tobytes()
            bounds = dict(min=array.min(0).tolist(), max=array.max(0).tolist()) if kind == "VEC3" else {}
            accessors.append(pygltflib.Accessor(bufferView=len(views) - 1, componentType=component, count=len(array),
                                                type=kind, **bounds))
        first = len(accessors) - 3
        primitives.append(pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=first, TEXCOORD_0=first + 1),
                                              indices=first + 2, material=k))
    gltf_images = []
    for image in images:
        data = png(image)
        views.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(data)))
        blob += data
        gltf_images.append(pygltflib.Image(bufferView=len(views) - 1, mimeType="image/png"))
    materials = [pygltflib.Material(pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
        baseColorTexture=pygltflib.TextureInfo(index=0 if one_image else k))) for k in range(2)]
    materials.append(pygltflib.Material(pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
        baseColorFactor=[*RED, 1.0])))
    gltf = pygltflib.GLTF2(scene=0, scenes=[pygltflib.Scene(nodes=[0])], nodes=[pygltflib.Node(mesh=0)],
                           meshes=[pygltflib.Mesh(primitives=primitives)], materials=materials,
                           textures=[pygltflib.Texture(source=k) for k in range(2)], images=gltf_images,
                           accessors=accessors, bufferViews=views, buffers=[pygltflib.Buffer(byteLength=len(blob))])
    gltf.set_binary_blob(blob)
    gltf.save_binary(str(path))
    return np.concatenate([np.flatnonzero(part == k) for k in range(3)]), images, part


def srgb(linear: float) -> float:
    return 12.92 * linear if linear <= 0.0031308 else 1.055 * linear ** (1 / 2.4) - 0.055


def test_each_face_reads_its_own_image_from_its_cell_of_the_atlas(tmp_path):
    order, images, part = parts_gltf(tmp_path / "parts.glb")
    assert read_model(tmp_path / "parts.glb").cells == 3
    mesh, atlas = read_gltf(tmp_path / "parts.glb")
    assert atlas.shape == (128, 128, 3)  # a 2 x 2 grid of the images' 64^2
    spot = read_obj(SPOT / "spot_triangulated.obj")
    own = spot.uvs[order].mean(axis=1)  # each read face's centre in its own image
    read = mesh.uvs.mean(axis=1)  # and in the atlas
    shown = sample(torch.from_numpy(atlas), torch.from_numpy(read.astype(np.float32)), filter="linear").numpy()
    for k in range(2):
        faces = part[order] == k
        expected = sample(torch.from_numpy(images[k]), torch.from_numpy(own[faces].astype(np.float32)),
                          filter="linear").numpy()
        assert np.abs(shown[faces] - expected).max() < 0.03, k
    np.testing.assert_allclose(shown[part[order] == 2], np.broadcast_to([srgb(c) for c in RED], (np.sum(part == 2), 3)),
                               atol=1e-3)
    assert not np.allclose(images[0], images[1], atol=0.1)


def test_the_restyled_atlas_goes_back_into_each_image(tmp_path):
    parts_gltf(tmp_path / "parts.glb")
    texture = np.random.default_rng(4).random((96, 96, 3)).astype(np.float32)
    write_gltf_with_texture(tmp_path / "parts.glb", tmp_path / "styled.glb", texture)
    gltf = pygltflib.GLTF2().load(str(tmp_path / "styled.glb"))
    blob = gltf.binary_blob()
    for index, (top, left) in enumerate(((0, 0), (0, 48))):  # cells 0 and 1 of the 2 x 2 grid; cell 2 is the plain one
        view = gltf.bufferViews[gltf.images[index].bufferView]
        data = blob[view.byteOffset:view.byteOffset + view.byteLength]
        written = np.asarray(Image.open(io.BytesIO(data)), np.float32) / 255
        assert written.shape == (48, 48, 3)
        assert np.abs(written - texture[top:top + 48, left:left + 48]).max() <= 0.5 / 255 + 1e-6
    _, read_back = read_gltf(tmp_path / "styled.glb")  # and it reads as the same atlas again
    assert np.abs(read_back[:48] - texture[:48]).max() <= 0.5 / 255 + 1e-6


def test_the_command_line_restyles_them_together_and_writes_each_back(tmp_path):
    parts_gltf(tmp_path / "parts.glb")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "backend", "stylize", str(tmp_path / "parts.glb"), "--style",
            str(REPO / "data" / "styles" / "wave.jpg"), "--features", "random", "--steps", "2", "--texture-size", "32",
            "--render-size", "32"]
    run = subprocess.run([*base, "--out", str(tmp_path / "atlas.png"), "--out-model", str(tmp_path / "styled.glb")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "the images are restyled in one 64^2 atlas, each in a 32^2 cell" in run.stderr
    atlas = load_image(tmp_path / "atlas.png")
    assert atlas.shape == (64, 64, 3)  # each image its 32^2 cell
    # the head's plain red is not restyled: the model keeps its colour
    order, _, part = parts_gltf(tmp_path / "parts.glb")
    centres = read_model(tmp_path / "parts.glb").mesh.uvs.mean(axis=1).astype(np.float32)
    shown = sample(torch.from_numpy(atlas), torch.from_numpy(centres), filter="linear").numpy()
    assert np.abs(shown[part[order] == 2] - [srgb(c) for c in RED]).max() <= 1 / 255
    assert np.abs(shown[part[order] != 2] - [srgb(c) for c in RED]).max() > 0.2
    gltf = pygltflib.GLTF2().load(str(tmp_path / "styled.glb"))
    assert len({gltf.images[k].bufferView for k in range(2)}) == 2  # each image its own
    refused = subprocess.run([*base, "--out", str(tmp_path / "x.png"), "--texture", str(SPOT / "spot_texture.png")],
                             capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "cannot stand in" in refused.stderr


def test_faces_of_plain_colour_beside_an_image_read_a_cell_of_it_and_are_not_restyled(tmp_path):
    """One image and a plain material: an atlas of two cells, so the plain faces render their colour (not the image's
    texels at their UVs), and a job restyles only the faces showing the image, the one the glTF can carry back."""
    order, images, part = parts_gltf(tmp_path / "parts.glb", one_image=True)
    model = read_model(tmp_path / "parts.glb")
    assert model.cells == 2 and model.texture.shape == (128, 128, 3)
    np.testing.assert_array_equal(model.editable, part[order] != 2)
    assert model.restyled_faces("auto") is model.editable and model.restyled_faces("even") is None
    shown = sample(torch.from_numpy(model.texture), torch.from_numpy(model.mesh.uvs.mean(axis=1).astype(np.float32)),
                   filter="linear").numpy()
    np.testing.assert_allclose(shown[part[order] == 2], np.broadcast_to([srgb(c) for c in RED], (np.sum(part == 2), 3)),
                               atol=1e-3)
    with pytest.raises(MeshError, match="base colour images and plain colours.*cannot stand in"):
        model.original(SPOT / "spot_texture.png")
    texture = np.random.default_rng(5).random((64, 64, 3)).astype(np.float32)
    write_gltf_with_texture(tmp_path / "parts.glb", tmp_path / "styled.glb", texture)
    gltf = pygltflib.GLTF2().load(str(tmp_path / "styled.glb"))
    view = gltf.bufferViews[gltf.images[0].bufferView]
    written = np.asarray(Image.open(io.BytesIO(gltf.binary_blob()[view.byteOffset:view.byteOffset + view.byteLength])),
                         np.float32) / 255
    assert np.abs(written - texture[:32, :32]).max() <= 0.5 / 255 + 1e-6  # the image from its cell alone


def test_a_model_with_one_image_is_read_as_before(tmp_path):
    from tests.test_gltf import spot_gltf

    spot_gltf(tmp_path / "spot.glb")
    mesh, texture = read_gltf(tmp_path / "spot.glb")
    assert read_model(tmp_path / "spot.glb").cells == 1
    np.testing.assert_allclose(mesh.uvs, read_obj(SPOT / "spot_triangulated.obj").uvs, atol=1e-6)
    assert texture.shape == load_image(SPOT / "spot_texture.png").shape



def test_a_batch_job_gives_each_image_its_cell_of_the_texture_size(tmp_path):
    from backend.batch.jobs import read_inputs
    from backend.batch.manifest import BatchJob
    from backend.errors import StyleTexError

    parts_gltf(tmp_path / "parts.glb")
    wave = REPO / "data" / "styles" / "wave.jpg"
    inputs = read_inputs(BatchJob("parts", tmp_path / "parts.glb", None, (wave,), {"texture_size": 256, "steps": 3}))
    assert inputs["settings"] == {"texture_size": 512, "steps": 3} and inputs["texture"].shape == (128, 128, 3)
    order, _, part = parts_gltf(tmp_path / "parts.glb")
    np.testing.assert_array_equal(inputs["editable"], part[order] != 2)  # the head's plain red stays
    with pytest.raises(StyleTexError, match="cannot stand in"):
        read_inputs(BatchJob("parts", tmp_path / "parts.glb", SPOT / "spot_texture.png", (wave,), {}))


def test_triangles_without_texture_coordinates_are_counted_and_said(tmp_path):
    from backend.commands.job import job_notes
    from backend.style.settings import StyleSettings

    _, _, part = parts_gltf(tmp_path / "parts.glb")
    gltf = pygltflib.GLTF2().load(str(tmp_path / "parts.glb"))
    gltf.meshes[0].primitives[2].attributes.TEXCOORD_0 = None  # the head, as an eye exported without UVs
    gltf.save_binary(str(tmp_path / "no_uvs.glb"))
    model = read_model(tmp_path / "no_uvs.glb")
    head = int((part == 2).sum())
    assert model.left_out == head and len(model.mesh.faces) == len(part) - head
    assert read_model(tmp_path / "parts.glb").left_out == 0
    notes = job_notes(StyleSettings(), model.mesh, model.texture, model.cells, model.editable, model.left_out)
    assert f"note: {head} of the model's triangles have no texture coordinates: they are left out" in notes
