"""What `stylize` and `interpolate` share: a job's arguments (the mesh, the paintings, every setting),
its settings and inputs read from them, the progress bar, Ctrl-C and the report."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..errors import StyleTexError
from ..features.network import KINDS
from ..formats.model import Model, read_model
from ..formats.images import load_image, save_image
from ..mesh import Mesh
from ..mesh.uv_room import uv_room
from ..style.engine import stand_in_note
from ..style.parameterization import PARAMETERIZATIONS
from ..style.progress import Progress
from ..style.settings import StyleSettings, parse_blend
from .arguments import finite_float, positive_int

DEFAULTS = {f.name: f.default for f in fields(StyleSettings)}


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """The mesh, the paintings and every setting of a job: what `stylize` and `interpolate` share."""
    parser.add_argument("mesh", help="OBJ or glTF (.glb/.gltf) file with texture coordinates")
    parser.add_argument("--style", action="append", metavar="IMAGE",
                        help="style image (a painting); repeat it to mix several, weighted by --style-blend")
    parser.add_argument("--style-blend", default=DEFAULTS["style_blend"], metavar="W1,W2,...",
                        help="one weight per --style: the targets are the weighted mean of the paintings' Gram "
                             "matrices (default: equal)")
    parser.add_argument("--style-scale", type=finite_float, default=DEFAULTS["style_scale"],
                        help="the painting's size relative to the renders when its style is measured: 2 gives "
                             "bigger brush strokes and motifs, 0.5 finer ones")
    parser.add_argument("--preserve-colors", action="store_true",
                        help="keep the original texture's colours; take only the luminance structure from the "
                             "painting (needs --texture)")
    parser.add_argument("--texture", help="the mesh's original texture (content, start and fill); a glTF model's "
                                          "own base colour texture is used when this is not given")
    parser.add_argument("--steps", type=positive_int, default=DEFAULTS["steps"])
    parser.add_argument("--texture-size", type=positive_int, default=DEFAULTS["texture_size"])
    parser.add_argument("--render-size", type=positive_int, default=DEFAULTS["render_size"])
    parser.add_argument("--features", choices=KINDS, default=DEFAULTS["features"],
                        help="auto (default): EfficientNet-Lite0 on the CPU, VGG-19 on CUDA when its weights are on "
                             "disk; efficientnet_lite0 installs with the project; vgg19/vgg16 use torchvision's ImageNet "
                             "weights; random is for tests only, not a quality mode")
    parser.add_argument("--weights", help="local weights file: a VGG state dict, or a copy of EfficientNet-Lite0's file")
    parser.add_argument("--style-weight", type=finite_float, default=DEFAULTS["style_weight"])
    parser.add_argument("--content-weight", type=finite_float, default=DEFAULTS["content_weight"])
    parser.add_argument("--style-loss", choices=("gram", "nnfm", "mix"), default=DEFAULTS["style_loss"],
                        help="gram (Gram matrices with style memory), nnfm (nearest-neighbour feature matching) or mix")
    parser.add_argument("--seam-weight", type=finite_float, default=DEFAULTS["seam_weight"],
                        help="weight of the term that keeps the texture continuous across UV seams; 0 = off")
    parser.add_argument("--layout-weight", type=finite_float, default=DEFAULTS["layout_weight"],
                        help="weight of a term that keeps each view's coarse colour layout that of the original "
                             "recoloured to the painting's palette (no regions in different parts of the palette)")
    parser.add_argument("--tile-weight", type=finite_float, default=DEFAULTS["tile_weight"],
                        help="weight of the style term on each cell of a grid over every view, so that each part "
                             "carries the whole palette (no halves in different colours); 0 = off")
    parser.add_argument("--style-tiles", type=positive_int, default=DEFAULTS["style_tiles"],
                        help="cells per side of that grid")
    parser.add_argument("--balance-weight", type=finite_float, default=DEFAULTS["balance_weight"],
                        help="weight of a term that keeps each patch of the surface as light as an affine map of the "
                             "original's patches says (no light head over a dark body); 0 = off")
    parser.add_argument("--balance-regions", type=positive_int, default=DEFAULTS["balance_regions"],
                        help="patches of about equal area the surface is cut into for that term")
    parser.add_argument("--detail-weight", type=finite_float, default=DEFAULTS["detail_weight"],
                        help="weight of a term that keeps each view's local contrast up to the painting's (strokes as "
                             "vivid as its own, not a soft blend of its colours); 0 = off")
    parser.add_argument("--closeup-share", type=finite_float, default=DEFAULTS["closeup_share"],
                        help="share of the views that are close-ups of the parts seen least so far (0 to 1)")
    parser.add_argument("--closeup-zoom", type=finite_float, default=DEFAULTS["closeup_zoom"],
                        help="how much closer a close-up is than a full view (the painting is enlarged as much)")
    parser.add_argument("--roll-deg", type=finite_float, default=DEFAULTS["roll_deg"], metavar="DEGREES",
                        help=f"turn each view about its line of sight by up to this angle (default "
                             f"{DEFAULTS['roll_deg']:g}), so that the painting's upright shapes do not line up with the "
                             "world's up axis on the surface; 0: every view upright")
    parser.add_argument("--angle-weighting", action="store_true",
                        help="weight each pixel in the losses by how head-on it sees its surface")
    parser.add_argument("--param", choices=tuple(PARAMETERIZATIONS), default=DEFAULTS["param"])
    parser.add_argument("--init", choices=("random", "original"), default=DEFAULTS["init"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=DEFAULTS["device"])
    parser.add_argument("--views-per-step", type=positive_int, default=DEFAULTS["views_per_step"])
    parser.add_argument("--learning-rate", type=finite_float, default=DEFAULTS["learning_rate"])
    parser.add_argument("--style-size", type=int, default=DEFAULTS["style_size"],
                        help="longer side of the painting when its style is measured, in pixels (0 = the render size); "
                             "larger gives bigger brush strokes")
    parser.add_argument("--style-layers", default=DEFAULTS["style_layers"], metavar="LAYER[:WEIGHT],...",
                        help="style layers of the network and their weights (default: the network's tuned set)")
    parser.add_argument("--content-layer", default=DEFAULTS["content_layer"], help="default: the network's tuned layer")
    parser.add_argument("--jitter", type=finite_float, default=DEFAULTS["jitter"],
                        help="shift each view by up to this many pixels (transformation robustness)")
    parser.add_argument("--fourier-decay", type=finite_float, default=DEFAULTS["fourier_decay"],
                        help="power of the fourier parameterization's 1/f spectrum scaling")
    parser.add_argument("--fourier-floor", type=finite_float, default=DEFAULTS["fourier_floor"],
                        help="cycles per texture below which the spectrum's 1/f scale stops growing (higher: the "
                             "coarsest colour modes learn slower, islands split the palette less)")
    parser.add_argument("--coarse-fraction", type=finite_float, default=DEFAULTS["coarse_fraction"],
                        help="render at half size for this fraction of the steps first (coarse to fine)")
    parser.add_argument("--spectrum-size", type=int, default=DEFAULTS["spectrum_size"],
                        help="resolution of the optimized fourier spectrum, N x N (0 = auto: what the renders resolve, "
                             "rows x columns where the UVs are stretched along one texture axis; the texture is its "
                             "band-limited interpolation at --texture-size)")
    parser.add_argument("--view-pool", type=positive_int, default=DEFAULTS["view_pool"],
                        help="random views kept and reused (each rasterized once)")
    parser.add_argument("--view-reuse", type=positive_int, default=DEFAULTS["view_reuse"],
                        help="steps between fresh views in the pool (--view-pool 1 --view-reuse 1: a fresh view each step)")
    parser.add_argument("--channels-last", action="store_true",
                        help="run the network in NHWC memory order (a GPU speed option)")
    parser.add_argument("--network-precision", choices=("float32", "bfloat16"), default=DEFAULTS["network_precision"],
                        help="bfloat16: the network under autocast (a GPU speed option; losses stay float32)")
    parser.add_argument("--objective", help="channel:LAYER:INDEX to excite one feature channel instead of a style")
    parser.add_argument("--obj-up", choices=("Y", "Z"), default="Y", help="up axis of the OBJ file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressBar:
    """Progress with losses and ETA on stderr: one redrawn line on a terminal, otherwise a line at
    every tenth of the run (logs stay short). Snapshots go to a folder."""

    def __init__(self, quiet: bool, previews: Path | None, note: str = ""):
        self.quiet, self.previews = quiet, previews
        self.note: str | None = note  # printed with the network before the first line: once setup
        # succeeded, so errors stay one line
        self.redraw = sys.stderr.isatty()

    def __call__(self, p: Progress) -> None:
        if self.previews is not None and p.texture is not None:
            save_image(self.previews / f"step_{p.step:05d}.png", p.texture)
        if self.quiet:
            return
        if self.note is not None:
            print(f"network: {p.network}" + (f"\n{self.note}" if self.note else ""), file=sys.stderr, flush=True)
            self.note = None
        width = 24
        filled = width * p.step // p.steps
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {p.step}/{p.steps} loss {p.total:.4f} "
                f"(style {p.style:.4f}, content {p.content:.4f}) {_duration(p.elapsed)} ETA {_duration(p.eta)}")
        if self.redraw:
            print("\r" + line, end="" if p.step < p.steps else "\n", file=sys.stderr, flush=True)
        elif p.step == 1 or p.step == p.steps or p.step % max(1, p.steps // 10) == 0:
            print(line, file=sys.stderr, flush=True)


def job_settings(args: argparse.Namespace, preview_every: int = 0) -> StyleSettings:
    """The StyleSettings the job arguments give, validated."""
    return StyleSettings(
        steps=args.steps, texture_size=args.texture_size, render_size=args.render_size, features=args.features,
        weights=args.weights, style_weight=args.style_weight, content_weight=args.content_weight, param=args.param,
        init=args.init, seed=args.seed, device=args.device, views_per_step=args.views_per_step,
        learning_rate=args.learning_rate, objective=args.objective, style_size=args.style_size,
        style_layers=args.style_layers, content_layer=args.content_layer, jitter=args.jitter,
        fourier_decay=args.fourier_decay, fourier_floor=args.fourier_floor, coarse_fraction=args.coarse_fraction,
        spectrum_size=args.spectrum_size,
        view_pool=args.view_pool, view_reuse=args.view_reuse, channels_last=args.channels_last,
        network_precision=args.network_precision, style_scale=args.style_scale, style_blend=args.style_blend,
        preserve_colors=args.preserve_colors, style_loss=args.style_loss, seam_weight=args.seam_weight,
        angle_weighting=args.angle_weighting, layout_weight=args.layout_weight, tile_weight=args.tile_weight,
        style_tiles=args.style_tiles, balance_weight=args.balance_weight, balance_regions=args.balance_regions,
        detail_weight=args.detail_weight,
        closeup_share=args.closeup_share, closeup_zoom=args.closeup_zoom, roll_deg=args.roll_deg,
        preview_every=preview_every,
    ).validate()


@dataclass(frozen=True)
class JobInputs:
    model: Model  # the mesh file read: its mesh, atlas cells, triangles left out
    style: list[np.ndarray] | None  # the paintings
    original: np.ndarray | None  # the original texture
    settings: StyleSettings  # the job's: the atlas's texture size where the model's images make one
    editable: np.ndarray | None  # (F,) the faces restyled where the others keep a plain colour (None: all of them)

    @property
    def mesh(self) -> Mesh:
        return self.model.mesh


def read_job_inputs(args: argparse.Namespace, settings: StyleSettings) -> JobInputs:
    """The job arguments' files read and checked. A model whose materials show several images comes as one atlas of
    them (formats/model.py): each image gets a cell of --texture-size, so the job's texture is the atlas's size.
    Where it shows plain colours beside an image, only the faces showing an image are restyled, unless new UVs
    restyle the whole mesh."""
    model = read_model(args.mesh, args.obj_up)
    original = model.original(args.texture)
    settings = replace(settings, texture_size=model.texture_size(settings.texture_size))
    style = [load_image(path) for path in args.style] if args.style else None
    if settings.preserve_colors and original is None:
        raise StyleTexError("--preserve-colors keeps the original texture's colours: give it with --texture")
    if style is not None:
        parse_blend(settings.style_blend, len(style))
    return JobInputs(model, style, original, settings.validate(), model.restyled_faces(settings.unwrap))


def interruptible(work):
    """Runs work(cancel): Ctrl-C sets `cancel` (the job stops after the current step and its result is still
    written); a second Ctrl-C aborts."""
    cancel = threading.Event()

    def on_interrupt(signum, frame) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nstopping after this step (Ctrl-C again to abort without writing)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        return work(cancel)
    finally:
        signal.signal(signal.SIGINT, previous)


def write_report(path: str, report: dict) -> None:
    report_path = Path(path)
    try:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        raise StyleTexError(f"{report_path}: cannot write the report ({exc.strerror or exc})") from None


def job_notes(settings: StyleSettings, mesh: Mesh, original: np.ndarray | None = None, cells: int = 1,
              editable: np.ndarray | None = None, left_out: int = 0) -> str:
    """What the user should know before a run ("" if nothing): random features, a model's images restyled together
    as an atlas of `cells` (only the `editable` faces, where others show plain colours), triangles `left_out` for
    want of texture coordinates, a grey standing in for a missing original texture, and UVs that leave part of the
    surface too little texture room for strokes (no setting cures that, so it is said before the steps run)."""
    notes = ["--features random is for tests; it is not a quality mode"] if settings.features == "random" else []
    if cells > 1:
        cell = settings.texture_size // math.ceil(math.sqrt(cells))
        if editable is None:
            notes.append(f"the model's materials are restyled together in one {settings.texture_size}^2 atlas, each "
                         f"image in a {cell}^2 cell")
        else:
            notes.append(f"the model's materials show images and plain colours: the images are restyled in one "
                         f"{settings.texture_size}^2 atlas, each in a {cell}^2 cell, and the "
                         f"{int((~editable).sum())} faces of plain colour keep it")
    if left_out:
        notes.append(f"{left_out} of the model's triangles have no texture coordinates: they are left out (not "
                     f"restyled, and the views do not show them)")
    if uv := uv_room(mesh, settings.texture_size).note():
        notes.append(uv)
    if grey := stand_in_note(original, settings):
        notes.append(f"{grey} (give one with --texture)")
    return "\n".join(f"note: {note}" for note in notes)
