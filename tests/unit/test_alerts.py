"""Alerts as code, the pure parts: the policies the catalog implies, the channels' checks and digest,
the incidents' rows and the summary's alert lines."""

from __future__ import annotations

import pytest
from ansible_collections.cloudact.gcp.plugins.filter.converge import converge_summary
from ansible_collections.cloudact.gcp.plugins.module_utils import alerts, converge_plan
from ansible_collections.cloudact.gcp.plugins.module_utils.catalog import load_catalog
from ansible_collections.cloudact.gcp.plugins.module_utils.environment import load_environment
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

from toolkit import ROOT

FACTS = load_environment("local", ROOT)
CATALOG = load_catalog(root=ROOT).as_dict()
SCHEMA = {
    "email": ["email_address"],
    "webhook_tokenauth": ["url"],
    "slack": ["channel_name", "auth_token"],
    "pubsub": ["topic"],
}


def test_policy_entries_give_each_job_a_failure_policy_with_its_severity_and_commands():
    entries = converge_plan.policy_entries(FACTS, CATALOG)
    assert [e["job"] for e in entries] == [j["name"] for j in CATALOG["jobs"]]
    for entry, job in zip(entries, CATALOG["jobs"], strict=True):
        assert entry["name"] == f"{job['name']} failed (local)" and entry["kind"] == "failed"
        assert entry["severity"] == ("WARNING" if job["category"] == "manual" else "ERROR")
        assert entry["notification_channels"] == ["cloudact-local-hooks"]
        word = job["shortcut"]
        for command in (
            f"make logs ENV=local JOB={word}",
            "make doctor ENV=local",
            f"make run ENV=local JOB={word}",
        ):
            assert f"`{command}`" in entry["documentation"]


def test_severity_is_overridden_by_category_then_shortcut_and_a_bad_one_is_refused():
    facts = dict(FACTS, cloudact_alert_severity={"daily": "critical", "alerts": "WARNING"})
    by_job = {e["shortcut"]: e["severity"] for e in converge_plan.policy_entries(facts, CATALOG)}
    assert by_job["alerts"] == "WARNING" and by_job["stale-cleanup"] == "CRITICAL"
    assert by_job["migrate"] == "WARNING"
    with pytest.raises(InputError, match=r"'LOUD' for job migrate is not a severity \(valid: CRITICAL"):
        converge_plan.policy_entries(dict(FACTS, cloudact_alert_severity={"migrate": "loud"}), CATALOG)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"type": "webhook", "labels": {}},
            "type 'webhook' is not a notification channel type of this project",
        ),
        ({"type": "email", "labels": {"email": "a@b.c"}}, "label 'email' is not a label of type email"),
        (
            {"type": "webhook_tokenauth", "labels": {"url": "https://x"}},
            "label url of type webhook_tokenauth is",
        ),
        ({"type": "email", "labels": {"email_address": {"secret": "s"}}}, "is not sensitive: give its value"),
        ({"type": "slack", "labels": {"auth_token": {"secret": "s"}}}, "type slack needs label channel_name"),
    ],
)
def test_a_bad_channel_is_refused_naming_the_valid_ones(entry, message):
    with pytest.raises(InputError, match="channel c: ") as caught:
        alerts.check_channels([dict(entry, name="c", enabled=True)], SCHEMA)
    assert message in str(caught.value)


def test_the_digest_is_32_hex_and_changes_with_any_label_the_channel_or_the_environment():
    base = alerts.digest("p", "local", "hooks", "webhook_tokenauth", {"url": "https://h/x?token=1"})
    assert len(base) == 32 and int(base, 16) >= 0
    assert base == alerts.digest("p", "local", "hooks", "webhook_tokenauth", {"url": "https://h/x?token=1"})
    for other in (
        alerts.digest("p", "local", "hooks", "webhook_tokenauth", {"url": "https://h/x?token=2"}),
        alerts.digest("p", "local", "other", "webhook_tokenauth", {"url": "https://h/x?token=1"}),
        alerts.digest("p", "stage", "hooks", "webhook_tokenauth", {"url": "https://h/x?token=1"}),
    ):
        assert other != base


def test_a_sensitive_label_is_never_in_the_view_of_a_channel():
    channel = {
        "type": "webhook_tokenauth",
        "labels": {"url": "https://hooks/x?token=s3cret"},
        "userLabels": {"cloudact_digest": "d"},
    }
    assert "s3cret" not in repr(alerts.channel_view(channel))


def test_incidents_list_open_ones_first_then_the_newest():
    alerts_list = [
        {"name": "p/alerts/a", "state": "CLOSED", "openTime": "t2", "closeTime": "t3", "policy": {}},
        {
            "name": "p/alerts/b",
            "state": "OPEN",
            "openTime": "t1",
            "policy": {"userLabels": {"cloudact_job": "x"}},
        },
    ]
    rows = alerts.incident_rows(alerts_list)
    assert [(r["incident"], r["state"], r["job"], r["closed"]) for r in rows] == [
        ("b", "OPEN", "x", "-"),
        ("a", "CLOSED", "-", "t3"),
    ]


def test_the_summary_counts_alert_channels_and_policies_and_says_what_pruning_kept():
    channels = {
        "channels": [
            {
                "name": "hooks",
                "operation": "none",
                "spec": {"type": "email"},
                "verification_status": "VERIFIED",
            },
            {"name": "old", "operation": "none", "spec": {}, "unlisted": True},
        ]
    }
    pruned = {"channels": [{"name": "old", "operation": "none", "unlisted": True, "kept": "named by X"}]}
    policies = {
        "policies": [{"name": "j failed", "operation": "update", "changed_fields": ["documentation"]}]
    }
    summary = converge_summary(
        {}, {}, check=True, alert_channels=channels, alert_policies=policies, alert_channels_pruned=pruned
    )
    assert summary["alert_policies"]["updated"] == {"j failed": ["documentation"]}
    assert summary["alert_channels"]["unchanged"] == ["hooks"]
    assert (
        "alert policies: 0 would be created, 1 would be updated, 0 unchanged, 0 would be pruned"
        in (summary["lines"])
    )
    assert "  hooks: verificationStatus VERIFIED" in summary["lines"]
    assert "  kept old: named by X" in summary["lines"]
    assert "alert_channels" not in converge_summary({}, {})  # without the alerts role, no alert lines
