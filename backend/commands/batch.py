"""`python -m backend batch MANIFEST.json --out DIR [--ray [ADDRESS]] [--resume] [--max-retries N]`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from ..batch.jobs import read_inputs, run_job
from ..batch.manifest import BatchJob, load_manifest
from .arguments import positive_int
from ..errors import StyleTexError
from ..formats.gltf import is_gltf, write_gltf_with_texture
from ..formats.obj import write_obj
from ..formats.images import save_image

EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="JSON: {\"jobs\": [{\"name\", \"mesh\", \"texture\", \"style\", \"settings\"}]}")
    parser.add_argument("--out", required=True, help="folder for <name>.png (.glb), <name>.json and batch.json")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run each job as a Ray task: alone, on a new local Ray; with HOST:PORT, on that cluster")
    parser.add_argument("--resume", action="store_true",
                        help="skip jobs whose outputs and report exist for the same inputs and settings")
    parser.add_argument("--max-retries", type=int, default=2, help="Ray retries of a job whose worker died (default 2)")
    parser.add_argument("--threads", type=positive_int, default=2, help="CPU threads per job (Ray: CPUs per task)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


class BatchProgress:
    """One line for the whole batch: jobs finished of all, failures, and the ETA from the mean job time."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.done, self.failed = total, quiet, 0, 0
        self.started = time.monotonic()
        self.redraw = sys.stderr.isatty()

    def update(self, name: str, status: str) -> None:
        self.done += 1
        self.failed += status == "failed"
        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        bar = "#" * round(24 * self.done / max(self.total, 1))
        line = (f"[{bar:<24s}] {self.done}/{self.total} jobs, {self.failed} failed, ETA {eta:.0f}s "
                f"({name}: {status})")
        print(("\r" + line + ("\n" if self.done == self.total else "")) if self.redraw else line,
              end="" if self.redraw else "\n", file=sys.stderr, flush=True)


def _outputs(job: BatchJob, out: Path) -> list[Path]:
    return [out / f"{job.name}.png", out / f"{job.name}.json"] + ([out / f"{job.name}.glb"] if is_gltf(job.mesh) else [])


def _finished_before(job: BatchJob, out: Path, digest: str) -> bool:
    if not all(path.is_file() for path in _outputs(job, out)):
        return False
    try:
        return json.loads((out / f"{job.name}.json").read_text()).get("input_hash") == digest
    except (OSError, json.JSONDecodeError):
        return False


def _write(job: BatchJob, out: Path, outcome: dict, digest: str) -> None:
    save_image(out / f"{job.name}.png", outcome["texture"])
    if "mesh" in outcome:  # an OBJ's atlas
        write_obj(out / f"{job.name}.obj", outcome["mesh"], texture=out / f"{job.name}.png")
    if is_gltf(job.mesh):
        write_gltf_with_texture(job.mesh, out / f"{job.name}.glb", outcome["texture"])
    report = {**outcome["report"], "input_hash": digest, "mesh": str(job.mesh),
              "styles": [str(s) for s in job.styles]}
    (out / f"{job.name}.json").write_text(json.dumps(report, indent=2) + "\n")


def run(args: argparse.Namespace) -> int:
    jobs = load_manifest(args.manifest)
    if args.max_retries < 0:
        raise StyleTexError(f"--max-retries must not be negative, got {args.max_retries}")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StyleTexError(f"{out}: cannot make the output folder ({exc.strerror or exc})") from None
    started = time.monotonic()
    records = {job.name: {"status": "pending", "mesh": str(job.mesh)} for job in jobs}
    by_name = {job.name: job for job in jobs}
    digests = {job.name: job.input_hash() for job in jobs}
    todo = []
    for job in jobs:
        if args.resume and _finished_before(job, out, digests[job.name]):
            records[job.name]["status"] = "skipped"
        else:
            todo.append(job)
    progress = BatchProgress(len(todo), args.quiet)

    def finish(name: str, outcome: dict, attempts: int) -> None:
        record = records[name]
        record.update(attempts=attempts, retried=max(0, attempts - 1), seconds=round(outcome.get("seconds", 0.0), 2))
        if "error" in outcome:
            record.update(status="failed", error=outcome["error"])
        else:
            try:
                _write(by_name[name], out, outcome, digests[name])
                record["status"] = "done"
            except StyleTexError as exc:
                record.update(status="failed", error=str(exc))
        progress.update(name, record["status"])

    interrupted = False
    # Ctrl-C must reach us even when the shell started us with SIGINT ignored (a background job).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if args.ray:
            from ..batch.ray_runner import run_on_ray

            work = [(job.name, (lambda job=job: read_inputs(job))) for job in todo]
            address = None if args.ray == "local" else args.ray
            for name, outcome, attempts in run_on_ray(work, address, args.threads, args.max_retries):
                finish(name, outcome, attempts)
        else:
            for job in todo:
                try:
                    inputs = read_inputs(job)
                except StyleTexError as exc:
                    finish(job.name, {"error": str(exc)}, 0)
                    continue
                finish(job.name, run_job(inputs, args.threads), 1)
    except KeyboardInterrupt:
        interrupted = True
        for record in records.values():
            if record["status"] == "pending":
                record["status"] = "cancelled"
    finally:
        signal.signal(signal.SIGINT, previous)
    summary = {"manifest": str(Path(args.manifest).resolve()), "ray": args.ray, "seconds": round(time.monotonic() - started, 2),
               "jobs": records}
    (out / "batch.json").write_text(json.dumps(summary, indent=2) + "\n")
    counts = {s: sum(r["status"] == s for r in records.values()) for s in ("done", "failed", "skipped", "cancelled")}
    if not args.quiet:
        print(f"batch: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped"
              + (f", {counts['cancelled']} cancelled" if counts["cancelled"] else "") + f"; wrote {out / 'batch.json'}",
              file=sys.stderr)
    if interrupted:
        return 130
    return EXIT_FAILED if counts["failed"] else 0
