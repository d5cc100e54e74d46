"""Style engine rows: seconds per optimization step, and a step's cost over its network work alone."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torchvision

from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.style.engine import StyleJob
from backend.style.settings import StyleSettings
from backend.texture import build_pyramid

from .timing import interleaved_medians, median_seconds

ROOT = Path(__file__).resolve().parent.parent


def _job(render_size: int, device: torch.device, **settings) -> StyleJob:
    """A job on Spot with a 1024^2 texture (VGG-19 runs with random weights from a file, through the
    real loading path: speed does not depend on their values)."""
    settings = StyleSettings(texture_size=1024, render_size=render_size, device=device.type, **settings)
    mesh = read_obj(ROOT / "data" / "spot" / "spot_triangulated.obj")
    original = load_image(ROOT / "data" / "spot" / "spot_texture.png")
    style = load_image(ROOT / "data" / "styles" / "starry_night.jpg")
    return StyleJob(mesh, style, settings, original, device)


def step_and_network(job: StyleJob, device: torch.device, repeats: int) -> tuple[float, float]:
    """Median seconds of one full step and of the network work inside one step (learned image forward +
    backward, on random images of the render size), timed alternately.

    Each sample is a whole refresh cycle of the view pool (view_reuse steps, one of which renders a
    fresh view and runs the network over its content render), divided by its length: a median of
    single steps would mostly miss the fresh views' cost. The network's side runs the content forward
    once a cycle too, as the step does (once a step would credit the step with network work it skips).
    The random images are laid out as the step's renders are, (H, W, C) rows seen as (1, C, H, W):
    channels-last, on which the CPU's convolutions run faster (14.1 against 15.6 ms forward and backward
    for EfficientNet-Lite0 at 256^2), so the network alone is timed as the step runs it."""
    size = job.settings.render_size
    cycle = job.settings.view_reuse
    pixels = torch.rand(1, size, size, 3, device=device, requires_grad=True)
    content = torch.rand(1, size, size, 3, device=device).permute(0, 3, 1, 2)

    def steps() -> None:
        for _ in range(cycle):
            job.step()

    def network_only() -> None:
        with torch.no_grad():
            job.net(content)
        for _ in range(cycle):
            pixels.grad = None
            features = job.net(pixels.permute(0, 3, 1, 2))
            sum(f.square().mean() for f in features.values()).backward()

    step, network = interleaved_medians([steps, network_only], device, repeats)
    return step / cycle, network / cycle


def seam_term_seconds(job: StyleJob, device: torch.device, repeats: int) -> float:
    """Median seconds of the seam term's forward and backward pass on the job's working pyramid."""
    texture = torch.rand(*job.working_shape, 3, device=device, requires_grad=True)
    texels = build_pyramid(texture, kernel=job.settings.mip_kernel).texels.detach().requires_grad_()

    def once() -> None:
        texels.grad = None
        job.seam_term(texels).backward()

    return median_seconds(once, device, repeats)


def view_term_seconds(job: StyleJob, device: torch.device, repeats: int, term) -> float:
    """Median seconds of a per-view term's forward and backward pass, term(image (1, 3, H, W), view), on a
    render of a pooled view."""
    view = job.pool.views[0] if job.pool.views else job.pool.draw(1)[0]
    size = job.settings.render_size
    image = torch.rand(1, 3, size, size, device=device, requires_grad=True)

    def once() -> None:
        image.grad = None
        term(image, view).backward()

    return median_seconds(once, device, repeats)


def run(device: torch.device, quick: bool) -> list[dict]:
    rows: list[dict] = []
    job = _job(256, device)  # the defaults: auto picks EfficientNet-Lite0 on the CPU
    step, network = step_and_network(job, device, 3 if quick else 9)
    name = job.net.kind
    rows.append({"name": f"style step, default ({name}), 1024^2 texture ({job.working_shape[0]}x{job.working_shape[1]} spectrum), 256^2 render",
                 "seconds": step})
    rows.append({"name": f"{name} alone (fwd+bwd learned, fwd content once a cycle), 256^2", "seconds": network})
    rows.append({"name": "step_over_network_256_default", "ratio": step / network})
    rows.append({"name": f"seam term fwd+bwd ({job.seam_term.count} samples x 2 levels), part of the default step",
                 "seconds": seam_term_seconds(job, device, 5 if quick else 20)})
    rows.append({"name": f"balance term fwd+bwd ({job.settings.balance_regions} patches), part of the default step",
                 "seconds": view_term_seconds(job, device, 5 if quick else 20,
                                                 lambda image, view: job.balance_term(image, [view]))})
    rows.append({"name": "detail term fwd+bwd (3 windows), part of the default step",
                 "seconds": view_term_seconds(job, device, 5 if quick else 20, lambda image, view: job.detail_term(
                     image, [view], view.coverage, job.settings.render_size))})
    nnfm = _job(256, device, style_loss="nnfm")
    step, network = step_and_network(nnfm, device, 3 if quick else 5)
    rows.append({"name": f"style step, style_loss nnfm ({name}), 256^2 render", "seconds": step})
    rows.append({"name": "step_over_network_256_nnfm", "ratio": step / network})
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "vgg19_random.pth"
        torch.save(torchvision.models.vgg19(weights=None).state_dict(), weights)
        for render_size, repeats in ((256, 5), (512, 3)):
            job = _job(render_size, device, features="vgg19", weights=str(weights))
            step, network = step_and_network(job, device, repeats if not quick else 3)
            rows.append({"name": f"style step, VGG-19, 1024^2 texture, {render_size}^2 render", "seconds": step})
            rows.append({"name": f"network alone (fwd+bwd learned, fwd content once a cycle), {render_size}^2", "seconds": network})
            if render_size == 256:
                rows.append({"name": "step_over_network_256", "ratio": step / network})
    return rows
