"""Cloud Run emulation pieces that need no running localcloud: log line parsing, job defaults, overrides."""

from __future__ import annotations

import pytest

from localcloud.services.run_errors import ApiError
from localcloud.services.run_runner import parse_log_line
from localcloud.services.run_shapes import apply_overrides, format_duration, normalize_job, parse_duration

LOG_LINES = [
    ("plain text\n", {"textPayload": "plain text"}),
    (
        '{"severity": "ERROR", "message": "boom", "org": "acme"}\n',
        {"severity": "ERROR", "jsonPayload": {"message": "boom", "org": "acme"}},
    ),
    ('{"severity": "warn", "message": "m"}', {"severity": "WARNING", "jsonPayload": {"message": "m"}}),
    ('{"severity": "LOUD", "message": "m"}', {"jsonPayload": {"message": "m"}}),
    (
        '{"message": "m", "logging.googleapis.com/labels": {"k": 1}}',
        {"labels": {"k": "1"}, "jsonPayload": {"message": "m"}},
    ),
    ("{not json", {"textPayload": "{not json"}),
    ("[1, 2]", {"textPayload": "[1, 2]"}),
]


@pytest.mark.parametrize(("line", "expected"), LOG_LINES)
def test_log_lines_become_payloads_as_the_logging_agent_makes_them(line, expected):
    assert parse_log_line(line) == expected


def job(**task):
    return {"template": {"template": {"containers": [{"image": "img", "args": ["a"]}], **task}}}


def test_server_defaults_are_filled():
    spec = normalize_job(job())
    assert spec["launchStage"] == "GA" and spec["template"]["taskCount"] == 1
    task = spec["template"]["template"]
    assert (task["maxRetries"], task["timeout"]) == (3, "600s")
    assert task["containers"][0]["resources"] == {"limits": {"cpu": "1000m", "memory": "512Mi"}}
    assert normalize_job(job(maxRetries=0))["template"]["template"]["maxRetries"] == 0  # an explicit 0 stays


def test_integer_enums_and_snake_case_are_accepted():
    body = job(execution_environment=2, max_retries="1")
    body["launchStage"] = 3
    spec = normalize_job(body)
    assert spec["launchStage"] == "BETA"
    assert spec["template"]["template"]["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"
    assert spec["template"]["template"]["maxRetries"] == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (job(timeout="10m"), "'job.template.template.timeout'"),
        (job(timeout="0s"), "out of range"),
        (job(maxRetries=11), "0..10"),
        (job(unknownField=1), 'Unknown name "unknownField"'),
        ({"template": {"template": {"containers": []}}}, "at least one container"),
        ({"labels": {"Team": "x"}, **job()}, "label Team='x' is not valid"),
        ({"annotations": {"run.googleapis.com/launch-stage": "BETA"}, **job()}, "reserved"),
    ],
)
def test_bad_jobs_name_the_field(body, needle):
    with pytest.raises(ApiError) as err:
        normalize_job(body)
    assert err.value.code == 400 and needle in err.value.message


def test_overrides_replace_args_merge_env_and_clear_args():
    template = normalize_job(job())["template"]
    template["template"]["containers"][0]["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    run = apply_overrides(
        template,
        {
            "containerOverrides": [{"args": ["x"], "env": [{"name": "B", "value": "3"}]}],
            "taskCount": 4,
            "timeout": "30s",
        },
    )
    container = run["template"]["containers"][0]
    assert container["args"] == ["x"] and container["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
    ]
    assert (run["taskCount"], run["template"]["timeout"]) == (4, "30s")
    assert template["template"]["containers"][0]["args"] == ["a"]  # the job itself is untouched
    cleared = apply_overrides(template, {"containerOverrides": [{"clearArgs": True}]})
    assert "args" not in cleared["template"]["containers"][0]
    with pytest.raises(ApiError, match="no container named 'sidecar'"):
        apply_overrides(template, {"containerOverrides": [{"name": "sidecar", "args": ["x"]}]})


@pytest.mark.parametrize(("text", "seconds"), [("600s", 600), ("1.5s", 1.5), ("0.000000001s", 1e-9)])
def test_durations_round_trip(text, seconds):
    assert parse_duration(text, "f") == pytest.approx(seconds)
    assert format_duration(parse_duration(text, "f")) == text
