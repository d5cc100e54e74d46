"""One batch job as plain arrays in and out, so it runs the same in this process or on a Ray worker that
shares no file system with the driver: the driver reads the files, the worker sees arrays only."""

from __future__ import annotations

import os
import time

import numpy as np

from ..errors import StyleTexError
from ..formats.model import read_model
from ..formats.images import load_image
from ..mesh import make_mesh
from ..style.engine import stylize
from ..style.settings import StyleSettings
from .manifest import BatchJob


def read_inputs(job: BatchJob) -> dict:
    """The job's files as arrays (raises StyleTexError naming the file when one is broken). A model whose materials
    show several images comes as one atlas of them, each in a cell of the texture size, and where they show plain
    colours beside an image those faces keep them (as on the command line: commands/job.py)."""
    model = read_model(job.mesh)
    texture = model.original(job.texture)
    settings = job.settings
    if model.cells > 1:
        settings = {**settings, "texture_size": model.texture_size(settings.get("texture_size",
                                                                                 StyleSettings().texture_size))}
    mesh = model.mesh
    return {"name": job.name, "positions": mesh.positions, "faces": mesh.faces, "uvs": mesh.uvs,
            "texture": texture, "styles": [load_image(path) for path in job.styles], "settings": settings,
            "editable": model.restyled_faces(settings.get("unwrap", StyleSettings().unwrap)),
            "writes_mesh": model.writes_mesh}


def run_job(inputs: dict, threads: int = 0, device: str = "auto") -> dict:
    """Restyles one job's arrays: {"texture", "report"} or {"error": one line}. threads > 0 bounds torch's."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    try:
        mesh = make_mesh(inputs["positions"], inputs["faces"], inputs["uvs"], inputs["name"])
        settings = StyleSettings(**{**inputs["settings"], "device": device}).validate()
        result = stylize(mesh, inputs["styles"], settings, inputs["texture"], editable=inputs.get("editable"))
    except StyleTexError as exc:
        return {"error": str(exc), "seconds": time.perf_counter() - started}
    report = {**result.report, "worker_pid": os.getpid()}
    outcome = {"texture": result.texture.astype(np.float32), "report": report, "seconds": time.perf_counter() - started}
    if inputs.get("writes_mesh"):  # an OBJ's atlas: the texture fits the mesh in its UVs, written beside it
        outcome["mesh"] = mesh
    return outcome
