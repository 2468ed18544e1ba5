"""Benchmarks: run every bench/bench_*.py and append its results to bench/results/<name>.md.

Each benchmark starts its own embedded stack and server process, so it measures the real thing.
    .venv/bin/python bench/run.py            # all
    .venv/bin/python bench/run.py foundation # one
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    wanted = set(sys.argv[1:])
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {name}", flush=True)
        module.main()


if __name__ == "__main__":
    main()
