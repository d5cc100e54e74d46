"""The optimization loop: render the mesh from random views with the original and the learned
texture, compare CNN features, and back-propagate into the texture parameters.

One function, `stylize`, takes plain arrays and settings; it reports through a callback, can be
cancelled from another thread between steps, and is deterministic for a seed on the CPU.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import pick_device
from ..errors import StyleTexError
from ..features import FeatureNet, build_feature_net
from ..mesh import Mesh
from ..render import MeshTensors, facing, place, plan_shading, rasterize_view, shade
from ..mesh.regions import surface_regions
from ..mesh.seams import find_seams
from ..mesh.unwrap import even_layout
from ..mesh.uv_room import starved_faces, uv_room
from ..texture import build_pyramid, pyramid_layout
from ..texture.alpha import AlphaCarry, split_alpha
from ..texture.mipmap import packed_rows
from ..texture.transfer import resize_square, transfer_texture
from ..texture.sample import gather_all, with_transpose
from ..raster import Fragments
from ..views import Camera, random_cameras, rolled
from .balance import ViewRegions, balance_loss
from .closeups import TRIES, CloseupPlanner, from_inside, sees_point
from .colors import LUMA, colour_transfer, grey, keep_colors, matched_grey_painting
from .detail import blended_bands, detail_loss, windows_for
from .finishing import editable_weight, finish_texture, uv_island_mask
from .losses import (Coverage, StyleMemory, channel_objective, colour_layout, content_loss, gram, gram_style,
                     layout_loss)
from .nnfm import feature_rows, nnfm_layers, nnfm_loss
from .parameterization import make_texture_parameter
from .plain_original import content_share, surface_spread
from .progress import Progress, StyleResult
from .round_trip import BackToOwnUVs, auto_unwrap, polish_steps
from .seam_loss import SeamTerm
from .settings import StyleSettings, parse_blend, parse_layer_weights, parse_objective
from .spectrum_size import filter_for, probe_footprints, resolvable_shape
from .view_pool import ANISOTROPIC_PROBES, PooledView, ViewPool, pool_capacity


def _image_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) -> (1, 3, H, W) float32."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None].to(device)


def resize_longer_side(image: np.ndarray, longer_side: int, device: torch.device) -> torch.Tensor:
    """(H, W, 3) -> (1, 3, h, w) on `device`, antialiased, with max(h, w) = longer_side."""
    h, w = image.shape[:2]
    scale = longer_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(_image_tensor(image, device), size=size, mode="bilinear", antialias=True)


def style_targets(net: FeatureNet, paintings: Sequence[np.ndarray], longer_side: int, device: torch.device,
                  blend: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """Gram matrices (C, C) of the paintings, each resized so its longer side is `longer_side`, averaged with
    the `blend` weights (default: equal). A Gram matrix is a mean over positions, so the blend is what one
    image holding the paintings' features in those proportions would give."""
    weights = torch.tensor(blend if blend is not None else [1.0] * len(paintings), dtype=torch.float64)
    weights = (weights / weights.sum()).tolist()
    targets: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for painting, weight in zip(paintings, weights):
            if weight == 0:
                continue
            features = net(resize_longer_side(painting, longer_side, device).clamp(0, 1))
            for name in net.style_layers:
                part = weight * gram(features[name])[0]
                targets[name] = part if name not in targets else targets[name] + part
    return targets


def luminance_spread(paintings: Sequence[np.ndarray], blend: Sequence[float] | None = None) -> float:
    """The standard deviation of luminance over the paintings' pixels, each painting weighted by `blend` (default:
    equal) as in style_targets: a painting of weight 0 counts for nothing, bit for bit. Two passes (the mean, then
    the squares about it), as numpy's std: one painting's spread is exactly its std."""
    weights = np.asarray(blend if blend is not None else [1.0] * len(paintings), np.float64)
    shades = [(w, np.asarray(p)[..., :3].reshape(-1, 3).astype(np.float64) @ np.asarray(LUMA))
              for p, w in zip(paintings, weights / weights.sum()) if w > 0]
    mean = sum(w * y.mean() for w, y in shades)
    return float(np.sqrt(sum(w * ((y - mean) ** 2).mean() for w, y in shades)))


def painting_features(net: FeatureNet, paintings: Sequence[np.ndarray], longer_side: int, device: torch.device,
                      layers: Sequence[str], blend: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """Per layer, the unit feature vectors (M, C) of every painting with a weight above 0, resized as for
    style_targets: what NNFM matches against."""
    weights = blend if blend is not None else [1.0] * len(paintings)
    rows: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    with torch.no_grad():
        for painting, weight in zip(paintings, weights):
            if weight == 0:
                continue
            features = net(resize_longer_side(painting, longer_side, device).clamp(0, 1))
            for name in layers:
                rows[name].append(feature_rows(features[name].float()))
    return {name: torch.cat(parts) for name, parts in rows.items()}


def painting_bands(paintings: Sequence[np.ndarray], blend: Sequence[float] | None, longer_side: int,
                   device: torch.device, windows: tuple[int, ...]) -> torch.Tensor:
    """The paintings' band contrasts (detail.py) over `windows`, each resized as for style_targets, mixed with the
    `blend` weights (default: equal; a painting of weight 0 counts for nothing)."""
    weights = list(blend) if blend is not None else [1.0] * len(paintings)
    with torch.no_grad():
        images = [resize_longer_side(p, longer_side, device).clamp(0, 1) if w > 0 else None
                  for p, w in zip(paintings, weights)]
        return blended_bands(images, weights, windows)


EDIT_FEATHER = 4  # texels over which a selected-only result blends into the original at the selection's border


def job_probe(mesh_t: MeshTensors, mesh: Mesh, settings: StyleSettings) -> torch.Tensor:
    """UV screen derivatives (N, 2, 2) of the probe views a job with `settings` takes of `mesh` (spectrum_size.py)."""
    probe = np.random.default_rng([settings.seed, 1])  # its own stream: the views of the run stay as they were
    return probe_footprints(mesh_t, mesh.center, mesh.radius, settings.render_size, probe, fov_deg=settings.fov_deg,
                            zoom_range=(settings.zoom_min, settings.zoom_max))


def round_trip_spectrum(mesh: Mesh, unwrapped: Mesh, settings: StyleSettings, device: torch.device) -> int:
    """The spectrum size for a round trip's job in the even layout `unwrapped`: 0 (auto, spectrum_size.py) unless the
    mesh's own UVs resolve more, then the own UVs' auto size. The trip back cannot put in detail that the even
    layout's spectrum lacks: Bob's face, whose front gets few texels in the even layout, came out as a grid of single
    samples of its 512^2 spectrum where the own UVs' auto size is 1024^2 (docs/BENCHMARKS.md)."""
    if settings.param != "fourier" or settings.spectrum_size:
        return settings.spectrum_size
    own = resolvable_shape(job_probe(MeshTensors.from_mesh(mesh, device), mesh, settings), settings.texture_size)
    even = resolvable_shape(job_probe(MeshTensors.from_mesh(unwrapped, device), unwrapped, settings),
                            settings.texture_size)
    return max(own) if own[0] * own[1] > even[0] * even[1] else 0


def views_coverage(views: list[PooledView]) -> Coverage:
    """The coverage of a step's views as one batch (a single view's own, with its per-layer resizings kept)."""
    return views[0].coverage if len(views) == 1 else Coverage(torch.cat([v.coverage.mask for v in views]))


def check_mesh(mesh: Mesh) -> None:
    if not mesh.face_areas().sum() > 0:
        raise StyleTexError("the mesh has zero surface area: nothing can be rendered")


class StyleJob:
    """The state of one stylization run; `step()` performs one optimization step."""

    def __init__(self, mesh: Mesh, style_image, settings: StyleSettings, original_texture, device: torch.device,
                 editable: np.ndarray | None = None, extra_layers: tuple[str, ...] = (),
                 see_through: np.ndarray | None = None):
        """style_image: one painting (H, W, 3) or a list of them; editable: see stylize(); extra_layers: network
        layers the caller reads besides the style and content layers; see_through: the original's alpha (H, W, 1) in
        this job's UVs, where some texel is not opaque (texture/alpha.py): the renders show the background through."""
        self.settings, self.device, self.mesh = settings, device, mesh
        self.objective = parse_objective(settings.objective) if settings.objective else None
        paintings = [] if style_image is None else list(style_image) if isinstance(style_image, (list, tuple)) else [style_image]
        if self.objective is None and not paintings:
            raise StyleTexError("a style image is needed (or an objective such as channel:relu4_1:17)")
        self.blend = parse_blend(settings.style_blend, len(paintings)) if paintings else None
        self.preserve_colors = settings.preserve_colors
        if self.preserve_colors and original_texture is None:
            raise StyleTexError("preserve_colors keeps the original texture's colours: it needs an original texture")
        if self.preserve_colors:
            paintings = [matched_grey_painting(p, original_texture) for p in paintings]
        self.editable = None
        if editable is not None:
            editable = np.asarray(editable)
            if editable.shape != (len(mesh.faces),) or editable.dtype != bool:
                raise StyleTexError(f"editable faces must be {len(mesh.faces)} booleans, one per face, got {editable.dtype} "
                                    f"{list(editable.shape)}")
            if original_texture is None:
                raise StyleTexError("restyling selected faces only keeps the others' texels: it needs an original texture")
            if not editable.any():
                raise StyleTexError("no face is selected to restyle")
            self.editable = torch.from_numpy(editable).to(device)
        self.init = settings.init if original_texture is not None else "random"
        torch.manual_seed(settings.seed)
        extra = ((self.objective[0],) if self.objective else ()) + tuple(extra_layers)
        chosen = parse_layer_weights(settings.style_layers)
        self.net = build_feature_net(settings.features, device, settings.weights, tuple(chosen) or None,
                                     settings.content_layer or None, extra, settings.seed)
        self.net.use_speed_options(settings.channels_last, settings.network_precision == "bfloat16")
        if self.objective is not None:
            self.check_channel(self.objective, settings.objective)
        size = settings.texture_size
        self.original_square = resize_square(original_texture[..., :3], size) if original_texture is not None else None
        self.original_t = torch.from_numpy(self.original_square).to(device) if self.original_square is not None else None
        start = self.original_square if self.init == "original" else None
        self.mesh_t = MeshTensors.from_mesh(mesh, device)
        self._probed: torch.Tensor | None = None
        self.parameter = make_texture_parameter(settings.param, size, settings.seed, start, device, settings.fourier_decay,
                                                self._spectrum_shape(start is not None), settings.fourier_floor)
        self.working_shape = self.parameter.working_shape  # (rows, columns): the texture the renders read while optimizing
        self.filter = self._filter()
        self.layout = pyramid_layout(*self.working_shape, device=device)
        self.seams = find_seams(mesh, settings.boundary == "wrap") if settings.seam_weight > 0 else None
        self.seam_term = (SeamTerm(self.seams, *self.layout, settings.boundary, uvs=self.mesh_t.uvs)
                          if self.seams is not None else None)
        self.table_rows = packed_rows(*self.layout)
        # fused: one kernel for Adam's update of the spectrum (5.7 -> 2.4 ms a step for 3.2 M values on 2 cores)
        self.optimizer = torch.optim.Adam(self.parameter.parameters(), lr=settings.learning_rate, fused=True)
        # The original's alpha, looked up as the original is: each pixel of a view shows the mesh as much as it is
        # opaque and the background through the rest, in both renders, and counts as much in every loss.
        self.opacity_pyramid = None
        if see_through is not None:
            alpha = torch.from_numpy(np.ascontiguousarray(see_through, dtype=np.float32)).to(device)
            self.opacity_pyramid = build_pyramid(alpha, kernel=settings.mip_kernel)
        self.original_pyramid = None
        if original_texture is not None:
            texture = torch.from_numpy(np.ascontiguousarray(original_texture, dtype=np.float32)).to(device)
            self.original_pyramid = build_pyramid(texture, kernel=settings.mip_kernel)
        self.paintings = paintings
        # NNFM pulls every place to its nearest painting feature, so content in the original's colours would
        # keep them: as ARF does, the content renders are recoloured to the paintings' colour statistics.
        self.recolour = None
        recolour_wanted = settings.style_loss != "gram" or settings.layout_weight > 0
        if recolour_wanted and original_texture is not None and not self.preserve_colors and paintings:
            matrix, offset = colour_transfer(np.asarray(original_texture)[..., :3], np.concatenate(
                [np.asarray(p)[..., :3].reshape(-1, 3) for p in paintings]))
            self.recolour = (torch.from_numpy(matrix).to(device), torch.from_numpy(offset).to(device))
        # (render size, the painting's enlargement) -> the painting's Grams, and NNFM's layers and features
        self.targets_by_size: dict[tuple[int, float], dict[str, torch.Tensor]] = {}
        self.nearest_by_size: dict[tuple[int, float], tuple[dict[str, float], dict[str, torch.Tensor]]] = {}
        self.detail_by_size: dict[tuple[int, float], torch.Tensor] = {}  # the paintings' band contrasts (detail.py)
        self.steps_done = 0
        self.render_size_before: int | None = None  # the last step's render size
        self.layer_weights = chosen or dict(zip(self.net.style_layers, self.net.style_weights))
        self.content_weight = 0.0
        if self.original_pyramid is not None and settings.content_weight > 0:  # as much as it has markings to keep
            spread = surface_spread(mesh, original_texture, settings.boundary)
            self.content_weight = settings.content_weight * content_share(spread)
        self.memory_by_scale: dict[float, StyleMemory] = {}  # one per enlargement: their Grams average different targets
        # The balance term's patches of the surface and the paintings' luminance spread (balance.py).
        self.regions, self.painting_spread = None, 1.0
        if settings.balance_weight > 0 and self.original_pyramid is not None and paintings:
            self.regions = surface_regions(self.mesh_t.positions, self.mesh_t.faces, settings.balance_regions)
            self.painting_spread = luminance_spread(paintings, self.blend)
        self.closeups = CloseupPlanner(mesh, settings.closeup_zoom, settings.fov_deg, device) \
            if settings.closeup_share > 0 else None
        self.rng = np.random.default_rng(settings.seed)
        capacity = pool_capacity(settings.view_pool, settings.views_per_step, settings.render_size,
                                 ANISOTROPIC_PROBES if self.filter == "anisotropic" else 1, self.table_rows)
        self.pool = ViewPool(capacity, settings.view_reuse, self._make_view, self.rng)
        # Faces that covered at least one pixel centre in some view. Texels count as seen when they
        # lie under a seen face in UV space. (Gradients are no guide: coarse mip levels average
        # across UV islands, so hidden texels receive gradient too.)
        self.face_seen = torch.zeros(len(mesh.faces), dtype=torch.bool, device=device)
        self._editable_weight: torch.Tensor | None = None

    def check_channel(self, objective: tuple[str, int], text: str) -> None:
        """An index past the layer's channels would slice out nothing and optimize nothing."""
        layer, channel = objective
        with torch.no_grad():
            channels = self.net(torch.zeros(1, 3, 32, 32, device=self.device))[layer].shape[1]
        if channel >= channels:
            raise StyleTexError(f"objective {text}: layer {layer} has {channels} channels "
                                f"(0 to {channels - 1}), there is no channel {channel}")

    def _spectrum_shape(self, from_original: bool) -> tuple[int, int]:
        """The fourier spectrum's (rows, columns): as set (square), else the texture's when starting from the
        original (all of its detail is kept), else what the renders resolve (spectrum_size.py)."""
        s = self.settings
        if s.param != "fourier" or (from_original and not s.spectrum_size):
            return s.texture_size, s.texture_size
        if s.spectrum_size:
            return s.spectrum_size, s.spectrum_size
        return resolvable_shape(self._probe_footprints(), s.texture_size)

    def _probe_footprints(self) -> torch.Tensor:
        """UV screen derivatives (N, 2, 2) of a few probe views (spectrum_size.py), rasterized once per job."""
        if self._probed is None:
            self._probed = job_probe(self.mesh_t, self.mesh, self.settings)
        return self._probed

    def _filter(self) -> str:
        """The texture filter: as set, else anisotropic where the probe views' footprints in the working texture's
        texels are stretched (UVs stretched along no texture axis, or a spectrum set square)."""
        if self.settings.filter != "auto":
            return self.settings.filter
        return filter_for(self._probe_footprints(), self.working_shape)

    def render_size(self) -> int:
        """This step's render size: half size for the first coarse_fraction of the steps (coarse to fine)."""
        s = self.settings
        return max(16, s.render_size // 2) if self.steps_done < s.coarse_fraction * s.steps else s.render_size

    def painting_side(self, size: int, scale: float = 1.0) -> int:
        """The painting's longer side for views of render size `size` whose pixels cover 1 / scale of a full view's
        surface length (a close-up's zoom): `scale` times what full views measure it at."""
        return round(self.settings.style_longer_side(size) * scale)

    def targets(self, size: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
        """The painting's Gram matrices as seen at render size `size` (its scale follows the renders') and
        enlarged `scale` times."""
        if (size, scale) not in self.targets_by_size:
            self.targets_by_size[size, scale] = style_targets(self.net, self.paintings, self.painting_side(size, scale),
                                                              self.device, self.blend)
        return self.targets_by_size[size, scale]

    def nnfm_targets(self, size: int, scale: float = 1.0) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        """NNFM's layers with their weights, and the painting's unit feature vectors at them, for renders of
        `size` (the painting enlarged `scale` times)."""
        if (size, scale) not in self.nearest_by_size:
            with torch.no_grad():
                shapes = {n: f.shape[-1] for n, f in self.net(torch.zeros(1, 3, size, size, device=self.device)).items()}
            layers = nnfm_layers(self.layer_weights, shapes, size)
            rows = painting_features(self.net, self.paintings, self.painting_side(size, scale), self.device,
                                     list(layers), self.blend)
            self.nearest_by_size[size, scale] = (layers, rows)
        return self.nearest_by_size[size, scale]

    def memory(self, scale: float = 1.0) -> StyleMemory:
        """The style memory of the views of one enlargement."""
        if scale not in self.memory_by_scale:
            self.memory_by_scale[scale] = StyleMemory(self.settings.style_decay)
        return self.memory_by_scale[scale]

    def _camera(self, size: int, shift) -> tuple[Camera, Fragments, float]:
        """This fresh view's camera, its fragments and the painting's enlargement for it: a close-up (closeups.py)
        with probability closeup_share, else a view of the whole object from a direction uniform on the sphere."""
        s = self.settings
        fragments = None
        if self.closeups is not None and self.rng.uniform() < s.closeup_share:
            for _ in range(TRIES):  # a point behind other surface, or an eye inside the object: draw again
                camera = self._turned(self.closeups.draw(self.rng)[2])
                fragments = rasterize_view(self.mesh_t, camera, size, shift)
                if sees_point(fragments.depth, camera) and not from_inside(
                        self.closeups.outward_facing(self.mesh_t, fragments, camera.eye), fragments.mask):
                    break
                fragments = None
        scale = s.closeup_zoom
        if fragments is None:
            camera = self._turned(random_cameras(self.mesh.center, self.mesh.radius, 1, self.rng, s.fov_deg,
                                                 (s.zoom_min, s.zoom_max))[0])
            fragments = rasterize_view(self.mesh_t, camera, size, shift)
            scale = 1.0
        if self.closeups is not None:
            self.closeups.record(fragments.face_ids)
        return camera, fragments, scale

    def _turned(self, camera: Camera) -> Camera:
        """`camera` rolled by an angle drawn uniformly within roll_deg: the painting's upright shapes (a cypress, a
        horizon) then lie every way on the surface, not along the meridians and parallels that the world's up draws
        on it (docs/BENCHMARKS.md)."""
        roll = self.settings.roll_deg
        return rolled(camera, self.rng.uniform(-roll, roll)) if roll > 0 else camera

    def _make_view(self) -> PooledView:
        """A fresh random view at this step's render size, planned for the learned texture's pyramid,
        with the content layer's features of the original texture's render."""
        s = self.settings
        size = self.render_size_before
        shift = tuple(self.rng.uniform(-s.jitter, s.jitter, 2)) if s.jitter > 0 else None
        camera, fragments, scale = self._camera(size, shift)
        # Both renders share one random background colour, so no feature can rely on it.
        background = torch.from_numpy(self.rng.uniform(0, 1, 3).astype(np.float32)).to(self.device)
        plan = plan_shading(fragments, self.mesh_t.uvs, *self.layout, self.filter, s.boundary)
        plan = replace(plan, samples=with_transpose(plan.samples, self.table_rows))  # shown view_reuse times on average
        content, fixed, layout, regions = None, None, None, None
        opacity = self.opacity(fragments)
        shown = fragments.mask if opacity is None else fragments.mask & (opacity[..., 0] >= 0.5)  # mostly the mesh
        wants_layout = self.settings.layout_weight > 0 and self.recolour is not None
        if self.content_weight > 0 or self.editable is not None or wants_layout or self.regions is not None:
            with torch.no_grad():
                original = shade(fragments, self.mesh_t.uvs, self.original_pyramid, self.filter, s.boundary, background)
                if opacity is not None:
                    original = torch.lerp(background, original, opacity)
                image = original.permute(2, 0, 1)[None]
                if self.recolour is not None:
                    matrix, offset = self.recolour
                    recoloured = (torch.einsum("ij,bjhw->bihw", matrix, image) + offset.view(1, 3, 1, 1)).clamp(0, 1)
                    if wants_layout:
                        layout = colour_layout(recoloured, shown.to(torch.float32)[None, None])
                    if self.settings.style_loss != "gram":  # NNFM's content is the recoloured render
                        image = recoloured
                if self.regions is not None:
                    regions = ViewRegions.of(fragments.face_ids, shown, self.regions, s.balance_regions, original)
                if self.content_weight > 0:
                    content = self.net.content(grey(image) if self.preserve_colors else image)
                if self.editable is not None:  # faces that may not change show the original texture
                    frozen = fragments.mask & ~self.editable[fragments.face_ids.clamp(min=0)]
                    pixels = torch.nonzero(frozen.reshape(-1)).squeeze(1)
                    fixed = (pixels, original.reshape(-1, original.shape[-1])[pixels])
        self.face_seen[fragments.face_ids[fragments.mask]] = True
        weight = fragments.mask.to(torch.float32)
        if s.angle_weighting:  # a pixel counts as much as it sees its surface head-on (StyleMesh's cos weighting)
            weight = facing(self.mesh_t, fragments, camera.eye).to(torch.float32)
        if opacity is not None:
            weight = weight * opacity[..., 0]
        return PooledView(plan, Coverage(weight[None, None]), background, content, fixed, layout, scale, regions,
                          opacity, camera)

    def opacity(self, fragments: Fragments) -> torch.Tensor | None:
        """How opaque the original's alpha makes each pixel of a view (H, W, 1), 0 off the mesh; None without one."""
        if self.opacity_pyramid is None:
            return None
        with torch.no_grad():
            return shade(fragments, self.mesh_t.uvs, self.opacity_pyramid, self.filter, self.settings.boundary, 0.0)

    def step(self) -> dict[str, float]:
        size = self.render_size()
        if self.render_size_before not in (None, size):
            self.memory_by_scale = {}  # Grams of another scale: start afresh
            self.pool.clear()  # and views of another size
        self.render_size_before = size
        views = self.pool.draw(self.settings.views_per_step)
        pyramid = build_pyramid(self.parameter(self.working_shape), kernel=self.settings.mip_kernel)
        images, seam = self.shade_views(pyramid.texels, views)
        learned = torch.stack(images).permute(0, 3, 1, 2)
        mask = views_coverage(views)
        features = self.net(grey(learned) if self.preserve_colors else learned)
        zero = torch.zeros((), device=self.device)
        if self.objective is not None:
            layer, channel = self.objective
            style = -channel_objective(features[layer], channel, mask)
        else:
            style = self.style_term(features, mask, views, size)
        content_term = zero
        if self.content_weight > 0:
            content = torch.cat([v.content for v in views])
            content_term = content_loss(features[self.net.content_layer], content, mask)
        total = self.settings.style_weight * style + self.content_weight * content_term
        total = total + self.settings.seam_weight * seam
        layout, balance = self.layout_term(learned, views, mask), self.balance_term(learned, views)
        detail = self.detail_term(learned, views, mask, size)
        total = total + layout + balance + detail
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.steps_done += 1
        return {"total": total.item(), "style": style.item(), "content": content_term.item(), "seam": seam.item(),
                "detail": detail.item(), "balance": balance.item(), "layout": layout.item()}  # the last three weighted

    def style_term(self, features: dict[str, torch.Tensor], mask: Coverage, views: list[PooledView],
                   size: int) -> torch.Tensor:
        """The style loss of a step's views; views of different enlargements (close-ups) are compared with their own
        targets and memories, each group weighted by its share of the views."""
        scales = sorted({v.scale for v in views})
        style = features[next(iter(self.layer_weights))].new_zeros(())
        for scale in scales:
            if len(scales) == 1:
                part_features, part_mask = features, mask
            else:
                pick = torch.tensor([i for i, v in enumerate(views) if v.scale == scale], device=self.device)
                part_features = {name: f.index_select(0, pick) for name, f in features.items()}
                part_mask = Coverage(mask.mask.index_select(0, pick))
            parts = []
            if self.settings.style_loss in ("gram", "mix"):
                parts.append(gram_style(part_features, part_mask, self.targets(size, scale), self.layer_weights,
                                        self.memory(scale), self.settings.tile_weight, self.settings.style_tiles))
            if self.settings.style_loss in ("nnfm", "mix"):
                layers, rows = self.nnfm_targets(size, scale)
                parts.append(nnfm_loss(part_features, rows, layers, part_mask))
            share = sum(v.scale == scale for v in views) / len(views)
            style = style + share * sum(parts) / len(parts)
        return style

    def shade_views(self, texels: torch.Tensor, views: list[PooledView]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The renders (H, W, C) of `views` from a pyramid's texel table, and the seam term on it (zero when off).
        All their lookups are one gather, so the table's gradient is zeroed and accumulated once."""
        seam_plan = self.seam_term.plan if self.seam_term is not None else None
        gathered = gather_all(texels, [v.plan.samples for v in views] + ([seam_plan] if seam_plan is not None else []))
        images = [self._shown(v, place(v.plan, colors, v.background)) for v, colors in zip(views, gathered)]
        seam = self.seam_term.compare(gathered[-1]) if seam_plan is not None else texels.new_zeros(())
        return images, seam

    def layout_term(self, learned: torch.Tensor, views: list[PooledView], mask: Coverage) -> torch.Tensor:
        """The weighted colour layout term of renders (B, 3, H, W) of `views` (zero when it is off)."""
        if views[0].layout is None:
            return torch.zeros((), device=self.device)
        target = torch.cat([v.layout[0] for v in views])
        covered = torch.cat([v.layout[1] for v in views])
        return self.settings.layout_weight * layout_loss(learned, mask.mask, target, covered)

    def balance_term(self, learned: torch.Tensor, views: list[PooledView]) -> torch.Tensor:
        """The weighted balance term of renders (B, 3, H, W) of `views` (zero when it is off)."""
        if views[0].regions is None:
            return torch.zeros((), device=self.device)
        return self.settings.balance_weight * balance_loss(learned, [v.regions for v in views], self.painting_spread)

    def detail_term(self, learned: torch.Tensor, views: list[PooledView], mask: Coverage, size: int) -> torch.Tensor:
        """The weighted detail term of renders (B, 3, H, W) of `views` at render size `size` (zero when it is off)."""
        if self.settings.detail_weight == 0 or not self.paintings or self.objective is not None:
            return torch.zeros((), device=self.device)
        scales = {v.scale for v in views}
        if len(scales) == 1:
            scale = scales.pop()
            loss = detail_loss(learned, mask, self.detail_target(size, scale), self.detail_windows(size, scale))
        else:  # close-ups beside full views: each view with its own windows (the mean over views, as above)
            loss = sum(detail_loss(learned[i : i + 1], v.coverage, self.detail_target(size, v.scale),
                                   self.detail_windows(size, v.scale)) for i, v in enumerate(views)) / len(views)
        return self.settings.detail_weight * loss

    def detail_windows(self, size: int, scale: float = 1.0) -> tuple[int, ...]:
        """The detail term's windows for renders of `size` enlarged `scale` times: widened as the painting's strokes
        look larger on them (detail.py)."""
        return windows_for(self.painting_side(size, scale) / size)

    def detail_target(self, size: int, scale: float = 1.0) -> torch.Tensor:
        """The paintings' band contrasts (detail.py) at the size their style is measured for renders of `size`
        (enlarged `scale` times), over detail_windows: the root of their blend-weighted variances."""
        if (size, scale) not in self.detail_by_size:
            side = self.painting_side(size, scale)
            self.detail_by_size[size, scale] = painting_bands(self.paintings, self.blend, side, self.device,
                                                              self.detail_windows(size, scale))
        return self.detail_by_size[size, scale]

    @staticmethod
    def _shown(view: PooledView, image: torch.Tensor) -> torch.Tensor:
        """The learned render (H, W, C) as shown: the background through the original's see-through texels, and the
        pixels of faces that may not change keep the original's."""
        if view.opacity is not None:
            image = torch.lerp(view.background, image, view.opacity)
        if view.fixed is None:
            return image
        pixels, colors = view.fixed
        return image.reshape(-1, image.shape[-1]).index_put((pixels,), colors).view(image.shape)

    def _keep_unselected(self, texture: torch.Tensor, blend: bool = True) -> torch.Tensor:
        """Selected-only jobs: the original texel wherever the weight is 0, a blend at the selection's border (unless
        not `blend`: the texture as it is there)."""
        if self.editable is None:
            return texture
        if self._editable_weight is None:
            self._editable_weight = editable_weight(self.mesh_t.uvs, self.editable, self.settings.texture_size,
                                                    EDIT_FEATHER, self.settings.margin)[..., None]
        original, weight = self.original_t, self._editable_weight
        return torch.where(weight > 0, original + weight * (texture - original) if blend else texture, original)

    def _result(self) -> torch.Tensor:
        """The optimized texture at the texture size; with preserve_colors, in the original's colours."""
        texture = self.parameter()
        return keep_colors(texture, self.original_t) if self.preserve_colors else texture

    def texture(self) -> torch.Tensor:
        """The current texture as it would be handed out (no gradient): previews show this."""
        with torch.no_grad():
            return self._keep_unselected(self._result())

    def seen_texels(self) -> torch.Tensor:
        """(S, S) bool: texels under the UV footprint of a face that some view so far has shown."""
        size = self.settings.texture_size
        if not bool(self.face_seen.any()):
            return torch.zeros(size, size, dtype=torch.bool, device=self.device)
        return uv_island_mask(self.mesh_t.uvs[self.face_seen], size)

    def finish(self) -> tuple[np.ndarray, float]:
        with torch.no_grad():
            island = uv_island_mask(self.mesh_t.uvs, self.settings.texture_size)
            seen = self.seen_texels()
            # Faces that may not change are padded with the original's colours, not the parameter's unused values
            # under them; and kept once more after the padding, which must not reach their texels.
            s = self.settings
            finished, coverage = finish_texture(self._keep_unselected(self._result(), blend=False), seen, island,
                                                self.original_t, s.margin, self.seams, self.mesh_t.uvs, s.boundary)
            finished = self._keep_unselected(finished)
        return finished.cpu().numpy().astype(np.float32), coverage


# A job without an original texture has no content term and no balance term, and the style term alone grew a
# patchwork of blocks in the painting's colours, a deep layer's stride or two wide (the two-island sphere and Bob
# with The Starry Night; docs/BENCHMARKS.md). An object without a texture shows its material's colour, by default in
# Blender a grey of 0.8, and a uniform light original is what the procedural meshes were tuned on: such a grey stands in.
STAND_IN_GREY = 0.8


def original_or_stand_in(original_texture: np.ndarray | None, settings: StyleSettings, needs_own: bool = False
                         ) -> tuple[np.ndarray | None, bool]:
    """The original texture, or a uniform STAND_IN_GREY one where none is given; and whether it stands in. Not for a
    channel objective (what it shows is the network's alone), nor where the job `needs_own` original (selected faces,
    preserved colours, a morph from the original): those say that they need one."""
    if original_texture is not None or settings.objective or settings.preserve_colors or needs_own:
        return original_texture, False
    return np.full((8, 8, 3), STAND_IN_GREY, np.float32), True


def stand_in_note(original_texture: np.ndarray | None, settings: StyleSettings) -> str:
    """What a user is told where a grey stands in for a missing original (original_or_stand_in), else ""."""
    if not original_or_stand_in(original_texture, settings)[1]:
        return ""
    return f"no original texture: a uniform grey of {STAND_IN_GREY:g} stands in for it, as an untextured object shows"


def stylize(
    mesh: Mesh,
    style_image: np.ndarray | Sequence[np.ndarray] | None,
    settings: StyleSettings,
    original_texture: np.ndarray | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    editable: np.ndarray | None = None,
) -> StyleResult:
    """Optimizes a texture for `mesh` so that its renders carry the style of `style_image`.

    style_image: (H, W, 3) float in [0, 1], or a list of paintings whose styles settings.style_blend mixes
    (not needed with a channel objective).
    original_texture: (H, W, 3 or 4) float in [0, 1] or None; it gives the content renders, the start
    (init 'original') and the texels no view saw. None: a uniform grey stands in (original_or_stand_in; the report's
    "original_stand_in"). Its alpha, where some texel is not opaque, is not styled: the result and the previews
    carry it as a fourth channel, in their own layout (texture/alpha.py).
    editable: (F,) bool or None: restyle only these faces. The others render with the original texture (so the
    style fits their surroundings) and their texels keep the original's values exactly; the result blends in
    over EDIT_FEATHER texels from theirs (finishing.editable_weight). Needs the original texture.
    Returns the finished texture (texture_size^2, 3 or 4 channels, image layout, values as in the original: sRGB) and
    a report. A cancelled job stops before its next step and returns what it has, finished. With
    settings.unwrap "even" the mesh is restyled in new UVs (mesh/unwrap.py), the original texture moved into
    them, and the result carries those UVs; with "round-trip" it is restyled in them and the texture handed back
    in the mesh's own UVs (round_trip.py); "auto" (the default) takes the round trip where it pays and keeps the own
    UVs elsewhere (round_trip.auto_unwrap). The report says which ("unwrap") and why ("unwrap_reason").
    """
    settings.validate()
    check_mesh(mesh)
    started = time.perf_counter()
    original_texture, alpha = split_alpha(original_texture)
    keep_alpha = AlphaCarry(alpha, settings.texture_size)  # previews and the result show the original's alpha
    if alpha is not None and progress is not None:
        progress = alpha_previews(progress, keep_alpha)
    original_texture, stand_in = original_or_stand_in(original_texture, settings, needs_own=editable is not None)
    unwrap, layout, reason = settings.unwrap, None, ""
    if unwrap == "auto":
        if editable is not None:
            unwrap, reason = "keep", "kept the own UVs: selected faces only keep the other faces' texels in them"
        elif settings.preserve_colors:  # the trip back filters the texture; measured to lose the painting's structure
            unwrap, reason = "keep", "kept the own UVs: preserve colors keeps each texel's own colours in them"
        else:
            layout, reason = auto_unwrap(mesh, settings.texture_size, settings.boundary == "wrap")
            unwrap = "round-trip" if layout is not None else "keep"
    if unwrap != "keep" and editable is not None:
        raise StyleTexError(f"unwrap {unwrap} restyles the whole mesh in new UVs: it cannot keep "
                            "unselected faces' texels")
    if unwrap == "round-trip":
        result = _round_trip(mesh, style_image, settings, original_texture, progress, cancel, started, layout, alpha)
    else:
        new_uvs = None
        if unwrap == "even":
            mesh, original_texture, moved_alpha = _in_even_uvs(mesh, original_texture, settings.texture_size,
                                                               alpha=alpha)
            new_uvs = mesh.uvs
            keep_alpha.place(moved_alpha)
        job = StyleJob(mesh, style_image, settings, original_texture, pick_device(settings.device), editable,
                       see_through=keep_alpha.shown())
        history, cancelled, loop_seconds = run_steps(job, progress, cancel, started)
        texture, coverage = job.finish()
        report = job_report(job, history, cancelled, started, loop_seconds, coverage)
        result = StyleResult(texture, report, cancelled, new_uvs)
    result.report.update(unwrap=unwrap, unwrap_reason=reason, original_stand_in=stand_in)
    result.texture = keep_alpha(result.texture)
    return result


def alpha_previews(progress: Callable[[Progress], None], keep_alpha: AlphaCarry) -> Callable[[Progress], None]:
    """`progress` with the original's alpha (keep_alpha) attached to every preview's texture."""
    def shown(state: Progress) -> None:
        progress(state if state.texture is None else replace(state, texture=keep_alpha(state.texture)))
    return shown


def _in_even_uvs(mesh: Mesh, original_texture: np.ndarray | None, size: int, unwrapped: Mesh | None = None,
                 alpha: np.ndarray | None = None) -> tuple[Mesh, np.ndarray | None, np.ndarray | None]:
    """The mesh with UVs of even density (`unwrapped`, or mesh/unwrap.py's choice: its own islands repacked, or new
    charts where those would starve part of the surface or cut it more), the original texture's colours moved into
    them (or None) and its `alpha` (H, W, 1) moved with them (or None), in one transfer."""
    unwrapped = unwrapped if unwrapped is not None else even_layout(mesh, size)
    if original_texture is None:
        return unwrapped, None, None
    colours = np.asarray(original_texture)[..., :3]
    stacked = colours if alpha is None else np.concatenate([colours, alpha], axis=-1)
    moved = transfer_texture(stacked, mesh.uvs, unwrapped.uvs, size)
    return unwrapped, moved[..., :3], (None if alpha is None else moved[..., 3:])


def _round_trip(mesh: Mesh, style_image, settings: StyleSettings, original_texture: np.ndarray | None,
                progress: Callable[[Progress], None] | None, cancel: threading.Event | None, started: float,
                layout: Mesh | None = None, alpha: np.ndarray | None = None) -> StyleResult:
    """unwrap round-trip (round_trip.py): the job in UVs of even density, its texture carried back into the mesh's
    own UVs, then polished there for the last POLISH of the steps (faces with too little room in them kept as
    carried). Previews come in the own UVs throughout; the report is the whole job's. `layout`: the mesh in the UVs
    to restyle in, where already chosen; `alpha`: the original's (H, W, 1), where it has one (both jobs' renders
    see through it)."""
    device = pick_device(settings.device)
    unwrapped, moved, moved_alpha = _in_even_uvs(mesh, original_texture, settings.texture_size, layout, alpha)
    own_original = (resize_square(np.asarray(original_texture)[..., :3], settings.texture_size)
                    if original_texture is not None else None)
    carry = BackToOwnUVs(unwrapped.uvs, mesh, own_original, settings)
    roomy = ~starved_faces(mesh, settings.texture_size)
    polish = polish_steps(settings.steps) if roomy.any() else 0

    def carried(state: Progress) -> None:
        progress(state if state.texture is None else replace(state, texture=carry.preview(state.texture)))

    from_original = settings.init == "original" and moved is not None  # the spectrum is then the texture's (StyleJob)
    spectrum = settings.spectrum_size if from_original else round_trip_spectrum(mesh, unwrapped, settings, device)
    job = StyleJob(unwrapped, style_image, replace(settings, steps=settings.steps - polish, spectrum_size=spectrum),
                   moved, device, see_through=moved_alpha)
    history, cancelled, loop_seconds = run_steps(job, carried if progress is not None else None, cancel, started,
                                                 total=settings.steps)
    texture, coverage = job.finish()
    report = job_report(job, history, cancelled, started, loop_seconds, coverage, mesh)
    del job  # its network, views and spectrum
    texture = carry(texture)
    report.update(settings=settings.to_dict(), polish_steps=0)
    if polish and not cancelled:
        # The carried texture is the start and the content: its strokes stay and the filtering of the trip back is
        # sharpened away. A spectrum of the texture's size starts from it exactly.
        polisher = StyleJob(mesh, style_image, replace(settings, unwrap="keep", steps=polish, init="original",
                                                       spectrum_size=settings.texture_size),
                            texture, device, None if roomy.all() else roomy, see_through=alpha)
        more, cancelled, seconds = run_steps(polisher, progress, cancel, started, done=len(history),
                                             total=settings.steps)
        texture = polisher.finish()[0]
        history += [{**entry, "step": len(history) + entry["step"]} for entry in more]
        loop_seconds += seconds
        report.update(steps_done=len(history), cancelled=cancelled, loss=history, polish_steps=len(more),
                      seconds_per_step=loop_seconds / max(len(history), 1))
    if settings.preserve_colors and own_original is not None:
        # Each part kept the colours of its own start (the polish: the carried texture, filtered on the way back);
        # every texel takes the original's own chromaticity at the end, as a job in the own UVs gives it.
        texture = keep_colors(torch.from_numpy(texture), torch.from_numpy(own_original)).numpy()
    report["seconds"] = time.perf_counter() - started
    return StyleResult(texture, report, cancelled, None)


def run_steps(job: StyleJob, progress: Callable[[Progress], None] | None, cancel: threading.Event | None,
              started: float, done: int = 0, total: int | None = None) -> tuple[list[dict], bool, float]:
    """The loop: job.step() until the steps are done or `cancel` is set, reporting each step (with job.texture()
    at the preview cadence). Returns the steps' losses, whether it was cancelled and the loop's seconds. A job that
    is one part of a longer one reports its steps after `done` others, of `total` in all."""
    settings = job.settings
    total = total or done + settings.steps
    loop_started = time.perf_counter()
    history: list[dict] = []
    cancelled = False
    for step in range(1, settings.steps + 1):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        history.append({"step": step, **job.step()})
        if progress is not None:
            elapsed = time.perf_counter() - loop_started
            at = done + step
            preview = bool(settings.preview_every) and (at % settings.preview_every == 0 or at == total)
            losses = history[-1]
            progress(Progress(at, total, losses["total"], losses["style"], losses["content"],
                              time.perf_counter() - started, elapsed / step * (total - at),
                              job.texture().cpu().numpy() if preview else None,
                              f"{job.net.kind} ({job.net.reason})"))
    return history, cancelled, time.perf_counter() - loop_started


def job_report(job: StyleJob, history: list[dict], cancelled: bool, started: float, loop_seconds: float,
               coverage: float, delivered: Mesh | None = None) -> dict:
    """The job's report; its UV room is that of `delivered`, the mesh in whose UVs the texture is handed out
    (by default the job's)."""
    room = uv_room(delivered if delivered is not None else job.mesh, job.settings.texture_size,
                   None if job.editable is None else job.editable.cpu().numpy())
    return {
        "settings": job.settings.to_dict(),
        "init": job.init,
        "features": job.net.kind,
        "features_reason": job.net.reason,
        "weights": job.net.weights,
        "quality_note": job.net.quality_note,
        "device": str(job.device),
        "steps_done": len(history),
        "cancelled": cancelled,
        "loss": history,
        "seconds": time.perf_counter() - started,
        "seconds_per_step": loop_seconds / max(len(history), 1),
        "coverage": coverage,
        "spectrum_size": list(job.working_shape),  # (rows, columns)
        "filter": job.filter,
        "content_weight": job.content_weight,  # the setting's share that the original's markings earn (plain_original.py)
        "views_rendered": job.pool.made,
        "uv_room": room.to_dict(),
        "uv_note": room.note(),  # "" unless part of the surface has too little texture room for strokes
    }
