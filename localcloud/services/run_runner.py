"""Runs a Cloud Run execution's tasks as local processes (the checkout is the image).

One `ExecutionRun` per execution: a thread that starts up to `parallelism` task attempts at a
time, each the first container's `command + args` in its own process group with cwd = the
checkout, kills an attempt that outlives the task timeout (SIGTERM, then SIGKILL after a grace
period, as Cloud Run does), retries a failed attempt up to `maxRetries`, and turns every
stdout/stderr line into a Cloud Logging entry. State changes are reported to the owner through
`on_event(execution_name, event, **fields)`; the owner (RunService) keeps the resource state.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from localcloud.services.artifactregistry_images import Container, load_config

if TYPE_CHECKING:
    from collections.abc import Callable

    from localcloud.service import Cloud

CHECKOUT = Path(__file__).resolve().parents[2]
KILL_GRACE_S = 2.0  # Cloud Run gives 10 s between SIGTERM and SIGKILL; short here to keep tests quick
# Host variables a process needs to start at all; a container gets nothing else from the host.
HOST_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")
IMAGE_ENV = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING")
# Special fields the logging agent lifts out of a JSON line (python-logging's structured_log shape).
_SEVERITIES = {"DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
_SEVERITY_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "TRACE": "DEBUG", "ERR": "ERROR"}


@functools.cache
def image_defaults() -> dict[str, Any]:
    """The job image's CMD and WORKDIR, read from the checkout's Dockerfile (locally the checkout is the
    image), and the interpreter settings of its ENV. Nothing when there is no Dockerfile."""
    found: dict[str, Any] = {"cmd": [], "workdir": "/", "env": {}}
    try:
        text = (CHECKOUT / "Dockerfile").read_text()
    except OSError:
        return found
    for line in re.sub(r"\\\n", " ", text).splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "CMD" and rest.strip().startswith("["):
            try:
                found["cmd"] = [str(part) for part in json.loads(rest)]
            except ValueError:
                pass
        elif word == "WORKDIR" and rest.strip():
            found["workdir"] = rest.strip()
        elif word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                if key in IMAGE_ENV:  # paths of the image (e.g. /app/...) mean nothing in the checkout
                    found["env"][key] = value
    return found


def local_path(workdir: str) -> Path:
    """A container working directory in the checkout: the image's WORKDIR is the checkout's root."""
    image_root = image_defaults()["workdir"].rstrip("/")
    if image_root and (workdir == image_root or workdir.startswith(image_root + "/")):
        workdir = workdir[len(image_root) :]
    return CHECKOUT / workdir.lstrip("/")


def parse_log_line(line: str) -> dict[str, Any]:
    """The payload fields of a LogEntry for one output line, as Cloud Run's logging agent makes them."""
    text = line.rstrip("\r\n")
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            entry: dict[str, Any] = {}
            severity = obj.pop("severity", None)
            if isinstance(severity, str):
                name = _SEVERITY_ALIASES.get(severity.upper(), severity.upper())
                if name in _SEVERITIES:
                    entry["severity"] = name
            labels = obj.pop("logging.googleapis.com/labels", None)
            if isinstance(labels, dict):
                entry["labels"] = {str(k): str(v) for k, v in labels.items()}
            for key, field in (
                ("logging.googleapis.com/trace", "trace"),
                ("logging.googleapis.com/spanId", "spanId"),
                ("logging.googleapis.com/insertId", "insertId"),
            ):
                if isinstance(obj.get(key), str):
                    entry[field] = obj.pop(key)
            entry["jsonPayload"] = obj
            return entry
    return {"textPayload": text}


class StartError(Exception):
    """A task's process could not be started at all."""


class ExecutionRun:
    """The processes of one execution. Thread-safe: cancel() and kill() may come from any thread."""

    def __init__(
        self,
        cloud: Cloud,
        *,
        project: str,
        location: str,
        job: str,
        execution: str,
        container: dict[str, Any],
        env: dict[str, str],
        task_count: int,
        parallelism: int,
        timeout_s: float,
        max_retries: int,
        on_event: Callable[..., None],
        container_env: dict[str, str] | None = None,
    ):
        self.cloud = cloud
        self.project, self.location, self.job, self.execution = project, location, job, execution
        self.container = container
        self.env = env  # what the runtime gives: host variables, localcloud's client env, secret values
        self.container_env = container_env or {}  # the values the job (and the run's overrides) set
        self.task_count = task_count
        self.parallelism = parallelism or task_count
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.on_event = on_event
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}  # pid -> process, for cancel and stop
        self._image: tuple[dict[str, Any] | None, bool] | None = None  # (held image, missing), once resolved
        self._thread = threading.Thread(target=self._main, name=f"run-{execution}", daemon=True)

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Stop starting tasks and kill the running ones; they end as cancelled."""
        self._cancel.set()
        self._kill_all()

    def kill(self, wait: float = 5.0) -> None:
        """localcloud is stopping: kill every process by its pid and wait for the thread."""
        self.cancel()
        self._thread.join(wait)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def pids(self) -> list[int]:
        with self._lock:
            return list(self._procs)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            terminate(proc)

    # --- the execution -------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run_tasks()
        except Exception as exc:  # noqa: BLE001 - the execution must end with a reason, whatever broke
            self.on_event(self.execution, "crashed", message=f"localcloud runner error: {exc!r}")

    def _run_tasks(self) -> None:
        slots = threading.Semaphore(self.parallelism)
        threads = []
        for index in range(self.task_count):
            slots.acquire()
            if self._cancel.is_set():
                slots.release()
                self.on_event(self.execution, "task_cancelled", index=index, started=False)
                continue
            thread = threading.Thread(target=self._task, args=(index, slots), daemon=True)
            threads.append(thread)
            thread.start()
        for thread in threads:
            thread.join()
        self.on_event(self.execution, "finished", cancelled=self._cancel.is_set())

    def _task(self, index: int, slots: threading.Semaphore) -> None:
        try:
            self._task_attempts(index)
        except StartError as exc:  # retrying cannot help: the same command fails the same way
            self._task_failed(index, str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken attempt fails the task, never passes it
            self._task_failed(index, f"localcloud runner error: {exc!r}")
        finally:
            slots.release()

    def _task_failed(self, index: int, error: str) -> None:
        self.on_event(
            self.execution,
            "attempt_failed",
            index=index,
            attempt=0,
            exit_code=None,
            timed_out=False,
            will_retry=False,
            error=error,
        )

    def _task_attempts(self, index: int) -> None:
        attempt = 0
        while True:
            exit_code, timed_out, cancelled = self._attempt(index, attempt)
            if cancelled:
                self.on_event(self.execution, "task_cancelled", index=index, started=True)
                return
            if exit_code == 0:
                self.on_event(self.execution, "task_succeeded", index=index, attempt=attempt)
                return
            more = attempt < self.max_retries and not self._cancel.is_set()
            self.on_event(
                self.execution,
                "attempt_failed",
                index=index,
                attempt=attempt,
                exit_code=exit_code,
                timed_out=timed_out,
                will_retry=more,
            )
            if not more:
                return
            attempt += 1

    def _argv(self) -> list[str]:
        command, args = self.container.get("command") or [], self.container.get("args") or []
        # As a container runtime does for an image without ENTRYPOINT: args alone replace the CMD.
        argv = [*command, *args] if command or args else image_defaults()["cmd"]
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable  # the checkout's venv interpreter stands in for the image's python
        return argv

    def _image_container(self) -> Container | None:
        """A container of the job's image when Artifact Registry holds it (its files, ENV, WORKDIR);
        None for the legacy local image (`localhost/...`, or a repository this localcloud lacks): the
        checkout. An image missing from a repository the registry has cannot be pulled."""
        image = self.container.get("image", "")
        with self._lock:  # resolved once per execution, as Cloud Run resolves a tag when it starts one
            if self._image is None:
                try:
                    registry: Any = self.cloud.service("artifactregistry")
                except KeyError:
                    registry = None
                found = registry.image(image) if registry is not None else None
                missing = found is None and registry is not None and registry.repository_of(image) is not None
                self._image = (found, missing)
            found, missing = self._image
        if missing:
            raise StartError(f"Image '{image}' not found.")
        return Container(found["dir"], load_config(found["dir"])) if found else None

    def _attempt(self, index: int, attempt: int) -> tuple[int | None, bool, bool]:
        """Run one attempt; (exit code, timed out, cancelled)."""
        argv = self._argv()
        task_env = {
            **self.container_env,
            "CLOUD_RUN_JOB": self.job,
            "CLOUD_RUN_EXECUTION": self.execution,
            "CLOUD_RUN_TASK_INDEX": str(index),
            "CLOUD_RUN_TASK_COUNT": str(self.task_count),
            "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
        }
        env = {**image_defaults()["env"], **self.env, **task_env}
        cwd = local_path(self.container.get("workingDir") or "")
        instance = secrets.token_hex(32)
        try:
            image = self._image_container()
        except StartError as exc:
            self._system_log(index, attempt, instance, str(exc), "ERROR")
            self.on_event(self.execution, "attempt_started", index=index, attempt=attempt)
            raise
        if image is not None:
            try:
                return self._run_process(index, attempt, instance, *self._image_command(image, task_env))
            finally:
                image.close()
        return self._run_process(index, attempt, instance, argv, env, cwd)

    def _image_command(self, image: Container, env: dict[str, str]) -> tuple[list[str], dict[str, str], Path]:
        """The task's process in the image's files: the container's env (the job's values, the run's
        overrides) has its image paths mapped into the copy, as the image's ENV has; what localcloud adds
        (its key, CA bundle and proxy, the secrets' values) is passed as it is."""
        argv, merged, cwd = image.command(
            self.container.get("command"),
            self.container.get("args"),
            env,
            self.container.get("workingDir") or "",
            runtime_env=self.env,
        )
        return argv, merged, Path(cwd)

    def _run_process(
        self, index: int, attempt: int, instance: str, argv: list[str], env: dict[str, str], cwd: Path
    ) -> tuple[int | None, bool, bool]:
        if not argv:
            message = (
                "the container has no command or args: locally the checkout is the image, and it has no "
                "default CMD. Set the job's container command, e.g. [python, -m, jobs.daily.alerts_daily]."
            )
            self._system_log(index, attempt, instance, message, "ERROR")
            self.on_event(self.execution, "attempt_started", index=index, attempt=attempt)
            raise StartError(message)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, so a kill reaches its children too
            )
        except OSError as exc:
            message = f"the container could not start: {argv[0]}: {exc.strerror}"
            self._system_log(index, attempt, instance, message, "ERROR")
            self.on_event(self.execution, "attempt_started", index=index, attempt=attempt)
            raise StartError(message) from None
        with self._lock:
            self._procs[proc.pid] = proc
        # Running, with its pids, in one event: a task counted as running always has its pids kept,
        # so a localcloud stopped (or killed) at any point after this can kill them at its next start.
        self.on_event(self.execution, "attempt_started", index=index, attempt=attempt, pids=self.pids())
        readers = [
            threading.Thread(target=self._pump, args=(stream, name, index, attempt, instance), daemon=True)
            for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
        ]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + self.timeout_s
        timed_out = False
        try:
            while proc.poll() is None:
                if self._cancel.is_set():
                    terminate(proc)
                    break
                if time.monotonic() >= deadline:
                    timed_out = True
                    self._system_log(
                        index,
                        attempt,
                        instance,
                        "Terminating task because it has reached the maximum timeout of "
                        f"{_secs(self.timeout_s)} seconds. To change this limit, see https://cloud.google.com/run/docs/configuring/task-timeout",
                        "WARNING",
                    )
                    terminate(proc)
                    break
                try:
                    proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
            proc.wait()
        finally:
            for reader in readers:
                reader.join(5)
            with self._lock:
                self._procs.pop(proc.pid, None)
        code = proc.returncode
        if self._cancel.is_set() and not timed_out and code != 0:
            return code, False, True
        if not timed_out:
            self._system_log(index, attempt, instance, f"Container called exit({code}).", "INFO")
        return code, timed_out, False

    # --- logs ----------------------------------------------------------------------------------

    def _pump(self, stream, name: str, index: int, attempt: int, instance: str) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            self._write_log(name, index, attempt, instance, parse_log_line(line))
        stream.close()

    def _system_log(self, index: int, attempt: int, instance: str, message: str, severity: str) -> None:
        self._write_log(
            "varlog/system", index, attempt, instance, {"textPayload": message, "severity": severity}
        )

    def _write_log(self, log: str, index: int, attempt: int, instance: str, fields: dict[str, Any]) -> None:
        now = self.cloud.now()
        labels = {
            "instanceId": instance,
            "run.googleapis.com/execution_name": self.execution,
            "run.googleapis.com/task_attempt": str(attempt),
            "run.googleapis.com/task_index": str(index),
        }
        labels.update(fields.pop("labels", {}))
        entry = {
            "logName": f"projects/{self.project}/logs/{quote('run.googleapis.com/' + log, safe='')}",
            "resource": {
                "type": "cloud_run_job",
                "labels": {"job_name": self.job, "location": self.location, "project_id": self.project},
            },
            "labels": labels,
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            **fields,
        }
        try:
            self.cloud.service("logging").write([entry])
        except Exception as exc:  # noqa: BLE001 - a lost log line must not kill the task
            print(
                f"localcloud run: could not write a log entry of {self.execution}: {exc!r}", file=sys.stderr
            )


def _secs(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after the grace period (by pid, never by name)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait()
