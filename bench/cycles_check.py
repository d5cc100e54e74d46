"""A second renderer for the quality benchmark: Blender's Cycles, through the bpy the project installs.

Cycles reads the full-resolution texture and averages it over each pixel's footprint (blender_render.py), as a path
tracer a user renders with does. The benchmark's own renders filter the texture anisotropically (quality_score.py),
which comes near that; trilinear filtering, which they used before, blurs a texture along both axes as much as along
the more minified one, so where a UV layout stretches its texels on the surface (the tube, the torus) or the surface
is seen at a slant it lowered the local contrast of any texture, the painting pasted on included. Its scores are
reported beside the benchmark's own (docs/BENCHMARKS.md)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from backend.errors import StyleTexError
from backend.formats.images import save_image
from backend.formats.obj import write_obj
from backend.mesh import Mesh
from backend.views import Camera

SCRIPT = Path(__file__).resolve().parent / "blender_render.py"
TIMEOUT_S = 600
BACKGROUND = 0.5
COVERED = 254 / 255  # alpha of a pixel the surface covers whole (edge pixels are partly covered)


def blender_available() -> bool:
    """Whether this Python imports bpy (the project's .venv does: Blender 4.2 from PyPI)."""
    return importlib.util.find_spec("bpy") is not None


def cycles_renders(mesh: Mesh, textures: list[np.ndarray], cameras: list[Camera], size: int
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per texture (H, W, 3) in [0, 1]: Cycles' renders (V, 3, size, size) of the mesh from `cameras` over mid grey
    (as the benchmark's own), and their coverage (V, 1, size, size) bool (whole pixels only). Blender runs in one
    process of its own for all the textures."""
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_obj(folder / "mesh.obj", mesh)
        views = [{"eye": [float(v) for v in c.eye], "target": [float(v) for v in c.target], "fov_deg": c.fov_deg,
                  "near": c.near, "far": c.far} for c in cameras]
        (folder / "cameras.json").write_text(json.dumps(views), encoding="utf-8")
        jobs = []
        for k, texture in enumerate(textures):
            save_image(folder / f"texture_{k}.png", texture[..., :3])
            jobs += [str(folder / f"texture_{k}.png"), str(folder / f"render_{k}")]
        done = subprocess.run([sys.executable, str(SCRIPT), str(folder / "mesh.obj"), str(folder / "cameras.json"),
                               str(size), *jobs], capture_output=True, text=True, timeout=TIMEOUT_S)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise StyleTexError(f"Blender's Cycles render failed: {tail[0]}")
        out = []
        for prefix in jobs[1::2]:
            pixels = np.stack([np.asarray(Image.open(f"{prefix}_{i}.png").convert("RGBA"), dtype=np.float32) / 255
                               for i in range(len(cameras))])
            alpha = pixels[..., 3:]  # PNG keeps straight alpha
            images = torch.from_numpy(pixels[..., :3] * alpha + BACKGROUND * (1 - alpha)).permute(0, 3, 1, 2).contiguous()
            covered = torch.from_numpy(alpha >= COVERED).permute(0, 3, 1, 2).contiguous()
            out.append((images, covered))
        return out
