"""A backend that is safe to share (real `serve` processes, loopback traffic only): the client allowlist
required off loopback and reread when it changes, private secret keys, and the operator's job limits."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from blender_addon.client import CurveKeys, ServerError, ServerUnreachable, StyleTexClient
from tests.net import free_port

from .support import MESH, STYLE_BYTES, Server, environment, finish, job_settings

LIMITS = ["--max-steps", "5000", "--max-texture-size", "64", "--max-render-size", "64", "--max-jobs-per-client", "1",
          "--max-job-seconds", "3"]


def serve(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend", "serve", *args], cwd=root, env=environment(),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharing")
    for name in ("server", "alice", "bob"):
        run = subprocess.run([sys.executable, "-m", "backend", "keygen", str(root / "keys"), "--name", name], cwd=root,
                             env=environment(), capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    (root / "allowed").mkdir()
    shutil.copy(root / "keys" / "alice.key", root / "allowed" / "alice.key")
    return root


def test_keygen_keeps_secret_keys_private_and_serve_refuses_readable_ones(keys):
    folder = keys / "keys"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("server", "alice", "bob"):
        assert stat.S_IMODE((folder / f"{name}.key_secret").stat().st_mode) == 0o600
    exposed = keys / "exposed.key_secret"
    shutil.copy(folder / "server.key_secret", exposed)
    exposed.chmod(0o644)
    run = serve(keys, "--bind", f"tcp://127.0.0.1:{free_port()}", "--curve-secret", str(exposed),
                "--curve-clients", str(keys / "allowed"))
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and f"chmod 600 {exposed}" in run.stderr, run.stderr
    shared = keys / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    run = subprocess.run([sys.executable, "-m", "backend", "keygen", str(shared)], cwd=keys, env=environment(),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "writable by every user" in run.stderr and not list(shared.iterdir())


def test_off_loopback_a_server_needs_the_allowlist_unless_told_any_client_will_do(keys):
    port = free_port()
    run = serve(keys, "--bind", f"tcp://0.0.0.0:{port}", "--curve-secret", str(keys / "keys" / "server.key_secret"))
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "--curve-clients" in run.stderr and "keygen" in run.stderr and "--allow-any-client" in run.stderr
    assert "listening" not in run.stderr  # it exited before binding
    server_key = str(keys / "keys" / "server.key")
    anyone = Server("anyone", keys, ["--device", "cpu", "--curve-secret", str(keys / "keys" / "server.key_secret"),
                                     "--allow-any-client"], bind_host="0.0.0.0",
                    curve=CurveKeys.from_files(server_key, str(keys / "keys" / "bob.key_secret"))).start()
    try:
        anyone.wait_ready()
        with anyone.client() as client:  # bob is in no allowlist: encryption only
            assert client.ping() < 5
    finally:
        anyone.terminate()
        anyone.stop()


def test_an_unknown_key_gets_no_reply_until_the_operator_adds_it(keys):
    server_key = str(keys / "keys" / "server.key")
    alice = CurveKeys.from_files(server_key, str(keys / "keys" / "alice.key_secret"))
    bob = CurveKeys.from_files(server_key, str(keys / "keys" / "bob.key_secret"))
    shared = Server("shared", keys, ["--device", "cpu", "--curve-secret", str(keys / "keys" / "server.key_secret"),
                                     "--curve-clients", str(keys / "allowed")], bind_host="0.0.0.0", curve=alice).start()
    try:
        shared.wait_ready()
        with StyleTexClient(shared.address, curve=alice) as client:
            assert client.ping() < 5
        with StyleTexClient(shared.address, timeout=2.0, curve=bob) as client:
            with pytest.raises(ServerUnreachable):
                client.ping()
        shutil.copy(keys / "keys" / "bob.key", keys / "allowed" / "bob.key")  # no restart
        deadline = time.monotonic() + 10
        while True:
            try:
                with StyleTexClient(shared.address, timeout=2.0, curve=bob) as client:
                    assert client.ping() < 5
                break
            except ServerUnreachable:
                assert time.monotonic() < deadline, "bob's key was not picked up"
        assert "allowed client keys reloaded" in shared.log()
    finally:
        (keys / "allowed" / "bob.key").unlink(missing_ok=True)
        shared.terminate()
        shared.stop()


def test_the_operators_limits_each_with_its_code(keys):
    limited = Server("limited", keys, ["--device", "cpu", *LIMITS]).start()
    try:
        limited.wait_ready()
        with limited.client() as client:
            limits = client.hello()["limits"]
            assert (limits["max_steps"], limits["max_texture_size"], limits["max_render_size"], limits["max_job_seconds"],
                    limits["max_jobs_per_client"]) == (5000, 64, 64, 3.0, 1)
            for settings, code, value in ((dict(steps=5001), "limit_steps", "5000"),
                                          (dict(texture_size=128), "limit_texture_size", "64"),
                                          (dict(render_size=128), "limit_render_size", "64")):
                with pytest.raises(ServerError) as info:
                    client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, job_settings(**settings))
                assert info.value.code == code and value in str(info.value)
            started = time.monotonic()
            long_job = client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, job_settings(steps=5000))
            with pytest.raises(ServerError) as info:  # one job per client at a time
                client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES, job_settings())
            assert info.value.code == "limit_jobs_per_client" and "1" in str(info.value)
            events = finish(client, long_job, within=60)
        stopped = events[-1]
        assert stopped.type == "cancelled" and stopped.fields["code"] == "limit_job_seconds", stopped.fields
        assert "3 s" in stopped.fields["message"] and 0 < stopped.fields["steps_done"] < 5000
        assert time.monotonic() - started < 30
        texture = np.asarray(stopped.arrays["texture"])
        assert texture.shape == (32, 32, 3) and np.isfinite(texture).all()  # what it had
        with limited.client() as client:  # and the next job runs
            assert finish(client, client.submit(MESH.positions, MESH.faces, MESH.uvs, STYLE_BYTES,
                                                job_settings(steps=2)))[-1].type == "result"
    finally:
        limited.terminate()
        limited.stop()


def test_bad_limits_are_refused(keys):
    run = serve(keys, "--max-job-seconds", "-1")
    assert run.returncode == 2 and "--max-job-seconds" in run.stderr
