"""One script for a machine with a GPU: is CUDA right, and how fast is the real job?

    python3 -m bench.device_check [--device cuda] [--steps 400] [--out out/bench/device_check.json]

1. Correctness: the same work on the CPU and on the device, compared: rasterized fragments (the
   exact rasterizer must pick the same faces), a textured render with its texture gradient, and one
   style step of the random feature bank (loss and updated texture).
2. The record the style engine's goal names: `--steps` steps of a 1024^2 texture with 512^2 renders
   and VGG-19 on Spot (weights from a file of random values: speed does not depend on them).
3. The same run with the default network, EfficientNet-Lite0, in float32 and with each GPU speed
   option (channels_last, bfloat16 autocast, both): `--lite0-weights FILE` where its package is missing.
Prints each result and writes JSON. With `--device cpu` it checks the CPU against itself and runs a
short record: a dry run of this script where there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

from backend.errors import StyleTexError
from backend.formats.images import load_image
from backend.formats.obj import read_obj
from backend.render import MeshTensors, rasterize_view, shade
from backend.style.engine import StyleJob, stylize
from backend.style.settings import StyleSettings
from backend.texture import build_pyramid
from backend.tuning import tune_allocator
from backend.views import ring_cameras

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "data" / "spot"
STYLE = ROOT / "data" / "styles" / "starry_night.jpg"


def compare_render(device: torch.device) -> dict:
    """Fragments, image and texture gradient of four Spot views, device against CPU."""
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    texture = torch.from_numpy(load_image(SPOT / "spot_texture.png"))
    out = {"face_mismatch": 0.0, "image_max_diff": 0.0, "grad_rel_diff": 0.0}
    for camera in ring_cameras(mesh.center, mesh.radius, 4):
        results = []
        for dev in (torch.device("cpu"), device):
            tensors = MeshTensors.from_mesh(mesh, dev)
            fragments = rasterize_view(tensors, camera, 512)
            leaf = texture.to(dev).requires_grad_()
            image = shade(fragments, tensors.uvs, build_pyramid(leaf), background=0.5)
            (image * torch.linspace(0, 1, image.numel(), device=dev).view_as(image)).sum().backward()
            results.append((fragments.face_ids.cpu(), image.detach().cpu(), leaf.grad.cpu()))
        (faces_a, image_a, grad_a), (faces_b, image_b, grad_b) = results
        out["face_mismatch"] = max(out["face_mismatch"], (faces_a != faces_b).float().mean().item())
        out["image_max_diff"] = max(out["image_max_diff"], (image_a - image_b).abs().max().item())
        relative = ((grad_a - grad_b).norm() / grad_a.norm().clamp(min=1e-12)).item()
        out["grad_rel_diff"] = max(out["grad_rel_diff"], relative)
    out["ok"] = out["face_mismatch"] == 0 and out["image_max_diff"] < 1e-4 and out["grad_rel_diff"] < 1e-4
    return out


def compare_step(device: torch.device) -> dict:
    """Three style steps (random features, 256^2 texture, 128^2 renders), device against CPU."""
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    original, style = load_image(SPOT / "spot_texture.png"), load_image(STYLE)
    runs = []
    for dev in (torch.device("cpu"), device):
        settings = StyleSettings(texture_size=256, render_size=128, features="random", device=dev.type, seed=3)
        job = StyleJob(mesh, style, settings, original, dev)
        losses = [job.step()["total"] for _ in range(3)]
        with torch.no_grad():
            runs.append((losses, job.parameter().cpu()))
    (loss_a, tex_a), (loss_b, tex_b) = runs
    out = {"loss_cpu": loss_a, "loss_device": loss_b,
           "loss_rel_diff": max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(loss_a, loss_b)),
           "texture_max_diff": (tex_a - tex_b).abs().max().item()}
    out["ok"] = out["loss_rel_diff"] < 1e-3 and out["texture_max_diff"] < 1e-2
    return out


def _run(mesh, original, style, settings: StyleSettings, device: torch.device) -> dict:
    started = time.perf_counter()
    result = stylize(mesh, style, settings, original)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"steps": settings.steps, "seconds_total": time.perf_counter() - started,
            "seconds_per_step": result.report["seconds_per_step"], "coverage": result.report["coverage"],
            "spectrum_size": result.report["spectrum_size"], "final_loss": result.report["loss"][-1]["total"]}


def record(device: torch.device, steps: int) -> dict:
    """The full job through stylize(): VGG-19, 1024^2 texture, 512^2 renders."""
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    original, style = load_image(SPOT / "spot_texture.png"), load_image(STYLE)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "vgg19_random.pth"
        torch.save(torchvision.models.vgg19(weights=None).state_dict(), weights)
        settings = StyleSettings(steps=steps, texture_size=1024, render_size=512, features="vgg19",
                                 weights=str(weights), device=device.type)
        return _run(mesh, original, style, settings, device)


SPEED_OPTIONS = {"float32": {}, "channels_last": {"channels_last": True},
                 "bfloat16": {"network_precision": "bfloat16"},
                 "channels_last+bfloat16": {"channels_last": True, "network_precision": "bfloat16"}}


def record_default(device: torch.device, steps: int, weights: str | None) -> dict:
    """The same job with the default network, EfficientNet-Lite0 (its ImageNet weights: the installed
    package's, or `weights`, a copy of its file), in float32 and with each GPU speed option."""
    mesh = read_obj(SPOT / "spot_triangulated.obj")
    original, style = load_image(SPOT / "spot_texture.png"), load_image(STYLE)
    out = {}
    for name, options in SPEED_OPTIONS.items():
        settings = StyleSettings(steps=steps, texture_size=1024, render_size=512, features="efficientnet_lite0",
                                 weights=weights, device=device.type, **options)
        try:
            out[name] = _run(mesh, original, style, settings, device)
        except StyleTexError as exc:  # weights missing on this machine: say so, keep the other records
            return {"error": str(exc)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.device_check", description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--steps", type=int, default=None, help="record length (default 400 on CUDA, 3 on the CPU)")
    parser.add_argument("--lite0-weights", help="EfficientNet-Lite0's weights file, where its package is not installed")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench" / "device_check.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: CUDA is not available here (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    tune_allocator()
    device = torch.device(args.device)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__}
    for name, check in (("render", compare_render), ("style_step", compare_step)):
        report[name] = check(device)
        print(f"{name}: {'ok' if report[name]['ok'] else 'MISMATCH'} {json.dumps(report[name])}", flush=True)
    steps = args.steps or (400 if device.type == "cuda" else 3)
    report["record"] = record(device, steps)
    print(f"record: {json.dumps(report['record'])}", flush=True)
    report["record_default"] = record_default(device, steps, args.lite0_weights)
    print(f"record_default: {json.dumps(report['record_default'])}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if report["render"]["ok"] and report["style_step"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
