"""`python -m backend batch`: manifests checked whole, jobs run here and on a real local Ray (2 CPUs, no
dashboard), a broken job failing alone, a killed worker retried by Ray, --resume, glTF in and out."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backend.batch.manifest import load_manifest
from backend.formats.gltf import read_gltf
from backend.formats.images import load_image
from tests.test_gltf import spot_gltf

REPO = Path(__file__).resolve().parent.parent
SMALL = {"steps": 3, "texture_size": 64, "render_size": 32, "features": "random"}


def batch(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    env = env or dict(os.environ, PYTHONPATH=str(REPO), RAY_DEDUP_LOGS="0")
    return subprocess.run([sys.executable, "-m", "backend", "batch", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


@pytest.fixture
def library(tmp_path) -> Path:
    """Spot as OBJ and as glb, a broken OBJ, a painting; and a manifest of three jobs (one broken)."""
    shutil.copy(REPO / "data" / "spot" / "spot_triangulated.obj", tmp_path / "spot.obj")
    shutil.copy(REPO / "data" / "spot" / "spot_texture.png", tmp_path / "spot.png")
    shutil.copy(REPO / "data" / "styles" / "wave.jpg", tmp_path / "wave.jpg")
    spot_gltf(tmp_path / "spot.glb")
    (tmp_path / "broken.obj").write_text("v 0 0 0\nf 1 2 3\n")
    write_manifest(tmp_path / "manifest.json", [
        {"name": "cow", "mesh": "spot.obj", "texture": "spot.png", "style": "wave.jpg", "settings": SMALL},
        {"name": "broken", "mesh": "broken.obj", "style": "wave.jpg", "settings": SMALL},
        {"name": "cow_glb", "mesh": "spot.glb", "style": ["wave.jpg", "spot.png"], "settings": {**SMALL, "style_blend": "2,1"}},
    ])
    return tmp_path


def write_manifest(path: Path, jobs: list[dict]) -> Path:
    path.write_text(json.dumps({"jobs": jobs}))
    return path


def check_three_jobs(out: Path, run: subprocess.CompletedProcess) -> dict:
    assert run.returncode == 1, run.stderr[-3000:]  # one job failed
    summary = json.loads((out / "batch.json").read_text())
    jobs = summary["jobs"]
    assert {name: job["status"] for name, job in jobs.items()} == {"cow": "done", "broken": "failed", "cow_glb": "done"}
    assert "broken.obj:2" in jobs["broken"]["error"] and "\n" not in jobs["broken"]["error"]
    assert load_image(out / "cow.png").shape == (64, 64, 3)
    report = json.loads((out / "cow_glb.json").read_text())
    assert report["steps_done"] == 3 and len(report["input_hash"]) == 64
    _, texture = read_gltf(out / "cow_glb.glb")  # a glTF job gives the restyled model too
    np.testing.assert_allclose(texture, load_image(out / "cow_glb.png"), atol=1e-6)
    assert not (out / "broken.png").exists()
    assert "3/3 jobs, 1 failed" in run.stderr
    return summary


def test_jobs_run_here_a_broken_one_fails_alone_and_resume_runs_nothing(library):
    out = library / "out"
    check_three_jobs(out, batch(str(library / "manifest.json"), "--out", str(out)))
    good = write_manifest(library / "good.json", [json.loads((library / "manifest.json").read_text())["jobs"][i] for i in (0, 2)])
    first = batch(str(good), "--out", str(out), "--resume")
    assert first.returncode == 0
    assert {j["status"] for j in json.loads((out / "batch.json").read_text())["jobs"].values()} == {"skipped"}
    # A changed setting is a changed job: it runs again.
    jobs = json.loads(good.read_text())["jobs"]
    jobs[0]["settings"] = {**SMALL, "seed": 7}
    again = batch(str(write_manifest(good, jobs)), "--out", str(out), "--resume")
    statuses = {n: j["status"] for n, j in json.loads((out / "batch.json").read_text())["jobs"].items()}
    assert again.returncode == 0 and statuses == {"cow": "done", "cow_glb": "skipped"}


def test_a_bad_manifest_is_refused_whole_naming_job_and_field(library):
    good = {"name": "cow", "mesh": "spot.obj", "style": "wave.jpg", "settings": SMALL}
    cases = [
        ({"jobs": []}, "non-empty list"),
        ({"jobs": [{**good, "name": "a/b"}]}, "job 1.name"),
        ({"jobs": [good, good]}, "job 'cow': the name is used twice"),
        ({"jobs": [{**good, "mesh": "nope.obj"}]}, "job 'cow'.mesh: no such file"),
        ({"jobs": [{**good, "mesh": "wave.jpg"}]}, "job 'cow'.mesh"),
        ({"jobs": [{**good, "settings": {"steps": "many"}}]}, "job 'cow'.settings: setting 'steps' has the wrong type"),
        ({"jobs": [{**good, "settings": {"weights": "/etc/passwd"}}]}, "not allowed setting 'weights'"),
        ({"jobs": [{**good, "style": ["wave.jpg"], "settings": {"style_blend": "1,1"}}]}, "2 weights for 1 painting"),
        ({"jobs": [{**good, "colour": "red"}]}, "unknown field 'colour'"),
        ({"jobs": [{**good, "settings": {"unwrap": "even"}}]}, "job 'cow'.settings: unwrap must be auto, keep or round-trip"),
    ]
    for manifest, text in cases:
        (library / "bad.json").write_text(json.dumps(manifest))
        run = batch(str(library / "bad.json"), "--out", str(library / "bad_out"))
        assert run.returncode == 2 and text in run.stderr and run.stderr.count("\n") == 1, (text, run.stderr)
        assert not (library / "bad_out" / "batch.json").exists()  # nothing ran
    (library / "bad.json").write_text("{not json")
    assert batch(str(library / "bad.json"), "--out", str(library / "bad_out")).returncode == 2
    # a round trip hands each texture back in its model's own UVs: a batch may ask for it
    (library / "trip.json").write_text(json.dumps({"jobs": [{**good, "settings": {**SMALL, "unwrap": "round-trip"}}]}))
    assert load_manifest(library / "trip.json")[0].settings["unwrap"] == "round-trip"


def test_the_same_manifest_on_a_local_ray(library):
    out = library / "ray_out"
    summary = check_three_jobs(out, batch(str(library / "manifest.json"), "--out", str(out), "--ray", "--threads", "1"))
    assert summary["ray"] == "local"
    assert all(summary["jobs"][n]["attempts"] == 1 and summary["jobs"][n]["retried"] == 0 for n in ("cow", "cow_glb"))
    pids = {json.loads((out / f"{n}.json").read_text())["worker_pid"] for n in ("cow", "cow_glb")}
    assert os.getpid() not in pids  # the jobs ran in Ray's workers


def test_a_worker_killed_mid_job_is_retried_by_ray_and_the_job_finishes(library):
    out = library / "killed_out"
    manifest = write_manifest(library / "long.json", [
        {"name": "long", "mesh": "spot.obj", "texture": "spot.png", "style": "wave.jpg",
         "settings": {**SMALL, "steps": 400, "texture_size": 128, "render_size": 64}}])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-m", "backend", "batch", str(manifest), "--out", str(out), "--ray",
                                "--threads", "1", "--max-retries", "2", "--quiet"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and time.monotonic() < deadline and process.poll() is None:
        listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        workers = [int(line.split()[0]) for line in listing.splitlines() if "ray::styletex_job" in line]
        if workers:
            time.sleep(2.0)  # well into the job
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.2)
    _, err = process.communicate(timeout=600)
    assert killed is not None, "no Ray worker ran the job"
    assert process.returncode == 0, err[-3000:]
    job = json.loads((out / "batch.json").read_text())["jobs"]["long"]
    assert job["status"] == "done" and job["attempts"] >= 2 and job["retried"] >= 1, job
    assert json.loads((out / "long.json").read_text())["worker_pid"] != killed


def test_ctrl_c_cancels_the_remaining_jobs_and_still_writes_the_summary(library):
    out = library / "interrupted"
    jobs = [{"name": f"cow{k}", "mesh": "spot.obj", "texture": "spot.png", "style": "wave.jpg",
             "settings": {**SMALL, "steps": 60 if k else 3}} for k in range(3)]
    manifest = write_manifest(library / "three.json", jobs)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-m", "backend", "batch", str(manifest), "--out", str(out)], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "cow0.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    statuses = {n: j["status"] for n, j in json.loads((out / "batch.json").read_text())["jobs"].items()}
    assert statuses["cow0"] == "done" and "cancelled" in statuses.values(), statuses
    assert "Traceback" not in err


def test_joining_a_running_ray_cluster_by_address(library):
    """`ray start --head` as an operator would, then --ray HOST:PORT joins it (and leaves it running)."""
    import tempfile

    from tests.net import free_port

    port = free_port()
    ray = str(Path(sys.executable).parent / "ray")
    # `ray start` makes a token-authenticated cluster; a driver joining it sends the token (docs/SCALING.md).
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_AUTH_MODE="token")
    temp = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # short: Ray's socket paths live under it
    head = subprocess.run([ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                           "--disable-usage-stats", f"--temp-dir={temp}"], capture_output=True, text=True, timeout=180, env=env)
    try:
        assert head.returncode == 0, head.stdout[-2000:] + head.stderr[-2000:]
        out = library / "cluster_out"
        manifest = write_manifest(library / "one.json", [
            {"name": "cow", "mesh": "spot.obj", "texture": "spot.png", "style": "wave.jpg", "settings": SMALL}])
        wrong = batch(str(manifest), "--out", str(out), "--ray", f"127.0.0.1:{free_port()}", timeout=300)
        assert wrong.returncode == 2 and "cannot start or join the Ray cluster" in wrong.stderr, wrong.stderr[-2000:]
        assert "Traceback" not in wrong.stderr
        run = batch(str(manifest), "--out", str(out), "--ray", f"127.0.0.1:{port}", "--threads", "1", env=env)
        assert run.returncode == 0, run.stderr[-3000:]
        summary = json.loads((out / "batch.json").read_text())
        assert summary["ray"] == f"127.0.0.1:{port}" and summary["jobs"]["cow"]["status"] == "done"
        status = subprocess.run([ray, "status", f"--address=127.0.0.1:{port}"], capture_output=True, text=True,
                                timeout=60, env=env)
        assert status.returncode == 0  # the cluster is still up: the batch joined it, it did not own it
    finally:
        # Stop this head only (`ray stop` would stop every Ray on the machine): its processes name its folder,
        # and their children (Ray's agents and workers) hang below them.
        listing = subprocess.run(["ps", "-eww", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        rows = [line.split(None, 2) for line in listing.splitlines() if len(line.split(None, 2)) == 3]
        doomed = {int(pid) for pid, _, args in rows if temp in args}
        while True:
            more = {int(pid) for pid, parent, _ in rows if int(parent) in doomed} - doomed
            if not more:
                break
            doomed |= more
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)
