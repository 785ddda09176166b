# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor's first checks: the environment word, localcloud (ENV=local, REHEARSE=1), the credentials.

They also prepare the Context the other checks read: the facts (module_utils/environment.py, the
same model the plays and CLIs use), localcloud's client environment, and the client, made only
when the credentials check out; otherwise `ctx.blocked` says why the cloud is not asked.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ansible_collections.cloudact.gcp.plugins.module_utils import catalog, environment
from ansible_collections.cloudact.gcp.plugins.module_utils import client as api_client
from ansible_collections.cloudact.gcp.plugins.module_utils.credentials import check_key
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import FAIL, OK, Context, Row, Skip, first
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError


def load_facts(ctx: Context, overrides: dict | None = None) -> None:
    """ctx.facts from the inventory (and the play's own values of it, e.g. -e); None for a bad word."""
    try:
        environment.check_environment(ctx.env, ctx.root)
        facts = environment.read_facts(ctx.env, ctx.root)
    except InputError:
        ctx.facts = None
        return
    facts.update({k: v for k, v in (overrides or {}).items() if v is not None})
    facts.update(environment.derive(facts))
    ctx.facts = facts
    try:
        ctx.client_env, ctx.localcloud = environment.client_environment(ctx.root, facts)
    except InputError as exc:
        ctx.cache["localcloud_error"] = str(exc)
    if "catalog" not in ctx.options:
        try:
            parsed = catalog.load_catalog(
                Path(ctx.root) / facts["cloudact_catalog_file"],
                root=Path(ctx.root),
                secrets=set(facts["cloudact_secrets"]),
            )
            ctx.options["catalog"] = parsed.as_dict()
        except InputError as exc:
            ctx.cache["catalog_error"] = str(exc)


def check_environment(ctx: Context) -> Row:
    if ctx.facts is None:
        words = sorted([*environment.environments(ctx.root), *environment.aliases(ctx.root)])
        return Row(
            "environment",
            FAIL,
            "unknown environment %r: valid environments are %s"
            % (ctx.env, environment.valid_words(ctx.root)),
            "make doctor ENV=<%s>" % "|".join(words),
        )
    try:
        environment.check_facts(ctx.facts)
    except InputError as exc:
        ctx.blocked = "the inventory's facts are not valid"
        return Row("environment", FAIL, str(exc), "edit inventories/%s/group_vars/all/env.yml" % ctx.env)
    if ctx.cache.get("catalog_error"):
        ctx.blocked = "the job catalog is not valid"
        return Row(
            "environment", FAIL, ctx.cache["catalog_error"], "edit %s" % ctx.facts["cloudact_catalog_file"]
        )
    return Row(
        "environment",
        OK,
        "%s: project %s, region %s" % (ctx.env, ctx.project, ctx.region),
    )


def check_localcloud(ctx: Context) -> list[Row]:
    """ENV=local (or REHEARSE=1): localcloud answers; also sets the client environment of the run."""
    if ctx.facts is None:
        return []
    if ctx.cache.get("localcloud_error"):
        ctx.blocked = "localcloud hosts no copy of %s" % ctx.project
        return [Row("localcloud", FAIL, ctx.cache["localcloud_error"], "make local-reset && make local-up")]
    state = ctx.localcloud
    if state is None:
        return []  # a real environment: nothing of localcloud's is used
    if not state["up"]:
        ctx.blocked = "localcloud is not running"
        return [Row("localcloud", FAIL, state["reason"], "make local-up")]
    what = "REHEARSE=1: copy of %s" % ctx.project if state.get("rehearse") else "up"
    return [Row("localcloud", OK, "%s at %s (%s)" % (what, state["proxy_url"], state["state_dir"]))]


def _key_fix(ctx: Context) -> str:
    """How to point this environment at a key of its project, where the key in use came from
    (environment.credentials_path: the inventory's, localcloud's issued key, $GCP_SERVICE_ACCOUNT_FILE)."""
    if ctx.facts.get("cloudact_credentials_file"):
        return "set cloudact_credentials_file to a key of project %s in inventories/%s/group_vars/all/" % (
            ctx.project,
            ctx.env,
        )
    if ctx.client_env.get(environment.KEY_VARIABLE):
        return "make local-reset && make local-up (localcloud issues the key of %s again)" % ctx.project
    return "export %s=<a key of project %s>" % (environment.KEY_VARIABLE, ctx.project)


def _new_key_fix(ctx: Context, path: str) -> str:
    account = ctx.facts.get("cloudact_service_account")
    return "gcloud iam service-accounts keys create %s --iam-account=%s --project=%s" % (
        shlex.quote(path),
        account,
        ctx.project,
    )


def check_credentials(ctx: Context) -> Row:
    """The key file (~ expanded), a service-account key of the environment's project, a token, the account."""
    if ctx.facts is None or ctx.blocked:
        raise Skip(ctx.blocked or "unknown environment %r" % ctx.env)
    rehearse = bool((ctx.localcloud or {}).get("rehearse"))
    try:
        path = environment.credentials_path(ctx.facts, ctx.client_env, rehearse=rehearse)
    except InputError as exc:
        ctx.blocked = "no credentials"
        return Row("credentials", FAIL, str(exc), "make local-up")
    if path:
        checked = check_key(path, ctx.project, root=ctx.root)
        if not checked["ok"]:
            ctx.blocked = "the credentials are not usable"
            if not Path(checked["path"]).is_file():
                fix = _new_key_fix(ctx, checked["path"])
            else:
                fix = _key_fix(ctx)
            return Row("credentials", FAIL, checked["error"], fix)
        kind, file, what = "serviceaccount", checked["path"], "key %s" % checked["path"]
    else:
        kind, file, what = "application", None, "application default credentials"
    api = api_client.Client(lambda: api_client.credentials(kind, file))
    try:
        account = token(api)
    except Exception as exc:  # noqa: BLE001 - google.auth's refusals have no common base we can name
        ctx.blocked = "the credentials get no token"
        fix = (
            _new_key_fix(ctx, file)
            if file
            else "gcloud auth application-default login (or export %s=<a key of project %s>)"
            % (environment.KEY_VARIABLE, ctx.project)
        )
        return Row("credentials", FAIL, "%s: no access token: %s" % (what, first(exc)), fix)
    ctx.api = api
    ctx.cache["account"] = account
    return Row("credentials", OK, "%s acts as %s; token granted" % (what, account))


def token(api) -> str:
    """Ask the token endpoint for an access token now (a read); the account the credentials act as."""
    from google.auth.transport.requests import Request

    creds = api.session.credentials
    creds.refresh(Request(session=api.plain))
    return (
        getattr(creds, "service_account_email", None) or getattr(creds, "account", None) or "a user account"
    )
