"""Client library for the StyleTex backend (numpy + pyzmq only; runs inside Blender's Python).

    client = StyleTexClient("tcp://127.0.0.1:5555")
    info = client.hello()
    job = client.submit(positions, faces, uvs, style=open("painting.jpg", "rb").read(), settings={"steps": 200})
    for event in client.events(job):      # Message objects: progress, then result / cancelled / error
        ...
    client.close()

A dead or unreachable server is reported within `timeout` seconds (ServerUnreachable), never a
hang: the client pings every second while it waits, and any message from the server counts as a
sign of life. After such a failure the socket is rebuilt on the next call (reconnect on next job).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import zmq

from .protocol import SERVER_TYPES, Limits, Message, ProtocolError, decode, encode, painting_array_name

PING_INTERVAL = 1.0


class ClientError(Exception):
    """Something the user should be told, in one line."""


class ServerUnreachable(ClientError):
    pass


class ServerError(ClientError):
    def __init__(self, code: str, message: str):
        super().__init__(f"{message} ({code})")
        self.code = code


@dataclass(frozen=True)
class CurveKeys:
    """Z85 keys as bytes: the server's public key and this client's key pair."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def from_files(cls, server_public_file: str, client_secret_file: str) -> "CurveKeys":
        import zmq.auth

        try:
            server_public, _ = zmq.auth.load_certificate(server_public_file)
            client_public, client_secret = zmq.auth.load_certificate(client_secret_file)
        except (OSError, ValueError) as exc:  # missing file, or not a key file
            raise ClientError(f"cannot read the CURVE keys: {exc}") from None
        if client_secret is None:
            raise ClientError(f"{client_secret_file}: not a secret key file")
        return cls(server_public, client_public, client_secret)


class StyleTexClient:
    """One DEALER connection to a backend, used by one thread, one job at a time: a request made
    while iterating events() would skip the job's messages that arrive before its reply (open a
    second client for that)."""

    def __init__(self, address: str, timeout: float = 5.0, curve: CurveKeys | None = None,
                 context: zmq.Context | None = None):
        self.address, self.timeout, self.curve = address, timeout, curve
        self.context = context or zmq.Context.instance()
        self.limits = Limits()
        self.socket: zmq.Socket | None = None
        self.monitor: zmq.Socket | None = None
        # When _receive(ping=True) pings next. Kept across calls: events() calls _receive once per
        # message, and a job whose progress comes faster than PING_INTERVAL must still be pinged for.
        self._next_ping = 0.0
        self.accepted: dict = {}  # the last submit's `accepted` fields (job, position, note)

    # -- connection --------------------------------------------------------------------------------

    def _connect(self) -> zmq.Socket:
        if self.socket is None:
            socket = self.context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.HEARTBEAT_IVL, 1000)
            socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.timeout * 1000))
            if self.curve is not None:
                socket.curve_serverkey = self.curve.server_public
                socket.curve_publickey = self.curve.client_public
                socket.curve_secretkey = self.curve.client_secret
            # A refused CURVE handshake raises nothing on the socket; the monitor shows it.
            self.monitor = socket.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            )
            try:
                socket.connect(self.address)
            except zmq.ZMQError as exc:
                socket.close(0)
                raise ClientError(f"bad backend address {self.address!r}: {exc}") from None
            self.socket = socket
        return self.socket

    def close(self) -> None:
        if self.socket is not None:
            try:
                self.socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self.socket.close(0)
        if self.monitor is not None:
            self.monitor.close(0)
        self.socket = self.monitor = None

    def __enter__(self) -> "StyleTexClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, frames: list) -> None:
        self._connect().send_multipart(frames, copy=False)

    def _check_handshake(self) -> None:
        if self.monitor is not None and self.monitor.poll(0):
            from zmq.utils.monitor import recv_monitor_message

            event = recv_monitor_message(self.monitor)
            self.close()
            detail = "the server refused this client's CURVE key" if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH \
                else "the security handshake failed (CURVE keys missing or wrong on one side)"
            raise ServerUnreachable(f"{self.address}: {detail}")

    def _receive(self, deadline_s: float, ping: bool) -> Message:
        """The next message from the server; pings while waiting; ServerUnreachable after `timeout` of silence."""
        socket = self._connect()
        last_heard = time.monotonic()
        while True:
            self._check_handshake()
            now = time.monotonic()
            if now - last_heard > deadline_s:
                self.close()
                raise ServerUnreachable(f"no answer from the StyleTex backend at {self.address} within "
                                        f"{deadline_s:.0f} s (is it running, and is the address right?)")
            if ping and now >= self._next_ping:
                socket.send_multipart(encode("ping"))
                self._next_ping = now + PING_INTERVAL
            if socket.poll(100):
                frames = socket.recv_multipart(copy=False)
                try:
                    return decode(frames, self.limits, expect=SERVER_TYPES)
                except ProtocolError as exc:
                    raise ClientError(f"bad message from the backend: {exc}") from None

    def _request(self, frames: list, want: tuple[str, ...]) -> Message:
        self._send(frames)
        while True:
            message = self._receive(self.timeout, ping=False)
            if message.type in want:
                return message
            if message.type == "error" and not message.fields.get("job"):
                raise ServerError(message.fields.get("code", "error"), message.fields.get("message", ""))

    # -- requests ----------------------------------------------------------------------------------

    def hello(self) -> dict:
        """Server information: version, protocols, device, feature networks, queue length, limits."""
        return self._request(encode("hello", {"client": "styletex-addon"}), ("hello",)).fields

    def ping(self) -> float:
        """Round-trip time in seconds."""
        start = time.perf_counter()
        self._request(encode("ping"), ("pong",))
        return time.perf_counter() - start

    def submit(self, positions: np.ndarray, faces: np.ndarray, uvs: np.ndarray,
               style: bytes | np.ndarray | list | None, settings: dict | None = None,
               texture: np.ndarray | None = None, preview: dict | None = None,
               editable: np.ndarray | None = None, sequence: dict | None = None,
               style_to: bytes | np.ndarray | None = None, texture_uvs: np.ndarray | None = None) -> str:
        """Queues a job; returns its id. `style` is an encoded image file (bytes) or an (H, W, 3|4) array, or
        a list of them (several paintings, mixed by the `style_blend` setting). `editable` (F,) bool restyles
        only those faces; the others keep their texels. `sequence` ({"frames": N, "to": "painting" |
        "original" | "channel", ...}) asks for an interpolation instead, with `style_to` the last frame's
        painting; its result carries `frames`. `texture_uvs` (F, 3, 2) say where `texture` lies when `uvs` are new
        ones: the backend moves it into them first."""
        arrays = {"positions": np.asarray(positions, np.float32), "faces": np.asarray(faces, np.int32),
                  "uvs": np.asarray(uvs, np.float32)}
        paintings = style if isinstance(style, list) else [] if style is None else [style]
        for index, painting in enumerate(paintings):
            arrays[painting_array_name(index)] = (np.frombuffer(painting, np.uint8)
                                                  if isinstance(painting, (bytes, bytearray)) else painting)
        if texture is not None:
            arrays["texture"] = texture
        if texture_uvs is not None:
            arrays["texture_uvs"] = np.asarray(texture_uvs, np.float32)
        if editable is not None:
            arrays["editable"] = np.asarray(editable, dtype=np.uint8)
        if style_to is not None:
            arrays["style_to"] = np.frombuffer(style_to, np.uint8) if isinstance(style_to, (bytes, bytearray)) else style_to
        fields = {"settings": settings or {}}
        if sequence:
            fields["sequence"] = sequence
        if preview:
            fields["preview"] = preview
        message = self._request(encode("submit", fields, arrays), ("accepted",))
        self.accepted = dict(message.fields)
        return message.fields["job"]

    def cancel(self, job: str) -> None:
        self._send(encode("cancel", {"job": job}))

    def events(self, job: str) -> Iterator[Message]:
        """Yields the job's progress messages, then its final message (result, cancelled or error)."""
        while True:
            message = self._receive(self.timeout, ping=True)
            if message.fields.get("job") != job:
                if message.type == "error" and not message.fields.get("job"):
                    raise ServerError(message.fields.get("code", "error"), message.fields.get("message", ""))
                continue  # pongs, or news of another job on this socket
            yield message
            if message.type in ("result", "cancelled", "error"):
                return
