"""The command line: `styletex COMMAND ...` (or `python -m backend COMMAND ...`), one module per subcommand.

Bad input prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import StyleTexError
from ..tuning import tune_allocator
from . import batch, interpolate, render, serve, stylize
from .arguments import EXIT_USAGE, Parser


def prog() -> str:
    """The name the user typed: `styletex` for the console script, `python -m backend` otherwise."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "styletex" if name.startswith("styletex") else "python -m backend"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=prog(), description="StyleTex backend.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    render.add_arguments(commands.add_parser("render", help="render a textured mesh from one camera"))
    stylize.add_arguments(commands.add_parser("stylize", help="restyle a mesh's texture with a painting"))
    interpolate.add_arguments(commands.add_parser("interpolate", help="a texture that morphs over frames (aligned)"))
    batch.add_arguments(commands.add_parser("batch", help="restyle the jobs of a manifest, here or on Ray"))
    serve.add_serve_arguments(commands.add_parser("serve", help="run the job server for the Blender add-on"))
    serve.add_keygen_arguments(commands.add_parser("keygen", help="make a CURVE key pair for serve or a client"))
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
