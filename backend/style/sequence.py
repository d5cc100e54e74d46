"""Aligned interpolation on textures: N frames optimized together for objectives that shift from frame
to frame, after the seed article's first example.

Optimized alone, each frame lands in a local minimum of its own and features jump between frames.
Here every frame's texture is the decoded sum of a shared spectrum and one of its own
(parameterization.SequenceTexture), so what the frames can share they do; the objectives are unchanged.
Frame f of N has t = f / (N - 1) and one of three objectives:

- painting A to painting B: Gram targets (1 - t) G_A + t G_B (each frame has its own style memory);
- the original texture to a painting: the style weight ramps up with t and the content weight down,
  geometrically from ORIGINAL_HOLD times its setting at t = 0 to ORIGINAL_END times it at t = 1 (so the
  balance of the two moves evenly); every frame starts from the original texture, which a frame with the
  usual content weight would hardly leave;
- one feature channel to another: maximize (1 - t) a + t b of the two channels' mean activations.

A step draws its views once: each view is rasterized, planned and seen by the content layer once, and all
frames' renders of it go through the network in one batch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch

from ..devices import pick_device
from ..errors import StyleTexError
from ..mesh import Mesh
from ..texture import build_pyramid
from ..texture.alpha import AlphaCarry, split_alpha
from .colors import grey, keep_colors, matched_grey_painting
from .detail import detail_loss
from .engine import (StyleJob, alpha_previews, check_mesh, job_report, original_or_stand_in, painting_bands, run_steps,
                     style_targets, views_coverage)
from .finishing import finish_texture, uv_island_mask
from .losses import StyleMemory, channel_objective, content_loss, gram_style
from .parameterization import SequenceTexture, make_texture_parameter
from .progress import Progress
from .settings import StyleSettings, parse_objective

# From the original: the content weight runs from HOLD to END times the setting (the style weight from 0 to 1).
ORIGINAL_HOLD, ORIGINAL_END = 4.0, 0.25
MODES = ("styles", "from_original", "channels")


def frame_times(frames: int) -> list[float]:
    return [f / (frames - 1) for f in range(frames)]


@dataclass
class SequenceResult:
    frames: list[np.ndarray]  # N textures (S, S, 3, or 4 with the original's alpha) float32 in [0, 1], image layout, sRGB
    report: dict = field(default_factory=dict)
    cancelled: bool = False


class SequenceJob(StyleJob):
    """N frames' textures in one optimization; `step()` steps them all."""

    def __init__(self, mesh: Mesh, style_from, style_to, settings: StyleSettings, original_texture,
                 device: torch.device, frames: int, from_original: bool = False, objective_to: str = "",
                 independent: bool = False, see_through: np.ndarray | None = None):
        if frames < 2:
            raise StyleTexError(f"an interpolation needs at least 2 frames, got {frames}")
        if settings.param != "fourier":
            raise StyleTexError("interpolation shares a fourier spectrum between frames: it needs param fourier")
        if settings.style_loss != "gram":
            raise StyleTexError("interpolation blends Gram targets between frames: it needs style_loss gram")
        if settings.closeup_share > 0:
            raise StyleTexError("interpolation shows every frame the same full views: it needs closeup_share 0")
        chosen = [style_to is not None and len(style_to) > 0, from_original, bool(objective_to)]
        if sum(chosen) != 1:
            raise StyleTexError("an interpolation goes to a second painting, or from the original texture, or to a "
                                "second channel objective: give exactly one of them")
        self.mode = MODES[chosen.index(True)]
        if self.mode == "channels" and not settings.objective:
            raise StyleTexError("a channel interpolation needs the first objective too (objective channel:LAYER:INDEX)")
        if self.mode != "channels" and (style_from is None or len(style_from) == 0):
            raise StyleTexError("an interpolation needs the first painting")
        if self.mode == "from_original" and original_texture is None:
            raise StyleTexError("an interpolation from the original texture needs the original texture")
        self.objective_to = parse_objective(objective_to) if objective_to else None
        if from_original:  # frame 0 is the original texture: every frame starts there
            settings = replace(settings, init="original")
        super().__init__(mesh, style_from, settings, original_texture, device,
                         extra_layers=(self.objective_to[0],) if self.objective_to else (), see_through=see_through)
        if self.objective_to is not None:
            self.check_channel(self.objective_to, objective_to)
        if self.mode == "from_original":  # its first frames hold the original, plain or not
            self.content_weight = settings.content_weight
        self.frames, self.times, self.independent = frames, frame_times(frames), independent
        style_to = list(style_to) if isinstance(style_to, (list, tuple)) else [style_to] if style_to is not None else []
        self.paintings_to = [matched_grey_painting(p, original_texture) for p in style_to] \
            if self.preserve_colors else style_to
        self.targets_to_by_size: dict[int, dict[str, torch.Tensor]] = {}
        self.detail_to_by_size: dict[int, torch.Tensor] = {}
        start = self.original_square if self.init == "original" else None
        # Independent frames each start as a job of their own would (seed + f); aligned ones all from frame 0's.
        starts = [self.parameter] + [
            make_texture_parameter("fourier", settings.texture_size, settings.seed + f, start, device,
                                   settings.fourier_decay, self.working_shape, settings.fourier_floor)
            for f in range(1, frames if independent else 1)]
        self.parameter = SequenceTexture(starts, frames, independent).to(device)
        self.optimizer = torch.optim.Adam(self.parameter.parameters(), lr=settings.learning_rate, fused=True)
        self.memories = [StyleMemory(settings.style_decay) for _ in range(frames)]

    def frame_weights(self, t: float) -> tuple[float, float]:
        """(style weight, content weight) of the frame at t."""
        s = self.settings
        if self.mode == "from_original":
            return s.style_weight * t, self.content_weight * ORIGINAL_HOLD ** (1 - t) * ORIGINAL_END ** t
        return s.style_weight, self.content_weight

    def _frame_detail(self, t: float, frame: torch.Tensor, mask, size: int) -> torch.Tensor:
        """The detail term of frame t's renders (B, 3, H, W): towards the blend of both paintings' band contrasts
        (painting to painting), or ramped up with the style weight (from the original)."""
        s = self.settings
        if s.detail_weight == 0 or self.mode == "channels":
            return torch.zeros((), device=self.device)
        target, windows = self.detail_target(size), self.detail_windows(size)
        if self.mode == "styles":
            if size not in self.detail_to_by_size:
                self.detail_to_by_size[size] = painting_bands(self.paintings_to, None, s.style_longer_side(size),
                                                              self.device, windows)
            target = ((1 - t) * target**2 + t * self.detail_to_by_size[size] ** 2).sqrt()
        ramp = self.frame_weights(t)[0] / s.style_weight if s.style_weight > 0 else 1.0
        return ramp * s.detail_weight * detail_loss(frame, mask, target, windows)

    def targets_to(self, size: int) -> dict[str, torch.Tensor]:
        if size not in self.targets_to_by_size:
            self.targets_to_by_size[size] = style_targets(self.net, self.paintings_to, self.settings.style_longer_side(size),
                                                          self.device)
        return self.targets_to_by_size[size]

    def _frame_style(self, f: int, t: float, features: dict[str, torch.Tensor], mask, size: int) -> torch.Tensor:
        if self.mode == "channels":
            (layer_a, a), (layer_b, b) = self.objective, self.objective_to
            return -((1 - t) * channel_objective(features[layer_a], a, mask)
                     + t * channel_objective(features[layer_b], b, mask))
        targets = self.targets(size)
        if self.mode == "styles":
            to = self.targets_to(size)
            targets = {name: (1 - t) * targets[name] + t * to[name] for name in targets}
        return gram_style(features, mask, targets, self.layer_weights, self.memories[f], self.settings.tile_weight,
                          self.settings.style_tiles)

    def step(self) -> dict:
        s = self.settings
        size = self.render_size()
        if self.render_size_before not in (None, size):
            self.memories = [StyleMemory(s.style_decay) for _ in range(self.frames)]  # Grams of another scale
            self.pool.clear()
        self.render_size_before = size
        views = self.pool.draw(s.views_per_step)
        per = len(views)
        textures = self.parameter(self.working_shape)
        pyramids = [build_pyramid(textures[f], kernel=s.mip_kernel) for f in range(self.frames)]
        shaded = [self.shade_views(pyramid.texels, views) for pyramid in pyramids]
        learned = torch.stack([image for images, _ in shaded for image in images]).permute(0, 3, 1, 2)  # frame-major
        mask = views_coverage(views)
        features = self.net(grey(learned) if self.preserve_colors else learned)
        content = torch.cat([v.content for v in views]) if self.content_weight > 0 else None
        zero = torch.zeros((), device=self.device)
        totals, styles, contents, seams = [], [], [], []
        for f, t in enumerate(self.times):
            mine = {name: value[f * per:(f + 1) * per] for name, value in features.items()}
            style_weight, content_weight = self.frame_weights(t)
            style = self._frame_style(f, t, mine, mask, size)
            content_term = content_loss(mine[self.net.content_layer], content, mask) if content is not None else zero
            seam = shaded[f][1]
            frame = learned[f * per:(f + 1) * per]
            regional = self.layout_term(frame, views, mask) + self.balance_term(frame, views)  # coarse regions' terms
            regional = regional + self._frame_detail(t, frame, mask, size)
            totals.append(style_weight * style + content_weight * content_term + s.seam_weight * seam + regional)
            styles.append(style)
            contents.append(content_term)
            seams.append(seam)
        total = torch.stack(totals).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.steps_done += 1
        frame_totals = torch.stack(totals).detach().cpu().tolist()
        return {"total": sum(frame_totals) / self.frames, "style": torch.stack(styles).mean().item(),
                "content": torch.stack(contents).mean().item(), "seam": torch.stack(seams).mean().item(),
                "frames": frame_totals}

    def _frame_result(self, f: int) -> torch.Tensor:
        texture = self.parameter(frame=f)
        return keep_colors(texture, self.original_t) if self.preserve_colors else texture

    def texture(self) -> torch.Tensor:
        """The middle frame, as previews show it."""
        with torch.no_grad():
            return self._frame_result(self.frames // 2)

    def finish_frames(self) -> tuple[list[np.ndarray], float, np.ndarray]:
        """Every frame finished as one texture is, in one pass: the frames side by side as channels (filling,
        the gutter across seams and the padding treat channels alike), so the gutter map and the island
        masks are worked out once, not once a frame. Returns (frames, coverage, the (S, S) island mask)."""
        with torch.no_grad():
            island = uv_island_mask(self.mesh_t.uvs, self.settings.texture_size)
            frames = torch.cat([self._frame_result(f) for f in range(self.frames)], dim=-1)
            original = None if self.original_t is None else self.original_t.repeat(1, 1, self.frames)
            finished, coverage = finish_texture(frames, self.seen_texels(), island, original, self.settings.margin,
                                                self.seams, self.mesh_t.uvs, self.settings.boundary)
            out = [part.cpu().numpy().astype(np.float32) for part in finished.split(3, dim=-1)]
        return out, coverage, island.cpu().numpy()


def consecutive_differences(frames: Sequence[np.ndarray], where: np.ndarray | None = None) -> list[float]:
    """Mean |texel difference| between each frame and the next (over `where`, (S, S) bool, when given)."""
    out = []
    for a, b in zip(frames, frames[1:]):
        difference = np.abs(np.asarray(b, np.float64) - np.asarray(a, np.float64)).mean(axis=-1)
        out.append(float(difference[where].mean() if where is not None else difference.mean()))
    return out


def stylize_sequence(
    mesh: Mesh,
    style_from: np.ndarray | Sequence[np.ndarray] | None,
    style_to: np.ndarray | Sequence[np.ndarray] | None,
    settings: StyleSettings,
    frames: int,
    original_texture: np.ndarray | None = None,
    from_original: bool = False,
    objective_to: str = "",
    independent: bool = False,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> SequenceResult:
    """`frames` textures for `mesh` whose objective moves from the first to the last (see the module's
    docstring); `independent` optimizes the same frames without the shared spectrum, for comparison.
    Progress previews show the middle frame. The report adds, per frame, the mean of its last tenth of
    steps' losses ("final_losses") and the mean texel difference between consecutive finished frames over
    the texels the mesh uses ("consecutive_difference")."""
    settings.validate()
    if settings.unwrap not in ("auto", "keep"):  # auto keeps them here
        raise StyleTexError(f"unwrap {settings.unwrap} is for single textures: sequences keep the mesh's UVs")
    check_mesh(mesh)
    started = time.perf_counter()
    original_texture, alpha = split_alpha(original_texture)
    keep_alpha = AlphaCarry(alpha, settings.texture_size)  # every frame shows the original's alpha
    if alpha is not None and progress is not None:
        progress = alpha_previews(progress, keep_alpha)
    original_texture, stand_in = original_or_stand_in(original_texture, settings, needs_own=from_original)
    job = SequenceJob(mesh, style_from, style_to, settings, original_texture, pick_device(settings.device), frames,
                      from_original, objective_to, independent, keep_alpha.shown())
    history, cancelled, loop_seconds = run_steps(job, progress, cancel, started)
    textures, coverage, island = job.finish_frames()
    report = job_report(job, history, cancelled, started, loop_seconds, coverage)
    tail = [entry["frames"] for entry in history[-max(1, len(history) // 10):]]
    differences = consecutive_differences(textures, island)
    report.update({
        "frames": frames, "mode": job.mode, "independent": independent, "original_stand_in": stand_in,
        "frame_times": job.times,
        "final_losses": np.mean(tail, axis=0).tolist() if tail else [],
        "consecutive_difference": differences,
        "mean_consecutive_difference": float(np.mean(differences)),
    })
    return SequenceResult([keep_alpha(texture) for texture in textures], report, cancelled)
