"""`python -m backend serve` and `python -m backend keygen`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
import signal
import stat
import sys
from pathlib import Path
from urllib.parse import urlsplit

from .arguments import positive_int
from ..errors import StyleTexError
from ..service.requests import ServiceLimits


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default="tcp://127.0.0.1:5555", help="ZeroMQ endpoint (default tcp://127.0.0.1:5555)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--max-queue", type=positive_int, default=8, help="jobs that may wait (default 8)")
    parser.add_argument("--max-message-mb", type=positive_int, default=512, help="largest accepted message (default 512 MB)")
    parser.add_argument("--client-timeout", type=float, default=5.0, help="cancel a job whose client is silent this long (s)")
    parser.add_argument("--curve-secret", help="server secret key file (from `keygen`): encrypt and authenticate")
    parser.add_argument("--curve-clients", help="folder of allowed client public keys (NAME.key from `keygen`); "
                                                 "reread when it changes")
    parser.add_argument("--allow-any-client", action="store_true",
                        help="off loopback with --curve-secret but no --curve-clients: accept any client key "
                             "(encryption only, for closed networks)")
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback address without CURVE keys")
    defaults = ServiceLimits()
    parser.add_argument("--max-steps", type=positive_int, default=defaults.max_steps,
                        help=f"most steps a job may ask for (default {defaults.max_steps})")
    parser.add_argument("--max-texture-size", type=positive_int, default=defaults.max_texture_size,
                        help=f"largest texture a job may ask for (default {defaults.max_texture_size})")
    parser.add_argument("--max-render-size", type=positive_int, default=defaults.max_render_size,
                        help=f"largest render a job may ask for (default {defaults.max_render_size})")
    parser.add_argument("--max-job-seconds", type=float, default=defaults.max_job_seconds,
                        help="stop a running job after this many seconds and send what it has (default 0: never)")
    parser.add_argument("--max-jobs-per-client", type=positive_int, default=defaults.max_jobs_per_client,
                        help=f"jobs one client may have queued or running (default {defaults.max_jobs_per_client})")
    parser.add_argument("--max-frames", type=positive_int, default=defaults.max_frames,
                        help=f"frames of one interpolation job (default {defaults.max_frames})")
    parser.set_defaults(run=run_serve)


def add_keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="where to write NAME.key (public) and NAME.key_secret")
    parser.add_argument("--name", default="server", help="file name stem (default 'server')")
    parser.set_defaults(run=run_keygen)


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// endpoints on 127.0.0.0/8, ::1 or localhost."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: not provably loopback


def run_serve(args: argparse.Namespace) -> int:
    import zmq

    from ..service.server import Server

    if not args.bind.startswith(("tcp://", "ipc://", "inproc://")):
        raise StyleTexError(f"--bind must be a tcp://, ipc:// or inproc:// endpoint, got {args.bind!r}")
    if not is_loopback(args.bind) and not args.curve_secret and not args.insecure:
        raise StyleTexError(f"refusing to serve on {args.bind} without CURVE keys: anyone on the network could use it "
                            "(pass --curve-secret FILE, see `keygen`, or --insecure)")
    if not is_loopback(args.bind) and args.curve_secret and not args.curve_clients and not args.allow_any_client:
        raise StyleTexError(f"refusing to serve on {args.bind} to any client that has the server's public key: make a "
                            "folder of allowed client keys (`python -m backend keygen keys --name alice`, copy "
                            "keys/alice.key into it) and pass --curve-clients FOLDER, or --allow-any-client")
    if args.curve_clients and not Path(args.curve_clients).is_dir():
        raise StyleTexError(f"--curve-clients {args.curve_clients}: not a folder")
    if args.curve_secret and not Path(args.curve_secret).is_file():
        raise StyleTexError(f"--curve-secret {args.curve_secret}: no such file")
    if args.curve_secret:
        check_private(Path(args.curve_secret))
    if not math.isfinite(args.max_job_seconds) or args.max_job_seconds < 0:
        raise StyleTexError(f"--max-job-seconds must be 0 (no limit) or positive, got {args.max_job_seconds}")
    limits = ServiceLimits(max_steps=args.max_steps, max_texture_size=args.max_texture_size,
                           max_render_size=args.max_render_size, max_job_seconds=args.max_job_seconds,
                           max_jobs_per_client=args.max_jobs_per_client, max_frames=args.max_frames)
    from ..devices import pick_device

    pick_device(args.device)  # --device cuda without CUDA: one line now, not a crash at the first request
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        server = Server(args.bind, args.device, args.max_queue, limits, max_message_bytes=args.max_message_mb << 20,
                        client_timeout=args.client_timeout, curve_secret_file=args.curve_secret,
                        curve_clients_dir=args.curve_clients)
    except zmq.ZMQError as exc:
        raise StyleTexError(f"cannot bind {args.bind}: {exc}") from None
    signal.signal(signal.SIGTERM, lambda *_: server.stop.set())
    signal.signal(signal.SIGINT, lambda *_: server.stop.set())
    print(f"StyleTex backend listening on {server.endpoint}", file=sys.stderr, flush=True)
    server.serve_forever()
    logging.getLogger("styletex.server").info("stopped")
    return 0


def check_private(path: Path) -> None:
    """Refuses a secret key file that other users may read, as ssh does. POSIX modes only: on Windows the
    file's ACL is not checked (keep secret keys in your user profile there)."""
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & 0o077:
        raise StyleTexError(f"{path}: the secret key is readable by other users (mode {stat.S_IMODE(mode):03o}); "
                            f"run chmod 600 {path}")


def run_keygen(args: argparse.Namespace) -> int:
    import zmq.auth

    folder = Path(args.folder)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix" and folder.stat().st_mode & 0o002:
            raise StyleTexError(f"{folder}: the folder is writable by every user; use a private one (chmod 700)")
        public, secret = zmq.auth.create_certificates(str(folder), args.name)
        if os.name == "posix":
            os.chmod(secret, 0o600)  # pyzmq writes it with the process umask, often 644
    except OSError as exc:
        raise StyleTexError(f"{folder}: cannot write keys ({exc.strerror or exc})") from None
    print(f"public key: {public}\nsecret key: {secret} (keep it private)")
    return 0
