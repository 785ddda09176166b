# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Environments: the inventories' plain facts, the values derived from them, and localcloud's contract.

An environment is `inventories/<env>/` over the shared defaults in
`roles/cloudact_env/defaults/main.yml`. Both hold plain data only, no Jinja, so Ansible (role
defaults, then the inventory's group_vars) and the toolkit CLIs (`load_environment`) read the
same values the same way. What follows from them (secret names, the service account, the image,
the API's Cloud Run service) is derived here, once, by `derive`; an inventory may still set any
of those values itself, and an empty value means "derive it".

localcloud is found through its documented contract (localcloud/README.md, "Clients"): the state
directory is $LOCALCLOUD_STATE_DIR, else `<checkout>/.localcloud`; its `client-env.json` holds the
variables that point Google clients at it, its `ready.json` the server's proxy URL, whose
`/_localcloud/health` answers while it runs. Nothing here imports localcloud.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import yaml
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

DEFAULTS_FILE = Path("roles/cloudact_env/defaults/main.yml")
ENVIRONMENT_WORDS = ("local", "staging", "production")
STATE_DIR_VARIABLE = "LOCALCLOUD_STATE_DIR"


def environments(root):
    """The valid environment names: one per inventories/<env>/hosts.yml."""
    return sorted(p.parent.name for p in (Path(root) / "inventories").glob("*/hosts.yml"))


def check_environment(name, root, inventory=None):
    """`name`, or InputError naming it and the valid ones.

    `inventory`: a play's inventory source names, shown when the play has no cloudact_env (the
    play's wording, with the -i hint); the CLIs name the ENV word they were given.
    """
    valid = ", ".join(environments(root))
    if name in environments(root):
        return name
    if inventory is None:
        raise InputError("unknown environment %r: valid environments are %s" % (name, valid))
    raise InputError(
        "unknown environment %s: valid environments are %s (use -i inventories/<env>)"
        % (shlex.quote(name or inventory), valid)
    )


def read_plain(path):
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise InputError("%s: expected a mapping of variables" % path)
    for key, value in data.items():
        if "{{" in json.dumps(value) or "{%" in json.dumps(value):
            raise InputError(
                "%s: %s holds a Jinja template; inventories hold plain values (an empty value is derived)"
                % (path, key)
            )
    return data


def read_facts(name, root):
    """The plain facts of one environment: the shared defaults, then its group_vars, file by file."""
    root = Path(root)
    check_environment(name, root)
    merged = read_plain(root / DEFAULTS_FILE)
    for path in sorted((root / "inventories" / name / "group_vars" / "all").glob("*.yml")):
        merged.update(read_plain(path))
    return merged


def derive(facts):
    """The derived facts: each one the inventory left empty, from the plain facts it set."""
    project = facts.get("cloudact_gcp_project") or ""
    region = facts.get("cloudact_gcp_region") or ""
    suffix = facts.get("cloudact_secret_suffix") or ""
    suffixes = {"": suffix, "supabase": facts.get("cloudact_supabase_secret_suffix") or suffix}
    secrets = {}
    for key, entry in (facts.get("cloudact_secrets") or {}).items():
        entry = dict(entry or {})
        if not entry.get("secret"):
            entry["secret"] = "%s-%s" % (
                key.replace("_", "-"),
                suffixes.get(entry.get("suffix") or "", suffix),
            )
        entry.pop("suffix", None)
        secrets[key] = entry
    registry = facts.get("cloudact_image_registry") or "%s-docker.pkg.dev/%s/cloudact" % (region, project)
    repository = facts.get("cloudact_image_repository") or "%s/cloudact-jobs-%s" % (
        registry,
        facts.get("cloudact_env") or "",
    )
    return {
        "cloudact_supabase_secret_suffix": suffixes["supabase"],
        "cloudact_secrets": secrets,
        "cloudact_service_account": facts.get("cloudact_service_account")
        or "cloudact-jobs@%s.iam.gserviceaccount.com" % project,
        "cloudact_api_service": facts.get("cloudact_api_service") or "cloudact-api-service-%s" % suffix,
        "cloudact_image_registry": registry,
        "cloudact_image_repository": repository,
        "cloudact_image": facts.get("cloudact_image")
        or "%s:%s" % (repository, facts.get("cloudact_image_tag") or "latest"),
    }


def check_facts(facts):
    """InputError naming the inventory's bad facts (the environment word, the project, the image)."""
    env = facts.get("cloudact_env")
    if (
        facts.get("cloudact_environment") in ENVIRONMENT_WORDS
        and facts.get("cloudact_gcp_project")
        and facts.get("cloudact_image")
    ):
        return
    raise InputError(
        "inventories/%s: cloudact_environment=%r (valid: %s), cloudact_gcp_project=%r, cloudact_image=%r: "
        "set each in inventories/%s/group_vars/all/"
        % (
            env,
            facts.get("cloudact_environment") or "",
            ", ".join(ENVIRONMENT_WORDS),
            facts.get("cloudact_gcp_project") or "",
            facts.get("cloudact_image") or "",
            env,
        )
    )


def load_environment(name, root):
    """The resolved facts of one environment: plain facts plus the derived ones."""
    facts = read_facts(name, root)
    facts.update(derive(facts))
    return facts


# ---- localcloud's client contract -----------------------------------------------------------------


def state_dir(root, given=None, environ=None):
    environ = os.environ if environ is None else environ
    directory = given or environ.get(STATE_DIR_VARIABLE) or str(Path(root) / ".localcloud")
    return Path(directory).expanduser().resolve()


def localcloud_state(root, given=None, environ=None, timeout=5.0):
    """{state_dir, up, reason, proxy_url, env}: whether localcloud answers, and its client environment."""
    import requests

    directory = state_dir(root, given, environ)
    state = {"state_dir": str(directory), "up": False, "reason": "", "proxy_url": "", "env": {}}
    client_env = directory / "client-env.json"
    if client_env.is_file():
        state["env"] = json.loads(client_env.read_text())
    try:
        ready = json.loads((directory / "ready.json").read_text())
    except (OSError, ValueError):
        state["reason"] = "localcloud is not running (no %s/ready.json)" % directory
        return state
    proxy_url = ready.get("proxy_url") or ""
    state["proxy_url"] = proxy_url
    session = requests.Session()
    session.trust_env = False  # the admin port is plain HTTP on loopback, never proxied
    try:
        session.get(proxy_url.rstrip("/") + "/_localcloud/health", timeout=timeout).raise_for_status()
    except requests.RequestException as exc:
        state["reason"] = "localcloud is not running (pid %s in %s/ready.json does not answer at %s: %s)" % (
            ready.get("pid"),
            directory,
            proxy_url,
            type(exc).__name__,
        )
        return state
    state["up"] = True
    return state


def credentials_path(facts, client_env, environ=None):
    """The key file: the inventory's, localcloud's issued key, then $GCP_SERVICE_ACCOUNT_FILE; '' for ADC."""
    environ = os.environ if environ is None else environ
    return (
        facts.get("cloudact_credentials_file")
        or (client_env or {}).get("GCP_SERVICE_ACCOUNT_FILE")
        or environ.get("GCP_SERVICE_ACCOUNT_FILE")
        or ""
    )
