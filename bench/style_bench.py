"""Style engine rows: seconds per optimization step, and a step's cost over its network work alone."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torchvision

from backend.images import load_image
from backend.obj_io import read_obj
from backend.style.engine import StyleJob
from backend.style.settings import StyleSettings

from .timing import interleaved_medians

ROOT = Path(__file__).resolve().parent.parent


def _job(render_size: int, weights: Path, device: torch.device) -> StyleJob:
    """A VGG-19 job on Spot with random weights (from a file, through the real loading path)."""
    settings = StyleSettings(texture_size=1024, render_size=render_size, features="vgg19", weights=str(weights),
                             device=device.type)
    mesh = read_obj(ROOT / "data" / "spot" / "spot_triangulated.obj")
    original = load_image(ROOT / "data" / "spot" / "spot_texture.png")
    style = load_image(ROOT / "data" / "styles" / "starry_night.jpg")
    return StyleJob(mesh, style, settings, original, device)


def run(device: torch.device, quick: bool) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "vgg19_random.pth"
        torch.save(torchvision.models.vgg19(weights=None).state_dict(), weights)
        for render_size, repeats in ((256, 5), (512, 3)):
            job = _job(render_size, weights, device)
            image = torch.rand(1, 3, render_size, render_size, device=device).requires_grad_()
            content = torch.rand(1, 3, render_size, render_size, device=device)

            def network_only() -> None:
                # The network work inside one step: learned image forward + backward, content forward.
                image.grad = None
                features = job.net(image)
                sum(f.square().mean() for f in features.values()).backward()
                with torch.no_grad():
                    job.net(content)

            step, network = interleaved_medians([job.step, network_only], device, repeats if not quick else 3)
            rows.append({"name": f"style step, VGG-19, 1024^2 texture, {render_size}^2 render", "seconds": step})
            rows.append({"name": f"network alone (fwd+bwd learned, fwd content), {render_size}^2", "seconds": network})
            if render_size == 256:
                rows.append({"name": "step_over_network_256", "ratio": step / network})
    return rows
