"""cloudact.gcp.cloudact_api_info and cloudact.gcp.bigquery_dataset_info as an operator runs them
(`ansible localhost -m`, the run's environment as the cloudact_env role gives it) against localcloud:
the API's answers, the root key never in the output, a bad URL refused in one line."""

from __future__ import annotations

import base64

from .test_modules import adhoc

API = "https://api.cloudact.local"
SECRET = "ca-root-api-key-local"


def root_key(google) -> str:
    url = f"https://secretmanager.googleapis.com/v1/projects/cloudact-local/secrets/{SECRET}/versions/latest:access"
    reply = google.get(url, timeout=30)
    reply.raise_for_status()
    return base64.b64decode(reply.json()["payload"]["data"]).decode().strip()


def test_health_and_bootstrap_status_and_the_key_is_never_returned(localcloud, google, tmp_path):
    key = root_key(google)
    mark = localcloud.admin.request_seq()
    rc, res = adhoc(
        localcloud, "cloudact.gcp.cloudact_api_info", {"api_url": API, "root_key_secret": SECRET}, tmp_path
    )
    assert rc == 0, res
    assert res["changed"] is False
    assert res["health"]["ok"] and res["health"]["body"]["status"] == "healthy", res["health"]
    assert res["bootstrap"]["status_code"] == 200 and res["bootstrap"]["ok"], res["bootstrap"]
    assert res["bootstrap"]["status"] in ("SYNCED", "OUT_OF_SYNC", "NOT_BOOTSTRAPPED")
    assert key and key not in repr(res)
    # The key went to the API only, in its header: the request to the API carried it, nothing else did.
    log = localcloud.admin.request_log(after=mark)
    assert [(r["method"], r["path"]) for r in log if r["host"] == "api.cloudact.local"] == [
        ("GET", "/health"),
        ("GET", "/api/v1/admin/bootstrap/status"),
    ]


def test_a_root_key_that_cannot_be_read_is_an_answer_not_a_failure(localcloud, tmp_path):
    rc, res = adhoc(
        localcloud,
        "cloudact.gcp.cloudact_api_info",
        {"api_url": API, "root_key_secret": "no-such-secret"},
        tmp_path,
    )
    assert rc == 0, res
    assert res["health"]["ok"]
    assert res["bootstrap"]["ok"] is False
    assert res["bootstrap"]["error"].startswith("root key: secret no-such-secret: 404"), res["bootstrap"]
    assert "status" not in res["bootstrap"]


def test_a_bad_api_url_is_refused_in_one_line_before_any_call(localcloud, tmp_path):
    mark = localcloud.admin.request_seq()
    rc, res = adhoc(localcloud, "cloudact.gcp.cloudact_api_info", {"api_url": "api.cloudact.local"}, tmp_path)
    assert rc != 0
    assert (
        res["msg"] == "api_url 'api.cloudact.local': expected an https:// URL (e.g. https://api.cloudact.ai)"
    )
    assert localcloud.admin.request_log(after=mark) == []


def test_the_datasets_of_the_project_by_suffix(localcloud, google, tmp_path):
    base = "https://bigquery.googleapis.com/bigquery/v2/projects/cloudact-local/datasets"
    made = [f"api_info_{n}_dsx" for n in ("a", "b")]
    for name in made:
        reply = google.post(
            base, json={"datasetReference": {"projectId": "cloudact-local", "datasetId": name}}
        )
        assert reply.status_code == 200, reply.text
    try:
        rc, res = adhoc(localcloud, "cloudact.gcp.bigquery_dataset_info", {"suffix": "_dsx"}, tmp_path)
        assert rc == 0, res
        assert res["changed"] is False and res["datasets"] == made
        rc, every = adhoc(localcloud, "cloudact.gcp.bigquery_dataset_info", {"suffix": ""}, tmp_path)
        assert rc == 0 and set(made) <= set(every["datasets"]), every
    finally:
        for name in made:
            google.delete(f"{base}/{name}")
