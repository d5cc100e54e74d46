"""The StyleTex wire protocol: one definition, used by the backend and by the Blender add-on.

A message is a ZeroMQ multipart message. Frame 0 is a UTF-8 JSON object, the header, with at least
"type" and "protocol" (an integer, PROTOCOL_VERSION). Every array travels as one raw frame of its
own, described in the header's "arrays" list by name, dtype and shape, in that order: little-endian,
C order, no padding. Nothing is ever pickled. Frames are sent and received without copies.

This module needs only numpy (and json); it never imports zmq, torch or bpy, so both sides and the
tests can use it anywhere. See docs/PROTOCOL.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

PROTOCOL_VERSION = 1

# Requests a client may send, and replies the server sends.
CLIENT_TYPES = ("hello", "ping", "submit", "cancel")
SERVER_TYPES = ("hello", "pong", "accepted", "progress", "result", "cancelled", "error")
MESSAGE_TYPES = tuple(dict.fromkeys(CLIENT_TYPES + SERVER_TYPES))
ALLOWED_DTYPES = ("uint8", "uint16", "int32", "int64", "float16", "float32")
MAX_HEADER_BYTES = 64 * 1024
MAX_ARRAYS = 16
MAX_DIMS = 4
# A submit carries its paintings as arrays "style", "style_2", ..., "style_<MAX_PAINTINGS>", mixed by the
# "style_blend" setting's weights in that order.
MAX_PAINTINGS = 8


def painting_array_name(index: int) -> str:
    """The array name of the index-th painting (0-based) of a submit."""
    return "style" if index == 0 else f"style_{index + 1}"


# The feature networks a job's "features" setting may name: (value, label, description). The backend's
# choices and the add-on's dropdown both come from here; `random` says plainly what it is.
FEATURE_CHOICES = (
    ("auto", "Auto", "EfficientNet-Lite0 on the CPU; VGG-19 on CUDA when its weights are on the backend's disk"),
    ("efficientnet_lite0", "EfficientNet-Lite0", "ImageNet EfficientNet-Lite0: installed with the backend, fast"),
    ("vgg19", "VGG-19", "ImageNet VGG-19: torchvision's weights (cache, download or --weights)"),
    ("vgg16", "VGG-16", "ImageNet VGG-16: torchvision's weights (cache, download or --weights)"),
    ("random", "Random (tests only)", "Random filters: for tests, not a quality mode"),
)


class ProtocolError(ValueError):
    """A message that cannot be accepted. `code` is machine-readable, str(self) is for people."""

    # Messages quote what the peer sent; a peer must not make replies and logs as long as its input.
    MAX_MESSAGE_CHARS = 300

    def __init__(self, code: str, message: str):
        if len(message) > self.MAX_MESSAGE_CHARS:
            message = message[: self.MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(message)
        self.code = code


@dataclass
class Message:
    """A decoded message: `type`, the other header fields, and arrays by name (read-only views)."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _as_wire_array(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.name not in ALLOWED_DTYPES:
        raise ProtocolError("bad_dtype", f"array {name!r}: dtype {array.dtype.name} is not allowed")
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and np.little_endian is False):
        array = array.astype(array.dtype.newbyteorder("<"))
    # Not np.ascontiguousarray: it turns a 0-d array into shape (1,).
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


def encode(msg_type: str, fields: dict[str, Any] | None = None, arrays: dict[str, np.ndarray] | None = None) -> list:
    """Message -> frames: [header bytes, array buffers...]. Arrays are passed as zero-copy buffers."""
    if msg_type not in MESSAGE_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {msg_type!r}")
    header = {"type": msg_type, "protocol": PROTOCOL_VERSION, **(fields or {})}
    buffers = []
    descriptors = []
    for name, array in (arrays or {}).items():
        wire = _as_wire_array(name, array)
        descriptors.append({"name": name, "dtype": wire.dtype.name, "shape": list(wire.shape)})
        buffers.append(memoryview(wire).cast("B") if wire.size else b"")
    if descriptors:
        header["arrays"] = descriptors
    return [json.dumps(header, allow_nan=False).encode("utf-8"), *buffers]


def _frame_bytes(frame) -> memoryview:
    """A received frame (zmq.Frame, bytes or memoryview) as a byte view, without copying."""
    buffer = getattr(frame, "buffer", frame)
    return memoryview(buffer).cast("B") if not isinstance(buffer, memoryview) or buffer.format != "B" else buffer


@dataclass(frozen=True)
class Limits:
    """Size limits a receiver enforces before touching array data."""

    max_message_bytes: int = 1 << 30
    max_array_elements: int = 1 << 28

    def check_total(self, frames: Sequence) -> None:
        total = sum(len(_frame_bytes(f)) for f in frames)
        if total > self.max_message_bytes:
            raise ProtocolError("too_large", f"message of {total} bytes exceeds the limit of {self.max_message_bytes}")


def decode(frames: Sequence, limits: Limits = Limits(), expect: Sequence[str] = MESSAGE_TYPES) -> Message:
    """Frames -> Message, validating everything: raises ProtocolError naming the first problem."""
    if not frames:
        raise ProtocolError("bad_frames", "empty message")
    limits.check_total(frames)
    raw = _frame_bytes(frames[0])
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError("bad_header", f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = json.loads(bytes(raw).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:  # deep nesting: RecursionError
        raise ProtocolError("bad_json", f"frame 0 is not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_header", "frame 0 must be a JSON object")
    version = header.get("protocol")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError("bad_header", "header needs an integer 'protocol'")
    if version != PROTOCOL_VERSION:
        raise ProtocolError("bad_version", f"protocol version {version} is not supported (this side speaks {PROTOCOL_VERSION})")
    msg_type = header.get("type")
    if not isinstance(msg_type, str) or msg_type not in expect:
        raise ProtocolError("unknown_type", f"unexpected message type {msg_type!r}")
    descriptors = header.pop("arrays", [])
    if not isinstance(descriptors, list) or len(descriptors) > MAX_ARRAYS:
        raise ProtocolError("bad_arrays", f"'arrays' must be a list of at most {MAX_ARRAYS} descriptors")
    if len(descriptors) != len(frames) - 1:
        raise ProtocolError("bad_frames", f"header describes {len(descriptors)} arrays but {len(frames) - 1} frames follow")
    arrays = {}
    for descriptor, frame in zip(descriptors, frames[1:]):
        name, dtype, shape = _check_descriptor(descriptor, limits)
        if name in arrays:
            raise ProtocolError("bad_arrays", f"array {name!r} appears twice")
        data = _frame_bytes(frame)
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if len(data) != expected:
            raise ProtocolError("bad_frames", f"array {name!r}: frame has {len(data)} bytes, descriptor needs {expected}")
        array = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"), count=math.prod(shape)).reshape(shape)
        arrays[name] = array
    header.pop("type")
    header.pop("protocol")
    return Message(msg_type, header, arrays)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _check_descriptor(descriptor: Any, limits: Limits) -> tuple[str, str, tuple[int, ...]]:
    if not isinstance(descriptor, dict):
        raise ProtocolError("bad_arrays", "each array descriptor must be an object")
    name, dtype, shape = descriptor.get("name"), descriptor.get("dtype"), descriptor.get("shape")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ProtocolError("bad_arrays", "array descriptor needs a 'name' string of 1-64 characters")
    if dtype not in ALLOWED_DTYPES:
        raise ProtocolError("bad_dtype", f"array {name!r}: dtype {dtype!r} is not allowed ({', '.join(ALLOWED_DTYPES)})")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise ProtocolError("bad_arrays", f"array {name!r}: shape must be a list of at most {MAX_DIMS} non-negative integers")
    if math.prod(shape) > limits.max_array_elements:
        raise ProtocolError("too_large", f"array {name!r}: {math.prod(shape)} elements exceed the limit of {limits.max_array_elements}")
    return name, dtype, tuple(shape)


def error(code: str, message: str, **fields: Any) -> list:
    """Frames of an 'error' reply."""
    return encode("error", {"code": code, "message": message, **fields})
