"""StyleTex benchmarks: `python3 build.py bench` prints a table and writes out/bench/bench.json."""
