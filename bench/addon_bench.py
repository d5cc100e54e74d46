"""Add-on rows (bpy from PyPI, headless): the cost of one live preview on Blender's main thread.

The UI drains the worker's queue in a timer; a preview costs one write_pixels call (float32
foreach_set into the styled image, then update). These rows say how much of a tick that takes.
"""

from __future__ import annotations

import numpy as np
import torch

from .timing import median_seconds


def run(device: torch.device, quick: bool) -> list[dict]:
    if device.type != "cpu":
        return []  # Blender's side does not depend on the backend's device
    import bpy

    from blender_addon.write_back import ensure_image, write_pixels

    rows = []
    rng = np.random.default_rng(0)
    for size in (1024, 2048):
        image = ensure_image(f"bench_{size}", size)
        pixels = rng.random((size, size, 4), dtype=np.float32)
        seconds = median_seconds(lambda: write_pixels(image, pixels), device, 3 if quick else 5)
        rows.append({"name": f"add-on: write one {size}^2 RGBA preview into a Blender image", "seconds": seconds})
        bpy.data.images.remove(image)
    return rows
