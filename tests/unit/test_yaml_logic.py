"""YAML without logic: the Jinja in roles/ and playbooks/, parsed with Jinja's own parser.

Messages, choices and derived values come from modules or filters (unit-tested Python) as return
values; the YAML only wires them. So this fails, naming file, task and text, on:
  - a conditional expression (`x if c else y`), the `ternary` filter, a `{% if %}` block;
  - `and`/`or` that pick a value (anywhere but as the logic of a when/that/until/... condition);
  - a `when:` (or changed_when/failed_when/until) of more than 2 conditions, counting list items
    and the operands of and/or;
  - a playbook task that is not a role call (include_role/import_role): playbooks stay thin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
import yaml
from jinja2 import nodes

ROOT = Path(__file__).resolve().parents[2]

# Bare Jinja expressions (no {{ }}), evaluated as conditions: and/or are fine in them as logic.
CONDITIONS = {"when", "changed_when", "failed_when", "until", "that"}
# Conditions whose number of clauses is limited (an assert's `that:` lists its checks).
COUNTED = CONDITIONS - {"that"}
MAX_CLAUSES = 2
ROLE_CALLS = {
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
    "include_role",
    "import_role",
}
PLAYBOOK_TASK_LISTS = ("pre_tasks", "tasks", "post_tasks", "handlers")
BOOLEAN = (nodes.And, nodes.Or, nodes.Not)

ENV = jinja2.Environment(autoescape=True)  # only parsed, never rendered


def parse(text: str, bare: bool) -> nodes.Template:
    return ENV.parse("{{ (" + text + ") }}" if bare else text)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def expression_problems(text: str, condition: bool) -> list[str]:
    """What is wrong with one string: a template value, or a bare condition when `condition`."""
    if not condition and not is_template(text):
        return []
    try:
        tree = parse(text, bare=condition and not is_template(text))
    except jinja2.TemplateSyntaxError as exc:
        return [f"unparsable Jinja ({exc.message})"]
    found: list[str] = []

    def visit(node: nodes.Node, boolean: bool) -> None:
        if isinstance(node, nodes.CondExpr):
            found.append("a conditional expression (x if c else y)")
        elif isinstance(node, nodes.Filter) and node.name.rsplit(".", 1)[-1] == "ternary":
            found.append("the ternary filter")
        elif isinstance(node, nodes.If):
            found.append("an {% if %} block")
        elif isinstance(node, (nodes.And, nodes.Or)) and not boolean:
            found.append(f"`{type(node).__name__.lower()}` picking a value")
        for child in node.iter_child_nodes():
            in_condition = isinstance(node, nodes.Output) and condition
            visit(child, in_condition or (boolean and isinstance(node, BOOLEAN)))

    visit(tree, False)
    return found


def _clauses(node: nodes.Node) -> int:
    if isinstance(node, (nodes.And, nodes.Or)):
        return _clauses(node.left) + _clauses(node.right)
    if isinstance(node, nodes.Not) and isinstance(node.node, (nodes.And, nodes.Or)):
        return _clauses(node.node)
    return 1


def clause_count(value) -> int:
    """Conditions of a when: list items, each counted by its and/or operands."""
    total = 0
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, str):
            total += 1
            continue
        try:
            tree = parse(item, bare=not is_template(item))
        except jinja2.TemplateSyntaxError:
            total += 1  # reported by expression_problems
            continue
        exprs = [n for out in tree.find_all(nodes.Output) for n in out.nodes]
        total += sum(_clauses(n) for n in exprs if not isinstance(n, nodes.TemplateData)) or 1
    return total


def _task_name(node: dict, inherited: str) -> str:
    name = node.get("name")
    return name if isinstance(name, str) else inherited


def problems(data, playbook: bool = False) -> Iterator[tuple[str, str, str]]:
    """(task name, offending text, what is wrong) for one loaded YAML document."""

    def walk(node, task: str, condition: bool) -> Iterator[tuple[str, str, str]]:
        if isinstance(node, dict):
            task = _task_name(node, task)
            for key, value in node.items():
                is_condition = key in CONDITIONS
                if key in COUNTED and clause_count(value) > MAX_CLAUSES:
                    text = value if isinstance(value, str) else " / ".join(map(str, value))
                    yield task, text, f"{key}: has {clause_count(value)} conditions (at most {MAX_CLAUSES})"
                yield from walk(value, task, is_condition)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, task, condition)
        elif isinstance(node, str):
            for what in expression_problems(node, condition):
                yield task, node, what

    if playbook and isinstance(data, list):
        for play in data:
            if not isinstance(play, dict):
                continue
            for section in PLAYBOOK_TASK_LISTS:
                for task in play.get(section) or []:
                    if not (isinstance(task, dict) and ROLE_CALLS & set(task)):
                        name = task.get("name", "?") if isinstance(task, dict) else str(task)
                        yield (
                            name,
                            str(task)[:160],
                            f"a {section} entry of a playbook that is not a role call",
                        )
    yield from walk(data, "", False)


def yaml_files() -> list[Path]:
    return sorted(p for d in ("roles", "playbooks") for p in (ROOT / d).rglob("*.yml"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def file_problems(path: Path) -> list[str]:
    rel = relative(path)
    data = yaml.safe_load(path.read_text())
    return [
        f"{rel}: task {task!r}: {what}: {' '.join(text.split())}"
        for task, text, what in problems(data, playbook=rel.startswith("playbooks/"))
    ]


# --- the checker itself, on inline examples (so the real test cannot pass vacuously) ---

BAD = [
    ("msg: '{{ a if b else c }}'", "conditional expression"),
    ("msg: '{{ x | ternary(1, 2) }}'", "ternary"),
    ("msg: '{{ x | ansible.builtin.ternary(1, 2) }}'", "ternary"),
    ("msg: '{{ a or b }}'", "`or` picking a value"),
    ("msg: '{{ (a and b) | string }}'", "`and` picking a value"),
    ("msg: '{% if a %}x{% endif %}'", "{% if %} block"),
    ("when: (a or b) | length > 0", "`or` picking a value"),
    ("when: [a, b, c]", "has 3 conditions"),
    ("when: [a and b, c]", "has 3 conditions"),
    ("when: a or b and not c", "has 3 conditions"),
    ("when: not (a or b or c)", "has 3 conditions"),
    ("failed_when: [a, b, c]", "has 3 conditions"),
    ("that: x if y else z", "conditional expression"),
    ("vars: {v: '{{ [a] if b else [] }}'}", "conditional expression"),
    ("loop: '{{ a or [] }}'", "`or` picking a value"),
    ("msg: '{{ a if b'", "unparsable"),
]

GOOD = [
    "msg: 'plain text, no Jinja: a if b else c'",
    "msg: '{{ a ~ b | default(omit, true) }} and {{ c }}'",
    "when: a or b",
    "when: [a and not b]",
    "when: [a | bool, not b]",
    "when: not (a and b)",
    "that: [a or b or c or d, e]",
    "that: a and (b or c) and d",
    "until: r.done",
    "when: true",
    "msg: '{{ x | cloudact.gcp.pick(omit) }}'",
]


@pytest.mark.parametrize(("text", "what"), BAD, ids=[b[0] for b in BAD])
def test_the_checker_flags_logic(text: str, what: str) -> None:
    found = list(problems([{"name": "Sample", **yaml.safe_load(text)}]))
    assert found and all(task == "Sample" for task, _, _ in found), found
    assert any(what in w for _, _, w in found), found


@pytest.mark.parametrize("text", GOOD)
def test_the_checker_passes_wiring(text: str) -> None:
    assert list(problems([{"name": "Sample", **yaml.safe_load(text)}])) == []


def test_the_checker_allows_only_role_calls_in_a_playbook() -> None:
    play = {
        "hosts": "localhost",
        "roles": [{"role": "r"}],
        "tasks": [
            {"name": "Call a role", "ansible.builtin.include_role": {"name": "r", "tasks_from": "x.yml"}},
            {"name": "Print something", "ansible.builtin.debug": {"msg": "hi"}},
        ],
        "handlers": [{"name": "Restart", "ansible.builtin.service": {"name": "x"}}],
    }
    found = list(problems([play, {"ansible.builtin.import_playbook": "other.yml"}], playbook=True))
    assert [(task, what.split(" of ")[0]) for task, _, what in found] == [
        ("Print something", "a tasks entry"),
        ("Restart", "a handlers entry"),
    ]


def test_the_checker_sees_every_file() -> None:
    files = {relative(p) for p in yaml_files()}
    assert "playbooks/release.yml" in files and "roles/cloudact_run/tasks/execute.yml" in files


# --- the real tree ---


@pytest.mark.parametrize("path", yaml_files(), ids=relative)
def test_no_logic_in_yaml(path: Path) -> None:
    found = file_problems(path)
    assert not found, "\n".join(found)
