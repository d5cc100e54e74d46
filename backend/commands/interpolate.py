"""`styletex interpolate`: a texture that morphs over N frames (aligned interpolation), from one painting
to another, from the original texture to a painting, or from one feature channel to another."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import StyleTexError
from ..formats.images import load_image, save_image
from ..formats.obj import write_obj
from ..style.sequence import stylize_sequence
from .arguments import positive_int
from .job import ProgressBar, add_job_arguments, interruptible, job_settings, job_notes, read_job_inputs, write_report
from .outputs import check_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    parser.add_argument("--style-to", action="append", metavar="IMAGE",
                        help="the painting the last frame takes (repeat it to mix several, equally)")
    parser.add_argument("--from-original", action="store_true",
                        help="morph from the original texture (--texture) to the painting instead")
    parser.add_argument("--objective-to", metavar="channel:LAYER:INDEX",
                        help="morph from --objective's channel to this one instead")
    parser.add_argument("--frames", type=positive_int, required=True, help="number of frames (2 or more)")
    parser.add_argument("--independent", action="store_true",
                        help="optimize each frame on its own, without the shared spectrum (for comparison)")
    parser.add_argument("--out", required=True, help="folder for frame_0000.png ... and report.json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = job_settings(args)
    if args.frames < 2:
        raise StyleTexError(f"--frames must be 2 or more, got {args.frames}")
    targets = [bool(args.style_to), args.from_original, bool(args.objective_to)]
    if sum(targets) != 1:
        raise StyleTexError("give exactly one of --style-to IMAGE, --from-original and --objective-to channel:LAYER:INDEX")
    if args.objective_to and not args.objective:
        raise StyleTexError("--objective-to needs --objective (the first frame's channel)")
    if not args.objective and not args.style:
        raise StyleTexError("--style IMAGE is required (or --objective channel:LAYER:INDEX with --objective-to)")
    out = Path(args.out)
    check_output(out, "--out", folder=True)
    inputs = read_job_inputs(args, settings)
    mesh, style, original, settings = inputs.mesh, inputs.style, inputs.original, inputs.settings
    if args.from_original and original is None:
        raise StyleTexError("--from-original morphs from the original texture: give it with --texture")
    style_to = [load_image(path) for path in args.style_to] if args.style_to else None
    bar = ProgressBar(args.quiet, None, job_notes(settings, mesh, original, inputs.model.cells,
                                                   left_out=inputs.model.left_out))
    result = interruptible(lambda cancel: stylize_sequence(
        mesh, style, style_to, settings, args.frames, original, args.from_original, args.objective_to or "",
        args.independent, bar, cancel))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StyleTexError(f"--out {out}: cannot make the folder ({exc.strerror or exc})") from None
    for number, texture in enumerate(result.frames):
        save_image(out / f"frame_{number:04d}.png", texture)
    if inputs.model.cells > 1:  # the frames are the model's atlas: the mesh in its UVs beside them, showing the first
        write_obj(out / "mesh.obj", mesh, texture=out / "frame_0000.png")
    write_report(str(out / "report.json"), result.report)
    if not args.quiet:
        r = result.report
        stopped = " (stopped early)" if result.cancelled else ""
        print(f"wrote {len(result.frames)} frames to {out}{stopped}: {r['steps_done']} steps, "
              f"{r['seconds_per_step']:.2f} s/step on {r['device']}, mean difference between consecutive frames "
              f"{r['mean_consecutive_difference']:.4f}", file=sys.stderr)
    return 0
