"""Cloud Run Admin API v2 resource shapes: input validation, server defaults, proto3 JSON output.

Server defaults filled in on jobs, as Cloud Run v2 reports them back:
  launchStage "GA"; template.taskCount 1; template.template.maxRetries 3 (kept when 0 is sent:
  it is a proto3 `optional` field); template.template.timeout "600s"; each container's
  resources.limits {"cpu": "1000m", "memory": "512Mi"} (a missing key of the two is filled).
Not filled (left as sent): parallelism (0 = as many as possible, omitted), serviceAccount (Cloud
Run would put the project's default compute account, whose project number localcloud has no
notion of), executionEnvironment (omitted when unspecified).
"""

from __future__ import annotations

import re
from typing import Any

from localcloud.services.run_errors import ApiError

LAUNCH_STAGES = {
    0: "LAUNCH_STAGE_UNSPECIFIED",
    1: "EARLY_ACCESS",
    2: "ALPHA",
    3: "BETA",
    4: "GA",
    5: "DEPRECATED",
    6: "UNIMPLEMENTED",
    7: "PRELAUNCH",
}
EXECUTION_ENVIRONMENTS = {
    0: "EXECUTION_ENVIRONMENT_UNSPECIFIED",
    1: "EXECUTION_ENVIRONMENT_GEN1",
    2: "EXECUTION_ENVIRONMENT_GEN2",
}
RESERVED_KEY_PREFIXES = (
    "run.googleapis.com/",
    "cloud.googleapis.com/",
    "serving.knative.dev/",
    "autoscaling.knative.dev/",
)
DEFAULT_LIMITS = {"cpu": "1000m", "memory": "512Mi"}
MAX_TIMEOUT_S = 7 * 24 * 3600  # 168 h, Cloud Run's task timeout ceiling

# Every field a client may send per message (camelCase); output-only ones are accepted and ignored.
_FIELDS = {
    "job": {
        "name", "uid", "generation", "labels", "annotations", "createTime", "updateTime", "deleteTime",
        "expireTime", "creator", "lastModifier", "client", "clientVersion", "launchStage",
        "binaryAuthorization", "template", "observedGeneration", "terminalCondition", "conditions",
        "executionCount", "latestCreatedExecution", "reconciling", "satisfiesPzs", "startExecutionToken",
        "runExecutionToken", "etag",
    },
    "template": {"labels", "annotations", "parallelism", "taskCount", "template"},
    "template.template": {
        "containers", "volumes", "maxRetries", "timeout", "serviceAccount", "executionEnvironment",
        "encryptionKey", "vpcAccess", "nodeSelector", "gpuZonalRedundancyDisabled",
    },
    "container": {
        "name", "image", "sourceCode", "command", "args", "env", "resources", "ports", "volumeMounts",
        "workingDir", "livenessProbe", "startupProbe", "readinessProbe", "dependsOn", "baseImageUri",
        "buildInfo",
    },
    "resources": {"limits", "cpuIdle", "startupCpuBoost"},
    "env": {"name", "value", "valueSource"},
    "valueSource": {"secretKeyRef"},
    "secretKeyRef": {"secret", "version"},
    "overrides": {"containerOverrides", "taskCount", "timeout"},
    "containerOverride": {"name", "args", "env", "clearArgs"},
}  # fmt: skip

_DURATION = re.compile(r"^(\d+)(?:\.(\d{1,9}))?s$")
_CPU = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_JOB_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
RESERVED_ENV = {"CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT",
                "CLOUD_RUN_TASK_COUNT"}  # fmt: skip


def bad(field: str, problem: str) -> ApiError:
    return ApiError(400, f"Invalid value at '{field}': {problem}")


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _message(value: Any, kind: str, field: str) -> dict[str, Any]:
    """A JSON object for a proto message, keys normalised to camelCase (proto3 JSON accepts both)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(field, f"expected an object, got {type(value).__name__}")
    out = {}
    for key, item in value.items():
        name = _camel(key) if "_" in key else key
        if name not in _FIELDS[kind]:
            raise ApiError(
                400, f"Invalid JSON payload received. Unknown name \"{key}\" at '{field}': Cannot find field."
            )
        out[name] = item
    return out


def parse_int(value: Any, field: str, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    """An int32/int64 from proto3 JSON (a number, or a decimal string)."""
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise bad(field, f"expected an integer, got {value!r}")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except ValueError:
        number = None
    if number is None:
        raise bad(field, f"expected an integer, got {value!r}")
    if not minimum <= number <= maximum:
        raise bad(field, f"{number} is out of range; valid: {minimum}..{maximum}")
    return number


def parse_duration(value: Any, field: str) -> float:
    """Seconds of a proto3 JSON Duration ("600s", "1.5s")."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise bad(field, f"{value!r} is not a duration; valid: seconds with an 's' suffix, e.g. \"600s\"")
    return int(match.group(1)) + (int(match.group(2).ljust(9, "0")) / 1e9 if match.group(2) else 0.0)


def format_duration(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0") + "s"


def _enum(value: Any, names: dict[int, str], field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value in names:
        return names[value]
    if isinstance(value, str) and value in names.values():
        return value
    raise bad(field, f"{value!r} is not one of {', '.join(names.values())}")


def _string_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad(field, "expected a list of strings")
    return list(value)


def _key_map(value: Any, field: str, *, labels: bool) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad(field, "expected a map of strings")
    for key, item in value.items():
        if key.startswith(RESERVED_KEY_PREFIXES):
            raise bad(
                f"{field}[{key}]",
                "keys in the run.googleapis.com, cloud.googleapis.com, serving.knative.dev and "
                "autoscaling.knative.dev namespaces are reserved",
            )
        if labels and not (_LABEL_KEY.match(key) and _LABEL_VALUE.match(item)):
            raise bad(
                f"{field}[{key}]",
                f"label {key}={item!r} is not valid; keys start with a lowercase letter and hold up to 63 "
                "lowercase letters, digits, '_' or '-'; values likewise (may be empty)",
            )
    return dict(value)


def validate_job_id(job_id: str | None) -> str:
    if not job_id:
        raise ApiError(400, "jobId is required (query parameter of jobs.create)")
    if not _JOB_ID.match(job_id):
        raise ApiError(
            400,
            f"Invalid value for jobId {job_id!r}: use up to 63 lowercase letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen",
        )
    return job_id


def env_list(value: Any, field: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(field, "expected a list of {name, value | valueSource}")
    out = []
    for i, raw in enumerate(value):
        where = f"{field}[{i}]"
        item = _message(raw, "env", where)
        name = item.get("name")
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise bad(f"{where}.name", f"{name!r} is not a valid environment variable name")
        if name in RESERVED_ENV:
            raise bad(f"{where}.name", f"{name} is reserved and set by Cloud Run")
        entry: dict[str, Any] = {"name": name}
        if "valueSource" in item:
            if "value" in item:
                raise bad(where, "set either value or valueSource, not both")
            source = _message(item["valueSource"], "valueSource", f"{where}.valueSource")
            ref = _message(source.get("secretKeyRef"), "secretKeyRef", f"{where}.valueSource.secretKeyRef")
            secret = ref.get("secret")
            if not isinstance(secret, str) or not secret:
                raise bad(
                    f"{where}.valueSource.secretKeyRef.secret",
                    "a secret ID or projects/P/secrets/S is required",
                )
            version = ref.get("version", "latest")
            if not isinstance(version, str) or not version:
                raise bad(f"{where}.valueSource.secretKeyRef.version", "'latest' or a version number")
            entry["valueSource"] = {"secretKeyRef": {"secret": secret, "version": version}}
        else:
            item_value = item.get("value", "")
            if not isinstance(item_value, str):
                raise bad(f"{where}.value", "expected a string")
            if item_value:
                entry["value"] = item_value
        out.append(entry)
    return out


def _container(raw: Any, field: str) -> dict[str, Any]:
    item = _message(raw, "container", field)
    image = item.get("image")
    if not isinstance(image, str) or not image.strip():
        raise bad(f"{field}.image", "a container image is required (e.g. us-docker.pkg.dev/p/repo/jobs:tag)")
    out: dict[str, Any] = {k: v for k, v in item.items() if k not in ("command", "args", "env", "resources")}
    if item.get("name", "") == "":
        out.pop("name", None)
    for key in ("command", "args"):
        values = _string_list(item.get(key), f"{field}.{key}")
        if values:
            out[key] = values
    env = env_list(item.get("env"), f"{field}.env")
    if env:
        out["env"] = env
    resources = _message(item.get("resources"), "resources", f"{field}.resources")
    limits = resources.get("limits") or {}
    if not isinstance(limits, dict):
        raise bad(f"{field}.resources.limits", "expected a map")
    for key, value in limits.items():
        where = f"{field}.resources.limits[{key}]"
        if key == "cpu" and not (isinstance(value, str) and _CPU.match(value)):
            raise bad(where, f'{value!r} is not a CPU quantity; valid: e.g. "1", "2", "1000m"')
        if key == "memory" and not (isinstance(value, str) and _MEMORY.match(value)):
            raise bad(where, f'{value!r} is not a memory quantity; valid: e.g. "512Mi", "2Gi"')
        if key not in ("cpu", "memory", "nvidia.com/gpu"):
            raise bad(where, "unknown resource; valid: cpu, memory, nvidia.com/gpu")
    resources["limits"] = {**DEFAULT_LIMITS, **limits}
    out["resources"] = resources
    return out


def normalize_job(body: Any) -> dict[str, Any]:
    """The user-settable part of a Job, validated, with the server defaults filled in."""
    job = _message(body, "job", "job")
    out: dict[str, Any] = {}
    labels = _key_map(job.get("labels"), "job.labels", labels=True)
    annotations = _key_map(job.get("annotations"), "job.annotations", labels=False)
    if labels:
        out["labels"] = labels
    if annotations:
        out["annotations"] = annotations
    for key in ("client", "clientVersion", "binaryAuthorization"):
        if job.get(key):
            out[key] = job[key]
    stage = _enum(job.get("launchStage", 0), LAUNCH_STAGES, "job.launchStage")
    out["launchStage"] = "GA" if stage == "LAUNCH_STAGE_UNSPECIFIED" else stage
    if not job.get("template"):
        raise bad("job.template", "an ExecutionTemplate is required")
    template = _message(job["template"], "template", "job.template")
    exec_template: dict[str, Any] = {}
    for key in ("labels", "annotations"):
        values = _key_map(template.get(key), f"job.template.{key}", labels=key == "labels")
        if values:
            exec_template[key] = values
    parallelism = parse_int(template.get("parallelism", 0), "job.template.parallelism", maximum=10000)
    if parallelism:
        exec_template["parallelism"] = parallelism
    exec_template["taskCount"] = parse_int(
        template.get("taskCount", 0) or 1, "job.template.taskCount", minimum=1, maximum=10000
    )
    if not template.get("template"):
        raise bad("job.template.template", "a TaskTemplate with at least one container is required")
    exec_template["template"] = normalize_task_template(template["template"], "job.template.template")
    out["template"] = exec_template
    return out


def normalize_task_template(raw: Any, field: str) -> dict[str, Any]:
    task = _message(raw, "template.template", field)
    containers = task.get("containers")
    if not isinstance(containers, list) or not containers:
        raise bad(f"{field}.containers", "at least one container is required")
    if len(containers) > 10:
        raise bad(f"{field}.containers", f"{len(containers)} containers; at most 10 are allowed")
    out: dict[str, Any] = {
        "containers": [_container(c, f"{field}.containers[{i}]") for i, c in enumerate(containers)]
    }
    for key in ("volumes", "vpcAccess", "encryptionKey", "nodeSelector", "gpuZonalRedundancyDisabled"):
        if task.get(key):
            out[key] = task[key]
    out["maxRetries"] = parse_int(task.get("maxRetries", 3), f"{field}.maxRetries", maximum=10)
    seconds = parse_duration(task.get("timeout", "600s"), f"{field}.timeout")
    if not 0 < seconds <= MAX_TIMEOUT_S:
        raise bad(
            f"{field}.timeout", f"{task.get('timeout')} is out of range; valid: more than 0s, up to 604800s"
        )
    out["timeout"] = format_duration(seconds)
    account = task.get("serviceAccount", "")
    if not isinstance(account, str):
        raise bad(f"{field}.serviceAccount", "expected a service account email")
    if account:
        out["serviceAccount"] = account
    environment = _enum(
        task.get("executionEnvironment", 0), EXECUTION_ENVIRONMENTS, f"{field}.executionEnvironment"
    )
    if environment != "EXECUTION_ENVIRONMENT_UNSPECIFIED":
        out["executionEnvironment"] = environment
    return out


def apply_overrides(exec_template: dict[str, Any], raw: Any) -> dict[str, Any]:
    """The ExecutionTemplate of one run: the job's, with RunJobRequest.overrides applied."""
    import copy

    result = copy.deepcopy(exec_template)
    overrides = _message(raw, "overrides", "overrides")
    task = result["template"]
    containers = task["containers"]
    for i, raw_override in enumerate(overrides.get("containerOverrides") or []):
        where = f"overrides.containerOverrides[{i}]"
        override = _message(raw_override, "containerOverride", where)
        name = override.get("name", "")
        matches = [c for c in containers if c.get("name", "") == name] if name else containers[:1]
        if not matches:
            names = ", ".join(repr(c.get("name", "")) for c in containers)
            raise bad(f"{where}.name", f"no container named {name!r}; the job's containers: {names}")
        container = matches[0]
        args = _string_list(override.get("args"), f"{where}.args")
        if override.get("clearArgs"):
            if args:
                raise bad(where, "clearArgs and args are mutually exclusive")
            container.pop("args", None)
        elif args:
            container["args"] = args
        env = env_list(override.get("env"), f"{where}.env")
        if env:
            merged = {item["name"]: item for item in container.get("env", [])}
            merged.update({item["name"]: item for item in env})
            container["env"] = list(merged.values())
    if "taskCount" in overrides and overrides["taskCount"] not in (0, "0"):
        result["taskCount"] = parse_int(
            overrides["taskCount"], "overrides.taskCount", minimum=1, maximum=10000
        )
    if overrides.get("timeout"):
        seconds = parse_duration(overrides["timeout"], "overrides.timeout")
        if not 0 < seconds <= MAX_TIMEOUT_S:
            raise bad(
                "overrides.timeout",
                f"{overrides['timeout']} is out of range; valid: more than 0s, up to 604800s",
            )
        task["timeout"] = format_duration(seconds)
    return result
