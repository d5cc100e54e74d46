"""Messages the server must refuse (1,000+ fuzzed ones among them) while it goes on serving, and its queue limit."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import zmq
import zmq.auth
from PIL import Image

from backend.mesh.primitives import uv_sphere
from blender_addon.client import ServerError, ServerUnreachable
from blender_addon.protocol import encode

from .support import LONG, MAX_MESSAGE_MB, STYLE_BYTES, finish, no_traceback, ready, submit

# --- malformed input -----------------------------------------------------------------------------

SMALL = uv_sphere(3, 6)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


TINY_STYLE = png_bytes(np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8))
VALID_SETTINGS = {"features": "random", "texture_size": 32, "render_size": 32, "steps": 2}


def decodes(blob: bytes) -> bool:
    """Whether the server could decode these image bytes (as it does: PIL, then RGB)."""
    try:
        with Image.open(io.BytesIO(blob)) as image:
            image.convert("RGB")
        return True
    except Exception:
        return False


def header_and_frames(settings=None, preview=None, drop=(), replace=None, style=TINY_STYLE) -> tuple[dict, list[bytes]]:
    """A valid submit as (header, array frames), with arrays replaced or dropped."""
    arrays = {"positions": SMALL.positions.astype(np.float32), "faces": SMALL.faces.astype(np.int32),
              "uvs": SMALL.uvs.astype(np.float32), "style": np.frombuffer(style, np.uint8)}
    arrays.update(replace or {})
    for name in drop:
        arrays.pop(name)
    header = {"type": "submit", "protocol": 1, "settings": VALID_SETTINGS if settings is None else settings}
    if preview is not None:
        header["preview"] = preview
    header["arrays"] = [{"name": n, "dtype": a.dtype.name, "shape": list(a.shape)} for n, a in arrays.items()]
    return header, [np.ascontiguousarray(a).tobytes() for a in arrays.values()]


def message(header, frames=()) -> list[bytes]:
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return [head, *frames]


def fuzz_cases(rng: np.random.Generator, count: int) -> list[tuple[str, list[bytes], set | None]]:
    """Malformed messages: (what, frames, acceptable error codes or None for any)."""
    valid_header, valid_frames = header_and_frames()
    valid_json = json.dumps(valid_header)

    def random_frames():
        frames = [rng.bytes(int(rng.integers(0, 200))) for _ in range(int(rng.integers(1, 5)))]
        return "random frames", frames, None

    def truncated_json():
        cut = int(rng.integers(1, len(valid_json)))
        return "truncated JSON", [valid_json[:cut].encode(), *valid_frames], {"bad_json"}

    def wrong_version():
        version = [0, 2, -1, 3, 99, 2**40][int(rng.integers(0, 6))] if rng.random() < 0.6 else \
            ["1", 1.5, 1.0, None, True, [1], {"v": 1}][int(rng.integers(0, 7))]
        header = {**valid_header, "protocol": version}
        expected = {"bad_version"} if type(version) is int else {"bad_header"}
        return f"protocol {version!r}", message(header, valid_frames), expected

    def unknown_type():
        kind = ["pong", "accepted", "progress", "result", "cancelled", "error", "bogus", "", None, 7, "SUBMIT",
                "submit ", ["submit"]][int(rng.integers(0, 13))]
        return f"type {kind!r}", message({**valid_header, "type": kind}, valid_frames), {"unknown_type"}

    def wrong_frame_count():
        frames = list(valid_frames)
        if rng.random() < 0.5:
            frames.pop(int(rng.integers(0, len(frames))))
        else:
            frames.insert(int(rng.integers(0, len(frames) + 1)), rng.bytes(int(rng.integers(0, 64))))
        return f"{len(frames)} frames for 4 arrays", message(valid_header, frames), {"bad_frames"}

    def bad_dtype():
        header = json.loads(valid_json)
        dtype = ["float64", "int8", "bool", "object", "<f4", "f4", None, 5, "complex64", "uint32", "Float32", ""][
            int(rng.integers(0, 12))]
        header["arrays"][int(rng.integers(0, 4))]["dtype"] = dtype
        return f"dtype {dtype!r}", message(header, valid_frames), {"bad_dtype"}

    def huge_shape():
        header = json.loads(valid_json)
        shape = [[2**28 + 1], [2**20, 2**20], [2**40, 3], [2**15, 2**15, 2**15], [10**30]][int(rng.integers(0, 5))]
        header["arrays"][int(rng.integers(0, 4))]["shape"] = shape
        return f"shape {shape}", message(header, valid_frames), {"too_large"}

    def frame_size_mismatch():
        header = json.loads(valid_json)
        k = int(rng.integers(0, 4))
        header["arrays"][k]["shape"][0] += int(rng.choice([-1, 1, 5]))
        return "frame size mismatch", message(header, valid_frames), {"bad_frames"}

    def nan_positions():
        positions = SMALL.positions.astype(np.float32).copy()
        positions[int(rng.integers(0, len(positions))), int(rng.integers(0, 3))] = rng.choice([np.nan, np.inf, -np.inf])
        return "NaN/Inf positions", message(*header_and_frames(replace={"positions": positions})), {"bad_mesh"}

    def nan_uvs():
        uvs = SMALL.uvs.astype(np.float32).copy()
        uvs.reshape(-1)[int(rng.integers(0, uvs.size))] = np.nan
        return "NaN uvs", message(*header_and_frames(replace={"uvs": uvs})), {"bad_mesh"}

    def bad_faces():
        faces = SMALL.faces.astype(np.int64).copy()
        value = [len(SMALL.positions), len(SMALL.positions) + 7, -1, -(2**31), 2**31 - 1, 2**62][int(rng.integers(0, 6))]
        faces[int(rng.integers(0, len(faces))), int(rng.integers(0, 3))] = value
        return f"face index {value}", message(*header_and_frames(replace={"faces": faces})), {"bad_mesh"}

    def bad_mesh_shapes():
        f = len(SMALL.faces)
        options = [
            ("positions (V, 2)", {"positions": np.zeros((5, 2), np.float32)}, ()),
            ("positions (V, 3, 1)", {"positions": np.zeros((5, 3, 1), np.float32)}, ()),
            ("positions int32", {"positions": SMALL.positions.astype(np.int32)}, ()),
            ("faces float32", {"faces": SMALL.faces.astype(np.float32)}, ()),
            ("faces (F, 4)", {"faces": np.zeros((f, 4), np.int32)}, ()),
            ("faces (F,)", {"faces": np.zeros(f, np.int32)}, ()),
            ("no faces", {"faces": np.zeros((0, 3), np.int32), "uvs": np.zeros((0, 3, 2), np.float32)}, ()),
            ("uvs (F, 3, 3)", {"uvs": np.zeros((f, 3, 3), np.float32)}, ()),
            ("uvs (F + 1, 3, 2)", {"uvs": np.zeros((f + 1, 3, 2), np.float32)}, ()),
            ("uvs uint16", {"uvs": np.zeros((f, 3, 2), np.uint16)}, ()),
            ("no positions", {}, ("positions",)),
            ("no faces array", {}, ("faces",)),
            ("no uvs", {}, ("uvs",)),
        ]
        what, replace, drop = options[int(rng.integers(0, len(options)))]
        return what, message(*header_and_frames(replace=replace, drop=drop)), {"bad_mesh"}

    def zero_dim_positions():
        header, frames = header_and_frames()
        header["arrays"][0]["shape"] = []
        frames[0] = np.float32(1).tobytes()
        return "0-d positions", message(header, frames), {"bad_mesh"}

    def undecodable_style():
        choice = int(rng.integers(0, 4))
        if choice == 0:
            blob = b"\x00not an image" + rng.bytes(int(rng.integers(0, 300)))
        elif choice == 1:
            blob = STYLE_BYTES[: int(rng.integers(2, 3000))]
        else:
            blob = bytearray(TINY_STYLE)
            for _ in range(int(rng.integers(1, 6))):
                position = int(rng.integers(8, len(blob)))  # keep the signature: a "PNG" that is broken
                blob[position] ^= int(rng.integers(1, 256))
            blob = bytes(blob)
        if decodes(blob):
            blob = b"\x00" + blob  # no image format starts like this
        return "undecodable style bytes", message(*header_and_frames(style=blob)), {"bad_image"}

    def bad_style_array():
        options = [
            ("style (H, W, 2)", np.zeros((4, 4, 2), np.uint8)),
            ("style (H, W)", np.zeros((4, 4), np.uint8)),
            ("style (H, W, 5)", np.zeros((4, 4, 5), np.uint8)),
            ("style (0, 4, 3)", np.zeros((0, 4, 3), np.uint8)),
            ("style NaN", np.full((4, 4, 3), np.nan, np.float32)),
            ("style Inf", np.full((4, 4, 3), np.inf, np.float16)),
            ("style 1-D uint16", np.zeros(10, np.uint16)),
            ("style empty bytes", np.zeros(0, np.uint8)),
            ("style (H, W, 3, 1)", np.zeros((4, 4, 3, 1), np.uint8)),
        ]
        what, style = options[int(rng.integers(0, len(options)))]
        return what, message(*header_and_frames(replace={"style": style})), {"bad_image"}

    def missing_style():
        return "no style and no objective", message(*header_and_frames(drop=("style",))), {"bad_image"}

    bad_settings_list = [
        {"steps": "10"}, {"steps": 1.5}, {"steps": True}, {"steps": 0}, {"steps": -3}, {"steps": None},
        {"texture_size": 4}, {"texture_size": "64"}, {"render_size": 8}, {"features": 3}, {"features": "resnet"},
        {"style_weight": "x"}, {"style_weight": -1}, {"style_weight": [1]}, {"seed": -1}, {"seed": 2**64},
        {"unknown_setting": 1}, {"weights": "/etc/passwd"}, {"weights": None}, {"device": "cuda"}, {"device": "cpu"},
        {"objective": 5}, {"objective": "bogus"}, {"objective": "channel:relu4_1:x"}, {"param": None},
        {"param": "wavelet"}, {"learning_rate": 0}, {"learning_rate": False}, {"views_per_step": 1000},
        {"zoom_min": 2.0, "zoom_max": 1.0}, {"style_decay": 1.0}, {"fov_deg": 180}, {"filter": "cubic"},
        {"boundary": 7}, {"init": "zeros"}, {"margin": -1}, {"style_size": 1.5},
    ]

    def bad_settings():
        bad = bad_settings_list[int(rng.integers(0, len(bad_settings_list)))]
        header, frames = header_and_frames(settings={**VALID_SETTINGS, **bad})
        return f"settings {bad}", message(header, frames), {"bad_settings"}

    def not_an_object_settings():
        settings = [[], "steps", 5, [["steps", 2]]][int(rng.integers(0, 4))]
        return f"settings {settings!r}", message(*header_and_frames(settings=settings)), {"bad_settings"}

    def infinite_setting():
        # 1e999 is valid JSON syntax, and Python reads it as infinity.
        header, frames = header_and_frames()
        text = json.dumps(header).replace('"steps": 2', '"steps": 2, "style_weight": 1e999')
        return "style_weight 1e999", [text.encode(), *frames], {"bad_settings"}

    def too_large_settings():
        bad = [{"texture_size": 8192}, {"steps": LONG + 1}, {"steps": 10**6}][int(rng.integers(0, 3))]
        code = f"limit_{next(iter(bad))}"  # each server limit has a code of its own
        return f"settings {bad}", message(*header_and_frames(settings={**VALID_SETTINGS, **bad})), {code}

    def bad_preview():
        preview = [{"every": -1}, {"every": 1.5}, {"every": True}, {"format": "float64"}, {"format": None},
                   {"max_size": "x"}, {"extra": 1}, [], "every", {"every": 10**7}][int(rng.integers(0, 10))]
        return f"preview {preview!r}", message(*header_and_frames(preview=preview)), {"bad_settings"}

    def bad_header():
        frame0 = [b"[]", b'"submit"', b"5", b"null", b"true", b'{"type": "ping"}', b'{"type": "ping", "protocol": "1"}'][
            int(rng.integers(0, 7))]
        return f"header {frame0!r}", [frame0], {"bad_header"}

    def bad_json():
        frame0 = [b"\xff\xfe\xfd", b'{"type": "ping", "protocol": 1, "x": NaN}',
                  b'{"type": "ping", "protocol": 1, "x": -Infinity}', b"{'type': 'ping'}", b"", b"{", b"\x00" * 8,
                  b'{"type": "ping", "protocol": 1}}'][int(rng.integers(0, 8))]
        return f"frame 0 {frame0[:30]!r}", [frame0], {"bad_json"}

    def deep_json():
        depth = int(rng.integers(2000, 30000))
        return f"nesting {depth}", [b"[" * depth + b"]" * depth], {"bad_json"}

    def big_header():
        return "header over 64 KB", message({"type": "ping", "protocol": 1, "pad": "x" * 70000}), {"bad_header"}

    def bad_descriptors():
        header = json.loads(valid_json)
        k = int(rng.integers(0, 4))
        options = [
            lambda: header.__setitem__("arrays", {"positions": 1}),
            lambda: header["arrays"].__setitem__(k, "positions"),
            lambda: header["arrays"][k].pop("name"),
            lambda: header["arrays"][k].__setitem__("name", ""),
            lambda: header["arrays"][k].__setitem__("name", "x" * 100),
            lambda: header["arrays"][k].__setitem__("shape", [1, 1, 1, 1, 1]),
            lambda: header["arrays"][k].__setitem__("shape", [-1]),
            lambda: header["arrays"][k].__setitem__("shape", [True]),
            lambda: header["arrays"][k].__setitem__("shape", "3"),
            lambda: header["arrays"][k].__setitem__("name", header["arrays"][(k + 1) % 4]["name"]),
        ]
        options[int(rng.integers(0, len(options)))]()
        return f"descriptors {header['arrays']!r}"[:120], message(header, valid_frames), {"bad_arrays"}

    def too_many_arrays():
        header = {"type": "submit", "protocol": 1, "settings": VALID_SETTINGS,
                  "arrays": [{"name": f"a{k}", "dtype": "uint8", "shape": [1]} for k in range(17)]}
        return "17 arrays", message(header, [b"\x00"] * 17), {"bad_arrays"}

    def unknown_cancel():
        job = [rng.bytes(6).hex(), None, 5, [], "", {"job": 1}][int(rng.integers(0, 6))]
        return f"cancel {job!r}", message({"type": "cancel", "protocol": 1, "job": job}), {"unknown_job"}

    def too_large_message():
        # Two frames under libzmq's per-frame backstop (--max-message-mb), together over the limit:
        # the application check answers.
        half = (MAX_MESSAGE_MB << 20) // 2 + 1000
        header = {"type": "submit", "protocol": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [half]},
                                                              {"name": "b", "dtype": "uint8", "shape": [half]}]}
        return "message over --max-message-mb", message(header, [bytes(half), bytes(half)]), {"too_large"}

    generators = [random_frames, truncated_json, wrong_version, unknown_type, wrong_frame_count, bad_dtype, huge_shape,
                  frame_size_mismatch, nan_positions, nan_uvs, bad_faces, bad_mesh_shapes, zero_dim_positions,
                  undecodable_style, bad_style_array, missing_style, bad_settings, not_an_object_settings,
                  infinite_setting, too_large_settings, bad_preview, bad_header, bad_json, deep_json, bad_descriptors,
                  unknown_cancel]
    cases = [g() for g in generators]  # each at least once
    cases += [big_header(), too_many_arrays(), too_large_message(), too_large_message()]
    cases += [generators[int(k)]() for k in rng.integers(0, len(generators), size=count - len(cases))]
    # And every bad setting at least once.
    for bad in bad_settings_list:
        cases.append((f"settings {bad}", message(*header_and_frames(settings={**VALID_SETTINGS, **bad})), {"bad_settings"}))
    return cases


def receive_reply(dealer: zmq.Socket, what: str) -> dict:
    assert dealer.poll(10_000), f"no reply to {what}"
    frames = dealer.recv_multipart()
    assert len(frames) == 1, (what, len(frames))
    return json.loads(frames[0])


def test_fuzz_every_malformed_message_gets_an_error_and_the_server_goes_on(main):
    rng = np.random.default_rng(20240607)
    cases = fuzz_cases(rng, 1100)
    assert len(cases) >= 1000
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(main.address)
    codes: dict[str, int] = {}
    try:
        for what, frames, expected in cases:
            dealer.send_multipart(frames)
            reply = receive_reply(dealer, what)
            assert reply.get("type") == "error", (what, reply)
            code, text = reply.get("code"), reply.get("message")
            assert isinstance(code, str) and code, (what, reply)
            assert isinstance(text, str) and text.strip(), (what, reply)
            if expected is not None:
                assert code in expected, (what, reply)
            codes[code] = codes.get(code, 0) + 1
        assert not dealer.poll(300), "a message got more than one reply"
    finally:
        dealer.close()
    assert main.process.poll() is None, main.log()[-3000:]
    no_traceback(main)
    assert set(codes) >= {"bad_json", "bad_header", "bad_version", "unknown_type", "bad_arrays", "bad_dtype", "bad_frames",
                          "too_large", "bad_mesh", "bad_image", "bad_settings", "unknown_job"}, codes
    with main.client() as client:
        events = finish(client, submit(client, steps=2))
    assert events[-1].type == "result"


@pytest.mark.parametrize("bad, needle", [
    ({"weights": "/etc/passwd"}, "weights"),
    ({"device": "cuda"}, "device"),
    ({"steps": "10"}, "steps"),
    ({"texture_size": 4}, "texture_size"),
])
def test_bad_settings_are_named(main, bad, needle):
    with main.client() as client:
        with pytest.raises(ServerError) as info:
            client.submit(SMALL.positions, SMALL.faces, SMALL.uvs, TINY_STYLE, {**VALID_SETTINGS, **bad})
    assert info.value.code == "bad_settings"
    assert needle in str(info.value)


def test_an_oversized_style_image_is_too_large(main):
    # A tiny file of a huge image: refused from its header, as too_large.
    wide = png_bytes(np.zeros((1, 9000, 3), np.uint8))
    with main.client() as client:
        with pytest.raises(ServerError) as info:
            client.submit(SMALL.positions, SMALL.faces, SMALL.uvs, wide, VALID_SETTINGS)
    assert info.value.code == "too_large", str(info.value)
    assert "9000" in str(info.value)


def test_a_client_that_never_reads_does_not_stall_the_server(main):
    flood = zmq.Context.instance().socket(zmq.DEALER)
    flood.setsockopt(zmq.LINGER, 0)
    flood.setsockopt(zmq.SNDHWM, 0)
    flood.setsockopt(zmq.RCVHWM, 1)
    flood.setsockopt(zmq.RCVBUF, 4096)
    flood.connect(main.address)
    try:
        # Each of these gets a 2 KB error reply (the job id comes back in it); a few thousand fill
        # the server's queue for this peer and the socket buffers.
        cancel = encode("cancel", {"job": "x" * 2000})
        for _ in range(4000):
            flood.send_multipart(cancel)
        time.sleep(1)
        with main.client() as client:
            start = time.monotonic()
            answered = False
            while time.monotonic() - start < 30 and not answered:
                try:
                    client.hello()
                    answered = True
                except ServerUnreachable:
                    pass
        assert answered, "the server stalled on a client that does not read its replies"
    finally:
        flood.close()
    assert main.process.poll() is None
    no_traceback(main)


# --- the queue -----------------------------------------------------------------------------------


def test_queue_limit(world):
    server = ready(world, "open")
    running, waiting, third = server.client(), server.client(), server.client()
    try:
        job1 = submit(running, steps=LONG)
        assert next(running.events(job1)).type == "progress"  # job 1 runs
        job2 = submit(waiting, steps=2)  # waits: the queue holds one job
        with pytest.raises(ServerError) as info:
            submit(third, steps=2)
        assert info.value.code == "queue_full"
        assert "1" in str(info.value)
        assert third.hello()["queue"] == 2  # not `running`: a request while a job streams drops its events
        waiting.cancel(job2)
        events2 = finish(waiting, job2)
        assert events2[-1].type == "cancelled" and events2[-1].fields["steps_done"] == 0
        # Room again: the third client gets in while job 1 still runs.
        job3 = submit(third, steps=2)
        running.cancel(job1)
        assert finish(running, job1)[-1].type == "cancelled"
        assert finish(third, job3)[-1].type == "result"
    finally:
        for client in (running, waiting, third):
            client.close()
    no_traceback(server)

