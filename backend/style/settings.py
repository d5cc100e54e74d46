"""Settings of a stylization job: one plain dataclass, the single source of defaults."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import StyleTexError
from ..features.network import KINDS as FEATURE_KINDS
from ..raster import MAX_SIZE
from ..texture.sample import BOUNDARIES, FILTERS
from .parameterization import PARAMETERIZATIONS


# The unwrap modes whose result lies in the mesh's own UVs: all that the service and batch manifests take (their
# results are written into the UVs they were given).
OWN_UV_UNWRAPS = ("auto", "keep", "round-trip")


@dataclass
class StyleSettings:
    """Sizes and steps follow the reference (1024^2 texture, 512^2 renders, 400 steps); the learning rate
    and content weight were tuned with the quality benchmark."""

    steps: int = 400
    texture_size: int = 1024
    render_size: int = 512
    features: str = "auto"  # auto | efficientnet_lite0 | vgg19 | vgg16 | random (tests only)
    weights: str | None = None  # local weights file for the chosen network
    style_weight: float = 1.0
    content_weight: float = 1.5  # tuned with the quality benchmark (with tile_weight 3): eyes and patches stay readable
    param: str = "fourier"  # fourier | pixel
    init: str = "random"  # random (as the reference) | original (needs an original texture)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    learning_rate: float = 0.03  # the reference's 0.05 left more pixel noise (docs/BENCHMARKS.md)
    views_per_step: int = 1
    style_loss: str = "gram"  # gram | nnfm (nearest-neighbour feature matching, nnfm.py) | mix (their mean)
    # The seam term (seam_loss.py) and the gutter continued across seams; 0 = both off. 3, not 1: the cells'
    # style term below pushes islands apart harder (seam ratio 1.45 at 1 on the many-island sphere).
    seam_weight: float = 3.0
    angle_weighting: bool = False  # pixels weighted by |cos| of their view angle in the losses (StyleMesh)
    # Keeps each view's coarse colour layout (an 8 x 8 grid of mean colours) that of the original's render
    # recoloured to the paintings' palette, so that separate regions cannot each take a different part of it.
    layout_weight: float = 0.0
    # The style term on each cell of a style_tiles x style_tiles grid over every view, against the painting's whole
    # Gram: each part of a view must carry the whole palette, so no region takes the light half of the painting
    # and the next the dark half (docs/BENCHMARKS.md: the split halves). 0 = off.
    tile_weight: float = 3.0
    style_tiles: int = 2
    # The balance term (balance.py): in every view, the mean luminance of each of balance_regions patches of the
    # surface kept what an affine map of the original's says, so no region is lighter or darker than its
    # neighbours unless the original's was. Needs an original texture. 0 = off. 1, not 4: splits of 0.025-0.094 over
    # six seeds on Spot and Bob (0.14-0.35 without), for less of the painting's closeness (docs/BENCHMARKS.md).
    balance_weight: float = 1.0
    balance_regions: int = 8
    # The detail term (detail.py): each view's luminance bands (between nested 3, 7 and 15 pixel means) at least as
    # vivid as the painting's at the scale its style is measured. 0 = off. 1: local contrast 0.89-1.33 of the
    # painting's on every pair but the thin tube (0.64-1.35 without), as close to the painting; 2 (in the term's
    # first form) cost closeness on 6 of 7 pairs (docs/BENCHMARKS.md).
    detail_weight: float = 1.0
    # Close-ups (closeups.py): this share of the fresh views frames a sphere closeup_zoom times smaller around a
    # point of the surface that the views so far have covered least, with the painting as much enlarged (strokes
    # keep their size on the surface). 0 = every view frames the whole object, as in the article.
    closeup_share: float = 0.0
    closeup_zoom: float = 3.0
    style_decay: float = 0.95  # style memory: EMA decay of the Gram matrices
    style_size: int = 0  # longer side of the style image for the targets; 0 = render_size
    style_scale: float = 1.0  # the painting's size relative to that when its style is measured: 2 = bigger strokes
    style_blend: str = ""  # "W1,W2,...": weights of several paintings' Gram matrices; "" = equal weights
    preserve_colors: bool = False  # keep the original texture's colours, take luminance from the style (colors.py)
    style_layers: str = ""  # "layer[:weight],..." of the network; "" = the network's tuned set
    content_layer: str = ""  # "" = the network's tuned layer
    jitter: float = 0.0  # each view's image shifted by up to this many pixels (transformation robustness)
    fourier_decay: float = 1.0  # power of the fourier spectrum's 1/f scaling
    fourier_floor: float = 1.0  # cycles per texture below which that scaling stops growing (the article: 1)
    mip_kernel: str = "tent"  # tent | box: the mip pyramid's filter in the renders (tent: no mosaic)
    coarse_fraction: float = 0.0  # the first this fraction of the steps renders at half size (coarse to fine)
    spectrum_size: int = 0  # fourier spectrum's resolution; 0 = auto: what the renders resolve (spectrum_size.py)
    # keep | even: restyle in new UVs of even texel density (mesh/unwrap.py), returned with the result |
    # round-trip: restyle in them, hand the texture back in the mesh's own UVs (round_trip.py) | auto: round-trip where
    # islands packed denser than the rest would come out calmer, else keep (round_trip.auto_unwrap)
    unwrap: str = "auto"
    view_pool: int = 32  # random views kept ...
    view_reuse: int = 8  # ... one replaced by a fresh view every this many steps (view_pool.py); 1 and 1 = fresh each step
    channels_last: bool = False  # network in NHWC memory order (a GPU option; docs/BENCHMARKS.md)
    network_precision: str = "float32"  # float32 | bfloat16 (autocast; a GPU option)
    objective: str | None = None  # "channel:LAYER:INDEX" to excite one feature channel instead of style
    preview_every: int = 0  # send the texture with progress every N steps; 0 = never
    margin: int = 16  # UV island padding in texels
    fov_deg: float = 30.0
    zoom_min: float = 1.0  # per-view zoom (1 = bounding sphere fills the frame), drawn uniformly
    zoom_max: float = 1.2
    # Each fresh view turned about its line of sight by an angle drawn within this many degrees (views.rolled). With
    # every view upright (0, as in the article) the painting's upright shapes follow the meridians and parallels that
    # the world's up axis draws on the surface, and spheres came out in squarish blocks. 45 ends them for a little
    # closeness to the painting in upright views (0.05 of the pasted painting's distance, median over 27 pairs); 180 (no
    # up at all) costs 0.12 (docs/BENCHMARKS.md).
    roll_deg: float = 45.0
    # anisotropic (a footprint's average, as Blender renders the texture) | auto (anisotropic where the UVs are
    # stretched, else trilinear: a little faster) | linear-mipmap-linear | linear
    filter: str = "anisotropic"
    boundary: str = "wrap"

    def validate(self) -> "StyleSettings":
        """Raises StyleTexError naming the first bad field; returns self."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise StyleTexError(f"setting {f.name} must be a finite number, got {value}")
        ints = {"steps": (1, 1_000_000), "texture_size": (8, 8192), "render_size": (16, MAX_SIZE),
                "views_per_step": (1, 64), "style_size": (0, 8192), "preview_every": (0, 1_000_000),
                "margin": (0, 4096), "seed": (0, 2**63 - 1),
                "spectrum_size": (0, self.texture_size), "view_pool": (1, 256), "view_reuse": (1, 1_000_000), "style_tiles": (1, 16),
                "balance_regions": (3, 256)}
        for name, (lo, hi) in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise StyleTexError(f"setting {name} must be an integer in [{lo}, {hi}], got {value!r}")
        positive = {"learning_rate": self.learning_rate, "fov_deg": self.fov_deg, "zoom_min": self.zoom_min}
        for name, value in positive.items():
            if not value > 0:
                raise StyleTexError(f"setting {name} must be positive, got {value}")
        for name in ("style_weight", "content_weight", "seam_weight", "layout_weight", "tile_weight", "balance_weight",
                     "detail_weight"):
            if getattr(self, name) < 0:
                raise StyleTexError(f"setting {name} must not be negative, got {getattr(self, name)}")
        if not 0 <= self.style_decay < 1:
            raise StyleTexError(f"setting style_decay must lie in [0, 1), got {self.style_decay}")
        if self.fov_deg >= 180:
            raise StyleTexError(f"setting fov_deg must be below 180, got {self.fov_deg}")
        if not 0 <= self.roll_deg <= 180:
            raise StyleTexError(f"setting roll_deg must lie in [0, 180], got {self.roll_deg}")
        if self.zoom_max < self.zoom_min:
            raise StyleTexError(f"setting zoom_max ({self.zoom_max}) is below zoom_min ({self.zoom_min})")
        choices = {"features": FEATURE_KINDS, "param": tuple(PARAMETERIZATIONS), "init": ("original", "random"),
                   "device": ("auto", "cpu", "cuda"), "filter": ("auto", *FILTERS), "boundary": BOUNDARIES,
                   "mip_kernel": ("box", "tent"), "style_loss": ("gram", "nnfm", "mix"), "network_precision": ("float32", "bfloat16"),
                   "unwrap": ("auto", "keep", "even", "round-trip")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise StyleTexError(f"setting {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.objective is not None:
            parse_objective(self.objective)
        if self.jitter < 0:
            raise StyleTexError(f"setting jitter must not be negative, got {self.jitter}")
        if not 0 <= self.closeup_share <= 1:
            raise StyleTexError(f"setting closeup_share must lie in [0, 1], got {self.closeup_share}")
        if not 1 <= self.closeup_zoom <= 16:
            raise StyleTexError(f"setting closeup_zoom must lie in [1, 16], got {self.closeup_zoom}")
        if self.closeup_share > 0 and self.style_longer_side() * self.closeup_zoom > 8192:
            raise StyleTexError(f"setting closeup_zoom {self.closeup_zoom} makes the painting "
                                f"{round(self.style_longer_side() * self.closeup_zoom)} pixels long in close-ups; at most 8192")
        if not 0 <= self.coarse_fraction <= 1:
            raise StyleTexError(f"setting coarse_fraction must lie in [0, 1], got {self.coarse_fraction}")
        if not 0 <= self.fourier_decay <= 4:
            raise StyleTexError(f"setting fourier_decay must lie in [0, 4], got {self.fourier_decay}")
        if not 1 <= self.fourier_floor <= 64:
            raise StyleTexError(f"setting fourier_floor must lie in [1, 64], got {self.fourier_floor}")
        for name in ("channels_last", "preserve_colors", "angle_weighting"):
            if not isinstance(getattr(self, name), bool):
                raise StyleTexError(f"setting {name} must be true or false, got {getattr(self, name)!r}")
        if not 0.125 <= self.style_scale <= 8:
            raise StyleTexError(f"setting style_scale must lie in [0.125, 8], got {self.style_scale}")
        if self.style_longer_side() > 8192:
            raise StyleTexError(f"setting style_scale {self.style_scale} makes the painting {self.style_longer_side()} "
                                "pixels long; at most 8192")
        parse_blend(self.style_blend)
        if 0 < self.spectrum_size < 8:
            raise StyleTexError(f"setting spectrum_size must be 0 (auto) or at least 8, got {self.spectrum_size}")
        if self.param == "pixel" and self.spectrum_size not in (0, self.texture_size):
            raise StyleTexError("setting spectrum_size applies to the fourier parameterization only (param is pixel)")
        parse_layer_weights(self.style_layers)
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def style_longer_side(self, render_size: int | None = None) -> int:
        """The painting's longer side, in pixels, when its style is measured for renders of `render_size`
        (default: the full render size; coarse-to-fine steps measure it smaller in proportion)."""
        size = render_size or self.render_size
        return max(16, round((self.style_size or self.render_size) * self.style_scale * size / self.render_size))


def settings_from_dict(raw: object, allowed: set[str] | None = None) -> StyleSettings:
    """Settings from JSON-like data (a client's, a manifest's): names must be fields (and in `allowed`), values
    of the field's type (ints count as floats); then validated. Raises StyleTexError naming the first problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise StyleTexError("settings must be an object")
    defaults = StyleSettings()
    names = {f.name for f in fields(StyleSettings)} if allowed is None else allowed
    for name, value in raw.items():
        if name not in names:
            raise StyleTexError(f"unknown or not allowed setting {name!r}")
        expected = type(getattr(defaults, name))
        if name == "objective":
            ok = value is None or isinstance(value, str)
        elif expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok:
            raise StyleTexError(f"setting {name!r} has the wrong type ({type(value).__name__})")
    return StyleSettings(**{k: float(v) if isinstance(getattr(defaults, k), float) else v for k, v in raw.items()}).validate()


def parse_blend(text: str, paintings: int | None = None) -> list[float] | None:
    """'1,0.5' -> [1.0, 0.5]; '' -> None (equal weights). With `paintings`, the count must match."""
    if not text.strip():
        return None
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        weights = [-1.0]
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not sum(weights) > 0:
        raise StyleTexError(f"style_blend must be comma-separated weights >= 0, not all 0, got {text!r}")
    if paintings is not None and len(weights) != paintings:
        raise StyleTexError(f"style_blend has {len(weights)} weights for {paintings} painting{'s' * (paintings != 1)}")
    return weights


def parse_layer_weights(text: str) -> dict[str, float]:
    """'relu1_1:2,relu2_1' -> {'relu1_1': 2.0, 'relu2_1': 1.0}; '' -> {} (the network's own set)."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            value = -1.0
        if not name or not (math.isfinite(value) and value >= 0):
            raise StyleTexError(f"style_layers must look like layer[:weight],... with weights >= 0, got {text!r}")
        out[name] = value
    return out


def parse_objective(text: str) -> tuple[str, int]:
    """'channel:LAYER:INDEX' -> (LAYER, INDEX)."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "channel" or not parts[1] or not parts[2].isdigit():
        raise StyleTexError(f"objective must look like channel:LAYER:INDEX (e.g. channel:relu4_1:17), got {text!r}")
    return parts[1], int(parts[2])
