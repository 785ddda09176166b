"""The pure parts of localcloud's Cloud Monitoring: the filter languages, orderBy, alignment windows and
reduction (no server)."""

from __future__ import annotations

import pytest

from localcloud.services import monitoring_aggregate as agg
from localcloud.services import monitoring_filter as flt
from localcloud.services.run_errors import ApiError

POLICY = {
    "name": "projects/p/alertPolicies/1",
    "displayName": "Job failed",
    "userLabels": {"managed_by": "cloudact-toolkit", "tier": "gold"},
    "enabled": True,
    "conditions": [{"displayName": "failed executions"}, {"displayName": "slow"}],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ('user_label.managed_by="cloudact-toolkit"', True),
        ('user_labels.managed_by = "cloudact-toolkit"', True),
        ('user_label.managed_by!="cloudact-toolkit"', False),
        ('user_label.missing="x"', False),
        ('user_label.missing!="x"', True),
        ('display_name="Job failed" AND enabled=true', True),
        ('display_name="Job failed" enabled=false', False),  # juxtaposition is AND
        ('display_name="nope" OR user_label.tier="gold"', True),
        ('NOT display_name="Job failed"', False),
        ('-display_name="Job failed"', False),
        ('(display_name="nope" OR NOT enabled=false) AND user_label.tier="gold"', True),
        ('display_name:"FAIL"', True),  # has: a substring, case-insensitive
        ("user_label.tier:*", True),
        ("user_label.colour:*", False),
        ('display_name=starts_with("Job")', True),
        ('display_name=ends_with("Job")', False),
        ('display_name=has_substring("b f")', True),
        ('user_label.tier=one_of("silver", "gold")', True),
        ('display_name=monitoring.regex.full_match("J.*d")', True),
        ("display_name.size > 5", True),
        ("display_name.size < 5", False),
        ('conditions.display_name="slow"', True),
        ('conditions.display_name="fast"', False),
        ("enabled", True),
    ],
)
def test_the_sorting_and_filtering_language(text, expected):
    assert flt.matches(flt.parse(text), flt.resource_resolver(POLICY)) is expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('display_name="a', "unexpected character"),
        ("(display_name", "unexpected end of filter"),
        ('display_name=frob("x")', "unknown function frob"),
        ('display_name=~"x"', "the operator =~ is not supported"),
        ("AND", "expected a field"),
        ('starts_with("a", "b")', "expected a field"),
    ],
)
def test_a_filter_that_does_not_parse_is_refused_naming_the_filter(text, reason):
    with pytest.raises(ApiError) as err:
        flt.parse(text)
    assert err.value.code == 400 and err.value.message.startswith(
        f'Field filter had an invalid value of "{text}": '
    )
    assert reason in err.value.message


def test_monitoring_filters_over_series():
    series = {
        "metric": {
            "type": "run.googleapis.com/job/completed_execution_count",
            "labels": {"result": "failed"},
        },
        "resource": {
            "type": "cloud_run_job",
            "labels": {"job_name": "ledger-sync", "location": "us-central1"},
        },
    }
    text = (
        'metric.type="run.googleapis.com/job/completed_execution_count" AND resource.type="cloud_run_job" '
        'AND resource.labels.job_name=starts_with("ledger") AND metric.label.result="failed" AND project="p"'
    )
    tree = flt.parse(text)
    flt.check_series_fields(tree, text)
    assert flt.matches(tree, flt.series_resolver(series, "p"))
    assert flt.exact(tree, "metric.type") == "run.googleapis.com/job/completed_execution_count"
    assert not flt.matches(flt.parse('metric.labels.result="succeeded"'), flt.series_resolver(series, "p"))
    with pytest.raises(ApiError, match=r"unknown field metric\.kind"):
        flt.check_series_fields(flt.parse('metric.kind="GAUGE"'), 'metric.kind="GAUGE"')
    assert flt.exact(flt.parse('metric.type=starts_with("run.")'), "metric.type") is None


def test_order_by_fields_ascending_descending_and_size():
    items = [
        {"displayName": n, "userLabels": {"team": t}} for n, t in (("bb", "x"), ("a", "y"), ("ccc", "x"))
    ]
    assert [i["displayName"] for i in flt.order(items, "display_name")] == ["a", "bb", "ccc"]
    assert [i["displayName"] for i in flt.order(items, "-display_name")] == ["ccc", "bb", "a"]
    assert [i["displayName"] for i in flt.order(items, "user_label.team,-display_name")] == ["ccc", "bb", "a"]
    assert [i["displayName"] for i in flt.order(items, "display_name.size desc")] == ["ccc", "bb", "a"]
    with pytest.raises(ApiError, match="cannot sort by"):
        flt.order(items, "display name")


def _points(*pairs):
    return [(end * 1_000_000, end * 1_000_000, value) for end, value in pairs]


def test_alignment_windows_end_at_the_interval_end_and_each_period_before():
    points = _points((10, 1), (70, 5), (130, 2), (190, 8))
    spec = agg.aggregation({"alignmentPeriod": "120s", "perSeriesAligner": "ALIGN_MAX"}, "a")
    out = agg.align(points, None, spec, "GAUGE", "INT64", 0, 200 * 1_000_000)
    assert [(e // 1_000_000, v) for _, e, v in out] == [(200, 8), (80, 5)]  # (80, 200], (-40, 80]
    total = agg.aggregation({"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_SUM"}, "a")
    deltas = [(s * 1_000_000, e * 1_000_000, v) for s, e, v in ((0, 60, 1), (60, 120, 2), (120, 180, 3))]
    summed = agg.align(deltas, None, total, "DELTA", "INT64", 0, 180 * 1_000_000)
    assert [(s // 1_000_000, e // 1_000_000, v) for s, e, v in summed] == [
        (120, 180, 3),
        (60, 120, 2),
        (0, 60, 1),
    ]
    rate = agg.aggregation({"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_RATE"}, "a")
    assert agg.align(deltas, None, rate, "DELTA", "INT64", 0, 180 * 1_000_000)[0][2] == 0.05
    cumulative = [(0, e * 1_000_000, v) for e, v in ((30, 4), (90, 10), (150, 25))]
    delta = agg.aggregation({"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_DELTA"}, "a")
    assert [
        v for _, _, v in agg.align(cumulative, None, delta, "CUMULATIVE", "INT64", 0, 180 * 1_000_000)
    ] == [
        15,
        6,
        4,
    ]


def test_reduction_groups_by_the_fields_given_and_resource_type():
    def series(task: str, tier: str, value: int) -> dict:
        return {
            "metric": {"type": "custom.googleapis.com/x", "labels": {"tier": tier}},
            "resource": {"type": "generic_task", "labels": {"task_id": task}},
            "metricKind": "GAUGE",
            "valueType": "INT64",
            "points": [(60, 60, value)],
        }

    aligned = [series("0", "a", 1), series("1", "a", 5), series("2", "b", 7)]
    spec = agg.aggregation(
        {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MAX", "crossSeriesReducer": "REDUCE_SUM"}, "a"
    )
    (one,) = agg.reduce(aligned, spec)
    assert (
        one["points"] == [(60, 60, 13)] and one["metric"]["labels"] == {} and one["resource"]["labels"] == {}
    )
    spec.group_by = ["metric.label.tier"]
    by_tier = {s["metric"]["labels"]["tier"]: s["points"][0][2] for s in agg.reduce(aligned, spec)}
    assert by_tier == {"a": 6, "b": 7}
    spec.reducer = "REDUCE_COUNT"
    assert {s["valueType"] for s in agg.reduce(aligned, spec)} == {"INT64"}
    with pytest.raises(ApiError, match="localcloud does not emulate it"):
        agg.aggregation({"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_PERCENTILE_99"}, "a")
    with pytest.raises(ApiError, match="The reducer cannot be applied to values of type BOOL"):
        agg.aggregation(
            {
                "alignmentPeriod": "60s",
                "perSeriesAligner": "ALIGN_NEXT_OLDER",
                "crossSeriesReducer": "REDUCE_SUM",
            },
            "a",
            "GAUGE",
            "BOOL",
        )
