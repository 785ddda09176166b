"""A Build request checked as Cloud Build checks it at builds.create, and its substitutions applied.

Substitutions: user keys are `_[A-Z0-9_]+` (or a source built-in a manual build may set); the
template's `$NAME`/`${NAME}` must each be a built-in or a given key, and each given key must be used
(both unless `options.substitutionOption: ALLOW_LOOSE`); `$$` is a literal `$`. With
`options.dynamicSubstitutions` the values themselves are expanded (built-ins and other keys) and the
bash-style operators `${K:-default}`, `${K:offset[:length]}`, `${K#x}`, `${K%x}`, `${K/a/b}`,
`${K//a/b}`, `${K^^}`, `${K,,}` apply (literal patterns).
"""

from __future__ import annotations

import re
from typing import Any

from localcloud.clock import parse_duration
from localcloud.conformance import document
from localcloud.services.run_errors import ApiError

USER_KEY = re.compile(r"^_[A-Z0-9_]+$")
# Built-ins a builds.create from a tarball has; the source ones are empty (no trigger, no repository).
SOURCE_BUILTINS = (
    "COMMIT_SHA",
    "SHORT_SHA",
    "REVISION_ID",
    "REPO_NAME",
    "REPO_FULL_NAME",
    "BRANCH_NAME",
    "TAG_NAME",
)
OTHER_BUILTINS = (
    "PROJECT_ID",
    "PROJECT_NUMBER",
    "BUILD_ID",
    "LOCATION",
    "TRIGGER_NAME",
    "TRIGGER_BUILD_CONFIG_PATH",
    "SERVICE_ACCOUNT_EMAIL",
    "SERVICE_ACCOUNT",
)
_REF = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|([A-Z_][A-Z0-9_]*))")
_OP = re.compile(
    r"^(?::-(?P<default>.*)|:(?P<offset>-?\d+)(?::(?P<length>\d+))?|(?P<strip>##?|%%?)(?P<pat>.*)"
    r"|(?P<all>//?)(?P<old>[^/]*)/(?P<new>.*)|(?P<case>\^\^|,,))$"
)
DEFAULT_TIMEOUT = "600s"


def invalid(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_ARGUMENT")


def builtins(build: dict[str, Any], project_number: str, location: str, account: str) -> dict[str, str]:
    values = dict.fromkeys(SOURCE_BUILTINS, "")
    values.update(
        PROJECT_ID=build["projectId"],
        PROJECT_NUMBER=project_number,
        BUILD_ID=build["id"],
        LOCATION=location,
        TRIGGER_NAME="",
        TRIGGER_BUILD_CONFIG_PATH="",
        SERVICE_ACCOUNT_EMAIL=account.rpartition("/")[2],
        SERVICE_ACCOUNT=account,
    )
    return values


def templates(build: dict[str, Any]) -> list[str]:
    """Every string of the build that substitutions apply to."""
    out: list[str] = []
    for step in build.get("steps", []):
        for field in ("name", "entrypoint", "dir", "script"):
            if isinstance(step.get(field), str):
                out.append(step[field])
        out += [a for a in step.get("args", []) if isinstance(a, str)]
        out += [e for e in step.get("env", []) if isinstance(e, str)]
    out += [i for i in build.get("images", []) if isinstance(i, str)]
    out += [t for t in build.get("tags", []) if isinstance(t, str)]
    out += [e for e in build.get("options", {}).get("env", []) if isinstance(e, str)]
    for field in ("logsBucket", "serviceAccount"):
        if isinstance(build.get(field), str):
            out.append(build[field])
    return out


def check(build: dict[str, Any]) -> None:
    """Refuse what builds.create refuses, naming the bad field (before anything is stored)."""
    steps = build.get("steps")
    if not isinstance(steps, list) or not steps:
        raise invalid("invalid build: invalid .steps field: a build must have at least one build step")
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not step.get("name"):
            raise invalid(f"invalid build: invalid .steps field: build step {i} must specify name")
        if step.get("script") and (step.get("args") or step.get("entrypoint")):
            raise invalid(
                f"invalid build: invalid .steps field: build step {i}: script cannot be used with args or "
                "entrypoint"
            )
        sid = step.get("id")
        if sid:
            if sid in seen:
                raise invalid(
                    f'invalid build: invalid .steps field: build step {i} has a duplicate id "{sid}"'
                )
            seen.add(sid)
        for wait in step.get("waitFor", []):
            if wait != "-" and wait not in seen:
                raise invalid(
                    f'invalid build: invalid .steps field: build step {i} depends on unknown step id "{wait}"'
                )
        if step.get("timeout"):
            _duration(step["timeout"], f".steps[{i}].timeout")
    if build.get("timeout"):
        _duration(build["timeout"], ".timeout")
    for key in build.get("substitutions", {}):
        if not USER_KEY.match(key) and key not in SOURCE_BUILTINS:
            raise invalid(
                "invalid build: invalid .substitutions field: substitution key "
                f'"{key}" does not respect format '
                '"^_[A-Z0-9_]+$" and is not an overridable built-in substitutions'
            )
    source = build.get("source") or {}
    others = sorted(set(source) - {"storageSource"})
    if others:
        raise invalid(f"localcloud Cloud Build fetches storageSource only, not {others[0]}")
    if source and not (source["storageSource"].get("bucket") and source["storageSource"].get("object")):
        raise invalid("invalid build: invalid .source.storageSource field: bucket and object are required")
    logging = build.get("options", {}).get("logging")
    if logging not in (
        None,
        "CLOUD_LOGGING_ONLY",
        "STACKDRIVER_ONLY",
        "NONE",
        "LEGACY",
        "GCS_ONLY",
        "LOGGING_UNSPECIFIED",
        0,
        1,
        2,
        3,
        4,
        5,
    ):
        raise invalid(f"invalid build: invalid .options.logging field: {logging!r}")


def _duration(value: Any, field: str) -> float:
    try:
        return parse_duration(str(value))
    except ValueError:
        raise invalid(
            f'invalid build: invalid {field} field: {value!r} is not a duration such as "600s"'
        ) from None


def timeout_s(value: Any) -> float:
    return parse_duration(str(value or DEFAULT_TIMEOUT))


def resolve(build: dict[str, Any], builtin_values: dict[str, str]) -> dict[str, str]:
    """The substitution values for this build (checked: Google's errors for a key the template uses but
    nothing defines, and for a given key the template never uses)."""
    options = build.get("options", {})
    dynamic = bool(options.get("dynamicSubstitutions"))
    loose = options.get("substitutionOption") in ("ALLOW_LOOSE", 1)
    given = dict(build.get("substitutions", {}))
    values = {**builtin_values, **given}
    used: set[str] = set()
    texts = templates(build)
    if dynamic:
        expanded: dict[str, str] = {}
        for key, value in given.items():
            refs = _refs(value)
            used |= refs
            expanded[key] = _expand(value, {**values, **expanded}, dynamic=True)
        values.update(expanded)
    problems, unknown = [], []
    for text in texts:
        for name in sorted(_refs(text)):
            used.add(name)
            if name in values:
                continue
            if name.startswith("_"):
                if not loose:
                    problems.append(f'key in the template "{name}" is not matched in the substitution data')
            else:
                unknown.append(f'key in the template "{name}" is not a valid built-in substitution')
    if unknown or problems:
        raise invalid(
            "generic::invalid_argument: invalid value for 'build.substitutions': "
            + ";".join(unknown + problems)
        )
    if not loose:
        unused = [
            f'key "{k}" in the substitution data is not matched in the template'
            for k in given
            if k not in used
        ]
        if unused:
            raise invalid("generic::invalid_argument: " + ";".join(unused))
    return values


def _refs(text: str) -> set[str]:
    return {m.group(2) or m.group(4) for m in _REF.finditer(text) if m.group(1) != "$"}


def _expand(text: str, values: dict[str, str], dynamic: bool) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name = match.group(2) or match.group(4)
        value = values.get(name, "")
        op = match.group(3) or ""
        if not op:
            return value
        if not dynamic:
            return match.group(0)
        return _operator(value, op)

    return _REF.sub(one, text)


def _operator(value: str, op: str) -> str:
    m = _OP.match(op)
    if m is None:
        raise invalid(f"invalid bash-style substitution operator {op!r}")
    if m["default"] is not None:
        return value or m["default"]
    if m["offset"] is not None:
        start = int(m["offset"])
        out = value[start:]
        return out[: int(m["length"])] if m["length"] is not None else out
    if m["strip"]:
        pat = m["pat"]
        if m["strip"].startswith("#"):
            return value[len(pat) :] if pat and value.startswith(pat) else value
        return value[: -len(pat)] if pat and value.endswith(pat) else value
    if m["all"]:
        count = -1 if m["all"] == "//" else 1
        return value.replace(m["old"], m["new"], count) if m["old"] else value
    return value.upper() if m["case"] == "^^" else value.lower()


def apply(build: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The build with its substitutions applied where Cloud Build applies them."""
    dynamic = bool(build.get("options", {}).get("dynamicSubstitutions"))

    def sub(text: Any) -> Any:
        return _expand(text, values, dynamic) if isinstance(text, str) else text

    out = dict(build)
    out["steps"] = []
    for step in build.get("steps", []):
        step = dict(step)
        for field in ("name", "entrypoint", "dir", "script"):
            if field in step:
                step[field] = sub(step[field])
        step["args"] = [sub(a) for a in step.get("args", [])]
        step["env"] = [sub(e) for e in step.get("env", [])]
        out["steps"].append(step)
    out["images"] = [sub(i) for i in build.get("images", [])]
    options = dict(build.get("options", {}))
    options["env"] = [sub(e) for e in options.get("env", [])]
    out["options"] = options
    return out


def enum_names(api: str, schema_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A request body with integer enums (as the GAPIC REST clients send them) turned into names."""
    schemas = document(api).schemas

    def walk(name: str, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        props = schemas.get(name, {}).get("properties", {})
        out = {}
        for key, item in value.items():
            prop = props.get(key, {})
            enum = prop.get("enum")
            if enum and isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(enum):
                item = enum[item]
            elif "$ref" in prop:
                item = walk(prop["$ref"], item)
            elif prop.get("type") == "array" and "$ref" in prop.get("items", {}) and isinstance(item, list):
                item = [walk(prop["items"]["$ref"], i) for i in item]
            out[key] = item
        return out

    return walk(schema_name, body)
