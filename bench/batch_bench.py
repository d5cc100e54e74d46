"""Batch rows: the same small jobs in this process and on a local Ray, wall time per job and their ratio.

Both runs go through `python -m backend batch` as a user runs it, so the Ray row includes starting a local
Ray, moving each job's arrays through its object store and the task scheduling: the whole price of --ray
on one machine. The jobs use the default network at small sizes (a few seconds each)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
JOBS = 4
SETTINGS = {"steps": 60, "texture_size": 256, "render_size": 128}


def _batch(manifest: Path, out: Path, *extra: str) -> float:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "backend", "batch", str(manifest), "--out", str(out), "--quiet", *extra],
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"batch failed: {run.stderr[-2000:]}")
    return time.perf_counter() - started


def run(device: torch.device, quick: bool) -> list[dict]:
    if device.type != "cpu":  # one set of rows: Ray schedules the device itself
        return []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in ("spot_triangulated.obj", "spot_texture.png"):
            shutil.copy(ROOT / "data" / "spot" / name, root / name)
        shutil.copy(ROOT / "data" / "styles" / "wave.jpg", root / "wave.jpg")
        jobs = [{"name": f"job{k}", "mesh": "spot_triangulated.obj", "texture": "spot_texture.png", "style": "wave.jpg",
                 "settings": {**SETTINGS, "seed": k}} for k in range(JOBS)]
        manifest = root / "manifest.json"
        manifest.write_text(json.dumps({"jobs": jobs}))
        # One CPU thread per job in both runs; Ray runs two jobs at once on two cores, this process one.
        here = _batch(manifest, root / "here", "--threads", "1")
        on_ray = _batch(manifest, root / "ray", "--ray", "--threads", "1")
        job_seconds = [j["seconds"] for j in json.loads((root / "here" / "batch.json").read_text())["jobs"].values()]
        ray_seconds = [j["seconds"] for j in json.loads((root / "ray" / "batch.json").read_text())["jobs"].values()]
    mean_job = sum(job_seconds) / len(job_seconds)
    # What Ray adds besides the jobs: its start, the workers' own start (torch imports), the object store.
    ray_fixed = on_ray - sum(ray_seconds) / min(2, JOBS)
    return [
        {"name": f"batch of {JOBS} jobs in this process (1 thread each), per job", "seconds": here / JOBS},
        {"name": f"batch of {JOBS} jobs on a local Ray (1 CPU each, 2 at once), per job", "seconds": on_ray / JOBS},
        {"name": "batch_ray_over_in_process", "ratio": on_ray / here},
        {"name": "batch_overhead_per_job_in_process (wall - job time) / job time", "ratio": (here / JOBS - mean_job) / mean_job},
        {"name": "Ray's fixed cost in that run (start, workers' start; wall - job time / 2)", "seconds": ray_fixed},
    ]
