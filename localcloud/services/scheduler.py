"""Cloud Scheduler v1 (docs/gcp-rest.md) with a ticker that fires due jobs by the emulated clock.

Jobs persist in `<state_dir>/state.json`. Stored defaults echoed back as real Scheduler does:
timeZone "Etc/UTC", attemptDeadline "180s", httpTarget.httpMethod "POST", the retryConfig
defaults, oauthToken.scope cloud-platform, oidcToken.audience = the target URI, and the headers
Scheduler adds (`User-Agent: Google-Cloud-Scheduler`; `Content-Type: application/octet-stream`
when a body is sent without one). A PATCH without updateMask updates every field present in
the body (AIP-134's implied mask), which is what google.cloud's gcp_cloudscheduler_job sends.

The ticker polls every 0.2 s. When a job's `scheduleTime` has passed it fires once, for the most
recent due time it passed (after the clock jumps, missed runs are not replayed one by one).
When the clock goes back, next runs are recomputed from the new time and nothing fires.
Only httpTarget jobs are dispatched: pubsubTarget and appEngineHttpTarget get 501 UNIMPLEMENTED.

Covered: jobs create / get / list (pageSize <= 500, pageToken) / patch (updateMask, or the implied
mask) / delete / pause / resume / run, locations list / get; dispatch with oauthToken or oidcToken
(both carry a token minted by localcloud for the service account), retryConfig.retryCount with
doubling backoff, attemptDeadline as the request timeout. Not covered: Pub/Sub and App Engine
targets, the `legacyAppEngineCron` field, UPDATE_FAILED/DISABLED states.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from werkzeug.wrappers import Request, Response

from localcloud import iam_permissions
from localcloud.projects import access_error
from localcloud.service import Service, Unauthenticated, google_error, json_response
from localcloud.services.run_errors import UNAUTHENTICATED, ApiError, json_body, match_route, url_not_found
from localcloud.services.scheduler_shapes import (
    USER_FIELDS,
    camel,
    format_ts,
    last_due,
    next_run,
    normalize,
    parse_seconds,
    parse_ts,
    set_path,
)

_L = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_JOB = _L + r"/jobs/(?P<job>[^/:]+)"
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
TICK_S = 0.2
# google.rpc.Code of an HTTP status, for the job's `status` after an attempt.
RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 412: 9, 429: 8, 499: 1, 501: 12, 503: 14, 504: 4}


class SchedulerService(Service):
    name = "scheduler"
    hosts = ("cloudscheduler.googleapis.com",)
    permissions = iam_permissions.SCHEDULER

    def __init__(self, cloud):
        super().__init__(cloud)
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state_file = self.state_dir / "state.json"
        self._jobs: dict[str, dict[str, Any]] = {}
        self._ticker: threading.Thread | None = None
        self._dispatches: set[threading.Thread] = set()
        self._last_tick: datetime | None = None
        routes = [
            ("GET", _L + r"/jobs", self._list),
            ("POST", _L + r"/jobs", self._create),
            ("GET", _JOB, self._get),
            ("PATCH", _JOB, self._patch),
            ("DELETE", _JOB, self._delete),
            ("POST", _JOB + r":pause", self._pause),
            ("POST", _JOB + r":resume", self._resume),
            ("POST", _JOB + r":run", self._run),
            ("GET", r"/v1/projects/(?P<project>[^/]+)/locations", self._list_locations),
            ("GET", _L, self._get_location),
        ]
        self._routes = [(method, re.compile(pattern + "$"), fn) for method, pattern, fn in routes]

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._state_file.exists():
                self._jobs = json.loads(self._state_file.read_text())
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="scheduler-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._ticker is not None:
            self._ticker.join(5)
        for thread in list(self._dispatches):
            thread.join(5)
        with self._lock:
            self._save()

    def reset(self) -> None:
        with self._lock:
            self._jobs = {}
            self._save()

    def clock_changed(self) -> None:
        self._wake.set()

    def _save(self) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._jobs))
        os.replace(tmp, self._state_file)

    # --- HTTP ----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            principal = self.cloud.authenticate(request)
        except Unauthenticated:
            return google_error(401, UNAUTHENTICATED, "UNAUTHENTICATED")
        route = match_route(self._routes, request)
        if route is None:
            return url_not_found(request)
        fn, params = route
        try:
            denied = access_error(params["project"], principal)
            if denied:
                raise ApiError(403, denied)
            result = fn(request, json_body(request), **params)
            with self._lock:  # results may be live state: serialise them while nothing changes them
                return json_response(result)
        except ApiError as err:
            return google_error(err.code, err.message, err.status)

    def _require(self, name: str) -> dict[str, Any]:
        job = self._jobs.get(name)
        if job is None:
            raise ApiError(404, f"Job not found: {name}.")
        return job

    def _schedule(self, job: dict[str, Any]) -> None:
        if job["state"] == "ENABLED":
            job["scheduleTime"] = format_ts(next_run(job["schedule"], job["timeZone"], self.cloud.now()))
        else:
            job.pop("scheduleTime", None)

    @staticmethod
    def _ordered(job: dict[str, Any]) -> dict[str, Any]:
        order = (
            "name",
            "description",
            "httpTarget",
            "pubsubTarget",
            "appEngineHttpTarget",
            "userUpdateTime",
            "state",
            "status",
            "scheduleTime",
            "lastAttemptTime",
            "retryConfig",
            "schedule",
            "timeZone",
            "attemptDeadline",
        )
        return {key: job[key] for key in order if key in job}

    def _list(self, request, body, project, location):
        prefix = f"projects/{project}/locations/{location}/jobs/"
        try:
            size = int(request.args.get("pageSize") or 0) or 500
            offset = int(base64.urlsafe_b64decode((request.args.get("pageToken") or "") + "==").decode() or 0)
        except ValueError:
            raise ApiError(
                400, "Invalid pageSize or pageToken: pageSize is 1..500, pageToken a nextPageToken"
            ) from None
        if not 0 < size <= 500:
            raise ApiError(400, f"Invalid pageSize {size}: valid 1..500")
        with self._lock:
            jobs = [job for name, job in sorted(self._jobs.items()) if name.startswith(prefix)]
        page = jobs[offset : offset + size]
        out: dict[str, Any] = {"jobs": page} if page else {}
        if offset + size < len(jobs):
            out["nextPageToken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        return out

    def _create(self, request, body, project, location):
        parent = f"projects/{project}/locations/{location}"
        name = body.get("name") or f"{parent}/jobs/{secrets.token_hex(10)}"
        match = re.fullmatch(re.escape(parent) + r"/jobs/(.+)", name) if isinstance(name, str) else None
        if not match or not _JOB_ID.match(match.group(1)):
            raise ApiError(
                400,
                f"Invalid value at 'job.name': {name!r}; expected {parent}/jobs/ID with ID of "
                "letters, digits, '-' or '_' (up to 500)",
            )
        job = normalize(body)
        with self._lock:
            if name in self._jobs:
                raise ApiError(409, f"Job {name} already exists.", "ALREADY_EXISTS")
            job.update(name=name, userUpdateTime=format_ts(self.cloud.now()), state="ENABLED")
            self._schedule(job)
            job = self._jobs[name] = self._ordered(job)
            self._save()
        self._wake.set()
        return job

    def _get(self, request, body, project, location, job):
        with self._lock:
            return self._require(f"projects/{project}/locations/{location}/jobs/{job}")

    def _patch(self, request, body, project, location, job):
        name = f"projects/{project}/locations/{location}/jobs/{job}"
        if body.get("name") and body["name"] != name:
            raise ApiError(
                400, f"Invalid value at 'job.name': {body['name']!r} does not match the URL ({name})"
            )
        mask = [path for path in (request.args.get("updateMask") or "").split(",") if path]
        if not mask:
            mask = [key for key in USER_FIELDS if body.get(key) not in (None, "", {}, [])]
        with self._lock:
            current = self._require(name)
            merged = {key: copy.deepcopy(current[key]) for key in USER_FIELDS if key in current}
            for path in mask:
                parts = [camel(part) for part in path.split(".")]
                if parts[0] not in USER_FIELDS:
                    raise ApiError(
                        400,
                        f"Invalid update mask path {path!r}; valid: {', '.join(USER_FIELDS)} "
                        "and their sub-fields",
                    )
                set_path(merged, parts, body)
            targets = {"pubsubTarget", "appEngineHttpTarget", "httpTarget"}
            touched = {camel(path.split(".")[0]) for path in mask} & targets
            if touched:
                for key in targets - touched:
                    merged.pop(key, None)  # a oneof: setting one target clears the others
            new = normalize(merged)
            new.update(
                {
                    key: current[key]
                    for key in ("name", "state", "status", "lastAttemptTime")
                    if key in current
                }
            )
            new["userUpdateTime"] = format_ts(self.cloud.now())
            self._schedule(new)
            new = self._jobs[name] = self._ordered(new)
            self._save()
        self._wake.set()
        return new

    def _delete(self, request, body, project, location, job):
        name = f"projects/{project}/locations/{location}/jobs/{job}"
        with self._lock:
            self._require(name)
            del self._jobs[name]
            self._save()
        return {}

    def _set_state(self, name: str, want_from: str, to: str, verb: str) -> dict[str, Any]:
        with self._lock:
            job = self._require(name)
            if job["state"] != want_from:
                raise ApiError(
                    400,
                    f"Job {name} is {job['state']}; only a {want_from} job can be {verb}.",
                    "FAILED_PRECONDITION",
                )
            job["state"] = to
            job["userUpdateTime"] = format_ts(self.cloud.now())
            self._schedule(job)
            job = self._jobs[name] = self._ordered(job)
            self._save()
        self._wake.set()
        return job

    def _pause(self, request, body, project, location, job):
        return self._set_state(
            f"projects/{project}/locations/{location}/jobs/{job}", "ENABLED", "PAUSED", "paused"
        )

    def _resume(self, request, body, project, location, job):
        return self._set_state(
            f"projects/{project}/locations/{location}/jobs/{job}", "PAUSED", "ENABLED", "resumed"
        )

    def _run(self, request, body, project, location, job):
        name = f"projects/{project}/locations/{location}/jobs/{job}"
        with self._lock:
            current = self._require(name)
            self._dispatch(name, self.cloud.now())
            return current

    def _location(self, project: str, location: str) -> dict[str, Any]:
        return {"name": f"projects/{project}/locations/{location}", "locationId": location}

    def _list_locations(self, request, body, project):
        return {"locations": [self._location(project, self.cloud.region)]}

    def _get_location(self, request, body, project, location):
        if location != self.cloud.region:
            raise ApiError(
                404,
                f"Location projects/{project}/locations/{location} not found (localcloud serves "
                f"{self.cloud.region}).",
            )
        return self._location(project, location)

    # --- ticker and dispatch -------------------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - the ticker must survive one bad job
                print(f"localcloud scheduler: tick failed: {exc!r}", flush=True)
            self._wake.wait(TICK_S)
            self._wake.clear()

    def _tick(self) -> None:
        now = self.cloud.now()
        with self._lock:
            if self._last_tick is not None and now < self._last_tick - timedelta(seconds=1):
                # The clock went back (set or reset): next runs count from the new now; nothing fires.
                for job in self._jobs.values():
                    self._schedule(job)
                self._save()
            self._last_tick = now
            fired = False
            for name, job in self._jobs.items():
                if job["state"] != "ENABLED" or "scheduleTime" not in job:
                    continue
                if parse_ts(job["scheduleTime"]) > now:
                    continue
                due = last_due(job["schedule"], job["timeZone"], now)
                job["scheduleTime"] = format_ts(next_run(job["schedule"], job["timeZone"], now))
                self._dispatch(name, due)
                fired = True
            if fired:
                self._save()

    def _dispatch(self, name: str, schedule_time: datetime) -> None:
        job = copy.deepcopy(self._jobs[name])
        thread = threading.Thread(target=self._attempts, args=(job, schedule_time), daemon=True)
        self._dispatches.add(thread)
        thread.start()

    def _attempts(self, job: dict[str, Any], schedule_time: datetime) -> None:
        """One dispatch with the job's retries (backoff doubling from minBackoffDuration)."""
        try:
            retry = job["retryConfig"]
            backoff = parse_seconds(retry["minBackoffDuration"], "minBackoffDuration")
            max_backoff = parse_seconds(retry["maxBackoffDuration"], "maxBackoffDuration")
            for attempt in range(retry.get("retryCount", 0) + 1):
                if attempt:
                    if self._stop.wait(backoff):
                        return
                    if attempt < retry["maxDoublings"]:
                        backoff = min(backoff * 2, max_backoff)
                if self._attempt(job, schedule_time):
                    return
        finally:
            self._dispatches.discard(threading.current_thread())

    def _attempt(self, job: dict[str, Any], schedule_time: datetime) -> bool:
        target = job["httpTarget"]
        headers = dict(target.get("headers", {}))
        job_id = job["name"].rsplit("/", 1)[1]
        headers.update(
            {
                "User-Agent": "Google-Cloud-Scheduler",
                "X-CloudScheduler": "true",
                "X-CloudScheduler-JobName": job_id,
                "X-CloudScheduler-ScheduleTime": format_ts(schedule_time),
            }
        )
        token = target.get("oauthToken") or target.get("oidcToken")
        if token:
            headers["Authorization"] = f"Bearer {self.cloud.mint_token(token['serviceAccountEmail'])}"
        body = base64.b64decode(target["body"]) if target.get("body") else None
        attempt_time = self.cloud.now()
        # Every target goes through localcloud's proxy (which serves the emulated hosts and refuses the
        # rest), except loopback ones (a test's own server), as NO_PROXY says for every local client.
        loopback = (urlsplit(target["uri"]).hostname or "") in ("127.0.0.1", "localhost", "::1")
        session = requests.Session()
        session.trust_env = False  # this process's environment must not reroute dispatches
        if not loopback:
            session.proxies = {"https": self.cloud.proxy_url, "http": self.cloud.proxy_url}
        try:
            with session:
                response = session.request(
                    target["httpMethod"],
                    target["uri"],
                    headers=headers,
                    data=body,
                    verify=str(self.cloud.ca_file),
                    timeout=parse_seconds(job["attemptDeadline"], "attemptDeadline"),
                )
            ok = 200 <= response.status_code < 300
            status = (
                {}
                if ok
                else {
                    "code": RPC_CODES.get(response.status_code, 13 if response.status_code >= 500 else 2),
                    "message": f"HTTP {response.status_code} from {target['uri']}",
                }
            )
        except requests.Timeout:
            ok, status = (
                False,
                {"code": 4, "message": f"no response from {target['uri']} within the attempt deadline"},
            )
        except requests.RequestException as exc:
            ok, status = (
                False,
                {"code": 14, "message": f"could not reach {target['uri']}: {type(exc).__name__}"},
            )
        with self._lock:
            current = self._jobs.get(job["name"])
            if current is not None:
                current["lastAttemptTime"] = format_ts(attempt_time)
                current["status"] = status
                self._jobs[job["name"]] = self._ordered(current)
                self._save()
        return ok
