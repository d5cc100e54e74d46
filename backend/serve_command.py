"""`python -m backend serve` and `python -m backend keygen`."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from .cli import positive_int
from .errors import StyleTexError


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default="tcp://127.0.0.1:5555", help="ZeroMQ endpoint (default tcp://127.0.0.1:5555)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--max-queue", type=positive_int, default=8, help="jobs that may wait (default 8)")
    parser.add_argument("--max-message-mb", type=positive_int, default=512, help="largest accepted message (default 512 MB)")
    parser.add_argument("--client-timeout", type=float, default=5.0, help="cancel a job whose client is silent this long (s)")
    parser.add_argument("--curve-secret", help="server secret key file (from `keygen`): encrypt and authenticate")
    parser.add_argument("--curve-clients", help="folder of allowed client public keys (default: any client with a key)")
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback address without CURVE keys")
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

    from .service.server import Server

    if not args.bind.startswith(("tcp://", "ipc://", "inproc://")):
        raise StyleTexError(f"--bind must be a tcp://, ipc:// or inproc:// endpoint, got {args.bind!r}")
    if not is_loopback(args.bind) and not args.curve_secret and not args.insecure:
        raise StyleTexError(f"refusing to serve on {args.bind} without CURVE keys: anyone on the network could use it "
                            "(pass --curve-secret FILE, see `keygen`, or --insecure)")
    if args.curve_clients and not Path(args.curve_clients).is_dir():
        raise StyleTexError(f"--curve-clients {args.curve_clients}: not a folder")
    if args.curve_secret and not Path(args.curve_secret).is_file():
        raise StyleTexError(f"--curve-secret {args.curve_secret}: no such file")
    from .devices import pick_device

    pick_device(args.device)  # --device cuda without CUDA: one line now, not a crash at the first request
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        server = Server(args.bind, args.device, args.max_queue, max_message_bytes=args.max_message_mb << 20,
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


def run_keygen(args: argparse.Namespace) -> int:
    import zmq.auth

    folder = Path(args.folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        public, secret = zmq.auth.create_certificates(str(folder), args.name)
    except OSError as exc:
        raise StyleTexError(f"{folder}: cannot write keys ({exc.strerror or exc})") from None
    print(f"public key: {public}\nsecret key: {secret} (keep it private)")
    return 0
