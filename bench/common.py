"""What the benchmark scripts share: one make call, timed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make(env: dict[str, str], *args: str, check: bool = True) -> tuple[float, str, int]:
    """(wall seconds, stdout + stderr, exit code) of `make -s <args>` in the checkout; a failure
    ends the benchmark with its output unless check=False."""
    started = time.monotonic()
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    out = result.stdout + result.stderr
    if check and result.returncode != 0:
        sys.exit(f"make {' '.join(args)} failed ({result.returncode}):\n{out[-3000:]}")
    return elapsed, out, result.returncode
