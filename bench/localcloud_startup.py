"""How long localcloud takes from process start to ready (goal: under 5 s), cold and warm.

Cold: a fresh state directory (CA, key, databases created). Warm: the same directory again.
Prints one line per start plus the slowest services; asserts nothing (timings are machine-dependent).

    .venv/bin/python bench/localcloud_startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from localcloud.client import LocalCloudProcess

GOAL_SECONDS = 5.0


def start_once(state: Path) -> tuple[float, dict]:
    proc = LocalCloudProcess(state)
    started = time.monotonic()
    try:
        proc.start()
        elapsed = time.monotonic() - started
        ready = json.loads(proc.files.ready.read_text())
    finally:
        proc.stop()
    return elapsed, ready


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm starts after the cold one")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="localcloud-bench-"))
    try:
        state = root / "state"
        results = []
        for run in range(args.runs + 1):
            kind = "cold" if run == 0 else "warm"
            elapsed, ready = start_once(state)
            slowest = sorted(ready.get("service_start_seconds", {}).items(), key=lambda kv: -kv[1])[:3]
            results.append((kind, elapsed))
            print(
                f"{kind} start {run}: ready in {elapsed:.2f}s (server-side {ready['seconds']:.2f}s; slowest: "
                + ", ".join(f"{name} {secs:.2f}s" for name, secs in slowest)
                + ")"
            )
        warm = [e for k, e in results if k == "warm"]
        cold = results[0][1]
        print(
            f"summary: cold {cold:.2f}s, warm median {statistics.median(warm):.2f}s "
            f"(goal < {GOAL_SECONDS:.0f}s): " + ("met" if max(cold, *warm) < GOAL_SECONDS else "NOT met")
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
