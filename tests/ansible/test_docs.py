"""ansible-doc renders every module, filter and callback of cloudact.gcp, as an Ansible user reads them.

One `ansible-doc -t <type> --json` per plugin type, the three at once, with the repository's
ansible.cfg (its collections_path finds this checkout's collection). A plugin whose documentation
does not parse makes ansible-doc refuse the whole batch: it is named, left out, and the rest is run
again, so each plugin's test says what is wrong with it alone.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from .conftest import BIN, ROOT

COLLECTION = ROOT / "collections" / "ansible_collections" / "cloudact" / "gcp"
PLUGINS = COLLECTION / "plugins"
PREFIX = "cloudact.gcp."
GALAXY_VERSION = Version(yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"])

MODULES = sorted(p.stem for p in (PLUGINS / "modules").glob("*.py") if p.stem != "__init__")
CALLBACKS = sorted(p.stem for p in (PLUGINS / "callback").glob("*.py") if p.stem != "__init__")
FILTER_FILES = sorted(p.stem for p in (PLUGINS / "filter").glob("*.py") if p.stem != "__init__")
FILTER_DOCS = sorted(p.stem for p in (PLUGINS / "filter").glob("*.yml"))

# Plugins that fail to render for a reason outside their DOCUMENTATION/EXAMPLES/RETURN strings:
# {"<type>:<name>": "why"}. Each is an xfail (strict: it fails the run once it renders again).
RENDER_XFAIL: dict[str, str] = {}


def _filter_functions() -> dict[str, object]:
    """Every filter the FilterModule classes of plugins/filter/*.py list, by name."""
    found: dict[str, object] = {}
    for stem in FILTER_FILES:
        module = importlib.import_module(f"ansible_collections.cloudact.gcp.plugins.filter.{stem}")
        for name, fn in module.FilterModule().filters().items():
            assert name not in found, f"filter {name} is defined twice (plugins/filter/{stem}.py)"
            found[name] = fn
    return found


FILTER_FUNCTIONS = _filter_functions()
FILTERS = sorted(FILTER_FUNCTIONS)
PLUGIN_NAMES = {"module": MODULES, "filter": FILTERS, "callback": CALLBACKS}
ALL = [(kind, name) for kind, names in PLUGIN_NAMES.items() for name in names]


def _params(items: list[tuple[str, str]]) -> list:
    return [
        pytest.param(
            kind,
            name,
            id=f"{kind}-{name}",
            marks=[pytest.mark.xfail(reason=RENDER_XFAIL[f"{kind}:{name}"], strict=True)]
            if f"{kind}:{name}" in RENDER_XFAIL
            else [],
        )
        for kind, name in items
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{env.get('PATH', '')}"
    )
    return env


def _start(kind: str, names: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "ansible-doc"), "-t", kind, "--json", *(PREFIX + n for n in names)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(kind: str, names: list[str], proc: subprocess.Popen) -> dict:
    """{docs: {name: json}, errors: {name: stderr}, stderr: every run's stderr}."""
    docs: dict[str, dict] = {}
    errors: dict[str, str] = {}
    stderr: list[str] = []
    pending = list(names)
    while True:
        out, err = proc.communicate(timeout=120)
        stderr.append(err)
        if proc.returncode == 0:
            docs.update({k.removeprefix(PREFIX): v for k, v in json.loads(out).items()})
            break
        refused = [n for n in pending if re.search(rf"{re.escape(PREFIX + n)}\b", err)]
        errors.update({n: err.strip() for n in refused or pending})
        pending = [n for n in pending if n not in errors]
        if not refused or not pending:
            break
        proc = _start(kind, pending)
    return {"docs": docs, "errors": errors, "stderr": "".join(stderr)}


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict]:
    started = {kind: _start(kind, names) for kind, names in PLUGIN_NAMES.items()}
    return {kind: _finish(kind, PLUGIN_NAMES[kind], proc) for kind, proc in started.items()}


def _doc(rendered: dict, kind: str, name: str) -> dict:
    got = rendered[kind]
    assert name not in got["errors"], f"ansible-doc -t {kind} {PREFIX}{name}:\n{got['errors'][name]}"
    assert name in got["docs"], f"ansible-doc -t {kind} {PREFIX}{name} returned nothing"
    return got["docs"][name]


def _texts(node, path: str = ""):
    """(path, value) of every description, short_description and note, options and returns included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "short_description", "notes") and not path.endswith(
                (".options", ".suboptions", ".return", ".contains")
            ):
                yield f"{path}.{key}", value
            yield from _texts(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _texts(value, f"{path}[{i}]")


@pytest.mark.parametrize(("kind", "name"), _params(ALL))
def test_renders(rendered, kind, name):
    entry = _doc(rendered, kind, name)
    doc = entry["doc"]
    assert isinstance(doc, dict) and doc, f"{kind} {name}: no DOCUMENTATION"
    assert str(doc.get("short_description") or "").strip(), f"{kind} {name}: empty short_description"
    assert Path(doc["filename"]).resolve().is_relative_to(PLUGINS), (
        f"{kind} {name}: found at {doc['filename']}"
    )
    # The text renderer (ansible-doc without --json) needs a string, or a list of strings, in each.
    for path, value in _texts({"doc": doc, "return": entry.get("return") or {}}):
        items = value if isinstance(value, list) else [value]
        assert all(isinstance(i, str) for i in items), f"{kind} {name}: {path} is not text: {value!r}"


@pytest.mark.parametrize(("kind", "name"), _params([(k, n) for k, n in ALL if k != "callback"]))
def test_examples_and_return(rendered, kind, name):
    entry = _doc(rendered, kind, name)
    assert str(entry.get("examples") or "").strip(), f"{kind} {name}: no EXAMPLES"
    assert entry.get("return"), f"{kind} {name}: no RETURN"
    if kind == "filter":
        value = entry["return"].get("_value") or {}
        assert value.get("type") and value.get("description"), (
            f"filter {name}: RETURN._value needs type and description"
        )


def test_every_filter_has_a_doc_and_every_doc_a_filter():
    assert set(FILTER_DOCS) - set(FILTERS) == set(), "plugins/filter/*.yml naming no filter"
    assert set(FILTERS) - set(FILTER_DOCS) == set(), "filters without plugins/filter/<name>.yml"
    for stem in FILTER_DOCS:
        doc = yaml.safe_load((PLUGINS / "filter" / f"{stem}.yml").read_text())
        assert doc["DOCUMENTATION"]["name"] == stem, (
            f"plugins/filter/{stem}.yml documents {doc['DOCUMENTATION']['name']}"
        )


def _target(fn):
    """The function a filter calls: through functools.wraps, and through a (*args, **kwargs) closure."""
    fn = inspect.unwrap(fn)
    varargs = {p.kind for p in inspect.signature(fn).parameters.values()} >= {
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    }
    inner = [c.cell_contents for c in fn.__closure__ or () if inspect.isfunction(c.cell_contents)]
    return _target(inner[0]) if varargs and len(inner) == 1 else fn


@pytest.mark.parametrize(("kind", "name"), _params([("filter", n) for n in FILTERS]))
def test_filter_options_are_its_parameters(rendered, kind, name):
    """positional and options name the Python parameters (the first is _input, always given, so required);
    another option is required when its parameter has no default."""
    doc = _doc(rendered, kind, name)["doc"]
    params = list(inspect.signature(_target(FILTER_FUNCTIONS[name])).parameters.values())
    names = ["_input", *(p.name for p in params[1:])]
    assert [p.strip() for p in str(doc.get("positional", "")).split(",")] == names
    options = doc.get("options") or {}
    assert sorted(options) == sorted(names), f"filter {name}: options {sorted(options)} != parameters {names}"
    for option, param in zip(names, params, strict=True):
        spec = options[option]
        assert spec.get("type"), f"filter {name}: option {option} has no type"
        required = option == "_input" or param.default is inspect.Parameter.empty
        assert bool(spec.get("required")) == required, (
            f"filter {name}: option {option} required should be {required}"
        )


def _messages(stderr: str) -> list[str]:
    """ansible-doc's stderr as messages: a line starting with [ and the indented lines after it."""
    messages: list[str] = []
    for line in stderr.splitlines():
        if line.startswith("[") or not messages:
            messages.append(line)
        else:
            messages[-1] += "\n" + line
    return messages


def test_no_warning_about_the_collection(rendered):
    warnings = [
        m
        for kind in rendered
        for m in _messages(rendered[kind]["stderr"])
        if "WARNING" in m.split(":", 1)[0] and ("cloudact.gcp" in m or "cloudact/gcp" in m)
    ]
    assert warnings == []


@pytest.mark.parametrize(("kind", "name"), _params(ALL))
def test_version_added_not_after_the_collection_version(rendered, kind, name):
    doc = _doc(rendered, kind, name)["doc"]
    added = str(doc.get("version_added") or "")
    assert added, f"{kind} {name}: no version_added"
    assert doc.get("version_added_collection") == "cloudact.gcp"
    assert Version(added) <= GALAXY_VERSION, (
        f"{kind} {name}: version_added {added} > galaxy.yml's {GALAXY_VERSION}"
    )


# ---- the two honest kinds of plugin ------------------------------------------------------------------

ACTIONS = sorted(p.stem for p in (PLUGINS / "action").glob("*.py") if p.stem != "__init__")
RUNTIME = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())
DOC_NAMES = {"DOCUMENTATION", "EXAMPLES", "RETURN"}


def _docs_only(path: Path) -> bool:
    """What ansible-test's validate-modules calls "just docs": the doc strings, a docstring and
    `from __future__` imports, nothing else (the file of a controller-side action, as debug's)."""
    import ast

    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and {getattr(t, "id", "") for t in node.targets} <= DOC_NAMES:
            continue
        if isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        return False
    return True


@pytest.mark.parametrize("name", MODULES)
def test_each_plugin_is_a_real_module_or_an_action_documented_by_its_module_file(name):
    path = PLUGINS / "modules" / f"{name}.py"
    if name in ACTIONS:
        assert _docs_only(path), f"{name}: an action plugin's module file holds only its documentation"
    else:
        text = path.read_text()
        assert "def main(" in text and 'if __name__ == "__main__":' in text, (
            f"{name}: a real module runs main() when Ansible runs it"
        )
    assert not (PLUGINS / "plugin_utils").exists() or not [
        p
        for p in (PLUGINS / "plugin_utils").glob("*.py")
        if "AnsibleModule" in p.read_text().split('"""', 2)[-1]
    ], "no stand-in for AnsibleModule"


def test_every_action_has_its_module_documentation():
    assert set(ACTIONS) - set(MODULES) == set(), "action plugins without plugins/modules/<name>.py"


def test_the_gcp_action_group_is_the_modules_that_take_googles_auth_options(rendered):
    takes = sorted(
        n for n in MODULES if "auth_kind" in (_doc(rendered, "module", n)["doc"].get("options") or {})
    )
    assert sorted(RUNTIME["action_groups"]["gcp"]) == takes
    assert not set(takes) & set(ACTIONS), "a module of the group is run by Ansible, not a same-name action"


def _spec_of(name: str) -> tuple[dict, dict]:
    module = importlib.import_module(f"ansible_collections.cloudact.gcp.plugins.action.{name}")
    action = module.ActionModule
    return dict(action.ARGUMENT_SPEC), dict(getattr(action, "VALIDATION", {}) or {})


def _compare(where: str, spec: dict, options: dict) -> list[str]:
    """How the argument spec and the documented options differ, as Ansible's validate-modules compares
    a module's argument_spec with its DOCUMENTATION."""
    problems = []
    if sorted(spec) != sorted(options):
        return [f"{where}: spec {sorted(spec)} != documented {sorted(options)}"]
    for key, arg in spec.items():
        doc = options[key]
        here = f"{where}.{key}"
        for field, default in (("type", "str"), ("required", False), ("elements", None)):
            if (arg.get(field) or default) != (doc.get(field) or default):
                problems.append(f"{here}: {field} {arg.get(field)!r} documented as {doc.get(field)!r}")
        if sorted(arg.get("choices") or []) != sorted(doc.get("choices") or []):
            problems.append(f"{here}: choices {arg.get('choices')} documented as {doc.get('choices')}")
        if arg.get("default") is not None and arg.get("default") != doc.get("default"):
            problems.append(f"{here}: default {arg.get('default')!r} documented as {doc.get('default')!r}")
        if sorted(arg.get("aliases") or []) != sorted(doc.get("aliases") or []):
            problems.append(f"{here}: aliases {arg.get('aliases')} documented as {doc.get('aliases')}")
        if arg.get("options") or doc.get("suboptions"):
            problems += _compare(here, arg.get("options") or {}, doc.get("suboptions") or {})
    return problems


@pytest.mark.parametrize("name", ACTIONS)
def test_an_actions_options_are_its_argument_spec(rendered, name):
    spec, _ = _spec_of(name)
    doc = _doc(rendered, "module", name)["doc"]
    assert _compare(name, spec, doc.get("options") or {}) == []


@pytest.mark.parametrize("name", MODULES)
def test_check_and_diff_support_are_documented(rendered, name):
    attributes = _doc(rendered, "module", name)["doc"].get("attributes") or {}
    for key in ("check_mode", "diff_mode"):
        assert (attributes.get(key) or {}).get("support") in ("full", "partial", "none", "N/A"), (
            f"{name}: attributes.{key}.support"
        )
