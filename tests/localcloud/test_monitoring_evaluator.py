"""Cloud Monitoring's alerting on localcloud's clock: a failed Cloud Run execution opens an incident that
reaches a webhook and closes again; deliveries to every channel type, retries and refusals; incidents per
series, absence, auto-close and cancellation; the incidents as `projects.alerts`."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from localcloud.services.hooks import secret_hash
from tests.localcloud.monitoring_cloud import FAILED_FILTER, MON, PROJECT, owner, threshold_policy, unique

V3 = "https://monitoring.googleapis.com/v3"
CANCELLED = (
    "Incident cancelled because the alert policy condition was deleted or modified while incident was active."
)


@pytest.fixture(scope="module")
def mon(localcloud):
    yield from owner(localcloud)


def hook(mon, **extra: str) -> tuple[str, dict]:
    """A receiver name and a webhook_tokenauth channel that posts to it."""
    name = unique("hook")
    return name, mon.channel(
        "webhook_tokenauth", url=f"https://hooks.cloudact.local/{name}?auth_token=s3cret", **extra
    )


def incidents(mon, name: str) -> list[dict]:
    return [r["body"]["incident"] for r in mon.admin.webhooks(name)]


def custom_metric(mon) -> tuple[str, str]:
    """A new custom gauge (a policy may only name a metric that exists) and a filter naming it."""
    metric = f"custom.googleapis.com/{unique('eval')}"
    body = {"type": metric, "metricKind": "GAUGE", "valueType": "INT64"}
    mon.ok("POST", f"{MON}/metricDescriptors", json=body)
    return metric, f'metric.type="{metric}" AND resource.type="generic_task"'


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def test_a_failed_execution_reaches_the_webhook_as_an_incident_that_closes_again(mon):
    name, channel = hook(mon)
    failing, flaky = mon.job("--exit", "1"), mon.job("--fail-attempts", "1", retries=1)
    policies = {}
    for job in (failing, flaky):
        body = threshold_policy(
            FAILED_FILTER.format(job=job),
            aggregations=[{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}],
            thresholdValue=0,
            duration="60s",
            evaluationMissingData="EVALUATION_MISSING_DATA_INACTIVE",
        )
        body.update(
            displayName=f"{job} failed",
            notificationChannels=[channel["name"]],
            alertStrategy={"autoClose": "1800s"},
            documentation={"content": f"Job {job} failed: see its logs."},
            userLabels={"managed_by": "cloudact-toolkit"},
        )
        policies[job] = mon.policy(body)
    failed = mon.run(failing)
    assert failed["failedCount"] == 1
    assert mon.run(flaky)["succeededCount"] == 1  # its first attempt failed, the retry succeeded
    failed_at = datetime.fromisoformat(failed["completionTime"].replace("Z", "+00:00"))

    while not incidents(mon, name):
        now = mon.advance(30)
        assert (now - failed_at).total_seconds() < 180 + 300 + 60 + 30, (
            "no incident within ingestDelay + alignment + 60 s"
        )
    delivered_after = (mon.now() - failed_at).total_seconds()
    print(f"emulated seconds from the failure to the webhook: {delivered_after:.0f}")
    (opened,) = incidents(mon, name)
    assert opened["state"] == "open" and opened["ended_at"] is None
    assert opened["resource"] == {
        "type": "cloud_run_job",
        "labels": {"project_id": PROJECT, "location": "us-central1", "job_name": failing},
    }
    assert opened["metric"] == {
        "type": "run.googleapis.com/job/completed_execution_count",
        "displayName": "Completed Executions",
        "labels": {"result": "failed"},
    }
    assert opened["policy_name"] == f"{failing} failed" and opened["condition_name"] == "too high"
    assert opened["condition"] == policies[failing]["conditions"][0]
    assert opened["policy_user_labels"] == {"managed_by": "cloudact-toolkit"}
    assert opened["documentation"] == {
        "content": f"Job {failing} failed: see its logs.",
        "mime_type": "text/markdown",
        "subject": f"[ALERT - No severity] {failing} failed",
    }
    assert (opened["threshold_value"], opened["observed_value"]) == ("0", "1.000")
    assert opened["summary"] == (
        f"Completed Executions for {PROJECT} {failing} with metric labels {{result=failed}} is above the "
        "threshold of 0.000 with a value of 1.000."
    )
    assert opened["scoping_project_id"] == PROJECT and isinstance(opened["scoping_project_number"], int)
    assert (
        opened["resource_type_display_name"] == "Cloud Run Job"
        and opened["resource_name"] == f"{PROJECT} {failing}"
    )
    assert (
        opened["url"]
        == f"https://console.cloud.google.com/monitoring/alerting/alerts/{opened['incident_id']}?project={PROJECT}"
    )
    (received,) = mon.admin.webhooks(name)
    assert received["body"]["version"] == "1.2" and received["method"] == "POST"
    assert received["query"] == "auth_token=" + secret_hash("s3cret").replace(
        ":", "%3A"
    )  # the token never stored
    assert received["headers"]["content-type"] == "application/json"

    api = mon.api().projects().alerts()
    alert = api.get(name=f"projects/{PROJECT}/alerts/{opened['incident_id']}").execute()
    assert alert["state"] == "OPEN" and alert["policy"]["displayName"] == f"{failing} failed"
    assert (
        alert["policy"]["userLabels"] == {"managed_by": "cloudact-toolkit"}
        and epoch(alert["openTime"]) == opened["started_at"]
    )

    while len(incidents(mon, name)) < 2:  # the 300 s window passes the failed sample: the incident closes
        now = mon.advance(30)
        assert (now - failed_at).total_seconds() < 180 + 300 + 60 + 300, "the incident did not close"
    closed = incidents(mon, name)[1]
    assert closed["incident_id"] == opened["incident_id"] and closed["state"] == "closed"
    assert closed["started_at"] == opened["started_at"] < closed["ended_at"]
    assert closed["summary"].endswith("returned to normal with a value of No data.")  # the window is empty
    assert closed["observed_value"] == "No data"
    assert closed["documentation"]["subject"] == f"[RESOLVED - No severity] {failing} failed"
    assert [i["resource"]["labels"]["job_name"] for i in incidents(mon, name)] == [
        failing,
        failing,
    ]  # flaky: nothing
    listed = api.list(
        parent=f"projects/{PROJECT}", filter=f'policy.display_name="{failing} failed"'
    ).execute()
    assert [(a["state"], a["name"]) for a in listed["alerts"]] == [("CLOSED", alert["name"])]
    assert epoch(listed["alerts"][0]["closeTime"]) == closed["ended_at"]


def test_each_channel_type_gets_its_notification_and_a_disabled_one_none(mon):
    metric, flt = custom_metric(mon)
    name, webhook = hook(mon)
    basic_name = unique("basic")
    basic = mon.channel(
        "webhook_basicauth",
        url=f"https://hooks.cloudact.local/{basic_name}",
        username="alerts",
        password="pa55",
    )
    email = mon.channel("email", email_address="oncall@example.com")
    topic = mon.channel("pubsub", topic=f"projects/{PROJECT}/topics/alerts")
    slack = mon.channel("slack", channel_name="#alerts", auth_token="xoxb-0123456789")
    off = mon.channel("email", email_address="nobody@example.com")
    mon.ok("PATCH", f"{V3}/{off['name']}", params={"updateMask": "enabled"}, json={"enabled": False})
    body = threshold_policy(flt)
    body.update(
        notificationChannels=[c["name"] for c in (webhook, basic, email, topic, slack, off)],
        severity="CRITICAL",
        alertStrategy={"notificationPrompts": ["OPENED"]},  # no notification of the closing
    )
    policy = mon.policy(body)
    mon.align()
    mon.write(metric, 10)
    mon.advance(60)
    (opened,) = incidents(mon, name)
    assert (
        opened["severity"] == "Critical"
        and opened["documentation"]["subject"] == f"[ALERT - Critical] {body['displayName']}"
    )
    (received,) = mon.admin.webhooks(basic_name)
    assert received["headers"]["authorization"] == secret_hash(
        "Basic " + base64.b64encode(b"alerts:pa55").decode()
    )
    mine = [m for m in mon.admin.outbox() if m["incident_id"] == opened["incident_id"]]
    by_type = {m["type"]: m for m in mine}
    assert sorted(by_type) == ["email", "pubsub", "slack"] and len(mine) == 3  # not the disabled channel
    assert (
        by_type["email"]["to"] == "oncall@example.com"
        and by_type["email"]["subject"] == opened["documentation"]["subject"]
    )
    assert by_type["email"]["text"] == opened["summary"]
    published = json.loads(base64.b64decode(by_type["pubsub"]["data"]))
    assert (
        by_type["pubsub"]["topic"] == f"projects/{PROJECT}/topics/alerts" and published["incident"] == opened
    )
    assert by_type["slack"]["channel_name"] == "#alerts" and "xoxb" not in json.dumps(by_type["slack"])
    lines = (mon.cloud.state_dir / "monitoring" / "outbox.jsonl").read_text().splitlines()
    assert {json.loads(line)["type"] for line in lines if opened["incident_id"] in line} == {
        "email",
        "pubsub",
        "slack",
    }
    mon.write(metric, 1)
    mon.advance(60)
    closed = [a for a in mon.admin.incidents() if a["incident_id"] == opened["incident_id"]]
    assert closed[0]["state"] == "CLOSED" and len(incidents(mon, name)) == 1  # prompts: OPENED only
    assert policy["severity"] == "CRITICAL"


def test_a_failed_webhook_is_retried_on_the_clock_and_a_host_localcloud_does_not_serve_is_never_tried(mon):
    metric, flt = custom_metric(mon)
    name, webhook = hook(mon)
    foreign = mon.channel("webhook_tokenauth", url="https://example.com/alerts")
    plain = mon.channel("webhook_tokenauth", url="http://hooks.cloudact.local/plain")
    body = threshold_policy(flt)
    body["notificationChannels"] = [webhook["name"], foreign["name"], plain["name"]]
    mon.policy(body)
    fault = mon.admin.fault("hooks.cloudact.local", f"/{name}", status=503, count=1)
    mon.align()
    mon.write(metric, 10)
    mon.advance(60)
    assert mon.admin.webhooks(name) == [] and mon.admin.fired_faults(fault)  # the 503 struck
    mine = {
        d["channel"]: d
        for d in mon.admin.deliveries()
        if d["policy"] and d["state"] == "open" and d["channel"] in body["notificationChannels"]
    }
    retried = mine[webhook["name"]]
    assert retried["status"] == "pending" and [a.get("status") for a in retried["attempts"]] == [503]
    at = datetime.fromisoformat(retried["attempts"][0]["time"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(retried["next_attempt"].replace("Z", "+00:00")) - at == timedelta(
        seconds=30
    )
    assert mine[foreign["name"]]["status"] == "failed" and mine[foreign["name"]]["attempts"] == [
        {"time": mine[foreign["name"]]["attempts"][0]["time"], "ok": False, "final": True,
         "error": "the host example.com is not served by localcloud: nothing leaves this machine"}
    ]  # fmt: skip
    assert "over HTTPS only" in mine[plain["name"]]["attempts"][0]["error"]
    mon.advance(31)
    again = next(d for d in mon.admin.deliveries() if d["id"] == retried["id"])
    assert again["status"] == "delivered" and [a.get("status") for a in again["attempts"]] == [503, 200]
    assert [i["state"] for i in incidents(mon, name)] == ["open"]


def test_each_series_opens_its_own_incident_and_a_reducer_makes_them_one(mon):
    metric, flt = custom_metric(mon)
    name, webhook = hook(mon)
    per_series = threshold_policy(flt)
    reduced = threshold_policy(
        flt,
        aggregations=[
            {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MAX", "crossSeriesReducer": "REDUCE_MAX"}
        ],
    )
    for body in (per_series, reduced):
        body["notificationChannels"] = [webhook["name"]]
        mon.policy(body)
    mon.align()
    mon.write(metric, 10, task="0")
    mon.write(metric, 20, task="1")
    mon.advance(60)
    got = incidents(mon, name)
    by_policy = {
        p: [i for i in got if i["policy_name"] == p]
        for p in (per_series["displayName"], reduced["displayName"])
    }
    assert sorted(i["resource"]["labels"]["task_id"] for i in by_policy[per_series["displayName"]]) == [
        "0",
        "1",
    ]
    (one,) = by_policy[reduced["displayName"]]
    assert one["resource"] == {"type": "generic_task", "labels": {}} and one["observed_value"] == "20.000"
    assert len({i["incident_id"] for i in got}) == 3


def test_absence_opens_when_data_stops_and_closes_when_it_returns(mon):
    metric, flt = custom_metric(mon)
    name, webhook = hook(mon)
    body = {
        "displayName": unique("absent"),
        "conditions": [
            {"displayName": "no heartbeat", "conditionAbsent": {"filter": flt, "duration": "120s"}}
        ],
        "notificationChannels": [webhook["name"]],
    }
    mon.policy(body)
    mon.align()
    mon.write(metric, 1)
    mon.advance(120)
    assert incidents(mon, name) == []
    mon.advance(60)
    (opened,) = incidents(mon, name)
    assert opened["summary"].endswith("is absent for 120s.") and opened["state"] == "open"
    mon.write(metric, 1)
    mon.advance(60)
    assert [(i["state"], i["incident_id"]) for i in incidents(mon, name)] == [
        ("open", opened["incident_id"]),
        ("closed", opened["incident_id"]),
    ]


def test_without_data_an_incident_stays_open_until_auto_close(mon):
    metric, flt = custom_metric(mon)
    name, webhook = hook(mon)
    body = threshold_policy(flt)  # evaluationMissingData unspecified: missing data changes nothing
    body.update(notificationChannels=[webhook["name"]], alertStrategy={"autoClose": "1800s"})
    mon.policy(body)
    mon.align()
    mon.write(metric, 10)
    mon.advance(60)
    mon.advance(1740)
    assert [i["state"] for i in incidents(mon, name)] == ["open"]
    mon.advance(60)
    opened, closed = incidents(mon, name)
    assert closed["state"] == "closed" and closed["incident_id"] == opened["incident_id"]
    assert closed["ended_at"] - opened["started_at"] == 1800
    assert closed["summary"].endswith("(the incident was closed after autoClose without data)")
    mon.advance(120)
    assert len(incidents(mon, name)) == 2  # not opened again until new data


def test_changing_a_condition_or_deleting_the_policy_cancels_its_incident(mon):
    metric, flt = custom_metric(mon)
    name, webhook = hook(mon)
    made = []
    for _ in range(2):
        body = threshold_policy(flt)
        body["notificationChannels"] = [webhook["name"]]
        made.append(mon.policy(body))
    mon.align()
    mon.write(metric, 10)
    mon.advance(60)
    assert [i["state"] for i in incidents(mon, name)] == ["open", "open"]
    changed = made[0]["conditions"][0]
    changed["conditionThreshold"]["thresholdValue"] = 7
    mon.ok(
        "PATCH",
        f"{V3}/{made[0]['name']}",
        params={"updateMask": "conditions"},
        json={"conditions": [changed]},
    )
    mon.ok("DELETE", f"{V3}/{made[1]['name']}")
    mon.admin.monitoring_tick()
    closed = [i for i in incidents(mon, name) if i["state"] == "closed"]
    assert len(closed) == 2 and {i["observed_value"] for i in closed} == {CANCELLED}
    assert all(i["summary"].endswith(f"returned to normal with a value of {CANCELLED}.") for i in closed)
    mon.ok("GET", f"{MON}/alerts", params={"filter": 'state="CLOSED"', "orderBy": "close_time desc"})


def test_alerts_list_filters_orders_and_pages(mon):
    metric, flt = custom_metric(mon)
    body = threshold_policy(flt)
    body["userLabels"] = {"run": unique("r").replace("-", "_")}
    mon.policy(body)
    mon.align()
    for task in ("0", "1", "2"):
        mon.write(metric, 10, task=task)
    mon.advance(60)
    mine = f'policy.user_labels.run="{body["userLabels"]["run"]}"'
    listed = mon.ok("GET", f"{MON}/alerts", params={"filter": f'{mine} AND state="OPEN"', "pageSize": 2})
    assert len(listed["alerts"]) == 2 and listed["totalSize"] == 3 and listed["nextPageToken"]
    rest = mon.ok(
        "GET",
        f"{MON}/alerts",
        params={"filter": f'{mine} AND state="OPEN"', "pageSize": 2, "pageToken": listed["nextPageToken"]},
    )
    tasks = sorted(a["resource"]["labels"]["task_id"] for a in listed["alerts"] + rest["alerts"])
    assert tasks == ["0", "1", "2"]
    one = mon.ok("GET", f"{MON}/alerts", params={"filter": f'{mine} AND resource.labels.task_id="1"'})[
        "alerts"
    ]
    assert [a["resource"]["labels"]["task_id"] for a in one] == ["1"] and one[0]["metric"]["type"] == metric
    assert "alerts sort by open_time and close_time" in mon.refused(
        "GET", f"{MON}/alerts", params={"orderBy": "state"}
    )
    missing = mon.refused("GET", f"{MON}/alerts/0.nothing", 404)
    assert missing == f"Alert projects/{PROJECT}/alerts/0.nothing does not exist."
    assert datetime.now(UTC)  # the list is served whatever the clock
