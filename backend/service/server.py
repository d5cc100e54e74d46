"""The job server: a ROUTER socket, a queue, and one worker thread per device.

Only the server thread touches the socket (ZeroMQ sockets are not thread-safe): the worker hands
its outgoing frames over through a queue that the server loop drains between polls. Clients prove
they are alive by sending anything (the client library pings every second); a job whose client has
been silent for `client_timeout` seconds is cancelled.
"""

from __future__ import annotations

import gc
import math
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import zmq

from .protocol import CLIENT_TYPES, PROTOCOL_VERSION, Limits, ProtocolError, decode, encode, error

from .. import __version__
from ..errors import StyleTexError
from ..features.network import KINDS
from ..mesh.uv_room import uv_room
from ..style.engine import stand_in_note, stylize
from ..style.sequence import SequenceResult, stylize_sequence
from ..style.progress import Progress, StyleResult
from ..texture.transfer import transfer_texture
from .requests import JobRequest, ServiceLimits, parse_submit

log = logging.getLogger("styletex.server")


@dataclass
class Job:
    id: str
    client: bytes
    request: JobRequest
    cancel: threading.Event = field(default_factory=threading.Event)
    started: bool = False


def _finite(value):
    """JSON has no NaN or infinity: a diverged loss is sent as null, wherever it sits in a report (lists of
    steps, a sequence's per-frame lists)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def preview_array(texture: np.ndarray, max_size: int, fmt: str) -> np.ndarray:
    """(S, S, 3 or 4) float texture -> RGBA preview (opaque where it has no alpha), downscaled to max_size, as uint8 or
    float16/32."""
    image = texture
    if max_size and max(image.shape[:2]) > max_size:
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        image = F.interpolate(tensor, size=(max_size, max_size), mode="area")[0].permute(1, 2, 0).numpy()
    rgba = image if image.shape[-1] == 4 else np.concatenate([image, np.ones_like(image[..., :1])], axis=-1)
    if fmt == "uint8":
        return (np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8)
    return rgba.astype(fmt)


class Server:
    def __init__(
        self,
        bind: str,
        device: str = "auto",
        max_queue: int = 8,
        limits: ServiceLimits = ServiceLimits(),
        max_message_bytes: int = 512 << 20,
        client_timeout: float = 5.0,
        context: zmq.Context | None = None,
        curve_secret_file: str | None = None,
        curve_clients_dir: str | None = None,
    ):
        self.bind, self.device, self.max_queue, self.limits = bind, device, max_queue, limits
        self.wire_limits = Limits(max_message_bytes=max_message_bytes)
        self.client_timeout = client_timeout
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # Backstop only: libzmq drops a peer silently on an oversized frame; the application check
        # in decode() gives a proper error for anything under this size.
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        self.authenticator = None
        self.clients_dir, self.next_reload = None, 0.0
        if curve_secret_file:
            self._setup_curve(curve_secret_file, curve_clients_dir)
        self.socket.bind(bind)
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.waiting: list[Job] = []  # queued, in order (guarded by self.lock)
        self.running: Job | None = None
        self.lock = threading.Lock()
        self.outbox: queue.Queue[tuple[bytes, list]] = queue.Queue()
        self.last_seen: dict[bytes, float] = {}
        self.stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="styletex-worker", daemon=True)

    def _setup_curve(self, secret_file: str, clients_dir: str | None) -> None:
        import zmq.auth
        from zmq.auth.thread import ThreadAuthenticator

        public, secret = zmq.auth.load_certificate(secret_file)
        if secret is None:
            raise StyleTexError(f"{secret_file}: not a secret key file (make one with `python -m backend keygen`)")
        self.authenticator = ThreadAuthenticator(self.context)
        self.authenticator.start()
        self.clients_dir, self.clients_seen = clients_dir, None
        if clients_dir:
            self._reload_clients()
        else:
            self.authenticator.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
        self.socket.curve_secretkey = secret
        self.socket.curve_publickey = public
        self.socket.curve_server = True

    def _reload_clients(self) -> None:
        """Reads the allowed client keys again when the folder's listing or a key file changed: adding a
        colleague's key takes effect within a second, without a restart."""
        folder = Path(self.clients_dir)
        try:
            seen = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.glob("*.key"))
        except OSError:
            return
        if seen != self.clients_seen:
            self.authenticator.configure_curve(domain="*", location=str(folder))
            if self.clients_seen is not None:
                log.info("allowed client keys reloaded: %d", len(seen))
            self.clients_seen = seen

    # -- server thread ---------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self.worker.start()
        log.info("serving on %s (device %s, queue up to %d jobs)", self.endpoint, self.device, self.max_queue)
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        try:
            while not self.stop.is_set():
                if dict(poller.poll(50)).get(self.socket):
                    self._receive()
                self._flush_outbox()
                self._reap_silent_clients()
                if self.authenticator is not None and self.clients_dir and time.monotonic() >= self.next_reload:
                    self._reload_clients()
                    self.next_reload = time.monotonic() + 1.0
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.stop.set()
        with self.lock:
            for job in self.waiting:
                job.cancel.set()
            if self.running:
                self.running.cancel.set()
        self.jobs.put(None)
        if self.worker.is_alive():
            self.worker.join(timeout=30)
        if self.authenticator is not None:
            self.authenticator.stop()
        self.socket.close(0)

    def _send(self, client: bytes, frames: list) -> None:
        try:
            # Never block: with ROUTER_MANDATORY a blocking send waits for as long as a peer that does
            # not read keeps its queue full, and this thread serves everyone.
            self.socket.send_multipart([client, *frames], copy=False, flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # EHOSTUNREACH: the client is gone; EAGAIN: its queue is full
            log.info("could not reach client %s: %s", client.hex(), exc)

    def _flush_outbox(self) -> None:
        while True:
            try:
                client, frames = self.outbox.get_nowait()
            except queue.Empty:
                return
            self._send(client, frames)

    def _receive(self) -> None:
        while True:
            try:
                parts = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            client, frames = parts[0].bytes, parts[1:]
            self.last_seen[client] = time.monotonic()
            try:
                message = decode(frames, self.wire_limits, expect=CLIENT_TYPES)
                self._handle(client, message)
            except ProtocolError as exc:
                log.info("rejected a message from %s: %s (%s)", client.hex(), exc, exc.code)
                self._send(client, error(exc.code, str(exc)))
            except Exception as exc:  # a bug met by one message must not stop the service for everyone
                log.exception("internal error handling a message from %s", client.hex())
                self._send(client, error("internal", f"{type(exc).__name__}: {str(exc)[:200]}"))

    def _handle(self, client: bytes, message) -> None:
        if message.type == "ping":
            self._send(client, encode("pong", {"time": time.time()}))
        elif message.type == "hello":
            self._send(client, encode("hello", {
                "server": f"styletex {__version__}", "protocols": [PROTOCOL_VERSION], "device": self._device_name(),
                "features": list(KINDS), "queue": len(self.waiting) + (self.running is not None),
                "limits": {"max_texture_size": self.limits.max_texture_size, "max_render_size": self.limits.max_render_size,
                           "max_steps": self.limits.max_steps, "max_job_seconds": self.limits.max_job_seconds,
                           "max_jobs_per_client": self.limits.max_jobs_per_client, "max_frames": self.limits.max_frames,
                           "max_message_bytes": self.wire_limits.max_message_bytes},
            }))
        elif message.type == "submit":
            request = parse_submit(message, self.limits)
            with self.lock:
                if len(self.waiting) >= self.max_queue:
                    raise ProtocolError("queue_full", f"the queue is full ({self.max_queue} jobs); try again later")
                mine = sum(j.client == client for j in [*self.waiting, self.running] if j is not None)
                if mine >= self.limits.max_jobs_per_client:
                    raise ProtocolError("limit_jobs_per_client", f"this backend runs at most {self.limits.max_jobs_per_client} "
                                                                 f"jobs per client at once (queued or running)")
                job = Job(uuid.uuid4().hex[:12], client, request)
                self.waiting.append(job)
                position = len(self.waiting) - 1 + (self.running is not None)
            self.jobs.put(job)
            log.info("job %s from %s: %d faces, %d steps, accepted at queue position %d",
                     job.id, client.hex(), len(request.mesh.faces), request.settings.steps, position)
            # Said on acceptance, so a user can fix the UVs (or send a texture) before waiting for the result.
            notes = (uv_room(request.mesh, request.settings.texture_size, request.editable).note(),
                     stand_in_note(request.texture, request.settings))
            note = " ".join(f"{n[0].upper()}{n[1:]}." for n in notes if n)
            self._send(client, encode("accepted", {"job": job.id, "position": position, "note": note}))
        elif message.type == "cancel":
            self._cancel(client, message.fields.get("job"))

    def _cancel(self, client: bytes, job_id: object) -> None:
        with self.lock:
            job = next((j for j in [*self.waiting, self.running] if j is not None and j.id == job_id), None)
            if job is None or job.client != client:
                raise ProtocolError("unknown_job", f"no job {job_id!r} of yours is queued or running")
            job.cancel.set()
            if job in self.waiting:
                self.waiting.remove(job)
                log.info("job %s cancelled while queued", job.id)
                self._send(client, encode("cancelled", {"job": job.id, "steps_done": 0}))

    def _reap_silent_clients(self) -> None:
        now = time.monotonic()
        with self.lock:
            jobs = [j for j in [*self.waiting, self.running] if j is not None]
            owners = {job.client for job in jobs}
            for client in [c for c, t in self.last_seen.items() if c not in owners and now - t > 60]:
                del self.last_seen[client]  # forget idle clients: the table must not grow without bound
            for job in jobs:
                silent = now - self.last_seen.get(job.client, now)
                if silent > self.client_timeout and not job.cancel.is_set():
                    log.info("job %s: client %s silent for %.1f s, cancelling", job.id, job.client.hex(), silent)
                    job.cancel.set()
                    if job in self.waiting:
                        self.waiting.remove(job)

    def _device_name(self) -> str:
        from ..devices import pick_device

        device = pick_device(self.device)
        return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    # -- worker thread ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            with self.lock:
                if job.cancel.is_set() or job not in self.waiting:
                    continue
                self.waiting.remove(job)
                self.running = job
            try:
                self._run(job)
            finally:
                with self.lock:
                    self.running = None
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    def _run(self, job: Job) -> None:
        request = job.request
        settings = request.settings
        settings.device = self.device
        if request.preview.every:
            settings.preview_every = request.preview.every
        log.info("job %s: started", job.id)

        started = time.monotonic()
        limit = self.limits.max_job_seconds
        timed_out = threading.Event()

        def progress(p: Progress) -> None:
            if limit and time.monotonic() - started > limit and not job.cancel.is_set():
                log.info("job %s: over --max-job-seconds (%g s), stopping", job.id, limit)
                timed_out.set()
                job.cancel.set()  # stylize stops before its next step and returns what it has
            losses = {"total": _finite(p.total), "style": _finite(p.style), "content": _finite(p.content)}
            fields = {"job": job.id, "step": p.step, "steps": p.steps, "loss": losses, "elapsed": p.elapsed, "eta": p.eta,
                      "network": p.network}
            arrays = {}
            if p.texture is not None:
                arrays["preview"] = preview_array(p.texture, request.preview.max_size, request.preview.format)
            self.outbox.put((job.client, encode("progress", fields, arrays)))

        sequence = request.sequence
        texture = request.texture
        try:
            if request.texture_uvs is not None:  # the original lies in other UVs than the job's: moved into them
                texture = transfer_texture(texture, request.texture_uvs, request.mesh.uvs, settings.texture_size)
            if sequence is None:
                result = stylize(request.mesh, request.style, settings, texture, progress, job.cancel, request.editable)
            else:  # previews show the middle frame; the result carries every frame
                result = stylize_sequence(request.mesh, request.style, sequence.style_to, settings, sequence.frames,
                                          texture, sequence.from_original, sequence.objective_to,
                                          sequence.independent, progress, job.cancel)
        except StyleTexError as exc:
            log.info("job %s: failed: %s", job.id, exc)
            self.outbox.put((job.client, error("job_failed", str(exc), job=job.id)))
            return
        except Exception as exc:  # keep serving: one bad job must not take the server down
            log.exception("job %s: internal error", job.id)
            self.outbox.put((job.client, error("internal", f"{type(exc).__name__}: {exc}", job=job.id)))
            return
        if result.cancelled:
            log.info("job %s: cancelled after %d steps", job.id, result.report["steps_done"])
            fields = {"job": job.id, "steps_done": result.report["steps_done"]}
            arrays = {}
            if timed_out.is_set():  # like a cancel, with the reason and the texture so far
                fields.update(code="limit_job_seconds", message=f"this backend stops a job after {limit:g} s; "
                              f"it was stopped after {result.report['steps_done']} steps")
                arrays = _result_arrays(result)
            self.outbox.put((job.client, encode("cancelled", fields, arrays)))
            return
        report = result.report
        log.info("job %s: done, %d steps, %.2f s/step, coverage %.1f %%", job.id, report["steps_done"],
                 report["seconds_per_step"], 100 * report["coverage"])
        report = _finite(report)
        self.outbox.put((job.client, encode("result", {"job": job.id, "report": report}, _result_arrays(result))))


def _result_arrays(result: StyleResult | SequenceResult) -> dict[str, np.ndarray]:
    """A texture as float32; a sequence's frames as one (N, S, S, 3 or 4) float16 array (half the bytes, still
    finer than the 8-bit images they become) and its last frame as the texture."""
    if isinstance(result, SequenceResult):
        return {"frames": np.stack(result.frames).astype(np.float16), "texture": result.frames[-1].astype(np.float32)}
    return {"texture": result.texture.astype(np.float32)}


