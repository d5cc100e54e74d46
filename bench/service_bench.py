"""Service rows: ping round trip through a real server, and streaming a 2048^2 RGBA preview."""

from __future__ import annotations

import statistics
import threading
import time

import numpy as np
import torch
import zmq

from backend.service.server import Server, preview_array
from blender_addon.client import StyleTexClient
from blender_addon.protocol import decode, encode


def _stream_seconds(array: np.ndarray, repeats: int) -> float:
    """Median time to send one progress message carrying `array` over TCP loopback and decode it."""
    context = zmq.Context()
    server, client = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    try:
        port = server.bind_to_random_port("tcp://127.0.0.1")
        client.connect(f"tcp://127.0.0.1:{port}")
        client.send_multipart(encode("hello"))
        identity = server.recv_multipart()[0]
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            server.send_multipart([identity, *encode("progress", {"job": "bench", "step": 1}, {"preview": array})], copy=False)
            message = decode(client.recv_multipart(copy=False))
            assert message.arrays["preview"].shape == array.shape
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)
    finally:
        server.close(0)
        client.close(0)
        context.term()


def run(device: torch.device, quick: bool) -> list[dict]:
    if device.type != "cpu":
        return []  # transport only: the device does not matter
    rows = []
    server = Server("tcp://127.0.0.1:0", device="cpu", context=zmq.Context())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with StyleTexClient(server.endpoint) as client:
            client.hello()
            pings = [client.ping() for _ in range(50 if quick else 200)]
        rows.append({"name": "ping round trip through the server (tcp loopback)", "seconds": statistics.median(pings)})
    finally:
        server.stop.set()
        thread.join(timeout=10)
    texture = np.random.default_rng(0).random((2048, 2048, 3), dtype=np.float32)
    for fmt in ("float16", "uint8"):
        preview = preview_array(texture, 0, fmt)
        seconds = _stream_seconds(preview, 5 if quick else 9)
        rows.append({"name": f"stream 2048^2 RGBA preview {fmt} ({preview.nbytes >> 20} MiB), tcp loopback", "seconds": seconds})
    return rows
