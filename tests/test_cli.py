"""The real command line, `python -m backend render ...`, run in subprocesses.

The scene is a square quad facing a camera on the +Z axis. With --fov 30 and the eye 5 units away,
the quad's half-width s = 0.375 * 5 * tan(15 deg) projects to NDC +-0.375, i.e. to pixel columns and
rows 10..22 of a 32 pixel image: its edges lie exactly on pixel boundaries (and on the rasterizer's
1/256 pixel grid), so coverage and UVs have exact analytic values, and 2x supersampling changes
nothing inside or outside the quad.

Every command is started once, all of them concurrently, by the module fixture `runs`; each
starts torch, so this keeps the file fast.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SIZE = 32
FOV = 30.0
DISTANCE = 5.0
NDC_HALF = 0.375  # the quad's half-width in NDC
HALF = NDC_HALF * DISTANCE * math.tan(math.radians(FOV / 2))  # ... and in world units
SOLID = (51, 102, 204)  # texture colour, 8-bit
BACKGROUND_ARG = "1,0,0.5"
BACKGROUND = (255, 0, 128)  # what BACKGROUND_ARG writes as 8-bit
CUDA = torch.cuda.is_available()

# Quad corners in Blender's world (Z up, the quad in the z = 0 plane) with their UVs:
# u grows with +X, v grows with +Y. Counter-clockwise seen from +Z.
CORNERS = [(-HALF, -HALF, 0.0, 0.0), (HALF, -HALF, 1.0, 0.0), (HALF, HALF, 1.0, 1.0), (-HALF, HALF, 0.0, 1.0)]


def quad_obj(y_up: bool) -> str:
    """The quad as OBJ text; Y-up files store Blender's (X, Y, Z) as (X, Z, -Y)."""
    lines = ["# a quad facing +Z", "o quad"]
    for x, y, _, _ in CORNERS:
        lines.append(f"v {x!r} 0 {-y!r}" if y_up else f"v {x!r} {y!r} 0")
    lines += [f"vt {u} {v}" for _, _, u, v in CORNERS]
    lines.append("f 1/1 2/2 3/3 4/4")
    return "\n".join(lines) + "\n"


def expected_uv_coverage() -> np.ndarray:
    """(SIZE, SIZE, 3) analytic u, v, coverage at pixel centres (row 0 at the top)."""
    centres = (np.arange(SIZE) + 0.5) / SIZE * 2 - 1
    ndc_x = centres[None, :]  # column -> x, left to right
    ndc_y = -centres[:, None]  # row -> y, top to bottom
    # Test design check: no pixel centre lies near an edge of the quad.
    assert np.abs(np.abs(centres) - NDC_HALF).min() > 0.01
    inside = (np.abs(ndc_x) < NDC_HALF) & (np.abs(ndc_y) < NDC_HALF)
    # The quad is parallel to the image plane, so screen-space interpolation is exact.
    u = np.broadcast_to((ndc_x + NDC_HALF) / (2 * NDC_HALF), inside.shape)
    v = np.broadcast_to((ndc_y + NDC_HALF) / (2 * NDC_HALF), inside.shape)
    return np.stack([u * inside, v * inside, inside.astype(np.float64)], axis=-1)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # One thread each: the commands run side by side and the scenes are tiny.
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "backend", "render", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs every command line of this file once (concurrently).

    Returns the CompletedProcess of each command by name, plus the paths of the scene's files.
    """
    root = tmp_path_factory.mktemp("cli")
    quad_y = root / "quad_yup.obj"
    quad_y.write_text(quad_obj(y_up=True))
    quad_z = root / "quad_zup.obj"
    quad_z.write_text(quad_obj(y_up=False))
    solid = root / "solid.png"
    Image.new("RGB", (8, 8), SOLID).save(solid)
    bad_obj = root / "novt.obj"
    bad_obj.write_text("v 0 0 0\nv 1 0 0\n\n# comment\nv 0 1 0\nf 1 2 3\n")  # line 6
    bad_texture = root / "x.png"
    bad_texture.write_text("this is not an image\n")

    def view(out: str) -> list[str]:
        return ["--eye", f"0,0,{DISTANCE}", "--target", "0,0,0", "--size", str(SIZE), "--fov", str(FOV), "--out", str(root / out)]

    good = [str(quad_z)] + view("err.png")  # a valid command that each error case spoils once
    commands = {
        "checker": [str(quad_y), *view("checker.png"), "--uv-out", str(root / "checker.npy")],
        "solid": [
            str(quad_z), *view("solid_out.png"), "--obj-up", "Z", "--texture", str(solid),
            "--background", BACKGROUND_ARG, "--uv-out", str(root / "solid.npy"),
        ],
        "supersample": [
            str(quad_z), *view("super.png"), "--obj-up", "Z", "--texture", str(solid),
            # --uv-out into a directory that does not exist yet: it is created, as --out's is.
            "--background", BACKGROUND_ARG, "--supersample", "2", "--uv-out", str(root / "new" / "dir" / "super.npy"),
        ],
        "missing_mesh": [str(root / "no_such_mesh.obj"), *good[1:]],
        "malformed_obj": [str(bad_obj), *good[1:]],
        "eye_two_numbers": [*good, "--eye", "1,2"],
        "eye_nan": [*good, "--eye", "nan,0,0"],
        "size_zero": [*good, "--size", "0"],
        "fov_200": [*good, "--fov", "200"],
        "near_after_far": [*good, "--near", "10", "--far", "1"],
        "bad_texture": [*good, "--texture", str(bad_texture)],
        "device_cuda": [*good, "--device", "cuda"],
        "eye_is_target": [*good, "--eye", "0,0,0", "--target", "0,0,0"],
    }
    # argparse keeps the last occurrence of a repeated option, so appending overrides `good`.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(run_cli, args, root) for name, args in commands.items()}
        results = {name: future.result() for name, future in futures.items()}
    return {"root": root, "quad_z": quad_z, "solid_path": solid, "bad_obj": bad_obj, "bad_texture_path": bad_texture, **results}


def checker_npy(runs) -> Path:
    return runs["root"] / "checker.npy"


def succeeded(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def load_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.size == (SIZE, SIZE)
        return np.asarray(image.convert("RGB"))


# --- successful renders --------------------------------------------------------------------------


def test_uv_out_is_float32_with_exact_coverage(runs):
    succeeded(runs["checker"])
    uv = np.load(checker_npy(runs))
    assert uv.dtype == np.float32
    assert uv.shape == (SIZE, SIZE, 3)
    expected = expected_uv_coverage()
    np.testing.assert_array_equal(uv[..., 2], expected[..., 2])  # exactly 0 or 1, on the right pixels
    assert uv[..., 2].sum() == 12 * 12
    covered = uv[..., 2] == 1
    assert (uv[~covered][:, :2] == 0).all()


def test_uv_values_match_the_analytic_mapping(runs):
    uv = np.load(checker_npy(runs))
    expected = expected_uv_coverage()
    covered = expected[..., 2] == 1
    np.testing.assert_allclose(uv[covered][:, :2], expected[covered][:, :2], rtol=0, atol=1e-4)
    # u increases left to right; v increases bottom to top, so it falls as the row index grows.
    rows, cols = np.nonzero(covered)
    block = uv[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert (np.diff(block[..., 0], axis=1) > 0).all()
    assert (np.diff(block[..., 1], axis=0) < 0).all()
    assert block[0, 0, 0] < 0.1 and block[0, 0, 1] > 0.9  # top-left corner is u ~ 0, v ~ 1


def test_png_written_with_the_checker_texture(runs):
    image = load_png(runs["root"] / "checker.png").astype(np.int64)
    covered = expected_uv_coverage()[..., 2] == 1
    assert (image[~covered] == 0).all()  # default background is black
    inside = image[covered]
    assert len(np.unique(inside, axis=0)) > 4  # the checker is not a constant colour
    assert inside.std(axis=0).max() > 10
    # The checker's red grows with u and its green with v: check the orientation in the image.
    rows, cols = np.nonzero(covered)
    block = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    half = block.shape[0] // 2
    assert block[:, half:, 0].mean() > block[:, :half, 0].mean()  # right is redder
    assert block[:half, :, 1].mean() > block[half:, :, 1].mean()  # top is greener


def test_solid_texture_and_background_colour(runs):
    succeeded(runs["solid"])
    image = load_png(runs["root"] / "solid_out.png")
    covered = expected_uv_coverage()[..., 2] == 1
    assert (image[covered] == SOLID).all()
    assert (image[~covered] == BACKGROUND).all()


def test_obj_up_z_matches_the_y_up_file(runs):
    # The same quad written Y-up (default reading) and Z-up (--obj-up Z) gives the same view.
    checker = np.load(checker_npy(runs))
    solid = np.load(runs["root"] / "solid.npy")
    np.testing.assert_allclose(solid, checker, rtol=0, atol=1e-6)


def test_supersample_2(runs):
    succeeded(runs["supersample"])
    image = load_png(runs["root"] / "super.png")
    # The quad's edges fall on pixel boundaries, so averaging 2x2 blocks changes nothing.
    np.testing.assert_array_equal(image, load_png(runs["root"] / "solid_out.png"))
    uv = np.load(runs["root"] / "new" / "dir" / "super.npy")
    assert uv.dtype == np.float32 and uv.shape == (SIZE, SIZE, 3)  # at the output size
    np.testing.assert_allclose(uv, np.load(checker_npy(runs)), rtol=0, atol=1e-6)


# --- errors --------------------------------------------------------------------------------------

ERRORS = {
    # case: text that the one-line message must contain (besides the cause-specific checks below)
    "missing_mesh": "no_such_mesh.obj",
    "malformed_obj": "novt.obj:6:",
    "eye_two_numbers": "--eye",
    "eye_nan": "--eye",
    "size_zero": "--size",
    "fov_200": "fov",
    "near_after_far": "near",
    "bad_texture": "x.png",
    "eye_is_target": "eye",
}


def assert_one_line_error(result: subprocess.CompletedProcess, must_contain: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].strip()
    assert must_contain in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_input_exits_2_with_one_line(runs, case):
    assert_one_line_error(runs[case], ERRORS[case])
    assert not (runs["root"] / "err.png").exists()  # nothing was rendered by any failing command


def test_malformed_obj_message_names_the_full_path(runs):
    line = runs["malformed_obj"].stderr.strip()
    assert f"{runs['bad_obj']}:6:" in line
    assert "vt" in line


def test_bad_texture_message_names_the_file(runs):
    assert str(runs["bad_texture_path"]) in runs["bad_texture"].stderr


def test_device_cuda(runs):
    result = runs["device_cuda"]
    if CUDA:
        succeeded(result)
    else:
        assert_one_line_error(result, "cuda")


def test_unwritable_uv_out_is_a_one_line_error(runs, tmp_path, capsys):
    # In-process (main() is what __main__ runs), to spare a subprocess: the parent is a file.
    from backend.commands.main import main

    uv_path = runs["solid_path"] / "uv.npy"
    argv = ["render", str(runs["quad_z"]), "--obj-up", "Z", "--eye", "0,0,5", "--fov", "30", "--size", "8"]
    code = main([*argv, "--out", str(tmp_path / "a.png"), "--uv-out", str(uv_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and str(uv_path) in err
    assert main([*argv, "--out", str(tmp_path / "b.png"), "--uv-out", str(tmp_path / "ok.npy")]) == 0
    assert np.load(tmp_path / "ok.npy").shape == (8, 8, 3)
