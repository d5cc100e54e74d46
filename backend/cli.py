"""Command line: `python -m backend COMMAND ...`. Bad input prints one line and exits with status 2."""

from __future__ import annotations

import argparse
import math
import sys

from .errors import StyleTexError
from .tuning import tune_allocator

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are a single line (and still exit with status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def vector3(text: str) -> tuple[float, float, float]:
    """Parses 'X,Y,Z' into three finite floats."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,Z numbers, got {text!r}") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected three finite numbers X,Y,Z, got {text!r}")
    return values  # type: ignore[return-value]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import batch_command, render_command, serve_command, stylize_command

    parser = _Parser(prog="python -m backend", description="StyleTex backend.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    render_command.add_arguments(commands.add_parser("render", help="render a textured mesh from one camera"))
    stylize_command.add_arguments(commands.add_parser("stylize", help="restyle a mesh's texture with a painting"))
    batch_command.add_arguments(commands.add_parser("batch", help="restyle the jobs of a manifest, here or on Ray"))
    serve_command.add_serve_arguments(commands.add_parser("serve", help="run the job server for the Blender add-on"))
    serve_command.add_keygen_arguments(commands.add_parser("keygen", help="make a CURVE key pair for serve or a client"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune_allocator()
    try:
        return args.run(args)
    except StyleTexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
