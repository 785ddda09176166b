"""The job catalog (catalog/jobs.yml): loading, validation and name resolution.

Every error is one line that names the entry and the field, raised before anything
is sent to a cloud. The Ansible side calls the same code through the
`cloudact.gcp.catalog` filter, so both agree on what a valid catalog is.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils import timefmt
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError as ToolkitError
from ansible_collections.cloudact.gcp.plugins.module_utils.libraries import (
    HAS_CRONSIM,
    HAS_YAML,
    CronSim,
    CronSimError,
    require,
    yaml,
)

CATALOG_FILE = Path("catalog/jobs.yml")
CATEGORIES = ("manual", "daily", "monthly")
SCHEDULED = ("daily", "monthly")
NAME_PREFIX = "cloudact-"
TRIGGER_SUFFIX = "-trigger"

_JOB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_SHORTCUT = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_DURATION = re.compile(r"^([1-9][0-9]*)([smh])$")
_MEMORY = re.compile(r"^([1-9][0-9]*)(Mi|Gi)$")
_CPU = re.compile(r"^([1-9][0-9]*|[1-9][0-9]*000m)$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
MAX_TIMEOUT_S = 24 * 3600
MEMORY_MI = (512, 32 * 1024)
# Env the converge sets on every job; the catalog must not redefine them.
RESERVED_ENV = frozenset(
    {
        "GCP_PROJECT_ID",
        "ENVIRONMENT",
        "API_SERVICE_URL",
        "API_ENDPOINT_PATH",
        "CLOUDACT_LEDGER_DATASET",
        "CLOUDACT_ENV",
    }
)

REQUIRED = ("shortcut", "name", "script", "category", "description", "timeout")
FIELDS = frozenset(
    {
        *REQUIRED,
        "schedule",
        "time_zone",
        "endpoint",
        "cpu",
        "memory",
        "max_retries",
        "secrets",
        "env",
        "release",
        "depends_on",
        "aliases",
        "datasets",
    }
)
# BigQuery dataset access a job's runtime account gets on each dataset it lists (access converge).
DATASET_ACCESS = ("READER", "WRITER")


@dataclass(frozen=True)
class Job:
    shortcut: str
    name: str
    script: str
    category: str
    description: str
    timeout: str
    timeout_seconds: int
    cpu: str
    memory: str
    max_retries: int
    time_zone: str
    schedule: str | None = None
    endpoint: str | None = None
    secrets: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    release_order: int | None = None
    depends_on: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    datasets: dict[str, str] = field(default_factory=dict)

    @property
    def scheduled(self) -> bool:
        return self.schedule is not None

    @property
    def trigger(self) -> str | None:
        return self.name + TRIGGER_SUFFIX if self.scheduled else None

    @property
    def module(self) -> str:
        """The script as the module the job's command runs (`python -m jobs.daily.alerts_daily`)."""
        return self.script.removesuffix(".py").replace("/", ".")

    def as_dict(self) -> dict[str, Any]:
        """Plain data for Ansible: the entry merged over the defaults, plus derived fields."""
        return {
            "shortcut": self.shortcut,
            "name": self.name,
            "script": self.script,
            "module": self.module,
            "category": self.category,
            "description": self.description,
            "timeout": self.timeout,
            "timeout_seconds": self.timeout_seconds,
            "cpu": self.cpu,
            "memory": self.memory,
            "max_retries": self.max_retries,
            "time_zone": self.time_zone,
            "schedule": self.schedule,
            "trigger": self.trigger,
            "endpoint": self.endpoint,
            "secrets": list(self.secrets),
            "env": dict(self.env),
            "release_order": self.release_order,
            "depends_on": list(self.depends_on),
            "aliases": list(self.aliases),
            "datasets": dict(self.datasets),
        }


@dataclass(frozen=True)
class Catalog:
    jobs: tuple[Job, ...]
    legacy_jobs: tuple[str, ...]
    legacy_triggers: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """{jobs: [...], legacy_jobs: [...], legacy_triggers: [...]}: what the roles read."""
        return {
            "jobs": [job.as_dict() for job in self.jobs],
            "legacy_jobs": list(self.legacy_jobs),
            "legacy_triggers": list(self.legacy_triggers),
        }

    def by_shortcut(self, shortcut: str) -> Job:
        return next(j for j in self.jobs if j.shortcut == shortcut)

    @property
    def release_sequence(self) -> list[Job]:
        return sorted((j for j in self.jobs if j.release_order is not None), key=lambda j: j.release_order)

    @property
    def scheduled(self) -> list[Job]:
        return [j for j in self.jobs if j.scheduled]

    def words(self) -> dict[str, Job]:
        """Every word `resolve` accepts, mapped to its job."""
        words: dict[str, Job] = {}
        for job in self.jobs:
            for word in (job.shortcut, job.name, job.name.removeprefix(NAME_PREFIX), *job.aliases):
                words[word] = job
        return words

    def resolve(self, word: str) -> Job:
        """A user's word (shortcut, alias, full name with or without cloudact-) -> the job."""
        key = (word or "").strip().lower()
        words = self.words()
        if key in words:
            return words[key]
        valid = ", ".join(j.shortcut for j in self.jobs)
        close = difflib.get_close_matches(key, list(words), n=1, cutoff=0.6)
        hint = f"did you mean {words[close[0]].shortcut!r}? " if close else ""
        raise ToolkitError(f"unknown job {word!r}: {hint}valid jobs are {valid} (or their full names)")


def from_dict(data: dict[str, Any]) -> Catalog:
    """The Catalog of a validated catalog's plain data (`Catalog.as_dict`), as a play's environment
    carries it: no second validation, nothing read from disk."""
    fields = {f.name for f in Job.__dataclass_fields__.values()}
    tuples = ("secrets", "depends_on", "aliases")
    jobs = tuple(
        Job(**{k: (tuple(v) if k in tuples else v) for k, v in entry.items() if k in fields})
        for entry in data.get("jobs") or []
    )
    return Catalog(jobs, tuple(data.get("legacy_jobs") or ()), tuple(data.get("legacy_triggers") or ()))


def duration_seconds(value: str) -> int:
    """The catalog's stricter form (a whole number and a unit), converted by timefmt like every duration."""
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration like 30s, 15m or 1h")
    return int(timefmt.duration_seconds(value))


def _check_cron(expr: str) -> None:
    require("cronsim", HAS_CRONSIM)
    if len(expr.split()) != 5:
        raise ValueError(
            f"invalid cron expression {expr!r}: expected 5 fields (minute hour day month weekday)"
        )
    try:
        CronSim(expr, datetime(2026, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from None


class _Checker:
    """Validates one job entry; `fail` names the entry and the field."""

    def __init__(self, source: str, index: int, entry: dict[str, Any]):
        self.source = source
        label = entry.get("shortcut") or entry.get("name") or "?"
        self.where = f"{source}: jobs[{index}] ({label})"

    def fail(self, fld: str, message: str) -> ToolkitError:
        return ToolkitError(f"{self.where} field {fld!r}: {message}")


def _validate_entry(
    index: int, raw: Any, defaults: dict[str, Any], source: str, root: Path, secrets: set[str] | None
) -> Job:
    if not isinstance(raw, dict):
        raise ToolkitError(f"{source}: jobs[{index}]: expected a mapping, got {type(raw).__name__}")
    c = _Checker(source, index, raw)
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise c.fail(unknown[0], f"unknown field; valid fields are {', '.join(sorted(FIELDS))}")
    for name in REQUIRED:
        if raw.get(name) in (None, ""):
            raise c.fail(name, "is required")
    e = {**defaults, **raw}
    for name in ("cpu", "memory", "time_zone", "max_retries"):
        if e.get(name) in (None, ""):
            raise c.fail(name, "is required (in the entry, or in the catalog's job_defaults)")
    for name in (
        "shortcut",
        "name",
        "script",
        "category",
        "description",
        "timeout",
        "cpu",
        "memory",
        "time_zone",
    ):
        if not isinstance(e[name], str):
            raise c.fail(name, f"must be a string, got {e[name]!r}")

    if not _SHORTCUT.match(e["shortcut"]):
        raise c.fail("shortcut", f"{e['shortcut']!r} must be lowercase letters, digits and dashes")
    if not (_JOB_NAME.match(e["name"]) and e["name"].startswith(NAME_PREFIX)):
        raise c.fail(
            "name",
            f"{e['name']!r} must start with {NAME_PREFIX!r}, use a-z 0-9 -, and be at most 63 characters",
        )
    if len(e["name"] + TRIGGER_SUFFIX) > 500:
        raise c.fail("name", "too long for its trigger name")
    if not (root / e["script"]).is_file():
        raise c.fail("script", f"{e['script']!r} does not exist")
    if e["category"] not in CATEGORIES:
        raise c.fail("category", f"{e['category']!r} is not one of {', '.join(CATEGORIES)}")

    schedule = e.get("schedule")
    if e["category"] in SCHEDULED:
        if not isinstance(schedule, str) or not schedule.strip():
            raise c.fail("schedule", f"a {e['category']} job needs a cron schedule")
        try:
            _check_cron(schedule)
        except ValueError as exc:
            raise c.fail("schedule", str(exc)) from None
    elif schedule is not None:
        raise c.fail("schedule", "a manual job has no schedule (it runs by hand or in the release)")
    try:
        zoneinfo.ZoneInfo(e["time_zone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise c.fail(
            "time_zone", f"{e['time_zone']!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)"
        ) from None

    try:
        timeout_s = duration_seconds(e["timeout"])
    except ValueError as exc:
        raise c.fail("timeout", str(exc)) from None
    if timeout_s > MAX_TIMEOUT_S:
        raise c.fail("timeout", f"{e['timeout']!r} exceeds the Cloud Run task limit of 24h")
    if not _CPU.match(e["cpu"]):
        raise c.fail("cpu", f'{e["cpu"]!r} is not a CPU limit like "1", "2" or "4000m"')
    mem = _MEMORY.match(e["memory"])
    if not mem:
        raise c.fail("memory", f"{e['memory']!r} is not a memory limit like 512Mi or 2Gi")
    mebi = int(mem.group(1)) * (1024 if mem.group(2) == "Gi" else 1)
    if not MEMORY_MI[0] <= mebi <= MEMORY_MI[1]:
        raise c.fail("memory", f"{e['memory']!r} is outside Cloud Run's 512Mi..32Gi")
    retries = e["max_retries"]
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise c.fail("max_retries", f"{retries!r} must be an integer from 0 to 10")

    endpoint = e.get("endpoint")
    if endpoint is not None and not (isinstance(endpoint, str) and endpoint.startswith("/")):
        raise c.fail("endpoint", f"{endpoint!r} must be a path starting with /")

    job_secrets = e.get("secrets") or []
    if not isinstance(job_secrets, list) or not all(isinstance(s, str) for s in job_secrets):
        raise c.fail("secrets", "must be a list of secret keys")
    if secrets is not None:
        for key in job_secrets:
            if key not in secrets:
                raise c.fail(
                    "secrets",
                    f"{key!r} is not defined in the inventory's cloudact_secrets "
                    f"({', '.join(sorted(secrets))})",
                )

    env = e.get("env") or {}
    if not isinstance(env, dict):
        raise c.fail("env", "must be a mapping of NAME: value")
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise c.fail("env", f"{key!r} is not an environment variable name")
        if key in RESERVED_ENV:
            raise c.fail("env", f"{key} is set by the converge from the inventory; remove it here")
        if not isinstance(value, str):
            raise c.fail("env", f"{key}: value {value!r} must be a string (quote it)")

    release = e.get("release")
    order = None
    if release is not None:
        order = release.get("order") if isinstance(release, dict) else None
        if not isinstance(order, int) or isinstance(order, bool) or order < 1:
            raise c.fail("release", "must be {order: <positive integer>}")

    lists = {}
    for name in ("depends_on", "aliases"):
        value = e.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise c.fail(name, "must be a list of names")
        lists[name] = tuple(value)

    datasets = e.get("datasets") or {}
    if not isinstance(datasets, dict):
        raise c.fail("datasets", "must be a mapping of dataset: READER | WRITER")
    for dataset, access in datasets.items():
        if access not in DATASET_ACCESS:
            raise c.fail(
                "datasets", f"{dataset}: access {access!r} is not one of {', '.join(DATASET_ACCESS)}"
            )

    return Job(
        shortcut=e["shortcut"],
        name=e["name"],
        script=e["script"],
        category=e["category"],
        description=e["description"].strip(),
        timeout=e["timeout"],
        timeout_seconds=timeout_s,
        cpu=e["cpu"],
        memory=e["memory"],
        max_retries=retries,
        time_zone=e["time_zone"],
        schedule=schedule,
        endpoint=endpoint,
        secrets=tuple(job_secrets),
        env=dict(env),
        release_order=order,
        depends_on=lists["depends_on"],
        aliases=lists["aliases"],
        datasets={str(k): str(v) for k, v in datasets.items()},
    )


def _check_relations(jobs: list[Job], source: str) -> None:
    # Every word `resolve` accepts must point at exactly one job.
    owner: dict[str, int] = {}
    for index, job in enumerate(jobs):
        for fld, words in (
            ("shortcut", [job.shortcut]),
            ("name", [job.name, job.name.removeprefix(NAME_PREFIX)]),
            ("aliases", list(job.aliases)),
        ):
            for word in words:
                other = owner.setdefault(word, index)
                if other == index:
                    continue
                what = "alias" if fld == "aliases" else fld
                raise ToolkitError(
                    f"{source}: job {job.shortcut!r} field {fld!r}: {what} {word!r} collides with job "
                    f"{jobs[other].shortcut!r} (index {other})"
                    if fld == "aliases"
                    else f"{source}: job {job.shortcut!r} field {fld!r}: duplicate {what} {word!r}, "
                    f"already used by job {jobs[other].shortcut!r} (index {other})"
                )

    shortcuts = {j.shortcut for j in jobs}
    orders: dict[int, str] = {}
    for job in jobs:
        for dep in job.depends_on:
            if dep not in shortcuts:
                raise ToolkitError(f"{source}: job {job.shortcut!r} field 'depends_on': unknown job {dep!r}")
            if dep == job.shortcut:
                raise ToolkitError(
                    f"{source}: job {job.shortcut!r} field 'depends_on': a job cannot depend on itself"
                )
        if job.release_order is not None:
            if job.release_order in orders:
                raise ToolkitError(
                    f"{source}: job {job.shortcut!r} field 'release': order {job.release_order} "
                    f"is already job {orders[job.release_order]!r}'s"
                )
            orders[job.release_order] = job.shortcut
    # A dependency cycle would make the release impossible to order.
    deps = {j.shortcut: set(j.depends_on) for j in jobs}
    done: set[str] = set()
    while deps:
        ready = [s for s, d in deps.items() if d <= done]
        if not ready:
            raise ToolkitError(
                f"{source}: field 'depends_on': dependency cycle among {', '.join(sorted(deps))}"
            )
        for s in ready:
            done.add(s)
            del deps[s]


def parse_catalog(
    data: Any, source: str = str(CATALOG_FILE), *, root: Path, secrets: set[str] | None = None
) -> Catalog:
    """Validate catalog data; `secrets` is the inventory's set of secret keys (None: not checked)."""
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list) or not data["jobs"]:
        raise ToolkitError(f"{source}: expected a mapping with a non-empty 'jobs' list")
    unknown = sorted(set(data) - {"job_defaults", "jobs", "legacy"})
    if unknown:
        raise ToolkitError(
            f"{source}: unknown top-level key {unknown[0]!r}; valid keys are job_defaults, jobs, legacy"
        )
    defaults = data.get("job_defaults") or {}
    if not isinstance(defaults, dict):
        raise ToolkitError(f"{source}: 'job_defaults' must be a mapping")
    bad = sorted(set(defaults) - FIELDS)
    if bad:
        raise ToolkitError(f"{source}: job_defaults field {bad[0]!r}: unknown field")
    # The defaults are the catalog's own (job_defaults), defined there once; an entry lacking a value
    # neither it nor job_defaults gives is named below.
    jobs = [_validate_entry(i, raw, defaults, source, root, secrets) for i, raw in enumerate(data["jobs"])]
    _check_relations(jobs, source)

    legacy = data.get("legacy") or {}
    if not isinstance(legacy, dict) or set(legacy) - {"jobs", "triggers"}:
        raise ToolkitError(f"{source}: 'legacy' must be a mapping with 'jobs' and 'triggers' lists")
    names = {j.name for j in jobs} | {j.trigger for j in jobs if j.trigger}
    out: dict[str, tuple[str, ...]] = {}
    for kind in ("jobs", "triggers"):
        values = legacy.get(kind) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ToolkitError(f"{source}: legacy field {kind!r}: must be a list of names")
        for value in values:
            if value in names:
                raise ToolkitError(
                    f"{source}: legacy field {kind!r}: {value!r} is a current catalog name; "
                    "pruning it would delete it"
                )
        out[kind] = tuple(values)
    return Catalog(jobs=tuple(jobs), legacy_jobs=out["jobs"], legacy_triggers=out["triggers"])


def load_catalog(path: Path | None = None, *, root: Path, secrets: set[str] | None = None) -> Catalog:
    path = path or root / CATALOG_FILE
    require("PyYAML", HAS_YAML)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read the catalog: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ToolkitError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        source = str(path.relative_to(root))
    except ValueError:
        source = str(path)
    return parse_catalog(data, source=source, root=root, secrets=secrets)
