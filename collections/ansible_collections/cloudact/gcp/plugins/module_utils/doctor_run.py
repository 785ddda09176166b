# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's checks in order, and one run of them: facts, client environment, rows, table, verdict."""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import client as api_client
from ansible_collections.cloudact.gcp.plugins.module_utils import doctor_access as access
from ansible_collections.cloudact.gcp.plugins.module_utils import doctor_alerts as alerts
from ansible_collections.cloudact.gcp.plugins.module_utils import doctor_api as api
from ansible_collections.cloudact.gcp.plugins.module_utils import doctor_image as image
from ansible_collections.cloudact.gcp.plugins.module_utils import doctor_jobs as jobs
from ansible_collections.cloudact.gcp.plugins.module_utils import doctor_setup as setup
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import Context, diagnose, render, verdict

# (name of the row when the check is skipped, check). The rows: 1 environment, 12 localcloud,
# 2 credentials, 3 permissions, 4 API service + /health, 5 bootstrap, 6 Supabase + migrations,
# 7 organizations, 8 image, 10 jobs and triggers + paused + status, 9 access, 11 failed executions;
# then alerts as code (issue 21).
CHECKS = (
    ("environment", setup.check_environment),
    ("localcloud", setup.check_localcloud),
    ("credentials", setup.check_credentials),
    ("permissions", access.check_permissions),
    ("API service", api.check_api_service),
    ("API /health", api.check_health),
    ("bootstrap status", api.check_bootstrap),
    ("Supabase token", api.check_supabase),
    ("organizations", api.check_organizations),
    ("image", image.check_image),
    ("jobs and triggers", jobs.check_plan),
    ("paused triggers", jobs.check_paused),
    ("access", access.check_access),
    ("job status", jobs.check_flags),
    ("failed executions", jobs.check_failures),
    ("alert policies", alerts.check_alerts),
)


def run(env, root, overrides=None, options=None, strict=False, checks=CHECKS):
    """{rows, lines, verdict, requests, secrets}: every check of `env`, reads only.

    `overrides`: the play's values of the environment's facts (e.g. -e); `options` (or a function
    of the facts that returns them): the probes, whether access is converged with the jobs,
    `expect_paused`, `grace_minutes`, and optionally the parsed `catalog`.
    `secrets` are the values read for checks, for the caller to censor.
    """
    ctx = Context(env=str(env or ""), root=str(root))
    setup.load_facts(ctx, overrides)
    if ctx.facts is not None:
        facts = dict(ctx.facts, cloudact_catalog=ctx.options.get("catalog"))
        ctx.options.update(options(facts) if callable(options) else options or {})
    with api_client.applied_environment(ctx.client_env):
        rows = diagnose(ctx, checks)
    header = "doctor of %s (%s)" % (ctx.env, ctx.project or "no project")
    return {
        "rows": [r.as_dict() for r in rows],
        "lines": [header, *render(rows)],
        "verdict": verdict(rows, strict),
        "requests": getattr(ctx.api, "requests_sent", 0),
        "secrets": sorted(ctx.secrets),
    }
