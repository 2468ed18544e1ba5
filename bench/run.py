"""Run the benchmarks, each as its own process; every script writes its results under bench/results/.

    make bench                                   # all of them
    .venv/bin/python bench/run.py foundation faces_bench   # some (file names without .py)

Scripts: http (request path vs bare and hand-written apps, needs wrk), bench_foundation (HTTP, outbox -> WebSocket
latency), people_reid (Kafka -> WebSocket, directory cache), plates_ingest (events/s with images),
scenarios_runner (frames/s, dispatch latency), faces_bench (encode time, HNSW recall/latency),
assets_observations (observations/s, locate error).
Each starts its own embedded stack; numbers are only comparable on the same machine and load.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"run", "common"}  # and every _helper.py


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.stem not in NOT_BENCHMARKS and not p.stem.startswith("_"))
    wanted = set(sys.argv[1:])
    failed = []
    for path in scripts:
        name = path.stem.removeprefix("bench_")
        if wanted and path.stem not in wanted and name not in wanted:
            continue
        print(f"== {path.name}", flush=True)
        if subprocess.run([sys.executable, str(path)], cwd=HERE).returncode != 0:
            failed.append(path.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
