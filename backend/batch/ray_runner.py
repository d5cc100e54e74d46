"""Batch jobs as Ray tasks (imported only when --ray is given: the other commands start without Ray).

Each job is one task: one GPU when the cluster has GPUs, else `threads` CPUs. Its arrays go through Ray's
object store and its result comes back the same way, so workers need no shared file system. A worker that
dies mid-job is retried by Ray itself (max_retries); a job's own errors come back as values and are not
retried. An actor counts each job's attempts, so the driver can report retries.
"""

from __future__ import annotations

import os
import socket
from typing import Callable, Iterator

from ..errors import StyleTexError
from .jobs import run_job


def _attempts_actor(ray):
    @ray.remote(num_cpus=0)
    class Attempts:
        def __init__(self) -> None:
            self.counts: dict[str, int] = {}

        def add(self, name: str) -> int:
            self.counts[name] = self.counts.get(name, 0) + 1
            return self.counts[name]

        def get(self) -> dict[str, int]:
            return dict(self.counts)

    return Attempts.remote()


def _task(inputs: dict, attempts, threads: int) -> dict:
    import ray

    ray.get(attempts.add.remote(inputs["name"]))
    return run_job(inputs, threads)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Ray keeps retrying an address nobody answers for minutes: find that out in seconds first."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise StyleTexError(f"--ray {address}: expected HOST:PORT (the head's `ray start --head --port`)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise StyleTexError(f"cannot start or join the Ray cluster at {address}: {exc.strerror or exc}") from None


def run_on_ray(work: list[tuple[str, Callable[[], dict]]], address: str | None, threads: int, max_retries: int,
               ) -> Iterator[tuple[str, dict, int]]:
    """Runs the jobs (name, a function reading its inputs) on Ray; yields (name, outcome, attempts) as they
    finish. An outcome is run_job's, or {"error": ...} when the inputs could not be read or the worker died
    more often than max_retries allows."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if address:
        _check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 **({} if address else {"num_cpus": max(threads, os.cpu_count() or 1)}))
    except Exception as exc:  # a wrong address, a missing auth token, a version mismatch: one line, not a traceback
        reason = next((line.strip() for line in reversed(str(exc).splitlines()) if line.strip()), type(exc).__name__)
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise StyleTexError(f"cannot start or join {where}: {reason[:300]}") from None
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": threads}
        task = ray.remote(max_retries=max_retries, retry_exceptions=False)(_task).options(**resources, name="styletex_job")
        attempts = _attempts_actor(ray)
        pending = {}
        for name, read in work:
            try:
                inputs = read()
            except Exception as exc:  # a broken input fails alone
                yield name, {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}, 0
                continue
            pending[task.remote(ray.put(inputs), attempts, threads)] = name
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                name = pending.pop(ready[0])
                try:
                    outcome = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    outcome = {"error": f"the worker failed ({type(exc).__name__})"}
                yield name, outcome, ray.get(attempts.get.remote()).get(name, 0)
        finally:
            for ref in pending:  # Ctrl-C or an error in the driver: stop what still runs
                ray.cancel(ref, force=True)
    finally:
        ray.shutdown()
