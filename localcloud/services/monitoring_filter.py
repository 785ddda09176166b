"""Cloud Monitoring's two filter languages, and its orderBy.

One parser serves both, as their syntax overlaps:
- the sorting-and-filtering language of alertPolicies/notificationChannels/alerts `list`
  (https://cloud.google.com/monitoring/api/v3/sorting-and-filtering): field references in snake_case
  (`display_name`, `user_label.team`, `conditions.display_name`, `display_name.size`), `=`, `!=`, `<`,
  `<=`, `>`, `>=`, `:` (has: a substring, case-insensitive; `field:*` is presence), `NOT`, `AND`, `OR`,
  juxtaposition as AND, parentheses;
- the monitoring filters of timeSeries and metricDescriptors (https://cloud.google.com/monitoring/api/v3/filters):
  `metric.type`, `metric.labels.<k>` (`metric.label.<k>`), `resource.type`, `resource.labels.<k>`,
  `project`, with the functions `starts_with("x")`, `ends_with("x")`, `has_substring("x")`,
  `one_of("a", "b")` and `monitoring.regex.full_match("re")` on the right of `=` (or `!=`).

A parsed filter is a tree evaluated against a resolver: `resolve(path) -> list of values` (empty when
the field is absent; a comparison holds when any value satisfies it, `!=` when none equals).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcloud.services.run_errors import ApiError

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>!=|<=|>=|=~|!~|=|<|>|:)
    | (?P<punct>[(),])
    | (?P<minus>-(?=[A-Za-z(]))
    | (?P<word>[A-Za-z0-9_.*/@+-]+)
    )""",
    re.VERBOSE,
)
FUNCTIONS = ("starts_with", "ends_with", "has_substring", "one_of", "monitoring.regex.full_match")
Resolver = Callable[[str], list[Any]]


class FilterError(ValueError):
    pass


def bad_filter(text: str, reason: str, field: str = "filter") -> ApiError:
    return ApiError(400, f'Field {field} had an invalid value of "{text}": {reason}', "INVALID_ARGUMENT")


@dataclass
class Cmp:
    path: str
    op: str  # "" for a bare field (truthy)
    value: Any = None  # str | float | ("fn", name, [args])


@dataclass
class Not:
    inner: Any


@dataclass
class BoolOp:
    op: str  # "AND" | "OR"
    items: list[Any]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected character at {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise FilterError("unexpected end of filter")
        self.i += 1
        return tok

    def parse(self) -> Any:
        if not self.toks:
            return None
        tree = self.expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return tree

    def expr(self) -> Any:
        items = [self.conj()]
        while self.peek() == ("word", "OR"):
            self.take()
            items.append(self.conj())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def conj(self) -> Any:
        items = [self.unary()]
        while True:
            tok = self.peek()
            if tok is None or tok in (("punct", ")"), ("word", "OR"), ("punct", ",")):
                break
            if tok == ("word", "AND"):
                self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def unary(self) -> Any:
        tok = self.take()
        if tok in (("word", "NOT"), ("minus", "-")):
            return Not(self.unary())
        if tok == ("punct", "("):
            inner = self.expr()
            if self.take() != ("punct", ")"):
                raise FilterError("missing )")
            return inner
        if tok[0] != "word" or tok[1] in ("AND", "OR"):
            raise FilterError(f"expected a field, got {tok[1]!r}")
        path = tok[1]
        nxt = self.peek()
        if nxt is None or nxt[0] != "op":
            return Cmp(path, "")
        op = self.take()[1]
        if op in ("=~", "!~"):
            raise FilterError(f"the operator {op} is not supported")
        return Cmp(path, op, self.value())

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return _unquote(text)
        if kind != "word":
            raise FilterError(f"expected a value, got {text!r}")
        if self.peek() == ("punct", "("):
            if text not in FUNCTIONS:
                raise FilterError(f"unknown function {text}; known: {', '.join(FUNCTIONS)}")
            self.take()
            args = []
            while self.peek() != ("punct", ")"):
                arg_kind, arg = self.take()
                if arg_kind != "str":
                    raise FilterError(f"{text}() takes quoted strings")
                args.append(_unquote(arg))
                if self.peek() == ("punct", ","):
                    self.take()
            self.take()
            if not args or (text != "one_of" and len(args) != 1):
                raise FilterError(
                    f"{text}() takes {'one or more arguments' if text == 'one_of' else 'one argument'}"
                )
            return ("fn", text, args)
        return text


def parse(text: str, field: str = "filter") -> Any:
    """The filter's tree (None for an empty filter); a 400 ApiError when it does not parse."""
    try:
        return _Parser(text or "").parse()
    except (FilterError, re.error) as e:
        raise bad_filter(text, str(e), field) from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    try:
        return float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _equals(actual: Any, want: Any) -> bool:
    if isinstance(want, tuple):
        _, fn, args = want
        text = _text(actual)
        if fn == "starts_with":
            return text.startswith(args[0])
        if fn == "ends_with":
            return text.endswith(args[0])
        if fn == "has_substring":
            return args[0] in text
        if fn == "one_of":
            return text in args
        return re.fullmatch(args[0], text) is not None
    a, w = _number(actual), _number(want)
    if a is not None and w is not None and not isinstance(actual, str):
        return a == w
    return _text(actual) == _text(want)


def _order(actual: Any, op: str, want: Any) -> bool:
    a, w = _number(actual), _number(want)
    left, right = (a, w) if a is not None and w is not None else (_text(actual), _text(want))
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _cmp(node: Cmp, resolve: Resolver) -> bool:
    path, op = node.path, node.op
    sized = path.endswith(".size")
    values = resolve(path[: -len(".size")] if sized else path)
    if sized:
        values = [len(v) for v in values if isinstance(v, str | list | dict)]
    if op == "":
        return any(bool(v) for v in values)
    if op == ":":
        if node.value == "*":
            return bool(values)
        needle = _text(node.value).lower()
        return any(needle in _text(v).lower() for v in values)
    if isinstance(node.value, tuple) and op not in ("=", "!="):
        raise FilterError(f"{node.value[1]}() is only valid after = or !=")
    if op == "=":
        return any(_equals(v, node.value) for v in values)
    if op == "!=":
        return not any(_equals(v, node.value) for v in values)
    return any(_order(v, op, node.value) for v in values)


def matches(tree: Any, resolve: Resolver) -> bool:
    if tree is None:
        return True
    if isinstance(tree, Not):
        return not matches(tree.inner, resolve)
    if isinstance(tree, BoolOp):
        results = (matches(item, resolve) for item in tree.items)
        return all(results) if tree.op == "AND" else any(results)
    return _cmp(tree, resolve)


def fields(tree: Any) -> list[Cmp]:
    """Every comparison of a filter."""
    if tree is None:
        return []
    if isinstance(tree, Not):
        return fields(tree.inner)
    if isinstance(tree, BoolOp):
        return [c for item in tree.items for c in fields(item)]
    return [tree]


def conjuncts(tree: Any) -> list[Any]:
    """The terms ANDed at the top of a filter."""
    if isinstance(tree, BoolOp) and tree.op == "AND":
        return [c for item in tree.items for c in conjuncts(item)]
    return [] if tree is None else [tree]


def exact(tree: Any, path: str) -> str | None:
    """The literal a top-level `path = "literal"` term names (None when there is none)."""
    for term in conjuncts(tree):
        if isinstance(term, Cmp) and term.path == path and term.op == "=" and isinstance(term.value, str):
            return term.value
    return None


# ---- resolvers --------------------------------------------------------------------------------------


def snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


_ALIASES = {"user_label": "userLabels", "user_labels": "userLabels", "label": "labels"}


def resource_resolver(item: dict[str, Any]) -> Resolver:
    """Field references of sorting-and-filtering over a resource's JSON (snake_case or camelCase paths;
    `user_label.<k>` and `label.<k>` for the maps; a list yields each element)."""

    def resolve(path: str) -> list[Any]:
        values: list[Any] = [item]
        parts = path.split(".")
        for i, part in enumerate(parts):
            nxt: list[Any] = []
            for value in values:
                if isinstance(value, list):
                    value_items = value
                else:
                    value_items = [value]
                for v in value_items:
                    if not isinstance(v, dict):
                        continue
                    if part in v:  # a map key (labels) or a camelCase field
                        nxt.append(v[part])
                        continue
                    key = _ALIASES.get(part) if i == 0 else None
                    key = key or snake_to_camel(part)
                    if key in v:
                        nxt.append(v[key])
            values = nxt
        out: list[Any] = []
        for value in values:
            out.extend(value if isinstance(value, list) else [value])
        return out

    return resolve


def series_resolver(series: dict[str, Any], project: str) -> Resolver:
    """Monitoring-filter field references over a time series' identity."""
    metric, resource = series.get("metric", {}), series.get("resource", {})

    def resolve(path: str) -> list[Any]:
        parts = path.split(".", 2)
        if path == "metric.type":
            return [metric.get("type", "")]
        if path == "resource.type":
            return [resource.get("type", "")]
        if path == "project":
            return [project]
        if len(parts) == 3 and parts[0] in ("metric", "resource") and parts[1] in ("label", "labels"):
            labels = (metric if parts[0] == "metric" else resource).get("labels", {})
            return [labels[parts[2]]] if parts[2] in labels else []
        if len(parts) == 3 and parts[0] == "metadata":
            return []  # system/user metadata labels: none are emulated
        raise FilterError(f"unknown field {path}")

    return resolve


def check_series_fields(tree: Any, text: str) -> None:
    """Refuse a monitoring filter naming a field the language lacks."""
    allowed = re.compile(
        r"^(metric\.type|resource\.type|project|(metric|resource)\.labels?\.[\w./-]+|metadata\..+)$"
    )
    for cmp in fields(tree):
        if not allowed.match(cmp.path):
            raise bad_filter(text, f"unknown field {cmp.path}")
        if cmp.op not in ("=", "!=", ":", ">", "<", ">=", "<="):
            raise bad_filter(text, f"{cmp.path} needs a comparison")


def select(items: list[dict[str, Any]], text: str, resolver=resource_resolver) -> list[dict[str, Any]]:
    tree = parse(text)
    try:
        return [item for item in items if matches(tree, resolver(item))]
    except FilterError as e:
        raise bad_filter(text, str(e)) from None


def order(items: list[dict[str, Any]], text: str, field: str = "order_by") -> list[dict[str, Any]]:
    """Sort by a comma-separated list of field references, each optionally `-field` or `field desc`."""
    keys = []
    for raw in (text or "").split(","):
        spec = raw.strip()
        if not spec:
            continue
        desc = spec.startswith("-") or spec.lower().endswith(" desc")
        spec = spec.lstrip("-").strip()
        spec = re.sub(r"\s+(asc|desc)$", "", spec, flags=re.IGNORECASE)
        if not re.fullmatch(r"[A-Za-z_][\w.]*", spec):
            raise bad_filter(text, f"cannot sort by {spec!r}", field)
        keys.append((spec, desc))
    out = list(items)
    for path, desc in reversed(keys):
        sized = path.endswith(".size")
        base = path[: -len(".size")] if sized else path

        def key(item, base=base, sized=sized):
            values = resource_resolver(item)(base)
            value = values[0] if values else ""
            if sized:
                return (0, len(value) if isinstance(value, str | list | dict) else 0, "")
            number = _number(value) if not isinstance(value, str) else None
            return (0, number, "") if number is not None else (1, 0.0, _text(value))

        out.sort(key=key, reverse=desc)
    return out
