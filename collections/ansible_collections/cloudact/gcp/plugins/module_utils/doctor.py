# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make doctor`: the seed's troubleshooting table as read-only checks, each naming the cause and the fix.

A check is a plain function `check(ctx) -> [Row]` over one `Context` (the environment's facts, the
collection's one client, and the reads the checks share, each made once). A Row is (check, result,
found, fix): result ok, warn, FAIL or skipped; `fix` is the one command (or edit) that fixes it.
The checks live by concern in doctor_setup.py (the environment word, localcloud, the credentials),
doctor_api.py (the API, bootstrap, Supabase, organizations) and doctor_jobs.py (the jobs and
triggers against the catalog, failed executions, the image, access).

Reads only: GETs, queries, testIamPermissions and token requests; never a create, patch, delete,
setIamPolicy or `:run`. A secret read for a check (the API's root key, the Supabase token) is
added to `ctx.secrets` (the action censors them) and never put in a row. A check the operator has no
permission for is `skipped: you lack <permission>`, never ok.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.table import table

OK, WARN, FAIL, SKIPPED = "ok", "warn", "FAIL", "skipped"
HEADERS = ("check", "result", "found", "fix")


@dataclass(frozen=True)
class Row:
    check: str
    result: str
    found: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "result": self.result, "found": self.found, "fix": self.fix}


class Skip(Exception):
    """A check that cannot run: why (a row `skipped: <why>`)."""


@dataclass
class Context:
    """What every check reads: the environment word and its facts, the client, the shared reads.

    `facts` is None when the environment word is not valid; `api` None until credentials check out.
    `blocked` says why the cloud cannot be asked (localcloud down, no usable credentials), so every
    check that needs the cloud says that instead of failing on its own.
    """

    env: str
    root: str
    facts: dict[str, Any] | None = None
    api: Any = None
    blocked: str = ""
    client_env: dict[str, str] = field(default_factory=dict)
    localcloud: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def project(self) -> str:
        return (self.facts or {}).get("cloudact_gcp_project") or ""

    @property
    def region(self) -> str:
        return (self.facts or {}).get("cloudact_gcp_region") or ""

    def make(self, target: str, *extra: str) -> str:
        """The make command of this environment, as the operator typed it (REHEARSE=1 kept)."""
        rehearse = "REHEARSE=1 " if (self.localcloud or {}).get("rehearse") else ""
        return " ".join([f"{rehearse}make {target} ENV={self.env}", *extra])

    def once(self, key: str, read):
        """`read()` the first time `key` is asked for, its value (or its exception) after that."""
        if key not in self.cache:
            try:
                self.cloud()
                self.cache[key] = (read(), None)
            except (ApiError, Skip) as exc:
                self.cache[key] = (None, exc)
        value, exc = self.cache[key]
        if exc is not None:
            raise exc
        return value

    def cloud(self):
        """The client, or Skip saying why the cloud cannot be asked."""
        if self.facts is None:
            raise Skip("unknown environment %r" % self.env)
        if self.blocked:
            raise Skip(self.blocked)
        return self.api


def lacks(permission: str, exc: ApiError) -> Skip | None:
    """Skip('you lack <permission>') for a 403 (None for any other failure)."""
    if exc.status == 403:
        return Skip("you lack %s" % permission)
    return None


def guarded(name: str, check, ctx: Context) -> list[Row]:
    """The rows of one check; a Skip (or a 403 the check did not handle) as one `skipped` row."""
    try:
        if ctx.facts is None and name != "environment":
            raise Skip("unknown environment %r" % ctx.env)
        rows = check(ctx)
    except Skip as why:
        return [Row(name, SKIPPED, str(why))]
    except ApiError as exc:
        if exc.status == 403:
            return [Row(name, SKIPPED, "you lack the permission: %s" % first(exc))]
        return [Row(name, FAIL, first(exc))]
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
        # One check's own failure must not cost the operator the other rows: say it, as a FAIL.
        return [Row(name, FAIL, "the check failed: %s: %s" % (type(exc).__name__, first(exc)))]
    return [rows] if isinstance(rows, Row) else list(rows)


def first(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:240] if text else type(exc).__name__


def diagnose(ctx: Context, checks) -> list[Row]:
    """Every check's rows, in order: `checks` is [(name, function)]."""
    rows: list[Row] = []
    for name, check in checks:
        rows.extend(guarded(name, check, ctx))
    return rows


def render(rows: list[Row]) -> list[str]:
    return table(HEADERS, [(r.check, r.result, r.found, r.fix) for r in rows])


def verdict(rows: list[Row], strict: bool = False) -> dict[str, Any]:
    """{failed, counts, message}: a FAIL fails; a warn only when strict."""
    counts = {k: sum(1 for r in rows if r.result == k) for k in (OK, WARN, FAIL, SKIPPED)}
    bad = [r.check for r in rows if r.result == FAIL or (strict and r.result == WARN)]
    summary = "%d ok, %d warn, %d FAIL, %d skipped" % (
        counts[OK],
        counts[WARN],
        counts[FAIL],
        counts[SKIPPED],
    )
    message = ""
    if bad:
        message = "doctor: %s%s" % (
            ", ".join(dict.fromkeys(bad)),
            " (STRICT=1)" if strict and counts[WARN] else "",
        )
    return {"failed": bool(bad), "counts": counts, "summary": summary, "message": message}
