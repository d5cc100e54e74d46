"""Runs every benchmark suite on the CPU (and on CUDA when present), prints a table, writes JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from backend.tuning import tune_allocator

from . import addon_bench, batch_bench, render_bench, service_bench, style_bench

ROOT = Path(__file__).resolve().parent.parent
SUITES = [render_bench, style_bench, service_bench, addon_bench, batch_bench]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["quality"]:  # restyles and scores meshes: minutes, so a section of its own
        from . import quality

        return quality.main(argv[1:])
    if argv[:1] == ["interpolate"]:  # aligned against independent frames: minutes too
        from . import interpolation

        return interpolation.main(argv[1:])
    parser = argparse.ArgumentParser(prog="build.py bench", epilog="python3 build.py bench quality --help: the quality benchmark; bench interpolate --help: "
                                     "aligned interpolation")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench" / "bench.json"))
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    args = parser.parse_args(argv)
    tune_allocator()

    devices = [] if args.device == "cuda" else [torch.device("cpu")]
    if args.device != "cpu" and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    report: dict = {"machine": machine(), "rows": []}
    start = time.perf_counter()
    for device in devices:
        for suite in SUITES:
            for row in suite.run(device, args.quick):
                row["device"] = device.type
                report["rows"].append(row)
                value = f"{row['seconds'] * 1e3:10.1f} ms" if "seconds" in row else f"{row['ratio']:10.3f}   "
                print(f"{device.type:5s} {row['name']:<66s} {value}", flush=True)
                if "ratio" in row:
                    report.setdefault(device.type, {})[row["name"]] = row["ratio"]
    # The headline figures at the top level, CPU first (the goals are stated for the CPU).
    for key, value in report.get("cpu", {}).items():
        report[key] = value
    report["total_seconds"] = time.perf_counter() - start
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} ({report['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
