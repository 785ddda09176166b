"""The one rule of REHEARSE=1 (module_utils/environment.py): which runs get localcloud's client
environment, and which key. On a state directory holding the contract's files, with no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import environment
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

from toolkit import ROOT

STAGE = environment.load_environment("stage", ROOT)
PROD = environment.load_environment("prod", ROOT)
LOCAL = environment.load_environment("local", ROOT)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    keys = {
        p: str(tmp_path / f"keys/{p}.json") for p in ("cloudact-local", "cloudact-testing-1", "cloudact-prod")
    }
    (tmp_path / "client-env.json").write_text(
        json.dumps(
            {
                "HTTPS_PROXY": "http://127.0.0.1:1",
                "NO_PROXY": "127.0.0.1,localhost",
                "REQUESTS_CA_BUNDLE": str(tmp_path / "ca/ca.pem"),
                "SSL_CERT_FILE": str(tmp_path / "ca/ca.pem"),
                "GCP_SERVICE_ACCOUNT_FILE": keys["cloudact-local"],
            }
        )
    )
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    return tmp_path


def env(state: Path, **extra: str) -> dict[str, str]:
    return {"LOCALCLOUD_STATE_DIR": str(state), **extra}


@pytest.mark.parametrize("word", ["", "0", "no", "false"])
@pytest.mark.parametrize("facts", [STAGE, PROD], ids=["stage", "prod"])
def test_without_rehearse_stage_and_prod_get_nothing_of_localcloud(state, facts, word):
    assert environment.client_environment(ROOT, facts, env(state, REHEARSE=word)) == ({}, None)
    assert not environment.rehearsing({"REHEARSE": word})


@pytest.mark.parametrize(
    ("facts", "project"), [(STAGE, "cloudact-testing-1"), (PROD, "cloudact-prod")], ids=["stage", "prod"]
)
def test_rehearse_gives_the_client_env_with_the_projects_key(state, facts, project):
    client_env, found = environment.client_environment(ROOT, facts, env(state, REHEARSE="1"))
    assert client_env["HTTPS_PROXY"] == "http://127.0.0.1:1"
    assert client_env["GCP_SERVICE_ACCOUNT_FILE"] == str(state / f"keys/{project}.json")
    assert found["rehearse"] is True and found["key_project"] == project and not found["up"]
    # The key is localcloud's of the project, whatever the inventory or the shell say.
    given = {**facts, "cloudact_credentials_file": "~/real-prod-key.json"}
    path = environment.credentials_path(
        given, client_env, {"GCP_SERVICE_ACCOUNT_FILE": "/real/key.json"}, rehearse=True
    )
    assert path == str(state / f"keys/{project}.json")


def test_a_rehearsal_never_falls_back_to_the_local_key_or_adc(state):
    (state / "keys.json").write_text(json.dumps({"cloudact-local": "/local.json"}))
    client_env, found = environment.client_environment(ROOT, PROD, env(state, REHEARSE="1"))
    assert "GCP_SERVICE_ACCOUNT_FILE" not in client_env and "key_project" not in found
    with pytest.raises(InputError, match="REHEARSE=1: no key of project 'cloudact-prod'"):
        environment.credentials_path(PROD, client_env, {"GCP_SERVICE_ACCOUNT_FILE": "/x.json"}, rehearse=True)


def test_the_local_inventory_is_the_same_with_or_without_rehearse(state):
    plain = environment.client_environment(ROOT, LOCAL, env(state))
    rehearsed = environment.client_environment(ROOT, LOCAL, env(state, REHEARSE="1"))
    assert plain[0] == rehearsed[0]
    assert plain[0]["GCP_SERVICE_ACCOUNT_FILE"] == str(state / "keys/cloudact-local.json")
    assert rehearsed[1]["rehearse"] is False
