"""What the Cloud Monitoring tests share: the session's localcloud seen as its owner (an authorized requests
session through the proxy, and Google's discovery-based REST client for monitoring v3), accounts holding a
role, Cloud Run jobs that run `tests/localcloud/scripts/task.py`, and the emulated clock.

google-cloud-monitoring has no REST transport (its GAPIC clients speak gRPC only, which an HTTP/1.1 proxy
cannot carry): its message types (`google.cloud.monitoring_v3`) judge what localcloud answers instead, and
googleapiclient's `build("monitoring", "v3")` (monitoring.v3.json) is the REST client.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httplib2
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account
from googleapiclient.discovery import build

PROJECT = "cloudact-local"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
MON = f"https://monitoring.googleapis.com/v3/projects/{PROJECT}"
RUN = f"https://run.googleapis.com/v2/projects/{PROJECT}/locations/us-central1"
CRM = "https://cloudresourcemanager.googleapis.com/v1"
IAM = "https://iam.googleapis.com/v1"
TASK = "tests/localcloud/scripts/task.py"
FAILED_FILTER = (
    'metric.type="run.googleapis.com/job/completed_execution_count" AND resource.type="cloud_run_job" '
    'AND resource.labels.job_name="{job}" AND metric.labels.result="failed"'
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ts(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ThroughSession:
    """googleapiclient's `http`: each request made with an authorized requests session (through the proxy)."""

    def __init__(self, session: requests.Session):
        self.session = session

    def request(self, uri, method="GET", body=None, headers=None, **_):
        reply = self.session.request(method, uri, data=body, headers=headers, timeout=60)
        info = {k.lower(): v for k, v in reply.headers.items()}
        info["status"] = str(reply.status_code)
        return httplib2.Response(info), reply.content


def authorized(proxy_url: str, ca_file: str, creds) -> AuthorizedSession:
    plain = requests.Session()
    plain.trust_env = False
    plain.proxies = {"https": proxy_url}
    plain.verify = ca_file
    session = AuthorizedSession(creds, auth_request=Request(plain))
    session.trust_env = False
    session.proxies = plain.proxies
    session.verify = ca_file
    return session


@dataclass
class Mon:
    """The session's localcloud as its owner."""

    cloud: Any
    session: AuthorizedSession
    cleanup: list[str] = field(default_factory=list)  # URLs to DELETE at the end

    @property
    def admin(self):
        return self.cloud.admin

    def api(self, creds=None):
        """googleapiclient's monitoring v3 client (its bundled discovery document), as the owner or creds."""
        session = self.session if creds is None else self.as_account(creds)
        return build(
            "monitoring", "v3", http=ThroughSession(session), static_discovery=True, cache_discovery=False
        )

    def as_account(self, creds) -> AuthorizedSession:
        return authorized(self.cloud.proxy_url, str(self.cloud.ca_file), creds)

    def call(self, method: str, url: str, session=None, **kwargs) -> requests.Response:
        return (session or self.session).request(method, url, timeout=60, **kwargs)

    def ok(self, method: str, url: str, **kwargs) -> dict:
        reply = self.call(method, url, **kwargs)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def refused(self, method: str, url: str, status: int = 400, session=None, **kwargs) -> str:
        reply = self.call(method, url, session=session, **kwargs)
        assert reply.status_code == status, reply.text
        return reply.json()["error"]["message"]

    # ---- resources, deleted afterwards -------------------------------------------------------------------

    def channel(self, kind: str = "webhook_tokenauth", **labels: str) -> dict:
        if not labels and kind == "webhook_tokenauth":
            labels = {"url": f"https://hooks.cloudact.local/{unique('hook')}?auth_token=t0ken"}
        created = self.ok(
            "POST", f"{MON}/notificationChannels", json={"type": kind, "displayName": kind, "labels": labels}
        )
        self.cleanup.append(f"https://monitoring.googleapis.com/v3/{created['name']}?force=true")
        return created

    def policy(self, body: dict) -> dict:
        created = self.ok("POST", f"{MON}/alertPolicies", json=body)
        self.cleanup.insert(0, f"https://monitoring.googleapis.com/v3/{created['name']}")
        return created

    def account(self, prefix: str, *roles: str):
        """A new service account holding `roles` on the project, and credentials acting as it."""
        email = self.ok(
            "POST", f"{IAM}/projects/{PROJECT}/serviceAccounts", json={"accountId": unique(prefix)[:30]}
        )["email"]
        if roles:
            policy = self.ok("POST", f"{CRM}/projects/{PROJECT}:getIamPolicy", json={})
            for role in roles:
                policy.setdefault("bindings", []).append(
                    {"role": role, "members": [f"serviceAccount:{email}"]}
                )
            self.ok("POST", f"{CRM}/projects/{PROJECT}:setIamPolicy", json={"policy": policy})
        key = self.ok("POST", f"{IAM}/projects/{PROJECT}/serviceAccounts/{email}/keys", json={})
        info = json.loads(base64.b64decode(key["privateKeyData"]))
        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)

    def job(self, *args: str, retries: int = 0) -> str:
        """A Cloud Run job running the test task with `args`; its id."""
        job_id = unique("mon")
        container = {
            "image": "us-docker.pkg.dev/cloudact-local/jobs/test:latest",
            "command": ["python", TASK],
            "args": list(args),
        }
        body = {
            "template": {"template": {"containers": [container], "maxRetries": retries, "timeout": "30s"}}
        }
        self.ok("POST", f"{RUN}/jobs", params={"jobId": job_id}, json=body)
        self.cleanup.append(f"{RUN}/jobs/{job_id}")
        return job_id

    def run(self, job_id: str) -> dict:
        """Run a job and wait for its execution to complete; the execution."""
        name = self.ok("POST", f"{RUN}/jobs/{job_id}:run", json={})["metadata"]["name"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            execution = self.ok("GET", f"https://run.googleapis.com/v2/{name}")
            if execution.get("completionTime"):
                return execution
            time.sleep(0.1)
        raise AssertionError(f"{name} did not complete")

    def close(self) -> None:
        for url in self.cleanup:
            self.call("DELETE", url)
        self.cleanup.clear()

    # ---- the clock -----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.admin.now()

    def align(self, second: int = 10) -> datetime:
        """Move the clock forward to `second` s past a minute boundary (the evaluator runs at each one)."""
        now = self.now()
        target = (now + timedelta(minutes=2)).replace(second=second, microsecond=0)
        return self.admin.set_time(target)

    def advance(self, seconds: float) -> datetime:
        self.admin.advance(seconds)
        self.admin.monitoring_tick()
        return self.now()

    def write(self, metric: str, value: Any, at: datetime | None = None, **labels: str) -> None:
        """One point of a custom gauge on a generic_task (labels: metric labels; `task` picks the task_id)."""
        task = labels.pop("task", "0")
        key = (
            "doubleValue"
            if isinstance(value, float)
            else "boolValue"
            if isinstance(value, bool)
            else "int64Value"
        )
        point = {
            "interval": {"endTime": ts(at or self.now())},
            "value": {key: value if key != "int64Value" else str(value)},
        }
        resource = {
            "type": "generic_task",
            "labels": {
                "project_id": PROJECT,
                "location": "us-central1",
                "namespace": "tests",
                "job": "mon",
                "task_id": task,
            },
        }
        series = {"metric": {"type": metric, "labels": labels}, "resource": resource, "points": [point]}
        self.ok("POST", f"{MON}/timeSeries", json={"timeSeries": [series]})


def owner(localcloud):
    """The `mon` fixture's body (a generator): the session's localcloud as its owner; what a test made and
    registered in `cleanup` is deleted afterwards."""
    creds = service_account.Credentials.from_service_account_file(str(localcloud.key_file), scopes=SCOPES)
    found = Mon(localcloud, authorized(localcloud.proxy_url, str(localcloud.ca_file), creds))
    yield found
    found.close()


def threshold_policy(flt: str, **spec: Any) -> dict:
    """A policy with one threshold condition on `flt` (spec: MetricThreshold fields over the defaults)."""
    condition = {
        "filter": flt,
        "aggregations": [{"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MAX"}],
        "comparison": "COMPARISON_GT",
        "thresholdValue": 5,
        "duration": "0s",
        **spec,
    }
    return {
        "displayName": unique("policy"),
        "conditions": [{"displayName": "too high", "conditionThreshold": condition}],
    }


def wait_for(predicate, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
