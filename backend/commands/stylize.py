"""`styletex stylize`: restyle a mesh's texture with a painting (or a feature objective)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..errors import StyleTexError
from ..formats.gltf import is_gltf, write_gltf_with_texture
from ..formats.images import save_image
from ..formats.obj import write_obj
from ..mesh import make_mesh
from ..style.engine import stylize
from .arguments import positive_int
from .job import ProgressBar, add_job_arguments, interruptible, job_settings, job_notes, read_job_inputs, write_report
from .outputs import check_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)
    parser.add_argument("--out-model", metavar="OUT.glb",
                        help="with a glTF input: also write the model with the restyled texture in place of its own")
    parser.add_argument("--out", required=True, help="output texture PNG (sRGB-encoded, like the input texture)")
    parser.add_argument("--unwrap", choices=("auto", "keep", "even", "round-trip"), default="auto",
                        help="auto (the default): round-trip where UV islands packed denser than the rest hold a share "
                             "of the surface and can be repacked at one density, else keep; keep: restyle in the "
                             "mesh's own UVs; even: restyle in new UVs of even texel density, for meshes whose own UVs give parts of "
                             "the surface too little room (written with --out-mesh); round-trip: restyle in them, "
                             "hand the texture back in the mesh's own UVs and polish it there for the last 15 %% of "
                             "the steps, for islands packed denser or sparser than the rest (strokes of one size on "
                             "the surface)")
    parser.add_argument("--out-mesh", metavar="OUT.obj",
                        help="with --unwrap even, or an OBJ whose materials show several images (restyled as one "
                             "atlas): the mesh in the texture's UVs (OBJ, with a material library naming --out)")
    parser.add_argument("--previews", help="folder for texture snapshots during the run")
    parser.add_argument("--preview-every", type=positive_int, default=25, help="steps between previews (with --previews)")
    parser.add_argument("--report", help="write a JSON report (settings, losses, timing, coverage) here")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = dataclasses.replace(job_settings(args, args.preview_every if args.previews else 0), unwrap=args.unwrap)
    if not args.style and args.objective is None:
        raise StyleTexError("--style IMAGE is required (or --objective channel:LAYER:INDEX)")
    if args.out_model and not is_gltf(args.mesh):
        raise StyleTexError("--out-model needs a glTF input (.glb or .gltf)")
    if args.out_model and not args.out_model.lower().endswith(".glb"):
        raise StyleTexError(f"--out-model writes a binary glTF: give it a .glb name, not {args.out_model!r}")
    if args.unwrap == "even" and not args.out_mesh:
        raise StyleTexError("--unwrap even makes new UVs: give --out-mesh OUT.obj to write the mesh that carries them")
    if args.unwrap == "even" and args.out_model:
        raise StyleTexError("--out-model writes the model with its own UVs: with --unwrap even use --out-mesh OUT.obj")
    if args.out_mesh and not args.out_mesh.lower().endswith(".obj"):
        raise StyleTexError(f"--out-mesh writes an OBJ: give it a .obj name, not {args.out_mesh!r}")
    for path, option in ((args.out, "--out"), (args.out_mesh, "--out-mesh"), (args.out_model, "--out-model"),
                         (args.report, "--report")):
        if path:
            check_output(path, option)
    if args.previews:
        check_output(args.previews, "--previews", folder=True)
    inputs = read_job_inputs(args, settings)
    if inputs.model.writes_mesh and not args.out_mesh:
        raise StyleTexError(f"{args.mesh}: its materials show several images (or an image and plain colours), "
                            "restyled as one atlas: give --out-mesh OUT.obj to write the mesh in the atlas's UVs")
    if args.out_mesh and args.unwrap != "even" and not inputs.model.writes_mesh:
        raise StyleTexError("--out-mesh writes the new UVs of --unwrap even (or an OBJ's atlas); without it the mesh "
                            "is unchanged")
    mesh, style, original, settings = inputs.mesh, inputs.style, inputs.original, inputs.settings
    previews = Path(args.previews) if args.previews else None
    bar = ProgressBar(args.quiet, previews, job_notes(settings, mesh, original, inputs.model.cells, inputs.editable,
                                                       inputs.model.left_out))
    result = interruptible(lambda cancel: stylize(mesh, style, settings, original, bar, cancel, inputs.editable))
    save_image(args.out, result.texture)
    if args.out_mesh:  # the UVs the texture was made for: new ones, or the atlas's
        uvs = result.uvs if result.uvs is not None else mesh.uvs
        write_obj(args.out_mesh, make_mesh(mesh.positions, mesh.faces, uvs, args.out_mesh), texture=args.out)
    if args.out_model:
        write_gltf_with_texture(args.mesh, args.out_model, result.texture)
    if args.report:
        write_report(args.report, result.report)
    if not args.quiet:
        r = result.report
        stopped = " (stopped early)" if result.cancelled else ""
        print(f"wrote {args.out}{stopped}: {r['steps_done']} steps, {r['seconds_per_step']:.2f} s/step on {r['device']}, "
              f"coverage {100 * r['coverage']:.1f} %", file=sys.stderr)
        if settings.unwrap == "auto" and r.get("unwrap") == "round-trip":  # the one choice that changes the job's path
            print(f"unwrap auto: {r['unwrap_reason']}", file=sys.stderr)
    return 0
