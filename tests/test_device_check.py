"""bench/device_check.py, the script a GPU session runs, as a dry run on the CPU: it must work the
first time it meets a GPU, when device time is short."""

from __future__ import annotations

import json

import pytest
import torch

from bench import device_check


def test_dry_run_on_the_cpu_agrees_with_itself_and_records(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert device_check.main(["--device", "cpu", "--steps", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu"
    assert report["render"] == {"face_mismatch": 0.0, "image_max_diff": 0.0, "grad_rel_diff": 0.0, "ok": True}
    assert report["style_step"]["ok"] and report["style_step"]["loss_rel_diff"] == 0.0
    assert len(report["style_step"]["loss_cpu"]) == 3
    assert report["record"]["steps"] == 1 and report["record"]["seconds_per_step"] > 0
    assert 0.5 < report["record"]["coverage"] <= 1.0
    default = report["record_default"]
    assert set(default) == {"float32", "channels_last", "bfloat16", "channels_last+bfloat16"}
    assert all(run["steps"] == 1 and run["seconds_per_step"] > 0 for run in default.values())
    assert "render: ok" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here: the script would run for real")
def test_cuda_where_there_is_none_is_one_line_and_status_2(capsys):
    assert device_check.main(["--device", "cuda"]) == 2
    assert capsys.readouterr().err.strip() == "error: CUDA is not available here (use --device cpu for a dry run)"
