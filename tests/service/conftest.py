"""The job server as it runs: real `python -m backend serve` processes, real sockets on loopback, the
real client library (blender_addon/client.py) and raw DEALER sockets. (Two servers bind 0.0.0.0, to
test where a server may listen; they too are only ever reached over 127.0.0.1.)

The processes every service test module shares are started once per session, all at the same time
(each one imports torch, which costs seconds); tests then wait for the one they use. Servers log to
files (a pipe nobody reads could fill up and stall a server). Every process is terminated, or
killed, at the end of the session."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import zmq
import zmq.auth
from PIL import Image

from backend.formats.obj import write_obj
from blender_addon.client import CurveKeys

from .support import (
    CLIENT_TIMEOUT,
    EQUIVALENCE_ARGS,
    MAX_MESSAGE_MB,
    MESH,
    STYLE,
    Server,
    environment,
    free_port,
    keygen,
    ready,
)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    processes: list[subprocess.Popen] = []
    servers: dict[str, Server] = {}
    try:
        # The equivalence reference: the same job through the command line.
        write_obj(root / "mesh.obj", MESH)
        texture = np.random.default_rng(7).integers(0, 256, (24, 20, 3), dtype=np.uint8)
        Image.fromarray(texture).save(root / "texture.png")
        cli = subprocess.Popen(
            [sys.executable, "-m", "backend", "stylize", str(root / "mesh.obj"), "--style", str(STYLE),
             "--texture", str(root / "texture.png"), "--out", str(root / "cli.png"), "--device", "cpu",
             "--report", str(root / "cli.json"), "--quiet", *EQUIVALENCE_ARGS],
            cwd=root, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(cli)
        servers["main"] = Server("main", root, ["--device", "cpu", "--client-timeout", str(CLIENT_TIMEOUT),
                                                "--max-message-mb", str(MAX_MESSAGE_MB)])
        # Non-loopback with --insecure (reached over 127.0.0.1: 0.0.0.0 includes it); also the queue
        # test's server, and the last test stops it with SIGINT.
        servers["open"] = Server("open", root, ["--device", "cpu", "--insecure", "--max-queue", "1",
                                                "--client-timeout", "30"], bind_host="0.0.0.0")
        servers["killable"] = Server("killable", root, ["--device", "cpu"])
        servers["killable_again"] = Server("killable_again", root, ["--device", "cpu"], port=servers["killable"].port,
                                           standby=True)
        for server in servers.values():
            server.start()
        refused_port = free_port()
        refused = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--bind", f"tcp://0.0.0.0:{refused_port}"],
                                   cwd=root, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(refused)
        servers["no_cuda"] = Server("no_cuda", root, ["--device", "cuda"]).start()
        # CURVE: key pairs for the server and the client from `keygen`, and an intruder's pair made
        # directly (one torch start less); only the client's public key is in the allowed folder.
        keygens = {name: keygen(root, name) for name in ("server", "client")}
        keygen_runs = {}
        for name, process in keygens.items():
            out, err = process.communicate(timeout=120)
            keygen_runs[name] = (process.returncode, out, err)
        allowed = root / "allowed"
        allowed.mkdir()
        keys = root / "keys"
        (root / "intruder").mkdir()
        zmq.auth.create_certificates(str(root / "intruder"), "intruder")
        if (keys / "client.key").exists():
            shutil.copy(keys / "client.key", allowed / "client.key")
        curve = None
        if all(run[0] == 0 for run in keygen_runs.values()):
            curve = CurveKeys.from_files(str(keys / "server.key"), str(keys / "client.key_secret"))
            # Not loopback: allowed, since CURVE keys are given.
            servers["curve"] = Server("curve", root, ["--device", "cpu", "--curve-secret", str(keys / "server.key_secret"),
                                                      "--curve-clients", str(allowed)], curve=curve,
                                      bind_host="0.0.0.0").start()
        yield {"root": root, "servers": servers, "cli": cli, "refused": refused, "refused_port": refused_port,
               "keygen": keygen_runs, "keys": keys, "allowed": allowed, "curve": curve,
               "intruder": root / "intruder" / "intruder.key_secret"}
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.stop()
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()



@pytest.fixture(scope="session")
def main(world) -> Server:
    return ready(world, "main")
