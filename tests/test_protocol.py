"""The wire protocol on its own (blender_addon/protocol.py): no sockets, no server.

Round trips of every message type with arrays of every allowed dtype and rank, the zero-copy
promises of both directions, byte order, and every error code that decode() can give, each with a
message that names the problem.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import zmq

from blender_addon import protocol
from blender_addon.protocol import (
    ALLOWED_DTYPES,
    CLIENT_TYPES,
    MAX_ARRAYS,
    MAX_DIMS,
    MAX_HEADER_BYTES,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    SERVER_TYPES,
    Limits,
    Message,
    ProtocolError,
    decode,
    encode,
    error,
)

REPO = Path(__file__).resolve().parent.parent

# Shapes of rank 0 to 4, with empty ones among them.
SHAPES = [(), (0,), (7,), (3, 5), (0, 4), (2, 3, 4), (2, 0, 3), (2, 3, 1, 5), (1, 1, 1, 1)]


def random_array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Values covering the dtype's range (integers to their extremes, floats with signs and zeros)."""
    kind = np.dtype(dtype)
    if kind.kind in "iu":
        info = np.iinfo(kind)
        values = rng.integers(info.min, info.max, size=shape, dtype=kind, endpoint=True)
        flat = values.reshape(-1)
        if flat.size >= 2:
            flat[0], flat[-1] = info.min, info.max
        return values
    values = (rng.standard_normal(shape) * 1000).astype(kind)
    flat = values.reshape(-1)
    if flat.size >= 3:
        flat[0], flat[1], flat[2] = 0.0, -0.0, np.finfo(kind).max
    return values


def as_bytes(frame) -> bytes:
    return bytes(memoryview(frame).cast("B")) if not isinstance(frame, bytes) else frame


def header_of(frames) -> dict:
    return json.loads(as_bytes(frames[0]))


def raw(header: dict, *frames: bytes) -> list:
    return [json.dumps(header).encode(), *frames]


def submit_header(**extra) -> dict:
    return {"type": "submit", "protocol": 1, **extra}


# --- public names ----------------------------------------------------------------------------------


def test_public_api_names():
    assert PROTOCOL_VERSION == 1 and isinstance(PROTOCOL_VERSION, int)
    assert CLIENT_TYPES == ("hello", "ping", "submit", "cancel")
    assert SERVER_TYPES == ("hello", "pong", "accepted", "progress", "result", "cancelled", "error")
    assert ALLOWED_DTYPES == ("uint8", "uint16", "int32", "int64", "float16", "float32")
    assert set(MESSAGE_TYPES) == set(CLIENT_TYPES) | set(SERVER_TYPES) and len(MESSAGE_TYPES) == len(set(MESSAGE_TYPES))
    assert MAX_ARRAYS == 16 and MAX_DIMS == 4
    assert issubclass(ProtocolError, ValueError)
    for name in ("encode", "decode", "error", "Message", "Limits", "ProtocolError"):
        assert callable(getattr(protocol, name))


def test_the_protocol_document_lists_the_same_types_and_dtypes():
    text = (REPO / "docs" / "PROTOCOL.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (client|server) \|", text, flags=re.M)
    assert sorted(t for t, side in rows if side == "client") == sorted(CLIENT_TYPES)
    assert sorted(t for t, side in rows if side == "server") == sorted(SERVER_TYPES)
    for dtype in ALLOWED_DTYPES:
        assert f"`{dtype}`" in text
    assert "version 1" in text


# --- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES)
@pytest.mark.parametrize("dtype", ALLOWED_DTYPES)
def test_round_trip_every_type_dtype_and_rank(msg_type, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{msg_type}/{dtype}".encode()))
    arrays = {f"a{k}": random_array(rng, dtype, shape) for k, shape in enumerate(SHAPES)}
    fields = {"job": "abc123", "step": 3, "loss": {"total": 0.5, "style": None}, "text": "é ✓", "nested": [1, [2.5, "x"]]}
    frames = encode(msg_type, fields, arrays)
    assert len(frames) == 1 + len(arrays)
    header = header_of(frames)
    assert header["type"] == msg_type and header["protocol"] == PROTOCOL_VERSION
    assert [d["name"] for d in header["arrays"]] == list(arrays)
    for descriptor, (name, array) in zip(header["arrays"], arrays.items()):
        assert descriptor == {"name": name, "dtype": dtype, "shape": list(array.shape)}
    # Frames are exactly the little-endian C-order bytes, no padding.
    for frame, array in zip(frames[1:], arrays.values()):
        assert as_bytes(frame) == array.astype(np.dtype(dtype).newbyteorder("<")).tobytes(order="C")

    message = decode(frames)
    assert isinstance(message, Message)
    assert message.type == msg_type
    assert message.fields == fields  # no type, protocol or arrays among the fields
    assert list(message.arrays) == list(arrays)
    for name, array in arrays.items():
        got = message.arrays[name]
        assert got.shape == array.shape, name
        assert got.dtype.name == dtype and got.dtype.byteorder in ("<", "=", "|")
        np.testing.assert_array_equal(got, array)
        assert got.tobytes() == array.tobytes()  # bit-exact (signed zeros included)


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES)
def test_round_trip_without_arrays(msg_type):
    frames = encode(msg_type)
    assert len(frames) == 1
    assert header_of(frames) == {"type": msg_type, "protocol": 1}  # no 'arrays' key when none follow
    message = decode(frames)
    assert (message.type, message.fields, message.arrays) == (msg_type, {}, {})


def test_float_bit_patterns_survive():
    # Arrays are raw bytes: NaN payloads, infinities and subnormals pass unchanged (only the JSON
    # header is strict).
    bits = np.array([0x7FC00001, 0xFF800000, 0x7F800000, 0x00000001, 0x80000000], np.uint32)
    array = bits.view(np.float32)
    got = decode(encode("result", {}, {"t": array})).arrays["t"]
    assert got.view(np.uint32).tolist() == bits.tolist()


def test_non_contiguous_inputs_are_sent_in_c_order():
    base = np.arange(60, dtype=np.int32).reshape(3, 4, 5)
    views = {"transposed": base.transpose(2, 0, 1), "strided": base[:, ::2, 1::2], "fortran": np.asfortranarray(base)}
    message = decode(encode("submit", {}, views))
    for name, view in views.items():
        np.testing.assert_array_equal(message.arrays[name], view)
        assert message.arrays[name].shape == view.shape


@pytest.mark.parametrize("dtype", ["uint16", "int32", "int64", "float16", "float32"])
def test_big_endian_arrays_are_converted(dtype):
    values = np.arange(24) * 1000 + 7 if dtype == "uint16" else np.arange(24) * 3 - 5  # bytes differ when swapped
    little = values.astype(dtype).reshape(2, 3, 4)
    big = little.astype(np.dtype(dtype).newbyteorder(">"))
    assert big.dtype.byteorder == ">"
    frames = encode("progress", {}, {"x": big})
    assert header_of(frames)["arrays"][0]["dtype"] == dtype
    assert as_bytes(frames[1]) == little.tobytes()  # little-endian on the wire
    got = decode(frames).arrays["x"]
    np.testing.assert_array_equal(got, little)
    assert got.dtype == np.dtype(dtype).newbyteorder("<")
    assert big.dtype.byteorder == ">"  # the caller's array is left alone


def test_a_bytes_style_file_travels_as_1d_uint8():
    blob = bytes(range(256)) * 3
    frames = encode("submit", {}, {"style": np.frombuffer(blob, np.uint8)})
    got = decode(frames).arrays["style"]
    assert got.shape == (768,) and got.dtype == np.uint8 and got.tobytes() == blob


# --- zero copy -------------------------------------------------------------------------------------


def test_decode_does_not_copy_bytearray_frames():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    frames = encode("result", {"job": "j"}, {"texture": array})
    buffer = bytearray(as_bytes(frames[1]))
    message = decode([frames[0], buffer])
    texture = message.arrays["texture"]
    assert np.shares_memory(texture, np.frombuffer(buffer, np.uint8))
    buffer[0:4] = np.float32(42.5).tobytes()  # a change to the frame shows through
    assert texture[0, 0] == 42.5


def test_decode_does_not_copy_zmq_frames():
    array = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    frames = encode("submit", {}, {"faces": array})
    zframes = [zmq.Frame(as_bytes(f)) for f in frames]
    got = decode(zframes).arrays["faces"]
    np.testing.assert_array_equal(got, array)
    assert np.shares_memory(got, np.frombuffer(zframes[1].buffer, np.uint8))


def test_decode_accepts_bytes_bytearray_and_memoryview_frames():
    array = np.arange(6, dtype=np.uint16)
    frames = encode("progress", {}, {"p": array})
    for kind in (bytes, bytearray, lambda b: memoryview(bytearray(b))):
        got = decode([kind(as_bytes(f)) for f in frames]).arrays["p"]
        np.testing.assert_array_equal(got, array)


def test_encode_does_not_copy_little_endian_contiguous_arrays():
    array = np.arange(20, dtype=np.float32).reshape(4, 5)
    frames = encode("result", {}, {"texture": array})
    assert np.shares_memory(np.frombuffer(frames[1], np.uint8), array)
    array[0, 0] = -7.0  # the frame is a view, not a snapshot
    assert np.frombuffer(frames[1], np.float32)[0] == -7.0


# --- encode refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), {"loss": [1.0, float("nan")]}])
def test_encode_refuses_nan_and_infinity_in_the_header(value):
    with pytest.raises(ValueError):
        encode("progress", {"loss": value})


def test_encode_refuses_unknown_types():
    with pytest.raises(ProtocolError) as info:
        encode("bogus")
    assert info.value.code == "unknown_type" and "bogus" in str(info.value)


@pytest.mark.parametrize("dtype", ["float64", "int8", "int16", "uint32", "uint64", "bool", "complex64", "object", "U3"])
def test_encode_refuses_other_dtypes(dtype):
    array = np.zeros(3, dtype=dtype)
    with pytest.raises(ProtocolError) as info:
        encode("submit", {}, {"positions": array})
    assert info.value.code == "bad_dtype"
    assert "positions" in str(info.value) and array.dtype.name in str(info.value)


def test_error_helper():
    frames = error("bad_mesh", "faces out of range", job="j1")
    message = decode(frames, expect=SERVER_TYPES)
    assert message.type == "error"
    assert message.fields == {"code": "bad_mesh", "message": "faces out of range", "job": "j1"}


# --- decode errors ---------------------------------------------------------------------------------


def rejects(frames, code: str, *needles: str, limits: Limits = Limits(), expect=MESSAGE_TYPES) -> str:
    with pytest.raises(ProtocolError) as info:
        decode(frames, limits, expect)
    assert info.value.code == code, (info.value.code, str(info.value))
    text = str(info.value)
    assert text.strip()
    for needle in needles:
        assert needle in text, (needle, text)
    return text


@pytest.mark.parametrize("frame0", [
    b"\xff\xfe\x00",  # not UTF-8
    b"{not json",
    b'{"type": "ping", "protocol": 1',  # truncated
    b"",
    b'{"type": "ping", "protocol": 1, "x": NaN}',
    b'{"type": "ping", "protocol": 1, "x": Infinity}',
    b'{"type": "ping", "protocol": 1, "x": [-Infinity]}',
    b'{"type": "ping", "protocol": NaN}',
    b'{"type": "ping", "protocol": 1} trailing',
])
def test_bad_json(frame0):
    rejects([frame0], "bad_json", "JSON")


def test_deeply_nested_json_is_bad_json_not_a_crash():
    # Within the 64 KB header limit, but deeper than Python's recursion limit.
    rejects([b"[" * 32000 + b"]" * 32000], "bad_json", "JSON")
    rejects([b'{"type": "ping", "protocol": 1, "x": ' + b"[" * 30000 + b"]" * 30000 + b"}"], "bad_json")


@pytest.mark.parametrize("header, needle", [
    ([], "object"),
    ("ping", "object"),
    (5, "object"),
    (None, "object"),
    ({"type": "ping"}, "protocol"),
    ({"type": "ping", "protocol": "1"}, "protocol"),
    ({"type": "ping", "protocol": 1.0}, "protocol"),
    ({"type": "ping", "protocol": True}, "protocol"),
    ({"type": "ping", "protocol": None}, "protocol"),
])
def test_bad_header(header, needle):
    rejects([json.dumps(header).encode()], "bad_header", needle)


def test_oversized_header():
    frame0 = json.dumps({"type": "ping", "protocol": 1, "pad": "x" * MAX_HEADER_BYTES}).encode()
    rejects([frame0], "bad_header", str(len(frame0)))


@pytest.mark.parametrize("version", [0, 2, -1, 10**6])
def test_bad_version(version):
    rejects(raw({"type": "ping", "protocol": version}), "bad_version", str(version), "version")


@pytest.mark.parametrize("msg_type", ["bogus", "", "PING", None, 5, ["ping"]])
def test_unknown_type(msg_type):
    rejects(raw({"type": msg_type, "protocol": 1}), "unknown_type", repr(msg_type))


def test_long_input_is_not_echoed_whole():
    # A client must not make the server's replies and logs as long as what it sent.
    with pytest.raises(ProtocolError) as info:
        decode(raw({"type": "y" * 50_000, "protocol": 1}))
    assert info.value.code == "unknown_type"
    assert len(str(info.value)) == ProtocolError.MAX_MESSAGE_CHARS and str(info.value).endswith("yyy...")


def test_missing_type():
    rejects(raw({"protocol": 1}), "unknown_type", "None")


@pytest.mark.parametrize("msg_type", [t for t in SERVER_TYPES if t not in CLIENT_TYPES])
def test_expect_limits_the_types(msg_type):
    # The server decodes with expect=CLIENT_TYPES: a client cannot send a 'result'.
    rejects(encode(msg_type), "unknown_type", msg_type, expect=CLIENT_TYPES)
    assert decode(encode(msg_type), expect=SERVER_TYPES).type == msg_type


def test_expect_works_the_other_way_too():
    rejects(encode("submit"), "unknown_type", "submit", expect=SERVER_TYPES)


FLOAT4 = np.zeros(1, np.float32).tobytes()


@pytest.mark.parametrize("arrays, frames, needle", [
    ({"name": "p", "dtype": "float32", "shape": [1]}, [FLOAT4], "list"),
    ("p", [FLOAT4], "list"),
    ([{"name": f"a{k}", "dtype": "uint8", "shape": [0]} for k in range(MAX_ARRAYS + 1)], [b""] * (MAX_ARRAYS + 1), str(MAX_ARRAYS)),
    (["p"], [FLOAT4], "object"),
    ([{"dtype": "float32", "shape": [1]}], [FLOAT4], "name"),
    ([{"name": "", "dtype": "float32", "shape": [1]}], [FLOAT4], "name"),
    ([{"name": 5, "dtype": "float32", "shape": [1]}], [FLOAT4], "name"),
    ([{"name": "x" * 65, "dtype": "float32", "shape": [1]}], [FLOAT4], "name"),
    ([{"name": "p", "dtype": "float32", "shape": 1}], [FLOAT4], "'p'"),
    ([{"name": "p", "dtype": "float32"}], [FLOAT4], "'p'"),
    ([{"name": "p", "dtype": "float32", "shape": [1, 1, 1, 1, 1]}], [FLOAT4], "'p'"),
    ([{"name": "p", "dtype": "float32", "shape": [-1]}], [FLOAT4], "'p'"),
    ([{"name": "p", "dtype": "float32", "shape": [1.0]}], [FLOAT4], "'p'"),
    ([{"name": "p", "dtype": "float32", "shape": [True]}], [FLOAT4], "'p'"),
    ([{"name": "p", "dtype": "float32", "shape": ["1"]}], [FLOAT4], "'p'"),
    ([{"name": "p", "dtype": "float32", "shape": [1]}, {"name": "p", "dtype": "float32", "shape": [1]}], [FLOAT4, FLOAT4], "twice"),
])
def test_bad_arrays(arrays, frames, needle):
    rejects(raw(submit_header(arrays=arrays), *frames), "bad_arrays", needle)


@pytest.mark.parametrize("dtype", ["float64", "int8", "bool", "object", "<f4", "f4", "FLOAT32", "", None, 4, ["float32"], {}])
def test_bad_dtype(dtype):
    text = rejects(raw(submit_header(arrays=[{"name": "positions", "dtype": dtype, "shape": [1]}]), FLOAT4), "bad_dtype", "positions")
    assert repr(dtype) in text


@pytest.mark.parametrize("arrays, frames, needle", [
    ([{"name": "p", "dtype": "float32", "shape": [2]}], [], "1 arrays but 0 frames"),
    ([{"name": "p", "dtype": "float32", "shape": [1]}], [FLOAT4, FLOAT4], "1 arrays but 2 frames"),
    (None, [FLOAT4], "0 arrays but 1 frames"),
    ([{"name": "p", "dtype": "float32", "shape": [2]}], [FLOAT4], "8"),  # 4 bytes, needs 8
    ([{"name": "p", "dtype": "float32", "shape": [1]}], [FLOAT4 + b"\x00"], "5"),  # one byte too many
    ([{"name": "p", "dtype": "uint8", "shape": [0]}], [b"\x00"], "'p'"),
    ([{"name": "p", "dtype": "int64", "shape": [2, 3]}], [b"\x00" * 47], "48"),
])
def test_bad_frames(arrays, frames, needle):
    header = submit_header(arrays=arrays) if arrays is not None else submit_header()
    rejects(raw(header, *frames), "bad_frames", needle)


def test_empty_message():
    rejects([], "bad_frames", "empty")


def test_too_large_message_is_checked_before_anything_else():
    limits = Limits(max_message_bytes=1000)
    # Even garbage is measured first: the size check needs no parsing.
    rejects([b"\xff" * 600, b"\x00" * 600], "too_large", "1200", "1000", limits=limits)
    frames = encode("submit", {}, {"style": np.zeros(2000, np.uint8)})
    rejects(frames, "too_large", limits=limits)
    assert decode(encode("submit", {}, {"style": np.zeros(900, np.uint8)}), limits).arrays["style"].shape == (900,)


def test_too_large_array_is_refused_from_its_descriptor():
    limits = Limits(max_array_elements=1000)
    header = submit_header(arrays=[{"name": "positions", "dtype": "float32", "shape": [10**6, 3]}])
    # No frame of that size exists: the descriptor alone is refused, before any byte is counted.
    rejects(raw(header, b""), "too_large", "positions", "1000", limits=limits)
    huge = submit_header(arrays=[{"name": "uvs", "dtype": "uint8", "shape": [2**40, 2**40, 2**40, 2**40]}])
    rejects(raw(huge, b""), "too_large", "uvs")
    fits = submit_header(arrays=[{"name": "ok", "dtype": "uint8", "shape": [10, 100]}])
    assert decode(raw(fits, bytes(1000)), limits).arrays["ok"].shape == (10, 100)


def test_protocol_errors_carry_a_code_and_a_message():
    exc = ProtocolError("bad_mesh", "faces out of range")
    assert exc.code == "bad_mesh" and str(exc) == "faces out of range"


def test_decoded_arrays_have_the_exact_byte_count():
    # prod(shape) * itemsize, for every dtype and a few shapes.
    for dtype in ALLOWED_DTYPES:
        for shape in SHAPES:
            n = math.prod(shape) * np.dtype(dtype).itemsize
            message = decode(raw(submit_header(arrays=[{"name": "a", "dtype": dtype, "shape": list(shape)}]), bytes(n)))
            assert message.arrays["a"].shape == shape and message.arrays["a"].nbytes == n
