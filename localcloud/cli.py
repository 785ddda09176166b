"""`python -m localcloud serve|up|down|reset|env|status`."""

from __future__ import annotations

import argparse
import configparser
import errno
import fcntl
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from localcloud.client import (
    AdminClient,
    LocalCloudError,
    log_tail,
    pid_alive,
    spawn_server,
    stop_pid,
    wait_ready,
)
from localcloud.config import ENV_NAMES, PROJECT, REGION, StateFiles, default_state_dir, lock_holder


def _running_pid(files: StateFiles) -> int | None:
    """The pid of the server of this state directory: the pid file's, else the lock holder's.

    A server started in the foreground (a test fixture, `serve`) writes no pid file but holds the lock.
    """
    try:
        pid = int(files.pid.read_text().strip())
    except (OSError, ValueError):
        return lock_holder(files.root)
    if not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid
    return pid if b"localcloud" in cmdline else None  # a recycled pid is not ours


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            return e.errno != errno.EADDRINUSE
    return True


def up(files: StateFiles, out=sys.stdout, timeout: float = 60) -> int:
    files.root.mkdir(parents=True, exist_ok=True)
    # Two `make` targets starting localcloud at once: the second waits, then finds it up.
    with open(files.root / "up.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _up(files, out, timeout)


def _up(files: StateFiles, out, timeout: float) -> int:
    pid = _running_pid(files)
    if pid is not None:
        port = files.port.read_text().strip() if files.port.exists() else "?"
        print(
            f"localcloud is already up (pid {pid}, proxy http://127.0.0.1:{port}, state {files.root})",
            file=out,
        )
        return 0
    port = 0
    if files.port.exists():
        saved = int(files.port.read_text().strip() or 0)
        if saved and _port_free(saved):
            port = saved
        elif saved:
            print(f"localcloud: saved port {saved} is taken; picking a free one", file=out)
    started = time.monotonic()
    proc = spawn_server(files.root, port, detach=True)
    files.pid.write_text(f"{proc.pid}\n")
    try:
        ready = wait_ready(files, proc, proc.pid, timeout)
    except LocalCloudError as e:
        stop_pid(proc.pid, proc=proc)
        files.pid.unlink(missing_ok=True)
        print(f"localcloud failed to start: {e}", file=sys.stderr)
        return 1
    print(
        f"localcloud up: pid {proc.pid}, proxy {ready['proxy_url']}, "
        f"ready in {time.monotonic() - started:.2f}s, state {files.root}, log {files.log}",
        file=out,
    )
    return 0


def down(files: StateFiles, out=sys.stdout) -> int:
    pid = _running_pid(files)
    if pid is None:
        print("localcloud is not running", file=out)
    else:
        stop_pid(pid)
        print(f"localcloud stopped (pid {pid})", file=out)
    files.pid.unlink(missing_ok=True)
    files.ready.unlink(missing_ok=True)
    return 0


def reset(files: StateFiles) -> int:
    down(files)
    root = files.root
    if root.exists():
        # Refuse to wipe a directory that does not look like localcloud's (a mistyped LOCALCLOUD_STATE_DIR).
        markers = [files.ca_cert.parent, files.keys, files.client_env, files.log]
        if any(root.iterdir()) and not any(m.exists() for m in markers):
            print(
                f"localcloud: {root} does not look like a localcloud state directory; not wiping it",
                file=sys.stderr,
            )
            return 2
        shutil.rmtree(root)
    print(f"localcloud state wiped: {root}")
    return 0


def env(files: StateFiles, ensure_up: bool) -> int:
    if ensure_up and _running_pid(files) is None:
        status = up(files, out=sys.stderr)  # stdout stays eval-able
        if status:
            return status
    if not files.client_env.exists():
        print(
            "localcloud has never started in this state directory; run `make local-up` first", file=sys.stderr
        )
        return 1
    values = json.loads(files.client_env.read_text())
    for name in ENV_NAMES:
        print(f"export {name}={shlex.quote(values[name])}")
    for name, value in gcloud_config(files, activate=_running_pid(files) is not None).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def gcloud_env(config_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for running gcloud on localcloud's configuration directory: the CLOUDSDK_*
    variables of `base` (the operator's, e.g. CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE) would override it."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("CLOUDSDK_")}
    return {**env, "CLOUDSDK_CONFIG": str(config_dir)}


def gcloud_config(files: StateFiles, activate: bool = True) -> dict[str, str]:
    """Point the gcloud CLI at localcloud: `<state>/gcloud` as its configuration directory, never the
    operator's own, with the proxy, the CA, the project and region, and the issued key activated.

    Created once and kept (the operator's own properties in it stay); the proxy port is brought up to
    date when localcloud had to pick another. The properties are written in gcloud's own format
    (`configurations/config_default`, as `gcloud config set` writes them); the key is activated once
    with `gcloud auth activate-service-account` (through localcloud's token endpoint, so only while it
    runs). Returns the variables a shell needs: CLOUDSDK_CONFIG, and CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE,
    as a machine-wide value of it would win over the configuration's.
    """
    config_dir = files.root / "gcloud"
    key = json.loads(files.key_file.read_text())
    port = files.port.read_text().strip()
    wanted = {
        "core": {
            "project": PROJECT,
            "account": key["client_email"],
            "custom_ca_certs_file": str(files.ca_cert),
            "disable_usage_reporting": "true",
            "check_gce_metadata": "false",
            # localcloud's APIs are always enabled: no Service Usage check (`run jobs deploy` makes one)
            "should_prompt_to_enable_api": "false",
        },
        "proxy": {"type": "http", "address": "127.0.0.1", "port": port},
        "run": {"region": REGION},
        "component_manager": {"disable_update_check": "true"},
        "survey": {"disable_prompts": "true"},
    }
    properties = config_dir / "configurations" / "config_default"
    parser = configparser.ConfigParser(interpolation=None)
    if properties.exists():
        parser.read(properties)
    changed = False
    for section, values in wanted.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for name, value in values.items():
            if parser.get(section, name, fallback=None) != value:
                parser.set(section, name, value)
                changed = True
    if changed:
        properties.parent.mkdir(parents=True, exist_ok=True)
        tmp = properties.with_suffix(".tmp")
        with tmp.open("w") as handle:
            parser.write(handle)
        os.replace(tmp, properties)
    active = config_dir / "active_config"
    if not active.exists():
        active.write_text("default")
    marker = config_dir / "localcloud-activated"
    activated = marker.exists() and marker.read_text().strip() == key["private_key_id"]
    if activate and not activated:
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            print(
                "localcloud: no gcloud on the PATH; its configuration is ready for when it is",
                file=sys.stderr,
            )
        else:
            result = subprocess.run(
                [gcloud, "auth", "activate-service-account", "--key-file", str(files.key_file), "--quiet"],
                env=gcloud_env(config_dir),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if result.returncode == 0:
                marker.write_text(key["private_key_id"] + "\n")
            else:
                print(
                    f"localcloud: gcloud could not activate the key: {result.stderr.strip()}", file=sys.stderr
                )
    return {"CLOUDSDK_CONFIG": str(config_dir), "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": str(files.ca_cert)}


def status(files: StateFiles) -> int:
    pid = _running_pid(files)
    if pid is None:
        print(f"localcloud is down (state {files.root})")
        return 1
    port = files.port.read_text().strip()
    try:
        health = AdminClient(f"http://127.0.0.1:{port}", timeout=5).health()
        clock = AdminClient(f"http://127.0.0.1:{port}", timeout=5).call("GET", "clock")
    except (LocalCloudError, OSError) as e:
        print(f"localcloud pid {pid} is not answering on port {port}: {e}\n{log_tail(files.log, 5)}")
        return 1
    print(f"localcloud is up: pid {pid}, proxy http://127.0.0.1:{port}, state {files.root}")
    print(f"  services: {', '.join(health['services'])}")
    print(f"  clock: {clock['now']} (offset {clock['offset_seconds']:.0f}s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description="The emulated Google cloud.")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory (default $LOCALCLOUD_STATE_DIR or .localcloud)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="run in the foreground")
    serve_p.add_argument("--state-dir", type=Path, default=None, dest="serve_state_dir")
    serve_p.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (0: a free one)")
    serve_p.add_argument(
        "--ready-file", type=Path, default=None, help="written (JSON) once every service started"
    )
    sub.add_parser("up", help="start in the background and wait until ready (idempotent)")
    sub.add_parser("down", help="stop the background server by its pid")
    sub.add_parser("reset", help="stop and wipe the state directory")
    env_p = sub.add_parser("env", help="print eval-able `export NAME=value` lines for clients")
    env_p.add_argument("--ensure-up", action="store_true", help="start localcloud first if it is not up")
    sub.add_parser("status", help="say whether it is up and what it serves")
    args = parser.parse_args(argv)
    state_dir = getattr(args, "serve_state_dir", None) or args.state_dir or default_state_dir()
    files = StateFiles(Path(state_dir).expanduser().resolve())
    if args.command == "serve":
        if not 0 <= args.port <= 65535:
            parser.error(f"--port {args.port}: expected 0 (any free port) or 1..65535")
        from localcloud.server import serve

        return serve(files.root, args.port, args.ready_file)
    if args.command == "up":
        return up(files)
    if args.command == "down":
        return down(files)
    if args.command == "reset":
        return reset(files)
    if args.command == "env":
        return env(files, args.ensure_up)
    return status(files)
