"""Supabase's tokens are Supabase's: localcloud issues one access token per hosted project (the seeded
first version of its `supabase-access-token-<suffix>`), and the Management API accepts only tokens it
issued, whatever Secret Manager holds now. A rotation is the admin endpoint `tokens` (the dashboard's
"generate a new token"), added as a new version by the operator. The records survive a restart, a state
directory from before them adopts each secret's first version, and a reset re-seeds consistently.

Uses a localcloud of its own (it adds versions to the secrets and resets). No token is ever printed:
tokens are compared, not shown, and every assertion message names what failed, not the value."""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets

import pytest
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account

from localcloud.client import LocalCloudError, LocalCloudProcess

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
QUERY = "https://api.supabase.com/v1/projects/{ref}/database/query"
SM = "https://secretmanager.googleapis.com/v1/projects/{project}/secrets/{secret}"
LOCAL = ("cloudact-local", "supabase-access-token-local")
STAGE = ("cloudact-testing-1", "supabase-access-token-stage")
pytestmark = pytest.mark.localcloud  # starts its own localcloud: not a unit test


class Cloud:
    """One localcloud's Supabase API and Secret Manager, as the operator reaches them."""

    def __init__(self, proc: LocalCloudProcess):
        self.proc = proc
        self.http = self._through_proxy(requests.Session())

    def _through_proxy(self, session: requests.Session) -> requests.Session:
        session.trust_env = False
        session.proxies = {"https": self.proc.proxy_url}
        session.verify = str(self.proc.ca_file)
        return session

    def google(self, project: str) -> AuthorizedSession:
        """The project's operator (its issued key, from keys.json)."""
        key = json.loads(self.proc.files.keys_index.read_text())[project]
        creds = service_account.Credentials.from_service_account_file(key, scopes=SCOPES)
        return self._through_proxy(
            AuthorizedSession(creds, auth_request=Request(self._through_proxy(requests.Session())))
        )

    def secret(self, which: tuple[str, str], version: str = "latest") -> str:
        project, secret = which
        with self.google(project) as google:
            answer = google.get(SM.format(project=project, secret=secret) + f"/versions/{version}:access")
        assert answer.status_code == 200, f"reading {secret} version {version}: {answer.status_code}"
        return base64.b64decode(answer.json()["payload"]["data"]).decode()

    def add_version(self, which: tuple[str, str], value: str) -> None:
        """What `gcloud secrets versions add` does."""
        project, secret = which
        with self.google(project) as google:
            answer = google.post(
                SM.format(project=project, secret=secret) + ":addVersion",
                json={"payload": {"data": base64.b64encode(value.encode()).decode()}},
            )
        assert answer.status_code == 200, f"adding a version to {secret}: {answer.status_code}"

    def query(self, token: str, ref: str = "local") -> requests.Response:
        return self.http.post(
            QUERY.format(ref=ref),
            json={"query": "select 1 as one"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    def status(self, token: str, ref: str = "local") -> int:
        return self.query(token, ref).status_code

    def rotate(self, project: str, **extra) -> str:
        return self.proc.admin.admin("supabase", "tokens", "POST", {"project": project, **extra})["token"]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def shaped(token: str) -> bool:
    return re.fullmatch(r"sbp_[0-9a-f]{40}", token) is not None


@pytest.fixture
def cloud(localcloud_state):
    proc = LocalCloudProcess(localcloud_state)
    proc.start()
    try:
        yield Cloud(proc)
    finally:
        proc.stop()


def test_only_tokens_supabase_issued_are_accepted_whatever_the_secret_holds(cloud: Cloud) -> None:
    # The seeded first version is the token Supabase issued for the project, shaped as Supabase's.
    seeded = cloud.secret(LOCAL, "1")
    ok = shaped(seeded)
    assert ok, "the seeded Supabase token is not sbp_ + 40 hex characters"
    assert cloud.status(seeded) == 201
    stage_seeded = cloud.secret(STAGE, "1")
    ok = shaped(stage_seeded) and not same(stage_seeded, seeded)
    assert ok, "each hosted project gets a token of its own"
    assert cloud.status(stage_seeded, "stagerefabcdef01") == 201  # a copy's token: any well-formed ref
    assert cloud.status(stage_seeded) == 404  # ... but not `local` (the ref rules as before)

    # A token Supabase never issued, added as a new version (the latest now), is refused with
    # Supabase's 401 body, while the issued one still works: the operator's "Migrate fails: token invalid".
    cloud.add_version(LOCAL, "sbp_" + secrets.token_hex(20))
    latest = cloud.secret(LOCAL)
    ok = not same(latest, seeded)
    assert ok, "the wrong token is not the latest version"
    refused = cloud.query(latest)
    assert (refused.status_code, refused.json()) == (401, {"message": "Unauthorized"})
    assert cloud.status(seeded) == 201

    # A rotation: Supabase issues a new token (Secret Manager untouched), the operator adds it.
    rotated = cloud.rotate("cloudact-local")
    ok = shaped(rotated) and not same(rotated, seeded) and not same(cloud.secret(LOCAL), rotated)
    assert ok, "the rotated token is a new sbp_ token, and Secret Manager was not touched"
    cloud.add_version(LOCAL, rotated)
    assert cloud.status(cloud.secret(LOCAL)) == 201
    assert cloud.status(seeded) == 201  # the older token works until it is revoked

    # A rotation that revokes the older tokens.
    stage_rotated = cloud.rotate("cloudact-testing-1", revoke_others=True)
    assert cloud.status(stage_rotated, "stagerefabcdef01") == 201
    assert cloud.status(stage_seeded, "stagerefabcdef01") == 401
    issued = cloud.proc.admin.admin("supabase", "tokens")["projects"]
    assert [t["how"] for t in issued["cloudact-local"]] == ["seeded", "issued"]
    assert [t["how"] for t in issued["cloudact-testing-1"]] == ["issued"]
    with pytest.raises(LocalCloudError, match="400"):
        cloud.proc.admin.admin("supabase", "tokens", "POST", {"project": "cloudact-elsewhere"})

    # Only hashes are kept, and they survive a restart.
    kept = (cloud.proc.state_dir / "supabase" / "tokens.json").read_text()
    ok = not any(t in kept for t in (seeded, rotated, stage_seeded, stage_rotated))
    assert ok, "a token is stored in clear in tokens.json"
    cloud.proc.stop()
    cloud.proc.start()
    cloud.http = cloud._through_proxy(requests.Session())
    assert [cloud.status(t) for t in (seeded, rotated, latest)] == [201, 201, 401]
    assert cloud.status(stage_rotated, "stagerefabcdef01") == 201
    assert cloud.status(stage_seeded, "stagerefabcdef01") == 401

    # A state directory from before Supabase recorded its tokens: each secret's first version is
    # taken as issued (here stage's seeded token again, which had been revoked), nothing else.
    cloud.proc.stop()
    (cloud.proc.state_dir / "supabase" / "tokens.json").unlink()
    cloud.proc.start()
    cloud.http = cloud._through_proxy(requests.Session())
    assert [cloud.status(t) for t in (seeded, rotated, latest)] == [201, 401, 401]
    assert cloud.status(stage_seeded, "stagerefabcdef01") == 201
    assert cloud.status(stage_rotated, "stagerefabcdef01") == 401

    # A reset re-seeds the secrets with newly issued tokens: the seeded secret and Supabase agree, and
    # no token from before the reset works.
    cloud.proc.admin.reset()
    fresh = cloud.secret(LOCAL)
    ok = shaped(fresh) and not same(fresh, seeded)
    assert ok, "the reset did not seed a newly issued token"
    assert cloud.status(fresh) == 201
    assert cloud.status(seeded) == 401
    assert cloud.status(cloud.secret(STAGE), "stagerefabcdef01") == 201
    assert cloud.status(stage_seeded, "stagerefabcdef01") == 401
