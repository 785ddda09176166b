"""Cloud Run v2 jobs: create, get, list, patch and delete (jobs:run is in run_executions.py)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from localcloud.services import run_shapes as shapes
from localcloud.services.run_base import TYPE_JOB, RunState, flag, list_body, new_etag
from localcloud.services.run_errors import ApiError


class RunJobs(RunState):
    """jobs.create/get/list/patch/delete; a job operation is done when created."""

    def _job_name(self, project: str, location: str, job: str) -> str:
        return f"projects/{project}/locations/{location}/jobs/{job}"

    def _require_job(self, name: str) -> dict[str, Any]:
        job = self._state["jobs"].get(name)
        if job is None:
            _, project, _, location, _, job_id = name.split("/")
            raise ApiError(
                404,
                f"Resource '{job_id}' of kind 'JOB' in region '{location}' in project '{project}' "
                "does not exist.",
            )
        return job

    def _job_op(self, project: str, location: str, job: dict[str, Any]) -> dict[str, Any]:
        op = {
            "name": f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}",
            "metadata": {"@type": TYPE_JOB, **job},
            "done": True,
            "response": {"@type": TYPE_JOB, **job},
        }
        self._state["operations"][op["name"]] = op
        return op

    def _new_job(self, name: str, spec: dict[str, Any], principal: str) -> dict[str, Any]:
        now = self._now()
        return {
            "name": name,
            "uid": str(uuid.uuid4()),
            "generation": "1",
            **{k: v for k, v in spec.items() if k in ("labels", "annotations")},
            "createTime": now,
            "updateTime": now,
            "creator": principal,
            "lastModifier": principal,
            **{k: v for k, v in spec.items() if k not in ("labels", "annotations")},
            "observedGeneration": "1",
            "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
            "etag": new_etag(),
        }

    def _create_job(self, request, body, principal, project, location):
        job_id = shapes.validate_job_id(request.args.get("jobId"))
        spec = shapes.normalize_job(body)
        name = self._job_name(project, location, job_id)
        with self._lock:
            keep = not flag(request, "validateOnly")
            job = self._insert_job(name, job_id, spec, principal, keep)
            if not keep:
                return self._job_op_unsaved(project, location, job)
            op = self._job_op(project, location, job)
            self._save()
            return op

    def _insert_job(self, name, job_id, spec, principal, keep):
        """A new job (v2 or v1 create; the caller holds the lock and saves), refused when it exists."""
        if name in self._state["jobs"]:
            raise ApiError(409, f"Resource '{job_id}' already exists.", "ALREADY_EXISTS")
        job = self._new_job(name, spec, principal)
        if keep:
            self._state["jobs"][name] = job
        return job

    def _job_op_unsaved(self, project, location, job):
        op = self._job_op(project, location, job)
        self._save()  # the operation is kept (a client may poll it); the job is not
        return op

    def _list_jobs(self, request, body, principal, project, location):
        prefix = f"projects/{project}/locations/{location}/jobs/"
        with self._lock:
            jobs = [job for name, job in sorted(self._state["jobs"].items()) if name.startswith(prefix)]
            return list_body("jobs", jobs, request)

    def _get_job(self, request, body, principal, project, location, job):
        with self._lock:
            return self._require_job(self._job_name(project, location, job))

    def _patch_job(self, request, body, principal, project, location, job):
        name = self._job_name(project, location, job)
        if body.get("name") and body["name"] != name:
            raise ApiError(
                400, f"Invalid value at 'job.name': {body['name']!r} does not match the URL ({name})"
            )
        spec = shapes.normalize_job(body)
        with self._lock:
            current = self._state["jobs"].get(name)
            if current is None:
                if not flag(request, "allowMissing"):
                    self._require_job(name)
                new = self._new_job(name, spec, principal)
            else:
                if body.get("etag") and body["etag"] != current["etag"]:
                    raise ApiError(
                        409, f"etag {body['etag']!r} does not match the job's current etag", "ABORTED"
                    )
                generation = str(int(current["generation"]) + 1)
                new = {
                    k: v
                    for k, v in current.items()
                    if k not in ("labels", "annotations", "client", "clientVersion", "binaryAuthorization")
                }
                new.update(spec)
                new.update(
                    generation=generation,
                    observedGeneration=generation,
                    updateTime=self._now(),
                    lastModifier=principal,
                    etag=new_etag(),
                )
                new = _ordered_job(new)
            if flag(request, "validateOnly"):
                return self._job_op_unsaved(project, location, new)
            self._state["jobs"][name] = new
            op = self._job_op(project, location, new)
            self._save()
            return op

    def _delete_job(self, request, body, principal, project, location, job):
        name = self._job_name(project, location, job)
        with self._lock:
            current = self._require_job(name)
            etag = request.args.get("etag")
            if etag and etag != current["etag"]:
                raise ApiError(409, f"etag {etag!r} does not match the job's current etag", "ABORTED")
            deleted = {**current, "deleteTime": self._now()}
            if flag(request, "validateOnly"):
                return self._job_op_unsaved(project, location, deleted)
            del self._state["jobs"][name]
            doomed = [e for e in self._state["executions"] if e.startswith(name + "/executions/")]
            runs = [self._runs.pop(e) for e in doomed if e in self._runs]
            for execution in doomed:
                self._state["executions"].pop(execution, None)
                self._state["tasks"].pop(execution, None)
                self._state["pids"].pop(execution, None)
            op = self._job_op(project, location, deleted)
            self._save()
        for run in runs:
            threading.Thread(target=run.kill, daemon=True).start()
        return op


def _ordered_job(job: dict[str, Any]) -> dict[str, Any]:
    order = [
        "name",
        "uid",
        "generation",
        "labels",
        "annotations",
        "createTime",
        "updateTime",
        "creator",
        "lastModifier",
        "client",
        "clientVersion",
        "launchStage",
        "binaryAuthorization",
        "template",
    ]
    return {**{k: job[k] for k in order if k in job}, **{k: v for k, v in job.items() if k not in order}}
