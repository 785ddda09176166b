"""Alerts as code on localcloud: the cloudact_alerts role (tests/ansible/playbooks/alerts.yml runs it as
create-jobs does, after env and preflight) converges the local inventory's webhook channel and one
failure policy per catalog job; a second converge changes nothing; a catalog edit plans exactly its
documentation change; PRUNE removes only this environment's stale policy and channel; bad channels
are refused before any write; Google's own types and discovery client read back what was written.

Each test first removes what the toolkit made for ENV=local in Monitoring, so it runs alone and in
any order on the session's localcloud.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import httplib2
import pytest
import yaml
from google.cloud import monitoring_v3
from googleapiclient.discovery import build

from .conftest import ROOT, playbook, read_json

PROJECT = "cloudact-local"
MON = f"https://monitoring.googleapis.com/v3/projects/{PROJECT}"
OWNED = 'user_label.managed_by="cloudact-toolkit" AND user_label.cloudact_env="local"'
CHANNEL = "cloudact-local-hooks"
SECRET = "cloudact-alerts-webhook-local"
WRITES = {"POST", "PATCH", "DELETE", "PUT"}
FAILED = "run.googleapis.com/job/completed_execution_count"


def catalog_jobs() -> list[dict]:
    return yaml.safe_load((ROOT / "catalog/jobs.yml").read_text())["jobs"]


def policy_name(job: dict) -> str:
    return f"{job['name']} failed (local)"


def listed(google, collection: str, filter_text: str = OWNED) -> list[dict]:
    reply = google.get(f"{MON}/{collection}", params={"filter": filter_text})
    assert reply.status_code == 200, reply.text
    return reply.json().get(collection, [])


def clear(google) -> None:
    """Remove every policy, then every channel, the toolkit made for ENV=local (and the tests' own)."""
    for policy in listed(google, "alertPolicies", ""):
        labels = policy.get("userLabels") or {}
        if labels.get("cloudact_env") == "local" or labels.get("alerts_test") == "yes":
            assert google.delete(f"https://monitoring.googleapis.com/v3/{policy['name']}").status_code == 200
    for channel in listed(google, "notificationChannels", ""):
        labels = channel.get("userLabels") or {}
        if labels.get("cloudact_env") == "local" or labels.get("alerts_test") == "yes":
            reply = google.delete(
                f"https://monitoring.googleapis.com/v3/{channel['name']}", params={"force": "true"}
            )
            assert reply.status_code == 200


def converge(ansible_env, tmp_path, *args: str, **env: str):
    summary = tmp_path / "summary.json"
    result = playbook(
        dict(ansible_env, **env),
        "../tests/ansible/playbooks/alerts.yml",
        *args,
        "-e",
        f"cloudact_summary_file={summary}",
    )
    return result, (read_json(summary) if result.rc == 0 else {})


def monitoring_writes(localcloud, after: int) -> list[dict]:
    return [
        r
        for r in localcloud.admin.request_log(after=after)
        if r["host"] == "monitoring.googleapis.com" and r["method"] in WRITES
    ]


def secret_value(google) -> str:
    reply = google.get(
        f"https://secretmanager.googleapis.com/v1/projects/{PROJECT}/secrets/{SECRET}/versions/latest:access"
    )
    assert reply.status_code == 200
    return base64.b64decode(reply.json()["payload"]["data"]).decode()


def digest_of(text: str) -> str:
    """Compared by digest, so a failing assert never prints the secret."""
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def cleared(google):
    clear(google)
    yield
    clear(google)


def test_converge_from_empty_creates_the_channel_and_a_failure_policy_per_job_then_changes_nothing(
    localcloud, ansible_env, google, tmp_path, cleared
):
    jobs = catalog_jobs()
    # The plan from empty: the channel and every policy (naming the channel not made yet), nothing written.
    mark = localcloud.admin.request_seq()
    result, plan = converge(ansible_env, tmp_path, "--check", "--diff")
    assert result.rc == 0, result.output[-4000:]
    assert monitoring_writes(localcloud, mark) == []
    assert plan["alert_channels"]["created"] == [CHANNEL]
    assert sorted(plan["alert_policies"]["created"]) == sorted(policy_name(j) for j in jobs)
    assert "alert policies: 8 would be created, 0 would be updated, 0 unchanged" in result.stdout

    result, summary = converge(ansible_env, tmp_path)
    assert result.rc == 0, result.output[-4000:]
    assert summary["alert_channels"]["created"] == [CHANNEL]
    assert sorted(summary["alert_policies"]["created"]) == sorted(policy_name(j) for j in jobs)
    assert "alert channels: 1 created, 0 updated, 0 unchanged, 0 pruned" in result.stdout
    url = secret_value(google)
    assert url.split("?")[1] not in result.output  # the webhook's token is never printed

    channels = listed(google, "notificationChannels")
    assert [c["displayName"] for c in channels] == [CHANNEL]
    channel = channels[0]
    assert channel["type"] == "webhook_tokenauth"
    assert digest_of(channel["labels"]["url"]) == digest_of(url)  # the secret's value, written at converge
    assert re.fullmatch(r"[0-9a-f]{32}", channel["userLabels"]["cloudact_digest"])

    policies = {p["displayName"]: p for p in listed(google, "alertPolicies")}
    assert sorted(policies) == sorted(policy_name(j) for j in jobs)
    for job in jobs:
        policy = policies[policy_name(job)]
        assert policy["userLabels"] == {
            "managed_by": "cloudact-toolkit",
            "cloudact_env": "local",
            "cloudact_job": job["shortcut"],
            "cloudact_alert": "failed",
        }
        assert policy["severity"] == ("WARNING" if job["category"] == "manual" else "ERROR")
        assert policy["notificationChannels"] == [channel["name"]]
        assert policy["alertStrategy"]["autoClose"] == "1800s"
        (condition,) = policy["conditions"]
        threshold = condition["conditionThreshold"]
        assert threshold["filter"] == (
            f'resource.type="cloud_run_job" AND resource.labels.job_name="{job["name"]}" AND '
            f'metric.type="{FAILED}" AND metric.labels.result="failed"'
        )
        assert threshold["comparison"] == "COMPARISON_GT" and threshold.get("thresholdValue", 0) == 0
        assert threshold["aggregations"] == [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}]
        assert threshold["duration"] == "60s"
        assert threshold["evaluationMissingData"] == "EVALUATION_MISSING_DATA_INACTIVE"
        doc = policy["documentation"]
        assert doc["mimeType"] == "text/markdown"
        for command in (
            f"make logs ENV=local JOB={job['shortcut']}",
            "make doctor ENV=local",
            f"make run ENV=local JOB={job['shortcut']}",
        ):
            assert f"`{command}`" in doc["content"]
        assert " ".join(job["description"].split()) in " ".join(doc["content"].split())

    # A second converge changes nothing and writes nothing.
    mark = localcloud.admin.request_seq()
    result, summary = converge(ansible_env, tmp_path)
    assert result.rc == 0, result.output[-4000:]
    assert summary["alert_channels"]["unchanged"] == [CHANNEL], result.stdout[-3000:]
    assert len(summary["alert_policies"]["unchanged"]) == len(jobs)
    for kind in ("alert_channels", "alert_policies"):
        assert summary[kind]["created"] == [] and summary[kind]["updated"] == {}
        assert summary[kind]["pruned"] == []
    assert "changed=0" in result.stdout
    assert monitoring_writes(localcloud, mark) == []
    # Its cost: the descriptors, the channel's secret, the channels (twice: each task lists them once)
    # and the policies, each one call.
    log = localcloud.admin.request_log(after=mark)
    alerts = [r for r in log if r["host"] == "monitoring.googleapis.com"]
    alerts += [r for r in log if SECRET in r["path"]]
    expected = ["notificationChannelDescriptors", "notificationChannels", "notificationChannels"]
    expected += ["alertPolicies", "latest:access"]
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in alerts) == sorted(expected)


def test_a_description_edit_plans_exactly_the_documentation_change(
    localcloud, ansible_env, google, tmp_path, cleared
):
    result, _ = converge(ansible_env, tmp_path)
    assert result.rc == 0, result.output[-4000:]
    data = yaml.safe_load((ROOT / "catalog/jobs.yml").read_text())
    job = next(j for j in data["jobs"] if j["shortcut"] == "stale-cleanup")
    job["description"] = "Deletes stale rows, now described anew."
    edited = tmp_path / "jobs.yml"
    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    catalog = ("-e", f"cloudact_catalog_file={edited}")

    mark = localcloud.admin.request_seq()
    result, plan = converge(ansible_env, tmp_path, "--check", "--diff", *catalog)
    assert result.rc == 0, result.output[-4000:]
    assert monitoring_writes(localcloud, mark) == []  # the plan changed nothing
    assert plan["alert_policies"]["updated"] == {policy_name(job): ["documentation"]}
    assert plan["alert_policies"]["created"] == [] and plan["alert_policies"]["pruned"] == []
    assert plan["alert_channels"]["updated"] == {}
    assert re.search(r"^\+.*now described anew", result.stdout, re.M)
    assert "alert policies: 0 would be created, 1 would be updated, 7 unchanged" in result.stdout

    result, applied = converge(ansible_env, tmp_path, *catalog)
    assert result.rc == 0, result.output[-4000:]
    assert applied["alert_policies"]["updated"] == plan["alert_policies"]["updated"]
    patches = [r for r in monitoring_writes(localcloud, mark) if r["method"] == "PATCH"]
    assert len(patches) == 1 and "updateMask=documentation" in str(patches[0].get("query"))
    (policy,) = [p for p in listed(google, "alertPolicies") if p["displayName"] == policy_name(job)]
    assert "now described anew" in policy["documentation"]["content"]


def test_a_condition_changed_by_hand_is_put_back_keeping_its_server_assigned_name(
    localcloud, ansible_env, google, tmp_path, cleared
):
    """Someone raises a policy's threshold in the console: the plan shows the conditions change, the
    converge patches the condition back under its own name (Monitoring replaces a condition sent without
    its name: the incidents' condition would change), and a second converge changes nothing."""
    result, _ = converge(ansible_env, tmp_path)
    assert result.rc == 0, result.output[-4000:]
    job = next(j for j in catalog_jobs() if j["shortcut"] == "quota-reset")
    (policy,) = [p for p in listed(google, "alertPolicies") if p["displayName"] == policy_name(job)]
    (condition,) = policy["conditions"]
    assert condition["name"].startswith(policy["name"] + "/conditions/")
    edited = json.loads(json.dumps(condition))
    edited["conditionThreshold"]["thresholdValue"] = 5
    reply = google.patch(
        f"https://monitoring.googleapis.com/v3/{policy['name']}",
        params={"updateMask": "conditions"},
        json={"conditions": [edited]},
    )
    assert reply.status_code == 200, reply.text

    mark = localcloud.admin.request_seq()
    result, plan = converge(ansible_env, tmp_path, "--check", "--diff")
    assert result.rc == 0, result.output[-4000:]
    assert monitoring_writes(localcloud, mark) == []
    assert plan["alert_policies"]["updated"] == {policy_name(job): ["conditions"]}

    result, applied = converge(ansible_env, tmp_path)
    assert result.rc == 0, result.output[-4000:]
    assert applied["alert_policies"]["updated"] == {policy_name(job): ["conditions"]}
    (patch,) = [r for r in monitoring_writes(localcloud, mark) if r["method"] == "PATCH"]
    assert [c.get("name") for c in patch["body"]["conditions"]] == [condition["name"]]  # sent with its name
    (after,) = [p for p in listed(google, "alertPolicies") if p["displayName"] == policy_name(job)]
    assert after["conditions"][0]["name"] == condition["name"]
    assert after["conditions"][0]["conditionThreshold"].get("thresholdValue", 0) == 0

    result, again = converge(ansible_env, tmp_path)
    assert result.rc == 0, result.output[-4000:]
    assert again["alert_policies"]["updated"] == {}


def test_prune_removes_only_this_environments_stale_policy_and_channel(
    localcloud, ansible_env, google, tmp_path, cleared
):
    result, _ = converge(ansible_env, tmp_path)
    assert result.rc == 0, result.output[-4000:]
    (channel,) = listed(google, "notificationChannels")
    condition = {
        "displayName": "c",
        "conditionThreshold": {
            "filter": f'resource.type="cloud_run_job" AND metric.type="{FAILED}"',
            "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}],
            "comparison": "COMPARISON_GT",
            "duration": "60s",
        },
    }

    def make_policy(name: str, labels: dict, channels: list[str]) -> str:
        body = {
            "displayName": name,
            "userLabels": labels,
            "conditions": [condition],
            "notificationChannels": channels,
        }
        reply = google.post(f"{MON}/alertPolicies", json=body)
        assert reply.status_code == 200, reply.text
        return reply.json()["name"]

    def make_channel(name: str, labels: dict) -> str:
        body = {"type": "email", "displayName": name, "labels": {"email_address": "x@example.com"}}
        reply = google.post(f"{MON}/notificationChannels", json=dict(body, userLabels=labels))
        assert reply.status_code == 200, reply.text
        return reply.json()["name"]

    ours = {"managed_by": "cloudact-toolkit", "cloudact_env": "local"}
    stale = make_policy("stale policy (local)", ours, [])
    stale_channel = make_channel("stale-channel", ours)
    used_channel = make_channel("used-by-someone", ours)
    foreign = make_policy("someone-else policy", {"alerts_test": "yes"}, [channel["name"], used_channel])
    stage = {"managed_by": "cloudact-toolkit", "cloudact_env": "stage", "alerts_test": "yes"}
    other_env = make_policy("stage policy", stage, [])

    result, plan = converge(ansible_env, tmp_path, "--check")
    assert result.rc == 0, result.output[-4000:]
    assert plan["alert_policies"]["pruned"] == []  # not without PRUNE
    assert "unlisted stale policy (local): kept (PRUNE=1 removes it)" in result.stdout

    mark = localcloud.admin.request_seq()
    result, plan = converge(ansible_env, tmp_path, "--check", PRUNE="1")
    assert result.rc == 0, result.output[-4000:]
    assert monitoring_writes(localcloud, mark) == []
    assert plan["alert_policies"]["pruned"] == ["stale policy (local)"]
    assert plan["alert_channels"]["pruned"] == ["stale-channel"]

    result, applied = converge(ansible_env, tmp_path, PRUNE="1")
    assert result.rc == 0, result.output[-4000:]
    assert applied["alert_policies"]["pruned"] == ["stale policy (local)"]
    assert applied["alert_channels"]["pruned"] == ["stale-channel"]
    assert "kept used-by-someone: named by someone-else policy" in result.stdout, result.stdout[-3000:]
    v3 = "https://monitoring.googleapis.com/v3"
    assert google.get(f"{v3}/{stale}").status_code == 404
    assert google.get(f"{v3}/{stale_channel}").status_code == 404
    for kept in (foreign, other_env, used_channel, channel["name"]):
        assert google.get(f"{v3}/{kept}").status_code == 200, kept
    # Policies went before channels.
    deletes = [r["path"] for r in monitoring_writes(localcloud, mark) if r["method"] == "DELETE"]
    assert [p.split("/")[-2] for p in deletes] == ["alertPolicies", "notificationChannels"]


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        (
            [{"name": "bad", "type": "webhook_tokenauth", "labels": {"uri": {"secret": SECRET}}}],
            "channel bad: label 'uri' is not a label of type webhook_tokenauth (valid: url)",
        ),
        (
            [{"name": "bad", "type": "webhook", "labels": {}}],
            "channel bad: type 'webhook' is not a notification channel type of this project (valid: ",
        ),
        (
            [{"name": "bad", "type": "webhook_tokenauth", "labels": {"url": {"secret": "no-such-secret"}}}],
            "channel bad: label url names secret no-such-secret (version latest), which does not exist",
        ),
        (
            [
                {
                    "name": "bad",
                    "type": "webhook_tokenauth",
                    "labels": {"url": "https://hooks.cloudact.local/x"},
                }
            ],
            "channel bad: label url of type webhook_tokenauth is sensitive: name the Secret Manager secret",
        ),
    ],
    ids=["unknown-label", "unknown-type", "missing-secret", "secret-given-as-value"],
)
def test_a_bad_channel_is_refused_in_one_line_before_any_write(
    localcloud, ansible_env, tmp_path, channels, message
):
    extra = tmp_path / "channels.json"
    extra.write_text(json.dumps({"cloudact_alert_channels": channels}))
    mark = localcloud.admin.request_seq()
    result, _ = converge(ansible_env, tmp_path, "-e", f"@{extra}")
    assert result.rc != 0
    lines = [line for line in result.output.splitlines() if message in line]
    assert lines, result.output[-3000:]
    assert monitoring_writes(localcloud, mark) == []
    assert "hooks.cloudact.local/x" not in lines[0] or "sensitive" in lines[0]


class ThroughSession:
    """googleapiclient's `http`: each request made with an authorized requests session (the proxy)."""

    def __init__(self, session):
        self.session = session

    def request(self, uri, method="GET", body=None, headers=None, **_):
        reply = self.session.request(method, uri, data=body, headers=headers, timeout=60)
        info = {k.lower(): v for k, v in reply.headers.items()}
        info["status"] = str(reply.status_code)
        return httplib2.Response(info), reply.content


def test_googles_discovery_client_and_types_list_and_read_back_what_converge_wrote(
    ansible_env, google, tmp_path, cleared
):
    result, _ = converge(ansible_env, tmp_path)
    assert result.rc == 0, result.output[-4000:]
    api = build(
        "monitoring", "v3", http=ThroughSession(google), static_discovery=True, cache_discovery=False
    ).projects()
    found = api.alertPolicies().list(name=f"projects/{PROJECT}", filter=OWNED).execute()["alertPolicies"]
    assert len(found) == len(catalog_jobs())
    channels = api.notificationChannels().list(name=f"projects/{PROJECT}", filter=OWNED).execute()
    (channel,) = channels["notificationChannels"]
    typed = monitoring_v3.NotificationChannel.from_json(json.dumps(channel))  # no unknown field
    assert typed.display_name == CHANNEL and typed.user_labels["managed_by"] == "cloudact-toolkit"
    for policy in found:
        got = api.alertPolicies().get(name=policy["name"]).execute()
        read = monitoring_v3.AlertPolicy.from_json(json.dumps(got))  # no unknown field
        spec = read.conditions[0].condition_threshold
        assert (spec.aggregations[0].alignment_period.seconds, spec.duration.seconds) == (300, 60)
        assert spec.aggregations[0].per_series_aligner == monitoring_v3.Aggregation.Aligner.ALIGN_SUM
        assert spec.comparison == monitoring_v3.ComparisonType.COMPARISON_GT
        assert read.alert_strategy.auto_close.seconds == 1800
        assert list(read.notification_channels) == [typed.name]
        assert read.user_labels["cloudact_env"] == "local"


def test_create_jobs_preflight_refuses_a_channel_secret_that_does_not_exist_before_any_write(
    localcloud, ansible_env, tmp_path
):
    channels = [{"name": "bad", "type": "webhook_tokenauth", "labels": {"url": {"secret": "no-such-secret"}}}]
    extra = tmp_path / "channels.json"
    extra.write_text(json.dumps({"cloudact_alert_channels": channels}))
    mark = localcloud.admin.request_seq()
    result = playbook(ansible_env, "create-jobs.yml", "-e", f"@{extra}")
    assert result.rc != 0
    assert (
        "secret no-such-secret does not exist in cloudact-local: create it (gcloud secrets create "
        "no-such-secret) and add the channel's value as its version"
    ) in result.output, result.output[-3000:]
    writes = [
        r
        for r in localcloud.admin.request_log(after=mark)
        if r["method"] in WRITES
        and not r["path"].endswith(":testIamPermissions")
        and r["host"] != "oauth2.googleapis.com"
    ]
    assert writes == []


def test_an_operator_without_the_monitoring_roles_is_refused_naming_them_before_any_write(
    localcloud, ansible_env, google, tmp_path
):
    crm = f"https://cloudresourcemanager.googleapis.com/v1/projects/{PROJECT}"
    iam = f"https://iam.googleapis.com/v1/projects/{PROJECT}/serviceAccounts"
    account_id = "alerts-viewer-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]
    made = google.post(iam, json={"accountId": account_id, "serviceAccount": {"displayName": "viewer"}})
    assert made.status_code == 200, made.text
    email = made.json()["email"]
    member = f"serviceAccount:{email}"

    def bind(add: bool) -> None:
        policy = google.post(f"{crm}:getIamPolicy", json={}).json()
        bindings = [
            b for b in policy.get("bindings", []) if b != {"role": "roles/viewer", "members": [member]}
        ]
        if add:
            bindings.append({"role": "roles/viewer", "members": [member]})
        policy["bindings"] = bindings
        assert google.post(f"{crm}:setIamPolicy", json={"policy": policy}).status_code == 200

    bind(True)
    try:
        key = google.post(f"{iam}/{email}/keys", json={})
        assert key.status_code == 200, key.text
        key_file = tmp_path / "viewer.json"
        key_file.write_bytes(base64.b64decode(key.json()["privateKeyData"]))
        key_file.chmod(0o600)
        mark = localcloud.admin.request_seq()
        result = playbook(ansible_env, "create-jobs.yml", "-e", f"cloudact_credentials_file={key_file}")
        assert result.rc != 0
        for permission, role in (
            ("monitoring.alertPolicies.create", "roles/monitoring.alertPolicyEditor"),
            ("monitoring.notificationChannels.create", "roles/monitoring.notificationChannelEditor"),
        ):
            line = f"you ({email}) lack {permission} on {PROJECT}: ask for {role} or run with an account"
            assert line in result.output, result.output[-3000:]
        writes = [
            r
            for r in localcloud.admin.request_log(after=mark)
            if r["method"] in WRITES
            and not r["path"].endswith(":testIamPermissions")
            and r["host"] != "oauth2.googleapis.com"
        ]
        assert writes == []
    finally:
        bind(False)
        google.delete(f"{iam}/{email}")
