"""One build, run in a background thread: fetch the storageSource tarball from Cloud Storage into a
workspace, run the steps in order (docker equivalents, bash), push `images:`, and report each change to
the build resource. Every output line is a Cloud Logging entry (`projects/<p>/logs/cloudbuild`,
resource `build` with `build_id`, label `build_step`). Timestamps are the emulated clock's; timeouts
are wall time (the processes are real). Processes run in their own process group, killed by pid.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import threading
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localcloud.clock import rfc3339
from localcloud.services import cloudbuild_config as cfg
from localcloud.services import cloudbuild_docker as docker
from localcloud.services.run_runner import terminate  # by pid: SIGTERM the group, then SIGKILL

if TYPE_CHECKING:
    from localcloud.services.cloudbuild import CloudBuildService

DOCKER_BUILDERS = ("gcr.io/cloud-builders/docker", "docker")
BASH_BUILDERS = ("bash",)
SHELLS = ("bash", "sh", "/bin/bash", "/bin/sh", "/usr/bin/bash", "/usr/bin/env")
HOST_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


class StepFailed(Exception):
    def __init__(self, status: str, detail: str, failure_type: str = "USER_BUILD_STEP"):
        super().__init__(detail)
        self.status, self.detail, self.failure_type = status, detail, failure_type


def _image_name(name: str) -> str:
    """A builder image name without its tag or digest."""
    base = name.split("@", 1)[0]
    last = base.rsplit("/", 1)[-1]
    return base.rsplit(":", 1)[0] if ":" in last else base


class BuildRun:
    def __init__(self, service: CloudBuildService, name: str, values: dict[str, str]):
        self.service = service
        self.cloud = service.cloud
        self.name = name
        self.values = values
        self._cancel = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}
        build = service.build_copy(name)
        self.build = cfg.apply(build, values)
        self.id, self.project = build["id"], build["projectId"]
        self.root = service.state_dir / "work" / self.id
        self.workspace = self.root / "workspace"
        self.images = docker.LocalImages(self.root / "images")
        self._thread = threading.Thread(target=self._main, name=f"build-{self.id}", daemon=True)
        self.deadline = 0.0

    # ---- control -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()
        self._kill_all()

    def kill(self, wait: float = 5.0) -> None:
        """localcloud is stopping: the build ends as INTERNAL_ERROR, its processes killed by pid."""
        self._stopping = True
        self.cancel()
        self._thread.join(wait)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            terminate(proc)

    # ---- logs ----------------------------------------------------------------------------------------

    def log(self, text: str, step: int | None = None) -> None:
        label = "MAIN"
        if step is not None:
            sid = self.build["steps"][step].get("id")
            label = f'Step #{step} - "{sid}"' if sid else f"Step #{step}"
        entry = {
            "logName": f"projects/{self.project}/logs/cloudbuild",
            "resource": {"type": "build", "labels": {"build_id": self.id, "project_id": self.project}},
            "labels": {"build_step": label},
            "textPayload": text,
            "timestamp": self.cloud.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        try:
            self.cloud.service("logging").write([entry])
        except Exception as exc:  # noqa: BLE001 - a lost log line must not fail the build
            print(f"localcloud cloudbuild: could not write a log entry of {self.id}: {exc!r}")

    # ---- the build -----------------------------------------------------------------------------------

    def _now(self) -> str:
        return rfc3339(self.cloud.now())

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - the build must end with a reason, whatever broke
            self.service.update(
                self.name,
                status="INTERNAL_ERROR",
                statusDetail=f"localcloud Cloud Build error: {exc!r}",
                finishTime=self._now(),
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.service.finished(self.name)

    def _run(self) -> None:
        start = self._now()
        self.deadline = time.monotonic() + cfg.timeout_s(self.build.get("timeout"))
        self.service.update(self.name, status="WORKING", startTime=start)
        timing: dict[str, Any] = {}
        for folder in (
            self.workspace,
            self.root / "home",
            self.root / "scratch",
            self.root / "builder" / "outputs",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            fetch_start = self._now()
            self._fetch_source()
            timing["FETCHSOURCE"] = {"startTime": fetch_start, "endTime": self._now()}
            self.service.update(self.name, timing=dict(timing))
            build_start = self._now()
            self.log("BUILD")
            for index in range(len(self.build["steps"])):
                self._step(index)
            timing["BUILD"] = {"startTime": build_start, "endTime": self._now()}
            results = self._push_images(timing)
        except StepFailed as caught:
            failed = caught
            if self._stopping:
                failed = StepFailed("INTERNAL_ERROR", "localcloud stopped while the build was running")
            if "BUILD" not in timing and "FETCHSOURCE" in timing:
                timing["BUILD"] = {"startTime": timing["FETCHSOURCE"]["endTime"], "endTime": self._now()}
            self.log("ERROR")
            self.log(f"ERROR: {failed.detail}")
            fields: dict[str, Any] = {"status": failed.status, "finishTime": self._now(), "timing": timing}
            if failed.status == "FAILURE":
                fields["statusDetail"] = (
                    f"Build step failure: {failed.detail}"
                    if failed.failure_type == "USER_BUILD_STEP"
                    else failed.detail
                )
                fields["failureInfo"] = {"type": failed.failure_type, "detail": fields["statusDetail"]}
            elif failed.status in ("TIMEOUT", "INTERNAL_ERROR"):
                fields["statusDetail"] = failed.detail
            self._unrun_steps()
            self.service.update(self.name, **fields)
            return
        self.log("DONE")
        self.service.update(
            self.name, status="SUCCESS", finishTime=self._now(), timing=timing, results=results
        )

    def _unrun_steps(self) -> None:
        def mark(build: dict[str, Any]) -> None:
            for step in build["steps"]:
                step.setdefault("status", "QUEUED")

        self.service.mutate(self.name, mark)

    def _check_stop(self) -> None:
        if self._cancel.is_set():
            raise StepFailed("CANCELLED", "build cancelled")
        if time.monotonic() >= self.deadline:
            raise StepFailed(
                "TIMEOUT", f"build timed out after {self.build.get('timeout') or cfg.DEFAULT_TIMEOUT}"
            )

    # ---- source --------------------------------------------------------------------------------------

    def _fetch_source(self) -> None:
        source = (self.build.get("source") or {}).get("storageSource")
        self.log("FETCHSOURCE")
        if not source:
            return
        from localcloud.services.storage_media import StorageError

        url = f"gs://{source['bucket']}/{source['object']}"
        storage = self.cloud.service("storage")
        try:
            if storage.bucket_project(source["bucket"]) not in (self.project, None):  # type: ignore[attr-defined]
                raise StorageError(
                    403, f"the build's account may not read gs://{source['bucket']}", "forbidden"
                )
            meta, data = storage.read_object(source["bucket"], source["object"], source.get("generation"))  # type: ignore[attr-defined]
        except StorageError as e:
            raise StepFailed(
                "FAILURE", f"failed to fetch source {url}: {e.message}", "FETCH_SOURCE_FAILED"
            ) from None
        self.log(f"Fetching storage object: {url}#{meta['generation']}")
        try:
            if source["object"].endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    archive.extractall(self.workspace)  # noqa: S202 - zipfile keeps names inside
            else:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
                    archive.extractall(self.workspace, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as e:
            raise StepFailed(
                "FAILURE", f"failed to unpack source {url}: {e}", "FETCH_SOURCE_FAILED"
            ) from None
        self.log(f"Operation completed over 1 objects/{len(data)} B.")

    # ---- steps ---------------------------------------------------------------------------------------

    def _step(self, index: int) -> None:
        self._check_stop()
        step = self.build["steps"][index]
        name = step["name"]
        label = f'Step #{index} - "{step["id"]}"' if step.get("id") else f"Step #{index}"
        started = self._now()
        self.service.set_step(self.name, index, status="WORKING", timing={"startTime": started})
        self.log(f"Starting {label}")
        self.log(f"Already have image: {name}", index)
        code, outcome = self._execute(index, step)
        ended = self._now()
        allowed = code == 0 or step.get("allowFailure") or code in step.get("allowExitCodes", [])
        status = outcome or ("SUCCESS" if code == 0 else "FAILURE")
        fields: dict[str, Any] = {"status": status, "timing": {"startTime": started, "endTime": ended}}
        if code:
            fields["exitCode"] = code
        self.service.set_step(self.name, index, **fields)
        self.log(f"Finished {label}")
        if outcome == "CANCELLED":
            raise StepFailed("CANCELLED", "build cancelled")
        if outcome == "TIMEOUT":
            raise StepFailed("TIMEOUT", f'build step {index} "{name}" timed out')
        if not allowed:
            raise StepFailed(
                "FAILURE", f'build step {index} "{name}" failed: step exited with non-zero status: {code}'
            )

    def _env(self, step: dict[str, Any]) -> dict[str, str]:
        env = {k: os.environ[k] for k in HOST_ENV if k in os.environ}
        env.update(HOME=str(self.root / "home"), BUILDER_OUTPUT=str(self.root / "builder" / "outputs"))
        options = self.build.get("options", {})
        if options.get("automapSubstitutions") or step.get("automapSubstitutions"):
            env.update(self.values)
        for item in [*options.get("env", []), *step.get("env", [])]:
            key, _, value = item.partition("=")
            env[key] = value
        for key in [*options.get("secretEnv", []), *step.get("secretEnv", [])]:
            env[key] = self._secret(key)
        return env

    def _secret(self, key: str) -> str:
        for item in (self.build.get("availableSecrets") or {}).get("secretManager", []):
            if item.get("env") == key:
                parts = item.get("versionName", "").split("/")  # projects/P/secrets/S/versions/V
                ok = (
                    len(parts) == 6
                    and parts[0] == "projects"
                    and parts[2] == "secrets"
                    and parts[4] == "versions"
                )
                value = self.cloud.secret_value(parts[3], parts[5], parts[1]) if ok else None
                if value is None:
                    raise StepFailed(
                        "FAILURE",
                        f"failed to access secret version {item.get('versionName')}",
                        "USER_BUILD_STEP",
                    )
                return value.decode()
        raise StepFailed(
            "FAILURE", f'secretEnv "{key}" is not defined in availableSecrets', "USER_BUILD_STEP"
        )

    def _execute(self, index: int, step: dict[str, Any]) -> tuple[int, str | None]:
        """(exit code, "TIMEOUT"/"CANCELLED"/None) of a step, by its builder's equivalent."""
        name, entrypoint = step["name"], step.get("entrypoint", "")
        base = _image_name(name)
        cwd = self.workspace / step.get("dir", "")
        cwd.mkdir(parents=True, exist_ok=True)
        args = list(step.get("args", []))
        step_deadline = (
            time.monotonic() + cfg.timeout_s(step["timeout"]) if step.get("timeout") else self.deadline
        )
        deadline = min(step_deadline, self.deadline)
        if step.get("script"):
            script = self.root / "scratch" / f"step-{index}.sh"
            script.write_text(step["script"])
            shell = (
                "bash"
                if step["script"].startswith("#!") and "bash" in step["script"].splitlines()[0]
                else "sh"
            )
            return self._process([shell, str(script)], self._env(step), cwd, deadline, index)
        if entrypoint in SHELLS:
            return self._process([entrypoint, *args], self._env(step), cwd, deadline, index)
        if base in BASH_BUILDERS and not entrypoint:
            return self._process(["bash", *args], self._env(step), cwd, deadline, index)
        if base in DOCKER_BUILDERS and entrypoint in ("", "docker"):
            return self._docker(index, args, cwd, deadline, step)
        what = f'entrypoint "{entrypoint}" of ' if entrypoint else ""
        self.log(
            f'localcloud Cloud Build has no equivalent of {what}the builder image "{name}": it runs '
            "gcr.io/cloud-builders/docker (build, push, run, tag), bash, and steps with entrypoint bash "
            "or sh",
            index,
        )
        return 1, None

    def _docker(
        self, index: int, args: list[str], cwd: Path, deadline: float, step: dict[str, Any]
    ) -> tuple[int, str | None]:
        def log(text: str) -> None:
            for line in text.splitlines() or [""]:
                self.log(line, index)

        if not args:
            log("Usage:  docker [OPTIONS] COMMAND")
            return 1, None
        command, rest = args[0], args[1:]
        if command == "image" and rest[:1] == ["build"]:
            command, rest = "build", rest[1:]
        try:
            if command == "build":
                docker.build(rest, cwd, self.images, self.root / "scratch", log)
            elif command == "push":
                docker.push(rest, self.images, self.cloud.service("artifactregistry"), self._now(), log)
            elif command == "tag":
                docker.tag(rest, self.images)
            elif command == "run":
                container, argv, env, run_cwd = docker.run_argv(
                    rest, self.images, self.cloud.service("artifactregistry"), self.root / "scratch"
                )
                try:
                    return self._process(argv, env, Path(run_cwd), deadline, index)
                finally:
                    container.close()
            else:
                log(
                    f"docker: '{command}' is not a docker command "
                    "(localcloud emulates build, push, run and tag)."
                )
                return 1, None
        except docker.DockerError as e:
            log(str(e))
            return e.code, None
        return 0, None

    def _process(
        self, argv: list[str], env: dict[str, str], cwd: Path, deadline: float, index: int
    ) -> tuple[int, str | None]:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            self.log(f"exec: {argv[0]}: {e.strerror}", index)
            return 127, None
        with self._lock:
            self._procs[proc.pid] = proc
        reader = threading.Thread(target=self._pump, args=(proc, index), daemon=True)
        reader.start()
        outcome = None
        try:
            while proc.poll() is None:
                if self._cancel.is_set():
                    outcome = "CANCELLED"
                elif time.monotonic() >= deadline:
                    outcome = "TIMEOUT"
                if outcome:
                    terminate(proc)
                    break
                try:
                    proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
            proc.wait()
        finally:
            reader.join(5)
            with self._lock:
                self._procs.pop(proc.pid, None)
        if outcome is None and self._cancel.is_set() and proc.returncode != 0:
            outcome = "CANCELLED"  # killed by cancel() before this loop saw it
        return proc.returncode, outcome

    def _pump(self, proc: subprocess.Popen, index: int) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self.log(raw.decode("utf-8", errors="replace").rstrip("\r\n"), index)
        proc.stdout.close()

    # ---- images --------------------------------------------------------------------------------------

    def _push_images(self, timing: dict[str, Any]) -> dict[str, Any]:
        wanted = [docker.normalize(i) for i in self.build.get("images", [])]
        results: dict[str, Any] = {}
        if not wanted:
            return results
        missing = [i for i in wanted if i not in self.images.tags]
        if missing:
            raise StepFailed(
                "FAILURE",
                "failed to find one or more images after execution of build steps: "
                + str(missing).replace("'", '"'),
                "PUSH_IMAGE_NOT_FOUND",
            )
        push_start = self._now()
        self.log("PUSH")
        registry = self.cloud.service("artifactregistry")
        built: list[dict[str, Any]] = []
        for original, ref in zip(self.build["images"], wanted, strict=True):
            self._check_stop()
            started = self._now()
            self.log(f"Pushing {ref}")
            try:
                digest = docker.push_one(ref, self.images, registry, self._now(), self.log)
            except docker.DockerError as e:
                raise StepFailed("FAILURE", f"failed to push {ref}: {e}", "PUSH_FAILED") from None
            built.append(
                {
                    "name": original,
                    "digest": digest,
                    "pushTiming": {"startTime": started, "endTime": self._now()},
                }
            )
        timing["PUSH"] = {"startTime": push_start, "endTime": self._now()}
        results["images"] = built
        return results
