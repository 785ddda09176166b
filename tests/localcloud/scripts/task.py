"""A tiny Cloud Run task for localcloud's tests: prints lines, optionally sleeps, exits with a code.

python tests/localcloud/scripts/task.py [--lines N] [--json] [--env NAME ...] [--sleep S] [--exit C]
    [--fail-attempts K]   exit 1 on attempts < K (CLOUD_RUN_TASK_ATTEMPT), then succeed
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="also print one JSON line at WARNING")
    parser.add_argument("--env", action="append", default=[], help="print NAME=value of these variables")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--fail-attempts", type=int, default=0)
    args = parser.parse_args(argv)
    task = os.environ.get("CLOUD_RUN_TASK_INDEX", "?")
    attempt = int(os.environ.get("CLOUD_RUN_TASK_ATTEMPT", "0"))
    for i in range(args.lines):
        print(f"line {i} of task {task}", flush=True)
    for name in args.env:
        print(f"{name}={os.environ.get(name, '<unset>')}", flush=True)
    if args.json:
        print(
            json.dumps({"severity": "WARNING", "message": f"structured from task {task}", "n": 1}), flush=True
        )
    if args.sleep:
        print("sleeping", flush=True)
        time.sleep(args.sleep)
    if attempt < args.fail_attempts:
        print(f"failing attempt {attempt}", file=sys.stderr, flush=True)
        return 1
    return args.exit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
