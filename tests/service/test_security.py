"""CURVE keys, where a server may listen, the device check at start, and stopping cleanly."""

from __future__ import annotations

import signal
import time

import pytest

from blender_addon.client import ClientError, CurveKeys, ServerError, ServerUnreachable, StyleTexClient
from blender_addon.protocol import PROTOCOL_VERSION

from .support import LONG, READY_S, ready, submit, wait_for

# --- CURVE ---------------------------------------------------------------------------------------


def test_keygen_writes_key_pairs(world):
    keys = world["keys"]
    for name, (code, out, err) in world["keygen"].items():
        assert code == 0, err
        assert "public key" in out
        public, secret = (keys / f"{name}.key").read_text(), (keys / f"{name}.key_secret").read_text()
        assert "public-key" in public and "secret-key" not in public
        assert "public-key" in secret and "secret-key" in secret
    assert sorted(p.name for p in world["allowed"].iterdir()) == ["client.key"]


def test_curve_client_with_the_right_keys_is_served(world):
    server = ready(world, "curve")
    with server.client() as client:
        info = client.hello()
        assert info["protocols"] == [PROTOCOL_VERSION]
        assert client.ping() < 5
        # A submit (several frames, one of 300 KB) passes through CURVE too: a bad one is answered.
        with pytest.raises(ServerError) as error:
            submit(client, steps=0)
        assert error.value.code == "bad_settings"
    assert f"listening on tcp://0.0.0.0:{server.port}" in server.log()  # not loopback: fine with keys


def test_curve_refuses_an_unknown_key(world):
    server = ready(world, "curve")
    keys = world["keys"]
    intruder = CurveKeys.from_files(str(keys / "server.key"), str(world["intruder"]))
    start = time.monotonic()
    with StyleTexClient(server.address, curve=intruder) as client:
        with pytest.raises(ServerUnreachable) as info:
            client.hello()
    assert time.monotonic() - start < 6
    assert "refused this client's CURVE key" in str(info.value)


def test_curve_refuses_a_client_without_keys(world):
    server = ready(world, "curve")
    start = time.monotonic()
    with StyleTexClient(server.address) as client:
        with pytest.raises(ServerUnreachable):
            client.hello()
    assert time.monotonic() - start < 6.5


def test_client_curve_keys_from_a_public_file_are_refused(world):
    with pytest.raises(ClientError) as info:
        CurveKeys.from_files(str(world["keys"] / "server.key"), str(world["keys"] / "client.key"))
    assert "client.key" in str(info.value)


# --- where a server may listen -------------------------------------------------------------------


def test_non_loopback_without_keys_is_refused(world):
    refused = world["refused"]
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "CURVE" in lines[0] and "--insecure" in lines[0] and f"0.0.0.0:{world['refused_port']}" in lines[0]
    assert out == ""


def test_non_loopback_with_insecure_starts(world):
    server = ready(world, "open")  # 0.0.0.0 includes loopback: pinged on 127.0.0.1
    assert "--insecure" in server.args and "--curve-secret" not in server.args
    assert f"listening on tcp://0.0.0.0:{server.port}" in server.log()
    with server.client() as client:
        assert client.hello()["protocols"] == [PROTOCOL_VERSION]
    # Stopped by test_ctrl_c_stops_the_server_cleanly (or the fixture): it does not stay running.


def test_loopback_needs_no_keys(main):
    assert "--curve-secret" not in main.args and "--insecure" not in main.args
    assert main.bind.startswith("tcp://127.0.0.1:")
    assert f"listening on {main.bind}" in main.log()


@pytest.mark.parametrize("endpoint, loopback", [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.1.2.3:1", True), ("tcp://[::1]:5555", True),
    ("tcp://localhost:5555", True), ("ipc:///tmp/styletex", True), ("inproc://x", True),
    ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False), ("tcp://eth0:5555", False),
    ("tcp://192.168.1.2:5555", False), ("tcp://[::]:5555", False), ("tcp://example.com:5555", False),
])
def test_is_loopback(endpoint, loopback):
    from backend.commands.serve import is_loopback

    assert is_loopback(endpoint) is loopback


def test_device_cuda_without_cuda_fails_at_start_or_serves(world):
    # Without CUDA: a one-line error and status 2 at startup, not a crash at the first request.
    server = world["servers"]["no_cuda"]
    assert wait_for(lambda: server.process.poll() is not None or "listening on" in server.log(), READY_S)
    if server.process.poll() is None:  # it listens: then it must serve (a machine with CUDA)
        with server.client() as client:
            try:
                info = client.hello()
            except ClientError:
                info = None
        assert server.process.poll() is None, f"the server died at its first request:\n{server.log()}"
        assert info is not None and info["device"] != "cpu"
        return
    log = server.log()
    assert server.process.returncode == 2, log
    assert len(log.splitlines()) == 1 and "cuda" in log.lower(), log


# --- stopping --------------------------------------------------------------------------------------


def test_ctrl_c_stops_the_server_cleanly(world):
    server = ready(world, "open")  # the last test that needs it
    with server.client() as client:
        job = submit(client, steps=LONG)
        events = client.events(job)
        assert next(events).type == "progress"  # stopped in the middle of a job
        server.process.send_signal(signal.SIGINT)
        start = time.monotonic()
        code = server.process.wait(timeout=15)
    assert code == 0
    assert time.monotonic() - start < 5
    log = server.log()
    assert "Traceback" not in log
    assert log.rstrip().endswith("stopped"), log[-2000:]


def test_sigterm_stops_the_server_cleanly(world):
    server = ready(world, "curve")  # the last test that needs it
    server.process.terminate()
    assert server.process.wait(timeout=15) == 0
    log = server.log()
    assert "Traceback" not in log and log.rstrip().endswith("stopped"), log[-2000:]

