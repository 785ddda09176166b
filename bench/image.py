"""Benchmark: `make image ENV=local` on localcloud (wall time, bytes uploaded, requests) and the
release preflight's added cost (the image pin: its requests and wall time).

    .venv/bin/python bench/image.py [--runs 3]

Starts a localcloud of its own (a tmp state dir, stopped by its pid at the end). The first build
creates the bucket and the repository (measured apart); then --runs builds of the same HEAD under
new release tags (`RELEASE=bench-<n>`). Bytes uploaded and the client's own request count come from
the build's last line ("pushed ... N bytes uploaded, M requests"); the requests localcloud saw, by
host, from its admin counters. The preflight's added cost is `make release`'s image checks: one
`cloudact.gcp.image_pin` call, timed here through the same module_utils (image.resolve) with a client
of the local key, --runs times.

Figures (2 cores, shared; make bench-image RUNS=3): the first build (creates bucket and repository)
7.0 s, 13 client requests; warm builds median 5.7 s wall, 39,872 bytes uploaded, 9 client requests
(localcloud saw 14 with 2 tokens: storage 2, cloudbuild 4, logging 4, artifactregistry 2). The release
preflight's image check adds 0.11 s and 1 request (2 with a named tag: tags.get).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import make  # noqa: E402
from localcloud.client import LocalCloudProcess  # noqa: E402

PUSHED = re.compile(r"pushed \S+ \(tags [^)]*\) in \S+: (\d+) bytes uploaded, (\d+) requests")


def pin_cost(env: dict[str, str], runs: int) -> list[tuple[float, int]]:
    """(seconds, requests) of the release's image check, through the collection's own code."""
    from ansible_collections.cloudact.gcp.plugins.module_utils import client, environment, image
    from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog

    os.environ.update({k: v for k, v in env.items() if k.isupper()})
    facts = environment.load_environment("local", ROOT)
    facts["cloudact_root"] = str(ROOT)
    key = env["GCP_SERVICE_ACCOUNT_FILE"]
    names = [j.name for j in load_catalog(root=ROOT).jobs if j.release_order]
    out = []
    for _ in range(runs):
        api = client.Client(lambda: client.credentials("serviceaccount", key))
        started = time.monotonic()
        image.resolve(api, facts, names, deployed=[])
        out.append((time.monotonic() - started, api.requests_sent))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        proc = LocalCloudProcess(Path(tmp) / "state")
        proc.start(timeout=120)
        try:
            assert proc.admin is not None and proc.pid is not None
            proc.files.pid.write_text(f"{proc.pid}\n")  # so make's `localcloud up` finds it
            env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy")}
            env.update(proc.client_env, LOCALCLOUD_STATE_DIR=str(proc.state_dir), NO_COLOR="1")
            env.pop("CONFIRM", None)
            stamp = int(time.time())
            for n in range(args.runs + 1):
                proc.admin.reset_requests()
                wall, out, _ = make(env, "image", "ENV=local", f"RELEASE=bench-{stamp}-{n}", "DIRTY=1")
                req = proc.admin.requests()
                found = PUSHED.search(out)
                if not found:
                    sys.exit(f"no 'pushed' line in make image's output:\n{out[-2000:]}")
                rows.append(("first" if n == 0 else "warm", wall, int(found[1]), int(found[2]), req))
            costs = pin_cost(env, args.runs)
        finally:
            proc.stop()
    print(f"{'build':<6} {'wall s':>7} {'bytes':>8} {'client req':>10} {'seen':>5}  by host")
    for name, wall, size, sent, req in rows:
        by_host = ", ".join(f"{h}={n}" for h, n in sorted(req["by_host"].items()))
        print(f"{name:<6} {wall:7.1f} {size:8d} {sent:10d} {req['total']:5d}  {by_host}")
    warm = [r for r in rows if r[0] == "warm"]
    print(
        f"median warm make image: {statistics.median(r[1] for r in warm):.1f}s, "
        f"{statistics.median(r[2] for r in warm):.0f} bytes uploaded, "
        f"{statistics.median(r[3] for r in warm):.0f} client requests"
    )
    seconds, requests = statistics.median(c[0] for c in costs), max(c[1] for c in costs)
    print(f"release preflight's added cost (image pin): {seconds:.3f}s, {requests} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
