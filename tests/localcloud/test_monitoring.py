"""Cloud Monitoring v3 on localcloud: notification channels and their descriptors, alert policies (Google's
validation rules, each refused with its message), the sorting-and-filtering language, patch with
updateMask, IAM with the monitoring roles, the discovery judge, and Google's own client and types."""

from __future__ import annotations

import copy
import json

import pytest
from google.cloud import monitoring_v3
from google.protobuf import duration_pb2

from localcloud import iam_roles
from localcloud.conformance import document
from tests.localcloud.monitoring_cloud import MON, PROJECT, owner, unique

COMPLETED = 'metric.type="run.googleapis.com/job/completed_execution_count" AND resource.type="cloud_run_job"'
V3 = "https://monitoring.googleapis.com/v3"


@pytest.fixture(scope="module")
def mon(localcloud):
    yield from owner(localcloud)


def valid_policy() -> dict:
    condition = {
        "filter": COMPLETED,
        "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}],
        "comparison": "COMPARISON_GT",
        "duration": "60s",
    }
    return {
        "displayName": unique("valid"),
        "conditions": [{"displayName": "c", "conditionThreshold": condition}],
    }


def threshold(body: dict) -> dict:
    return body["conditions"][0]["conditionThreshold"]


# ---- notification channels ---------------------------------------------------------------------------


def test_channel_descriptors_name_the_labels_of_each_type(mon):
    listed = mon.ok("GET", f"{MON}/notificationChannelDescriptors")["channelDescriptors"]
    labels = {d["type"]: [label["key"] for label in d["labels"]] for d in listed}
    assert labels == {
        "email": ["email_address"],
        "pubsub": ["topic"],
        "slack": ["channel_name", "auth_token"],
        "webhook_basicauth": ["url", "username", "password"],
        "webhook_tokenauth": ["url"],
    }
    one = mon.ok("GET", f"{MON}/notificationChannelDescriptors/webhook_tokenauth")
    assert one["name"] == f"projects/{PROJECT}/notificationChannelDescriptors/webhook_tokenauth"
    missing = mon.refused("GET", f"{MON}/notificationChannelDescriptors/sms", 404)
    assert missing == "Notification channel descriptor sms does not exist."


def test_channels_keep_their_secrets_obfuscated_and_patch_by_mask(mon):
    basic = mon.channel(
        "webhook_basicauth", url="https://hooks.cloudact.local/b", username="u", password="s3cret-pass"
    )
    slack = mon.channel("slack", channel_name="#ops", auth_token="xoxp-1234567890")
    email = mon.channel("email", email_address="ops@example.com")
    assert basic["labels"] == {
        "url": "https://hooks.cloudact.local/b",
        "username": "u",
        "password": "*******pass",
    }
    assert slack["labels"]["auth_token"] == "***********7890"
    assert email["enabled"] is True and "verificationStatus" not in email  # VERIFICATION_STATUS_UNSPECIFIED
    assert email["creationRecord"]["mutatedBy"] == f"cloudact-operator@{PROJECT}.iam.gserviceaccount.com"
    got = mon.ok("GET", f"{V3}/{basic['name']}")
    assert got["labels"]["password"] == "*******pass"

    url = f"{V3}/{email['name']}"
    patched = mon.ok(
        "PATCH", url, params={"updateMask": "display_name"}, json={"displayName": "ops", "description": "no"}
    )
    assert (
        patched["displayName"] == "ops"
        and "description" not in patched
        and len(patched["mutationRecords"]) == 2
    )
    # Writing the obfuscated value read back would store it as the secret: refused.
    again = copy.deepcopy(got)
    message = mon.refused("PATCH", f"{V3}/{basic['name']}", params={"updateMask": "labels"}, json=again)
    assert "the obfuscated value a read returns cannot be written back" in message
    moved = mon.ok(
        "PATCH",
        f"{V3}/{basic['name']}",
        params={"updateMask": "labels.url"},
        json={"labels": {"url": "https://hooks.cloudact.local/c"}},
    )
    assert moved["labels"] == {
        "url": "https://hooks.cloudact.local/c",
        "username": "u",
        "password": "*******pass",
    }
    assert mon.refused("PATCH", url, json={"type": "slack"}).endswith("The type of a channel cannot change.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"type": "sms", "labels": {}},
            'Field notification_channel.type had an invalid value of "sms": Unsupported',
        ),
        ({"type": "email", "labels": {}}, "The label 'email_address' is required for email channels."),
        (
            {"type": "email", "labels": {"email_address": "a@b.c", "cc": "x"}},
            "'cc' is not a label of email channels",
        ),
        ({"type": "email", "labels": {"email_address": "nobody"}}, "not a valid email address."),
        ({"type": "pubsub", "labels": {"topic": "alerts"}}, "not a valid topic."),
        ({"type": "webhook_tokenauth", "labels": {"url": "hooks"}}, "not a valid url."),
    ],
)
def test_a_bad_channel_is_refused(mon, body, message):
    assert message in mon.refused("POST", f"{MON}/notificationChannels", json=body)


def test_channels_list_with_filter_order_and_pages(mon):
    tag = unique("team").replace("-", "_")
    made = [
        mon.ok(
            "POST",
            f"{MON}/notificationChannels",
            json={
                "type": "email",
                "displayName": name,
                "labels": {"email_address": f"{name}@x.io"},
                "userLabels": {"team": tag},
            },
        )
        for name in ("alpha", "beta", "gamma")
    ]  # fmt: skip
    mon.cleanup.extend(f"{V3}/{c['name']}" for c in made)

    def names(**params) -> list[str]:
        return [
            c["displayName"]
            for c in mon.ok("GET", f"{MON}/notificationChannels", params=params).get(
                "notificationChannels", []
            )
        ]

    mine = f'user_label.team="{tag}"'
    assert names(filter=mine, orderBy="-display_name") == ["gamma", "beta", "alpha"]
    either = f'{mine} AND (display_name="alpha" OR display_name="gamma")'
    assert names(filter=either, orderBy="display_name") == ["alpha", "gamma"]
    assert names(filter=f'{mine} NOT display_name="beta"', orderBy="display_name") == ["alpha", "gamma"]
    assert names(filter=f'{mine} labels.email_address:"BETA"') == ["beta"]  # `:` has, case-insensitive
    assert names(filter=f'{mine} type="email" display_name.size > 4', orderBy="display_name") == [
        "alpha",
        "gamma",
    ]
    first = mon.ok(
        "GET",
        f"{MON}/notificationChannels",
        params={"filter": mine, "orderBy": "display_name", "pageSize": 2},
    )
    assert [c["displayName"] for c in first["notificationChannels"]] == ["alpha", "beta"] and first[
        "totalSize"
    ] == 3
    rest = mon.ok(
        "GET",
        f"{MON}/notificationChannels",
        params={
            "filter": mine,
            "orderBy": "display_name",
            "pageSize": 2,
            "pageToken": first["nextPageToken"],
        },
    )
    assert [c["displayName"] for c in rest["notificationChannels"]] == [
        "gamma"
    ] and "nextPageToken" not in rest
    bad = mon.refused("GET", f"{MON}/notificationChannels", params={"filter": 'display_name="a'})
    assert bad.startswith('Field filter had an invalid value of "display_name="a"')


def test_a_channel_in_use_is_deleted_only_with_force_which_removes_it_from_the_policy(mon):
    kept, used = mon.channel(), mon.channel()
    policy = mon.policy({**valid_policy(), "notificationChannels": [kept["name"], used["name"]]})
    message = mon.refused("DELETE", f"{V3}/{used['name']}")
    assert message == (
        f"Notification channel {used['name']} is used by the alerting policies {policy['name']}; delete it "
        "with "
        "force=true to remove it from them."
    )
    mon.ok("DELETE", f"{V3}/{used['name']}", params={"force": "true"})
    assert mon.ok("GET", f"{V3}/{policy['name']}")["notificationChannels"] == [kept["name"]]
    assert (
        mon.refused("GET", f"{V3}/{used['name']}", 404)
        == f"Notification channel {used['name']} does not exist."
    )


# ---- alert policies ------------------------------------------------------------------------------------


def test_a_policy_is_echoed_as_google_stores_it(mon):
    channel = mon.channel()
    created = mon.policy(
        {
            **valid_policy(),
            "notificationChannels": [channel["name"]],
            "userLabels": {"managed_by": "cloudact-toolkit"},
        }
    )
    assert created["name"].startswith(f"projects/{PROJECT}/alertPolicies/")
    assert created["conditions"][0]["name"].startswith(created["name"] + "/conditions/")
    assert created["combiner"] == "OR" and created["enabled"] is True
    assert threshold(created)["trigger"] == {"count": 1} and "thresholdValue" not in threshold(
        created
    )  # 0 omitted
    assert created["creationRecord"] == created["mutationRecord"]
    assert mon.ok("GET", f"{V3}/{created['name']}") == created
    missing = f"{created['name']}0"
    assert mon.refused("GET", f"{V3}/{missing}", 404) == f"Policy {missing} does not exist."


def test_policies_list_with_filter_order_and_pages(mon):
    tag = unique("t").replace("-", "_")
    for name in ("job-a failed", "job-b failed", "job-c slow"):
        mon.policy(
            {
                **valid_policy(),
                "displayName": name,
                "userLabels": {"managed_by": "cloudact-toolkit", "run": tag},
            }
        )
    mon.policy({**valid_policy(), "userLabels": {"run": tag}})

    def names(**params) -> list[str]:
        listed = mon.ok("GET", f"{MON}/alertPolicies", params=params)
        return [p["displayName"] for p in listed.get("alertPolicies", [])]

    mine = f'user_label.run="{tag}"'
    assert names(filter=f'{mine} AND user_label.managed_by="cloudact-toolkit"', orderBy="display_name") == [
        "job-a failed",
        "job-b failed",
        "job-c slow",
    ]
    assert names(
        filter=f'{mine} AND display_name=starts_with("job-") AND NOT display_name:"slow"',
        orderBy="-display_name",
    ) == [
        "job-b failed",
        "job-a failed",
    ]
    other = names(filter=f'{mine} AND user_label.managed_by!="cloudact-toolkit"')
    assert len(other) == 1 and other[0].startswith("valid-")
    assert names(filter=f'{mine} conditions.display_name="c" enabled=true', orderBy="display_name")[:1] == [
        "job-a failed"
    ]
    page = mon.ok(
        "GET", f"{MON}/alertPolicies", params={"filter": mine, "orderBy": "display_name", "pageSize": 3}
    )
    assert len(page["alertPolicies"]) == 3 and page["totalSize"] == 4 and page["nextPageToken"]


def test_patch_keeps_condition_names_and_a_condition_without_one_gets_a_new_one(mon):
    created = mon.policy({**valid_policy(), "userLabels": {"a": "1", "b": "2"}})
    url = f"{V3}/{created['name']}"
    first = created["conditions"][0]
    renamed = mon.ok(
        "PATCH",
        url,
        params={"updateMask": "display_name,user_label.a"},
        json={"displayName": "renamed", "userLabels": {"a": "9"}},
    )
    assert renamed["displayName"] == "renamed" and renamed["userLabels"] == {"a": "9", "b": "2"}
    assert (
        renamed["conditions"] == created["conditions"]
        and renamed["creationRecord"] == created["creationRecord"]
    )

    changed = copy.deepcopy(first)
    changed["conditionThreshold"]["thresholdValue"] = 3
    extra = {
        "displayName": "new",
        "conditionThreshold": {**threshold(created), "comparison": "COMPARISON_LT"},
    }
    body = {"conditions": [changed, extra], "combiner": "OR"}
    both = mon.ok("PATCH", url, params={"updateMask": "conditions,combiner"}, json=body)
    assert (
        both["conditions"][0]["name"] == first["name"]
        and both["conditions"][0]["conditionThreshold"]["thresholdValue"] == 3
    )
    assert (
        both["conditions"][1]["name"].startswith(created["name"] + "/conditions/")
        and both["conditions"][1]["name"] != first["name"]
    )

    replaced = mon.ok("PATCH", url, json={"displayName": "whole", "conditions": [extra]})  # no mask: replaced
    assert replaced["displayName"] == "whole" and "userLabels" not in replaced
    assert [c["name"] for c in replaced["conditions"]] != [first["name"]] and len(replaced["conditions"]) == 1
    stranger = {**extra, "name": f"{created['name']}/conditions/1"}
    message = mon.refused("PATCH", url, json={"displayName": "x", "conditions": [stranger]})
    assert message == (
        f'Field alert_policy.conditions[0].name had an invalid value of "{stranger["name"]}": not a '
        "condition of "
        f"{created['name']}."
    )
    assert "is not a field of the alert policy" in mon.refused(
        "PATCH", url, params={"updateMask": "frobs"}, json={}
    )


def _mql(body):
    body["conditions"].append(
        {"displayName": "m", "conditionMonitoringQueryLanguage": {"query": "fetch cloud_run_job"}}
    )
    body["combiner"] = "OR"


def _absent(duration):
    def mutate(body):
        spec = threshold(body)
        body["conditions"][0] = {
            "displayName": "gone",
            "conditionAbsent": {"filter": spec["filter"], "duration": duration},
        }

    return mutate


def _set(key: str, **values):
    """A mutation of the valid policy's first condition's `key` part (aggregation, threshold, policy)."""

    def mutate(body):
        target = {"agg": threshold(body)["aggregations"][0], "spec": threshold(body), "policy": body}[key]
        target.update(values)

    return mutate


def _pop(key: str):
    return lambda body: (threshold(body) if key == "comparison" else body).pop(key)


AT = "Field alert_policy.conditions[0].condition_threshold"
RULES = [
    (
        "no conditions",
        _set("policy", conditions=[]),
        "Field alert_policy.conditions had an invalid value: A policy must have at least one condition.",
    ),
    (
        "seven conditions",
        lambda b: b.update(conditions=b["conditions"] * 7, combiner="OR"),
        "A policy can have at most 6 conditions; it has 7.",
    ),
    (
        "no display name",
        _pop("displayName"),
        "Field alert_policy.display_name had an invalid value: A display name is required.",
    ),
    (
        "period 30s",
        _set("agg", alignmentPeriod="30s"),
        f'{AT}.aggregations[0].alignment_period had an invalid value of "30s": The alignment period must be '
        "at "
        "least 60 seconds.",
    ),
    (
        "period 90s",
        _set("agg", alignmentPeriod="90s"),
        'of "90s": The alignment period must be a multiple of 60 seconds.',
    ),
    (
        "period over 25 h",
        _set("agg", alignmentPeriod="90060s"),
        "The alignment period of an alerting policy must be at most 90000 seconds.",
    ),
    (
        "period + duration over 25 h",
        lambda b: (_set("agg", alignmentPeriod="90000s")(b), _set("spec", duration="3600s")(b)),
        f"{AT} had an invalid value: The alignment period plus the duration must be at most 25 hours.",
    ),
    (
        "comparison GE",
        _set("spec", comparison="COMPARISON_GE"),
        f'{AT}.comparison had an invalid value of "COMPARISON_GE": Only COMPARISON_LT and COMPARISON_GT are '
        "supported.",
    ),
    (
        "no comparison",
        _pop("comparison"),
        'of "COMPARISON_UNSPECIFIED": Only COMPARISON_LT and COMPARISON_GT are supported.',
    ),
    (
        "duration 90s",
        _set("spec", duration="90s"),
        f'{AT}.duration had an invalid value of "90s": The duration must be a multiple of 60 seconds.',
    ),
    (
        "absence 60s",
        _absent("60s"),
        'condition_absent.duration had an invalid value of "60s": The duration of an absence condition must '
        "be "
        "at least 120 seconds.",
    ),
    (
        "absence 23h31m",
        _absent("84660s"),
        "The duration of an absence condition must be at most 23h30m (84600s).",
    ),
    (
        "missing data, duration 0",
        _set("spec", duration="0s", evaluationMissingData="EVALUATION_MISSING_DATA_INACTIVE"),
        "evaluation_missing_data can only be set when the duration is at least 60 seconds.",
    ),
    (
        "auto-close 10 min",
        _set("policy", alertStrategy={"autoClose": "600s"}),
        'auto_close had an invalid value of "600s": The auto-close duration must be at least 30 minutes.',
    ),
    (
        "renotify 10 min",
        _set("policy", alertStrategy={"notificationChannelStrategy": [{"renotifyInterval": "600s"}]}),
        "The value must be between 30 minutes and 24 hours.",
    ),
    (
        "MQL not alone",
        _mql,
        "A policy with a condition_monitoring_query_language condition must have only that one condition.",
    ),
    (
        "PromQL not alone",
        lambda b: (
            b["conditions"].append(
                {"displayName": "p", "conditionPrometheusQueryLanguage": {"query": "up == 0"}}
            ),
            b.update(combiner="AND"),
        ),
        "A policy with a condition_prometheus_query_language condition must have only that one condition.",
    ),
    (
        "log match without a rate limit",
        _set(
            "policy", conditions=[{"displayName": "l", "conditionMatchedLog": {"filter": "severity>=ERROR"}}]
        ),
        "A notification rate limit is required for a policy with a log match condition.",
    ),
    (
        "two conditions, no combiner",
        lambda b: b.update(conditions=b["conditions"] * 2),
        "A combiner (AND, OR, AND_WITH_MATCHING_RESOURCE) is required for a policy with more than one "
        "condition.",
    ),
    (
        "two condition types",
        lambda b: b["conditions"][0].update(conditionAbsent={"filter": COMPLETED, "duration": "120s"}),
        "Field alert_policy.conditions[0] had an invalid value: Exactly one condition type",
    ),
    (
        "channel of no one",
        _set("policy", notificationChannels=[f"projects/{PROJECT}/notificationChannels/42"]),
        "The notification channel does not exist in projects/cloudact-local.",
    ),
    (
        "no metric type",
        _set("spec", filter='resource.type="cloud_run_job"'),
        f'{AT}.filter had an invalid value of "resource.type="cloud_run_job"": The filter must specify a '
        "metric "
        "type.",
    ),
    (
        "aligner of another kind",
        _set(
            "spec",
            filter='metric.type="run.googleapis.com/job/running_executions"',
            aggregations=[{"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_DELTA"}],
        ),
        'per_series_aligner had an invalid value of "ALIGN_DELTA": The aligner cannot be applied to metrics '
        "with "
        "kind GAUGE and value type INT64.",
    ),
    (
        "reducer without aligner",
        _set("spec", aggregations=[{"alignmentPeriod": "60s", "crossSeriesReducer": "REDUCE_SUM"}]),
        "The cross series reducer REDUCE_SUM requires a per series aligner other than ALIGN_NONE.",
    ),
    (
        "label key upper case",
        _set("policy", userLabels={"Team": "x"}),
        "Field alert_policy.user_labels had an invalid value: the key 'Team'",
    ),
    (
        "plain text documentation",
        _set("policy", documentation={"content": "x", "mimeType": "text/plain"}),
        'Field alert_policy.documentation.mime_type had an invalid value of "text/plain": Only '
        '"text/markdown" is '
        "supported.",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_a_policy_google_refuses_is_refused_with_its_message(mon, mutate, message):
    body = valid_policy()
    mutate(body)
    assert message in mon.refused("POST", f"{MON}/alertPolicies", json=body)


def test_a_filter_on_a_metric_that_does_not_exist_is_googles_404(mon):
    body = valid_policy()
    threshold(body)["filter"] = 'metric.type="custom.googleapis.com/never-written" AND resource.type="global"'
    assert mon.refused("POST", f"{MON}/alertPolicies", 404, json=body) == (
        'Cannot find metric(s) that match type = "custom.googleapis.com/never-written". If a metric was '
        "created "
        "recently, it could take up to 10 minutes to become available. Please try again soon."
    )


def test_what_google_accepts_is_accepted(mon):
    alone = {
        "displayName": unique("promql"),
        "conditions": [
            {"displayName": "p", "conditionPrometheusQueryLanguage": {"query": "up == 0", "duration": "60s"}}
        ],
    }
    assert "combiner" not in mon.policy(alone)
    log = {
        "displayName": unique("log"),
        "conditions": [{"displayName": "l", "conditionMatchedLog": {"filter": "severity>=ERROR"}}],
        "alertStrategy": {"notificationRateLimit": {"period": "300s"}},
    }
    assert mon.policy(log)["alertStrategy"] == {"notificationRateLimit": {"period": "300s"}}
    absent = valid_policy()
    absent["conditions"][0] = {
        "displayName": "a",
        "conditionAbsent": {"filter": COMPLETED, "duration": "120s"},
    }
    edge = valid_policy()
    threshold(edge).update(duration="3600s", evaluationMissingData="EVALUATION_MISSING_DATA_ACTIVE")
    threshold(edge)["aggregations"][0]["alignmentPeriod"] = "86400s"  # + 1 h: exactly 25 h
    edge["alertStrategy"] = {"autoClose": "1800s"}
    for body in (absent, edge):
        mon.policy(body)


def test_a_misspelt_field_is_refused_by_the_discovery_judge_as_google_refuses_it(mon):
    body = valid_policy()
    body["conditons"] = body.pop("conditions")
    message = mon.refused("POST", f"{MON}/alertPolicies", json=body)
    assert (
        message
        == "Invalid JSON payload received. Unknown name \"conditons\" at 'alert_policy': Cannot find field."
    )
    assert "Cannot bind query parameter" in mon.refused("GET", f"{MON}/alertPolicies", params={"limit": 1})


# ---- IAM --------------------------------------------------------------------------------------------


def test_the_monitoring_roles_are_in_the_catalogue_with_their_permissions():
    roles = iam_roles.ROLES
    assert roles["roles/monitoring.alertPolicyEditor"] >= {
        "monitoring.alertPolicies.create",
        "monitoring.alertPolicies.update",
    }
    assert "monitoring.notificationChannels.create" not in roles["roles/monitoring.alertPolicyEditor"]
    assert roles["roles/monitoring.metricWriter"] == {
        "monitoring.metricDescriptors.create",
        "monitoring.metricDescriptors.get",
        "monitoring.metricDescriptors.list",
        "monitoring.monitoredResourceDescriptors.get",
        "monitoring.monitoredResourceDescriptors.list",
        "monitoring.timeSeries.create",
    }
    assert (
        "monitoring.timeSeries.list" in roles["roles/viewer"]
        and "monitoring.alertPolicies.create" not in roles["roles/viewer"]
    )
    assert "monitoring.alertPolicies.create" in roles["roles/editor"]


def test_iam_decides_each_call_on_the_project_with_monitorings_words(mon):
    def denied(permission: str) -> str:
        return f"Permission {permission} denied (or the resource may not exist)."

    viewer = mon.as_account(mon.account("polview", "roles/monitoring.alertPolicyViewer"))
    assert mon.call("GET", f"{MON}/alertPolicies", session=viewer).status_code == 200
    assert mon.refused("POST", f"{MON}/alertPolicies", 403, session=viewer, json=valid_policy()) == denied(
        "monitoring.alertPolicies.create"
    )
    assert mon.refused("GET", f"{MON}/notificationChannels", 403, session=viewer) == denied(
        "monitoring.notificationChannels.list"
    )

    channels = mon.as_account(mon.account("chedit", "roles/monitoring.notificationChannelEditor"))
    made = mon.call(
        "POST",
        f"{MON}/notificationChannels",
        session=channels,
        json={"type": "email", "labels": {"email_address": "x@y.io"}},
    )
    assert made.status_code == 200, made.text
    mon.cleanup.append(f"{V3}/{made.json()['name']}")
    assert mon.refused("POST", f"{MON}/alertPolicies", 403, session=channels, json=valid_policy()) == denied(
        "monitoring.alertPolicies.create"
    )

    writer = mon.as_account(mon.account("writer", "roles/monitoring.metricWriter"))
    point = {"interval": {"endTime": mon.now().isoformat()}, "value": {"doubleValue": 1.5}}
    resource = {"type": "global", "labels": {"project_id": PROJECT}}
    series = {
        "metric": {"type": f"custom.googleapis.com/{unique('iam')}"},
        "resource": resource,
        "points": [point],
    }
    assert (
        mon.call("POST", f"{MON}/timeSeries", session=writer, json={"timeSeries": [series]}).status_code
        == 200
    )
    listing = {
        "filter": f'metric.type="{series["metric"]["type"]}"',
        "interval.endTime": mon.now().isoformat(),
    }
    assert mon.refused("GET", f"{MON}/timeSeries", 403, session=writer, params=listing) == denied(
        "monitoring.timeSeries.list"
    )

    nobody = mon.as_account(mon.account("nobody"))
    assert mon.refused("GET", f"{MON}/alerts", 403, session=nobody) == denied("monitoring.alerts.list")
    basic = mon.as_account(mon.account("basicview", "roles/viewer"))
    assert mon.call("GET", f"{MON}/timeSeries", session=basic, params=listing).status_code == 200
    assert mon.refused("POST", f"{MON}/alertPolicies", 403, session=basic, json=valid_policy()) == denied(
        "monitoring.alertPolicies.create"
    )
    editor = mon.as_account(mon.account("moneditor", "roles/monitoring.editor"))
    made = mon.call("POST", f"{MON}/alertPolicies", session=editor, json=valid_policy())
    assert made.status_code == 200, made.text
    mon.cleanup.insert(0, f"{V3}/{made.json()['name']}")
    assert made.json()["creationRecord"]["mutatedBy"].startswith("moneditor-")


# ---- Google's client and types ------------------------------------------------------------------------


def test_googles_client_and_types_write_and_read_back_policies_and_channels(mon):
    api = mon.api().projects()
    channel = monitoring_v3.NotificationChannel(
        type_="email", display_name="oncall", labels={"email_address": "oncall@example.com"}
    )
    body = json.loads(monitoring_v3.NotificationChannel.to_json(channel, use_integers_for_enums=False))
    created_channel = api.notificationChannels().create(name=f"projects/{PROJECT}", body=body).execute()
    mon.cleanup.append(f"{V3}/{created_channel['name']}?force=true")
    read_channel = monitoring_v3.NotificationChannel.from_json(
        json.dumps(created_channel)
    )  # no unknown field
    assert read_channel.labels["email_address"] == "oncall@example.com" and read_channel.enabled is True

    Cond = monitoring_v3.AlertPolicy.Condition
    policy = monitoring_v3.AlertPolicy(
        display_name=unique("typed"),
        user_labels={"managed_by": "cloudact-toolkit"},
        conditions=[
            Cond(
                display_name="failed executions",
                condition_threshold=Cond.MetricThreshold(
                    filter=COMPLETED + ' AND metric.labels.result="failed"',
                    aggregations=[
                        monitoring_v3.Aggregation(
                            alignment_period=duration_pb2.Duration(seconds=300),
                            per_series_aligner=monitoring_v3.Aggregation.Aligner.ALIGN_SUM,
                        )
                    ],
                    comparison=monitoring_v3.ComparisonType.COMPARISON_GT,
                    duration=duration_pb2.Duration(seconds=60),
                    evaluation_missing_data=Cond.EvaluationMissingData.EVALUATION_MISSING_DATA_INACTIVE,
                ),
            )
        ],
        alert_strategy=monitoring_v3.AlertPolicy.AlertStrategy(
            auto_close=duration_pb2.Duration(seconds=1800)
        ),
        notification_channels=[created_channel["name"]],
        severity=monitoring_v3.AlertPolicy.Severity.ERROR,
    )
    body = json.loads(
        monitoring_v3.AlertPolicy.to_json(policy, use_integers_for_enums=False)
    )  # defaults printed
    created = api.alertPolicies().create(name=f"projects/{PROJECT}", body=body).execute()
    mon.cleanup.insert(0, f"{V3}/{created['name']}")
    listed = (
        api.alertPolicies()
        .list(name=f"projects/{PROJECT}", filter=f'display_name="{policy.display_name}"')
        .execute()
    )
    assert [p["name"] for p in listed["alertPolicies"]] == [created["name"]]
    read = monitoring_v3.AlertPolicy.from_json(
        json.dumps(api.alertPolicies().get(name=created["name"]).execute())
    )
    spec = read.conditions[0].condition_threshold
    assert (spec.aggregations[0].alignment_period.seconds, spec.duration.seconds) == (300, 60)
    assert spec.aggregations[0].per_series_aligner == monitoring_v3.Aggregation.Aligner.ALIGN_SUM
    assert (
        read.alert_strategy.auto_close.seconds == 1800
        and read.severity == monitoring_v3.AlertPolicy.Severity.ERROR
    )
    assert read.combiner == monitoring_v3.AlertPolicy.ConditionCombinerType.OR and read.enabled is True
    assert read.creation_record.mutated_by == f"cloudact-operator@{PROJECT}.iam.gserviceaccount.com"
    descriptors = (
        api.notificationChannelDescriptors().list(name=f"projects/{PROJECT}").execute()["channelDescriptors"]
    )
    assert {
        monitoring_v3.NotificationChannelDescriptor.from_json(json.dumps(d)).type_ for d in descriptors
    } >= {"email", "webhook_tokenauth"}


def test_the_served_methods_are_those_of_monitoring_v3():
    doc = document("monitoring.v3")
    ids = {m.id for m in doc.methods}
    served = {
        f"monitoring.projects.{m}"
        for m in (
            "alertPolicies.create alertPolicies.get alertPolicies.list alertPolicies.patch "
            "alertPolicies.delete notificationChannels.create notificationChannels.get "
            "notificationChannels.list notificationChannels.patch notificationChannels.delete "
            "notificationChannelDescriptors.get notificationChannelDescriptors.list metricDescriptors.get "
            "metricDescriptors.list metricDescriptors.create metricDescriptors.delete "
            "timeSeries.create timeSeries.list alerts.get alerts.list"
        ).split()
    }
    assert served <= ids
    # A metric type holds "/": the get path spans segments and is still the method's.
    found = doc.match("GET", "/v3/projects/p/metricDescriptors/run.googleapis.com/job/running_executions")
    assert found is not None and found.id == "monitoring.projects.metricDescriptors.get"
