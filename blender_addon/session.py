"""A job running in a worker thread that owns the socket (pure Python: numpy + pyzmq, no bpy).

The worker submits the job and turns every server message into an event on a queue; whoever owns
Blender's main thread drains that queue (a bpy.app.timers callback in the UI, a polling loop in
background mode). No bpy call ever happens on the worker thread.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .client import ClientError, CurveKeys, StyleTexClient


@dataclass
class Event:
    kind: str  # "accepted" | "progress" | "result" | "cancelled" | "error"
    fields: dict[str, Any] = field(default_factory=dict)
    pixels: np.ndarray | None = None  # preview (S, S, 4) or result texture (S, S, 3), row 0 at the top
    frames: np.ndarray | None = None  # an interpolation's result: (N, S, S, 3) float32


class JobSession:
    def __init__(self, address: str, payload: dict, settings: dict, preview: dict,
                 curve: CurveKeys | None = None, timeout: float = 5.0,
                 before: Callable[[], None] | None = None):
        """`before` runs first on the worker thread (waiting for a local backend to listen); a
        ClientError it raises becomes the job's error event."""
        self.events: queue.Queue[Event] = queue.Queue()
        self._address, self._payload, self._settings, self._preview = address, payload, settings, preview
        self._curve, self._timeout, self._before = curve, timeout, before
        self._cancel = threading.Event()
        self.job: str | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="styletex-session", daemon=True)

    def start(self) -> "JobSession":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def _run(self) -> None:
        try:
            if self._before is not None:
                self._before()
            with StyleTexClient(self._address, self._timeout, self._curve) as client:
                p = self._payload
                self.job = client.submit(p["positions"], p["faces"], p["uvs"], p["style"], self._settings,
                                         p.get("texture"), self._preview, p.get("editable"), p.get("sequence"),
                                         p.get("style_to"), p.get("texture_uvs"))
                self.events.put(Event("accepted", {"job": self.job, "note": client.accepted.get("note", "")}))
                cancel_sent = False
                for message in client.events(self.job):
                    if self._cancel.is_set() and not cancel_sent:
                        client.cancel(self.job)
                        cancel_sent = True
                    pixels = message.arrays.get("preview", message.arrays.get("texture"))
                    if pixels is not None:
                        pixels = np.array(pixels, dtype=np.float32) / (255.0 if pixels.dtype == np.uint8 else 1.0)
                    frames = message.arrays.get("frames")
                    frames = None if frames is None else np.array(frames, dtype=np.float32)
                    self.events.put(Event(message.type, dict(message.fields), pixels, frames))
        except ClientError as exc:
            self.events.put(Event("error", {"message": str(exc)}))
        except Exception as exc:  # surfaced in the panel; the worker must never die silently
            self.events.put(Event("error", {"message": f"{type(exc).__name__}: {exc}"}))
        finally:
            self.done.set()
