"""`python3 build.py demo` (examples.demo), shortened: the real pipeline on the bundled Spot, offline."""

from __future__ import annotations

import json

import numpy as np

from examples.demo import main
from backend.formats.images import load_image


def test_the_demo_restyles_spot_with_the_pretrained_network(tmp_path, capsys):
    code = main(["--out", str(tmp_path), "--steps", "3", "--texture-size", "128", "--render-size", "64",
                 "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "network: efficientnet_lite0 (auto: on the CPU" in captured.err  # says which network ran, and why
    assert "with efficientnet_lite0" in captured.out.splitlines()[-1]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["features"] == "efficientnet_lite0" and report["steps_done"] == 3 and report["quality_note"] == ""
    # Spot's face islands are packed denser than its body: unwrap auto takes the round trip, and says so
    assert report["unwrap"] == "round-trip" and "UVs: round trip through the own islands" in captured.out
    texture = load_image(tmp_path / "spot_styled.png")
    assert texture.shape == (128, 128, 3) and texture.std() > 0.01
    sheet = load_image(tmp_path / "spot_before_after.png")
    before, after = sheet[: sheet.shape[0] // 2], sheet[sheet.shape[0] // 2 :]
    assert np.abs(before - after).mean() > 0.01  # the after row differs from the before row
