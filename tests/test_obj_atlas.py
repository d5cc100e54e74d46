"""An OBJ whose materials show several images, or an image beside plain colours: read as one atlas of them (as a
glTF model's are), restyled in one job and written as the atlas with the mesh in its UVs (--out-mesh)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from backend.formats.images import load_image
from backend.formats.model import read_model
from backend.formats.obj import read_obj
from backend.texture.sample import sample
from tests.test_gltf_atlas import spot_parts, srgb

REPO = Path(__file__).resolve().parent.parent
RED_KD = (0.6, 0.05, 0.05)  # the plain material's Kd (linear)


def parts_obj(folder: Path, size: int = 32) -> tuple[Path, list[np.ndarray], np.ndarray]:
    """Spot with his left half in material A (image a.png), his right half in B (b.png, the colours reversed) and
    his head in a plain red material, faces grouped by part. Returns the OBJ, the two images and each written face's
    part."""
    mesh, part, images = spot_parts(size)
    for name, image in zip(("a.png", "b.png"), images):
        Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(folder / name)
    (folder / "parts.mtl").write_text("newmtl A\nmap_Kd a.png\nnewmtl B\nmap_Kd b.png\n"
                                      f"newmtl head\nKd {' '.join(map(str, RED_KD))}\n")
    lines = ["mtllib parts.mtl"] + [f"v {x:.6f} {z:.6f} {-y:.6f}" for x, y, z in mesh.positions]
    order = np.concatenate([np.flatnonzero(part == k) for k in range(3)])
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in mesh.uvs[order].reshape(-1, 2)]
    for n, face in enumerate(order):
        if n == 0 or part[order[n - 1]] != part[face]:
            lines.append(f"usemtl {('A', 'B', 'head')[part[face]]}")
        a, b, c = mesh.faces[face] + 1
        lines.append(f"f {a}/{3 * n + 1} {b}/{3 * n + 2} {c}/{3 * n + 3}")
    (folder / "parts.obj").write_text("\n".join(lines) + "\n")
    return folder / "parts.obj", images, part[order]


def test_each_face_reads_its_material_from_its_cell_and_plain_faces_are_kept(tmp_path):
    path, images, part = parts_obj(tmp_path)
    model = read_model(path)
    assert model.cells == 3 and model.texture.shape == (64, 64, 3) and model.writes_mesh
    np.testing.assert_array_equal(model.editable, part != 2)
    shown = sample(torch.from_numpy(model.texture), torch.from_numpy(model.mesh.uvs.mean(axis=1).astype(np.float32)),
                   filter="linear").numpy()
    written = read_obj(path)  # the file's own UVs, face for face
    for k in range(2):
        faces = part == k
        expected = sample(torch.from_numpy(images[k]), torch.from_numpy(written.uvs[faces].mean(axis=1)),
                          filter="linear").numpy()
        assert np.abs(shown[faces] - expected).max() < 0.04, k
    np.testing.assert_allclose(shown[part == 2], np.broadcast_to([srgb(c) for c in RED_KD], ((part == 2).sum(), 3)),
                               atol=1e-3)


def test_the_command_line_writes_the_atlas_and_the_mesh_in_its_uvs(tmp_path):
    path, _, part = parts_obj(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "backend", "stylize", str(path), "--style", str(REPO / "data" / "styles" / "wave.jpg"),
            "--features", "random", "--steps", "2", "--texture-size", "32", "--render-size", "32",
            "--out", str(tmp_path / "out" / "atlas.png")]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--out-mesh" in refused.stderr
    assert not (tmp_path / "out" / "atlas.png").exists()
    run = subprocess.run([*base, "--out-mesh", str(tmp_path / "out" / "styled.obj")], capture_output=True, text=True,
                         timeout=300, env=env, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "the images are restyled in one 64^2 atlas, each in a 32^2 cell, and the" in run.stderr
    styled = read_model(tmp_path / "out" / "styled.obj")  # its library names the atlas: read as its one image
    atlas = load_image(tmp_path / "out" / "atlas.png")
    assert styled.cells == 1 and np.array_equal(styled.texture, atlas)
    np.testing.assert_allclose(styled.mesh.uvs, read_model(path).mesh.uvs, atol=1e-6)
    centres = torch.from_numpy(styled.mesh.uvs.mean(axis=1).astype(np.float32))
    shown = sample(torch.from_numpy(atlas), centres, filter="linear").numpy()
    assert np.abs(shown[part == 2] - [srgb(c) for c in RED_KD]).max() <= 1 / 255  # the plain red kept
    assert (tmp_path / "out" / "styled.mtl").read_text().splitlines()[-1] == "map_Kd atlas.png"


def test_a_batch_job_writes_the_mesh_beside_the_atlas(tmp_path):
    from backend.batch.jobs import read_inputs, run_job
    from backend.batch.manifest import BatchJob
    from backend.commands.batch import _write

    path, _, part = parts_obj(tmp_path)
    job = BatchJob("parts", path, None, (REPO / "data" / "styles" / "wave.jpg",),
                   {"texture_size": 32, "render_size": 32, "steps": 1, "features": "random"})
    inputs = read_inputs(job)
    assert inputs["writes_mesh"] and inputs["settings"]["texture_size"] == 64
    outcome = run_job(inputs, threads=1, device="cpu")
    assert "error" not in outcome, outcome
    _write(job, tmp_path, outcome, "digest")
    written = read_model(tmp_path / "parts.obj")
    assert np.array_equal(written.texture, load_image(tmp_path / "parts.png"))
    np.testing.assert_allclose(written.mesh.uvs, inputs["uvs"], atol=1e-6)


def test_interpolated_frames_of_an_atlas_come_with_the_mesh_in_its_uvs(tmp_path):
    """An OBJ's or a glTF model's: interpolate writes no model back, so the frames need the mesh in the atlas's UVs."""
    from backend.commands.main import main
    from tests.test_gltf_atlas import parts_gltf

    parts_gltf(tmp_path / "parts.glb")
    wave = str(REPO / "data" / "styles" / "wave.jpg")
    for path in (parts_obj(tmp_path)[0], tmp_path / "parts.glb"):
        frames = tmp_path / f"frames_{path.suffix[1:]}"
        assert main(["interpolate", str(path), "--style", wave, "--style-to", wave, "--frames", "2", "--features",
                     "random", "--steps", "2", "--texture-size", "32", "--render-size", "32", "--quiet",
                     "--out", str(frames)]) == 0
        written = read_model(frames / "mesh.obj")
        assert np.array_equal(written.texture, load_image(frames / "frame_0000.png"))
        np.testing.assert_allclose(written.mesh.uvs, read_model(path).mesh.uvs, atol=1e-5)
