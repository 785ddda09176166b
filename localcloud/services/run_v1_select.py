"""Kubernetes label selectors, as Cloud Run v1 lists take them (`labelSelector`)."""

from __future__ import annotations

import re

from localcloud.services.run_errors import ApiError

_REQUIREMENT = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)|(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?\s*$"
)


def parse_selector(text: str | None) -> list[tuple[str, str, set[str]]]:
    """A Kubernetes label selector (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
    joined by commas) as (key, operator, values); 400 for anything else."""
    requirements: list[tuple[str, str, set[str]]] = []
    if not text or not text.strip():
        return requirements
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    for part in parts:
        match = _REQUIREMENT.match(part)
        if not match or (match["neg"] and (match["op"] or match["set"])):
            raise ApiError(400, f"Invalid labelSelector {text!r}: cannot parse {part.strip()!r}")
        if match["op"]:
            op = "!=" if match["op"] == "!=" else "="
            requirements.append((match["key"], op, {match["value"]}))
        elif match["set"]:
            values = {v.strip() for v in match["values"].split(",") if v.strip()}
            requirements.append((match["key"], match["set"], values))
        else:
            requirements.append((match["key"], "!exists" if match["neg"] else "exists", set()))
    return requirements


def selector_matches(requirements: list[tuple[str, str, set[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key)
        ok = {
            "=": present and value in values,
            "in": present and value in values,
            "!=": not present or value not in values,
            "notin": not present or value not in values,
            "exists": present,
            "!exists": not present,
        }[op]
        if not ok:
            return False
    return True
