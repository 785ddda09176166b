"""localcloud client: run a server process (tests, benchmarks) and call its admin API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from localcloud.config import StateFiles


class LocalCloudError(RuntimeError):
    """An admin call localcloud refused, or a server that would not start."""


class AdminClient:
    """The plain-HTTP admin API under /_localcloud/ (never proxied, never authenticated: loopback only)."""

    def __init__(self, base_url: str, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # talk to the listener directly, whatever HTTPS_PROXY says

    def call(self, method: str, path: str, json_body: Any = None) -> Any:
        resp = self._session.request(
            method, f"{self.base_url}/_localcloud/{path.lstrip('/')}", json=json_body, timeout=self.timeout
        )
        if resp.status_code >= 400:
            raise LocalCloudError(f"localcloud {method} {path}: {resp.status_code} {resp.text.strip()}")
        return resp.json() if resp.content else None

    def health(self) -> dict:
        return self.call("GET", "health")

    def env(self) -> dict[str, str]:
        return self.call("GET", "env")

    def now(self) -> datetime:
        return datetime.fromisoformat(self.call("GET", "clock")["now"].replace("Z", "+00:00"))

    def set_time(self, when: datetime | str) -> datetime:
        text = when if isinstance(when, str) else when.isoformat()
        return datetime.fromisoformat(self.call("POST", "clock", {"set": text})["now"].replace("Z", "+00:00"))

    def advance(self, seconds: float | str) -> datetime:
        body = {"advance": seconds if isinstance(seconds, str) else f"{seconds}s"}
        return datetime.fromisoformat(self.call("POST", "clock", body)["now"].replace("Z", "+00:00"))

    def fault(
        self,
        host: str,
        path: str = "*",
        *,
        count: int = 1,
        status: int | None = None,
        method: str | None = None,
        retry_after: int | None = None,
        delay: float | None = None,
        drop: bool = False,
        applied: bool = False,
    ) -> int:
        """Make the next `count` requests to host+path (a glob) fail; returns the fault's id.

        applied=True: the service does the work first (a `:run` starts its execution), then its answer
        is replaced by `status`, dropped (`drop`) or sent `delay` seconds late."""
        body: dict[str, Any] = {"host": host, "path": path, "count": count}
        for key, value in (
            ("status", status),
            ("method", method),
            ("retry_after", retry_after),
            ("delay", delay),
        ):
            if value is not None:
                body[key] = value
        if drop:
            body["drop"] = True
        if applied:
            body["applied"] = True
        return self.call("POST", "faults", body)["id"]

    def faults(self) -> list[dict]:
        """The armed faults (with `fired`, a count, and `answered`, the service's statuses)."""
        return self.call("GET", "faults")["faults"]

    def fired_faults(self, fault_id: int | None = None) -> list[dict]:
        """The newest 200 fault hits, oldest first, kept after a fault is consumed (only those of
        `fault_id` if given): {"id", "seq", "host", "method", "path", "applied", "status", "drop",
        "delay", "answered"}."""
        fired = self.call("GET", "faults")["fired"]
        return fired if fault_id is None else [hit for hit in fired if hit["id"] == fault_id]

    def clear_faults(self) -> int:
        return self.call("DELETE", "faults")["cleared"]

    def requests(self) -> dict:
        """{"total", "by_host", "by_host_method", "requests": [{"host","method","path","count"}]}."""
        return self.call("GET", "requests")

    def reset_requests(self) -> None:
        """Reset the counts and the request log (seq numbers keep rising)."""
        self.call("DELETE", "requests")

    def request_log(self, after: int = 0) -> list[dict]:
        """Proxied requests with seq > after, in arrival order: {"seq", "time", "host", "method",
        "path", "query", "status", "fault", "body", "body_bytes", "content_type"}."""
        return self.call("GET", f"requests/log?after={int(after)}")["requests"]

    def request_seq(self) -> int:
        """The newest request's seq (0 before any): a mark for `request_log(after=...)`."""
        return self.call("GET", f"requests/log?after={sys.maxsize}")["last_seq"]

    def reset(self) -> None:
        """Forget every service's state (keys and CA stay)."""
        self.call("POST", "reset")

    def admin(self, service: str, subpath: str = "", method: str = "GET", json: Any = None) -> Any:
        return self.call(method, f"{service}/{subpath}", json)

    # ---- Cloud Monitoring's notifications and the webhook receiver -----------------------------------

    def webhooks(self, name: str) -> list[dict]:
        """What https://hooks.cloudact.local/<name> received, oldest first: {"seq", "time", "method",
        "path", "query", "headers", "body", "body_bytes"} (secrets hashed: localcloud/services/hooks.py)."""
        return self.call("GET", f"hooks/{name}")["requests"]

    def clear_webhooks(self, name: str = "") -> None:
        self.call("DELETE", f"hooks/{name}")

    def outbox(self) -> list[dict]:
        """Monitoring's email, Pub/Sub and Slack notifications, oldest first."""
        return self.call("GET", "monitoring/outbox")["messages"]

    def clear_outbox(self) -> None:
        self.call("DELETE", "monitoring/outbox")

    def deliveries(self) -> list[dict]:
        """Every notification Monitoring queued, with its status and attempts."""
        return self.call("GET", "monitoring/deliveries")["deliveries"]

    def incidents(self) -> list[dict]:
        """Monitoring's incidents as alerts (projects.alerts), each with its incident_id."""
        return self.call("GET", "monitoring/incidents")["incidents"]

    def monitoring_tick(self) -> None:
        """Run Monitoring's evaluator and deliveries once now (they also run by themselves)."""
        self.call("POST", "monitoring/tick")


def spawn_server(
    state_dir: Path, port: int = 0, *, detach: bool = False, python: str = sys.executable
) -> subprocess.Popen:
    """Start `python -m localcloud serve` with its output appended to <state>/localcloud.log."""
    files = StateFiles(state_dir)
    files.root.mkdir(parents=True, exist_ok=True)
    files.ready.unlink(missing_ok=True)
    with open(files.log, "ab") as log:
        return subprocess.Popen(
            [
                python,
                "-m",
                "localcloud",
                "serve",
                "--state-dir",
                str(files.root),
                "--port",
                str(port),
                "--ready-file",
                str(files.ready),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
            cwd=str(Path(__file__).resolve().parent.parent),
        )


def wait_ready(files: StateFiles, proc: subprocess.Popen | None, pid: int, timeout: float) -> dict:
    """The ready file's content once the server with this pid wrote it; LocalCloudError if it died or hung."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if files.ready.exists():
            try:
                ready = json.loads(files.ready.read_text())
            except ValueError:
                ready = {}
            if ready.get("pid") == pid:
                return ready
        exited = proc.poll() if proc is not None else (None if pid_alive(pid) else -1)
        if exited is not None:
            raise LocalCloudError(f"localcloud exited ({exited}) before it was ready:\n{log_tail(files.log)}")
        time.sleep(0.02)
    raise LocalCloudError(f"localcloud not ready after {timeout:.0f}s:\n{log_tail(files.log)}")


def stop_pid(pid: int, grace: float = 10, proc: subprocess.Popen | None = None) -> bool:
    """SIGTERM, then SIGKILL after `grace` seconds; True if a process was stopped."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return True
        elif not pid_alive(pid):
            return True
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    if proc is not None:
        proc.wait(timeout=10)
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LocalCloudProcess:
    """One localcloud server as a child process, for tests and benchmarks: start() ... stop()."""

    def __init__(self, state_dir: Path | str, port: int = 0):
        self.files = StateFiles(Path(state_dir).resolve())
        self.state_dir = self.files.root
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.proxy_url = ""
        self.admin: AdminClient | None = None
        self.ready_seconds = 0.0

    def start(self, timeout: float = 30) -> LocalCloudProcess:
        started = time.monotonic()
        self.proc = spawn_server(self.state_dir, self.port)
        self.pid = self.proc.pid
        try:
            ready = wait_ready(self.files, self.proc, self.pid, timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started
        self.port = ready["port"]
        self.proxy_url = ready["proxy_url"]
        self.admin = AdminClient(self.proxy_url)
        return self

    def stop(self) -> int | None:
        """Stop the server by its pid; its exit status (0 after a clean SIGTERM shutdown)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            stop_pid(self.proc.pid, proc=self.proc)
        code, self.proc = self.proc.poll(), None
        return code

    def __enter__(self) -> LocalCloudProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ca_file(self) -> Path:
        return self.files.ca_cert

    @property
    def key_file(self) -> Path:
        return self.files.key_file

    @property
    def client_env(self) -> dict[str, str]:
        env = json.loads(self.files.client_env.read_text())
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(self.key_file)
        return env
