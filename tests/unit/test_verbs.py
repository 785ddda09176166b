"""module_utils/verbs.py, the one retry rule and the read-only rule: its table as data, and that both HTTP
clients (the operator's and the job image's) decide by it and by nothing of their own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import verbs

ROOT = Path(__file__).resolve().parents[2]
VERBS = ROOT / "collections/ansible_collections/cloudact/gcp/plugins/module_utils/verbs.py"
CLIENTS = {
    "operator": ROOT / "collections/ansible_collections/cloudact/gcp/plugins/module_utils/client.py",
    "job image": ROOT / "jobs/runtime/http.py",
}
RUN = "https://run.googleapis.com/v2/projects/p/locations/r/jobs"
SCHED = "https://cloudscheduler.googleapis.com/v1/projects/p/locations/r/jobs"
BQ = "https://bigquery.googleapis.com/bigquery/v2/projects/p"

# (method, url, body, headers, idempotent) -> the verb's row
CLASSIFIED = [
    ("GET", f"{RUN}/j", None, None, False, "GET"),
    ("HEAD", "https://r-docker.pkg.dev/v2/p/r/i/manifests/t", None, None, False, "GET"),
    ("POST", f"{RUN}/j:run", {"overrides": {}}, None, False, ":run"),
    ("POST", f"{SCHED}/t:run", {}, None, False, ":run"),
    ("POST", RUN, {"template": {}}, None, False, "create"),
    ("POST", SCHED, {"schedule": "* * * * *"}, None, False, "create"),
    ("POST", "https://cloudbuild.googleapis.com/v1/projects/p/locations/r/builds", {}, None, False, "create"),
    ("POST", "https://storage.googleapis.com/upload/storage/v1/b/b/o", None, None, False, "create"),
    (
        "PUT",
        "https://storage.googleapis.com/upload/x?upload_id=1",
        None,
        {"Content-Range": "bytes 0-1/2"},
        False,
        "PUT of an upload chunk",
    ),
    ("PATCH", f"{RUN}/j", {"etag": "e1", "template": {}}, None, False, "PATCH or PUT with an etag"),
    ("PATCH", f"{BQ}/datasets/d", {"access": []}, {"If-Match": "e"}, False, "PATCH or PUT with an etag"),
    ("PATCH", f"{SCHED}/t", {"schedule": "x"}, None, False, "PATCH or PUT without an etag"),
    ("POST", f"{RUN}/j:setIamPolicy", {"policy": {"etag": "BwX"}}, None, False, ":setIamPolicy with an etag"),
    ("POST", f"{RUN}/j:setIamPolicy", {"policy": {}}, None, False, "POST"),
    ("POST", f"{RUN}/j/executions/e:cancel", {}, None, False, ":cancel"),
    ("POST", f"{SCHED}/t:pause", {}, None, False, ":pause or :resume"),
    ("POST", f"{SCHED}/t:resume", {}, None, False, ":pause or :resume"),
    ("DELETE", f"{RUN}/j", None, None, False, "DELETE"),
    (
        "POST",
        f"{BQ}/datasets/d/tables/t/insertAll",
        {"rows": [{"insertId": "1", "json": {}}]},
        None,
        False,
        "insertAll with insertIds",
    ),
    (
        "POST",
        f"{BQ}/datasets/d/tables/t/insertAll",
        {"rows": [{"json": {}}]},
        None,
        False,
        "insertAll without insertIds",
    ),
    ("POST", f"{BQ}/queries", {"query": "SELECT 1"}, None, False, "read POST"),
    ("POST", "https://logging.googleapis.com/v2/entries:list", {}, None, False, "read POST"),
    (
        "POST",
        "https://cloudresourcemanager.googleapis.com/v1/projects/p:testIamPermissions",
        {},
        None,
        False,
        "read POST",
    ),
    (
        "POST",
        "https://api.supabase.com/v1/projects/r/database/query",
        {"query": "x", "read_only": True},
        None,
        False,
        "read POST",
    ),
    (
        "POST",
        "https://api.cloudact.ai/api/v1/admin/alerts/process-all",
        {"dry_run": True},
        None,
        False,
        "CloudAct admin POST",
    ),
    (
        "POST",
        "https://api.cloudact.ai/api/v1/admin/quota/reset-daily",
        None,
        None,
        True,
        "POST idempotent by contract",
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "headers", "idempotent", "verb"), CLASSIFIED)
def test_each_call_is_classified_by_its_verb(method, url, body, headers, idempotent, verb) -> None:
    assert verbs.classify(method, url, body, headers, idempotent=idempotent).verb == verb


def test_every_row_says_why_and_every_row_is_reached() -> None:
    assert all(rule.reason.strip() for rule in verbs.RULES.values())
    reached = {case[-1] for case in CLASSIFIED}
    assert set(verbs.RULES) == reached


# (verb, status or failure) -> the decision
DECISIONS = [
    (":run", 503, None, verbs.RETRY),
    (":run", 408, None, verbs.RETRY),
    (":run", 429, None, verbs.RETRY),
    (":run", 500, None, verbs.LOOK),
    (":run", 502, None, verbs.LOOK),
    (":run", 504, None, verbs.LOOK),
    (":run", None, verbs.TIMEOUT, verbs.LOOK),
    (":run", None, verbs.DROPPED, verbs.LOOK),
    (":run", None, verbs.NOT_SENT, verbs.RETRY),
    (":run", 400, None, verbs.FINAL),
    (":run", 409, None, verbs.FINAL),
    ("create", 502, None, verbs.LOOK),
    ("CloudAct admin POST", 500, None, verbs.LOOK),
    ("insertAll without insertIds", None, verbs.DROPPED, verbs.LOOK),
    ("GET", 502, None, verbs.RETRY),
    ("GET", None, verbs.TIMEOUT, verbs.RETRY),
    ("PATCH or PUT with an etag", 504, None, verbs.RETRY),
    (":setIamPolicy with an etag", None, verbs.DROPPED, verbs.RETRY),
    (":cancel", 502, None, verbs.RETRY),
    (":pause or :resume", 500, None, verbs.RETRY),
    ("GET", 404, None, verbs.FINAL),
    ("GET", 403, None, verbs.FINAL),
]


@pytest.mark.parametrize(("verb", "status", "failure", "decision"), DECISIONS)
def test_what_follows_a_failure(verb, status, failure, decision) -> None:
    assert verbs.decide(verbs.RULES[verb], status=status, failure=failure) == decision


READS = [
    ("GET", "https://run.googleapis.com/v2/x", None, False),
    ("POST", "https://oauth2.googleapis.com/token", None, False),
    ("POST", f"{BQ}/queries", {"query": "  -- the ledger\nSELECT * FROM t"}, False),
    ("POST", f"{BQ}/queries", {"query": "WITH a AS (SELECT 1) SELECT * FROM a"}, False),
    ("POST", f"{BQ}/jobs", {"configuration": {"query": {"query": "SELECT 1"}}}, False),
    ("POST", f"{BQ}/queries", {"query": "DELETE FROM t WHERE true"}, True),
    ("POST", f"{BQ}/queries", {"query": "SELECT 1; DELETE FROM t WHERE true"}, True),
    ("POST", f"{BQ}/datasets/d/tables/t/insertAll", {"rows": []}, True),
    ("POST", "https://api.supabase.com/v1/projects/r/database/query", {"query": "select 1"}, True),
    (
        "POST",
        "https://api.supabase.com/v1/projects/r/database/query",
        {"query": "x", "read_only": True},
        False,
    ),
    ("POST", "https://api.cloudact.ai/api/v1/admin/alerts/process-all", {"dry_run": True}, True),
    ("POST", f"{RUN}/j:getIamPolicy", {}, False),
    ("POST", f"{RUN}/j:run", {}, True),
    ("PATCH", f"{RUN}/j", {}, True),
    ("DELETE", f"{RUN}/j", None, True),
]


@pytest.mark.parametrize(("method", "url", "body", "write"), READS)
def test_the_read_only_rule(method, url, body, write) -> None:
    assert verbs.is_write(method, url, body) is write


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 7 ", 7.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after(value, seconds) -> None:
    assert verbs.retry_after(value) == seconds
    assert verbs.retry_after("120", cap=60.0) == 60.0


def test_the_table_imports_only_the_standard_library() -> None:
    """The job image carries it as it is: a Python without site-packages (-S -I) imports it."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('verbs', {str(VERBS)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(top - set(sys.stdlib_module_names) - {'__main__', 'verbs'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_both_clients_decide_by_the_table_and_by_nothing_of_their_own(name) -> None:
    tree = ast.parse(CLIENTS[name].read_text())
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("module_utils")
        for alias in node.names
    }
    assert "verbs" in imported
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and getattr(node.func.value, "id", "") == "verbs"
    }
    assert {"classify", "decide"} <= calls, calls
    # No status set of its own decides a retry: a literal set of 5xx statuses would be a second rule.
    literals = [
        {elt.value for elt in node.elts if isinstance(elt, ast.Constant)}
        for node in ast.walk(tree)
        if isinstance(node, ast.Set | ast.Tuple | ast.List)
    ]
    assert not [s for s in literals if {500, 502, 503} <= s], "a status list of its own"


def test_the_image_carries_the_shared_files() -> None:
    from ansible_collections.cloudact.gcp.plugins.module_utils import image

    dockerfile = (ROOT / "Dockerfile").read_text()
    ignore = (ROOT / ".dockerignore").read_text()
    for path in image.SHARED:
        assert f"COPY --chown=root:root {path}" in dockerfile
        assert f"/app/{path.removeprefix('collections/')}" in dockerfile
        assert f"!{path}" in ignore.splitlines()
        assert path in image.INPUTS  # a change to it makes the deployed image stale
