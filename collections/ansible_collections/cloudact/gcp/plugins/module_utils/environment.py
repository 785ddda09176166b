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
variables that point Google clients at it, its `keys.json` the key file it issued per hosted
project, its `ready.json` the server's proxy URL, whose `/_localcloud/health` answers while it
runs. Nothing here imports localcloud.

REHEARSE=1 (`rehearsing`) runs any inventory, unchanged, against localcloud's copy of its project:
`client_environment` is the one place that decides which runs get localcloud's client environment
and which key: a localcloud inventory always, any other only under REHEARSE=1, and then with the
issued key of the inventory's own project, never the local one. Nothing else changes.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.libraries import load_yaml

DEFAULTS_FILE = Path("roles/cloudact_env/defaults/main.yml")
ENVIRONMENT_WORDS = ("local", "staging", "production")
STATE_DIR_VARIABLE = "LOCALCLOUD_STATE_DIR"
REHEARSE_VARIABLE = "REHEARSE"
KEY_VARIABLE = "GCP_SERVICE_ACCOUNT_FILE"


ALIASES_FACT = "cloudact_env_aliases"


def environments(root):
    """The environments: one per inventories/<env>/hosts.yml."""
    return sorted(p.parent.name for p in (Path(root) / "inventories").glob("*/hosts.yml"))


def aliases(root):
    """{other word: environment}: the words an inventory answers to besides its own name
    (`cloudact_env_aliases`; test and stage are one environment, so stage answers to test)."""
    found = {}
    for env in environments(root):
        for path in _vars_files(Path(root) / "inventories" / env / "group_vars", "all"):
            for word in read_plain(path).get(ALIASES_FACT) or []:
                found[str(word)] = env
    return found


def valid_words(root):
    """'local, prod, stage, test (= stage)' for messages."""
    words = environments(root) + ["%s (= %s)" % (w, e) for w, e in sorted(aliases(root).items())]
    return ", ".join(sorted(words))


def check_environment(name, root, inventory=None):
    """The environment `name` is (an alias gives its environment), or InputError naming it and the valid ones.

    `inventory`: a play's inventory source names, shown when the play has no cloudact_env (the
    play's wording, with the -i hint); the CLIs name the ENV word they were given.
    """
    if name in environments(root):
        return name
    other = aliases(root).get(name)
    if other:
        return other
    valid = valid_words(root)
    if inventory is None:
        raise InputError("unknown environment %r: valid environments are %s" % (name, valid))
    raise InputError(
        "unknown environment %s: valid environments are %s (use -i inventories/<env>)"
        % (shlex.quote(name or inventory), valid)
    )


def alias_note(name, root):
    """'test is stage (cloudact-testing-1)' when `name` is another word for an environment, else ''."""
    env = check_environment(name, root)
    if env == name:
        return ""
    return "%s is %s (%s)" % (name, env, read_facts(env, root).get("cloudact_gcp_project") or "?")


def identity(facts, root):
    """What makes an environment's resources its own: (project, region, job names)."""
    catalog_file = Path(root) / (facts.get("cloudact_catalog_file") or "catalog/jobs.yml")
    try:
        data = load_yaml(catalog_file.read_text()) or {}
    except OSError:
        data = {}
    names = tuple(sorted(str(j.get("name")) for j in data.get("jobs") or [] if isinstance(j, dict)))
    return (facts.get("cloudact_gcp_project") or "", facts.get("cloudact_gcp_region") or "", names)


def check_distinct(root):
    """InputError when two inventories resolve to the same project, region and job names: they would
    converge, run and prune the same resources (give one a project of its own, or make it an alias
    with cloudact_env_aliases)."""
    seen = {}
    for env in environments(root):
        key = identity(read_facts(env, root, distinct=False), root)
        if key in seen:
            raise InputError(
                "inventories/%s and inventories/%s resolve to the same project %s, region %s and job "
                "names: they would overwrite each other's jobs; give one a project of its own, or make "
                "one an alias of the other (%s: [%s] in inventories/%s/group_vars/all/)"
                % (seen[key], env, key[0], key[1], ALIASES_FACT, env, seen[key])
            )
        seen[key] = env


def read_plain(path):
    data = load_yaml(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise InputError("%s: expected a mapping of variables" % path)
    return _check_plain(data, path)


def _check_plain(data, path):
    for key, value in data.items():
        if "{{" in json.dumps(value) or "{%" in json.dumps(value):
            raise InputError(
                "%s: %s holds a Jinja template; inventories hold plain values (an empty value is derived)"
                % (path, key)
            )
    return data


VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")  # what Ansible's vars plugin tries, in order


def _vars_files(base, name):
    """The files Ansible's host_group_vars plugin reads for `name` under `base` (group_vars/ or
    host_vars/), as its DataLoader.find_vars_files finds them: the first of `<name>` (a directory, or
    a file), `<name>.yml`, `.yaml`, `.json` that exists; a directory's files in sorted order,
    subdirectories (without an extension) recursively, hidden and backup files skipped."""
    for ext in VARS_EXTENSIONS:
        path = base / (name + ext)
        if path.is_dir():
            return _dir_files(path)
        if path.exists():
            return [path]
    return []


def _dir_files(folder):
    found = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.name.endswith("~"):
            continue
        if path.is_dir() and not path.suffix:
            found += _dir_files(path)
        elif path.is_file() and path.suffix in VARS_EXTENSIONS:
            found.append(path)
    return found


def _inventory_file_vars(hosts_file):
    """(all's vars, localhost's vars) of an inventory's hosts.yml. The toolkit's plays run on localhost
    in the group all; other groups are refused, naming the file (their precedence is not modelled)."""
    data = load_yaml(hosts_file.read_text()) or {}
    group = (data or {}).get("all") or {}
    others = sorted(set(data) - {"all"}) + sorted(group.get("children") or [])
    if others:
        raise InputError(
            "%s: group(s) %s: the toolkit's inventories hold localhost in the group all only"
            % (hosts_file, ", ".join(others))
        )
    return dict(group.get("vars") or {}), dict((group.get("hosts") or {}).get("localhost") or {})


def read_facts(name, root, distinct=True):
    """The plain facts of one environment (an alias reads its environment's), with Ansible's variable
    precedence for a play on localhost, lowest first: the cloudact_env role's defaults, the inventory
    file's group vars (all), group_vars/all, the inventory file's host vars (localhost),
    host_vars/localhost (-e extra vars come last, from the caller). Only cloudact_* variables are
    facts. tests/unit/test_environment_precedence.py compares the result with Ansible's own
    VariableManager over the same inventory. `distinct`: first refuse inventories that overlap."""
    root = Path(root)
    name = check_environment(name, root)
    if distinct:
        check_distinct(root)
    inventory = root / "inventories" / name
    group, host = _inventory_file_vars(inventory / "hosts.yml")
    layers = [read_plain(root / DEFAULTS_FILE), group]
    layers += [read_plain(p) for p in _vars_files(inventory / "group_vars", "all")]
    layers.append(host)
    layers += [read_plain(p) for p in _vars_files(inventory / "host_vars", "localhost")]
    merged = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if str(k).startswith("cloudact_")})
    _check_plain(merged, inventory / "hosts.yml")
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
        "cloudact_trigger_account": facts.get("cloudact_trigger_account")
        or "cloudact-scheduler@%s.iam.gserviceaccount.com" % project,
        "cloudact_api_service": facts.get("cloudact_api_service") or "cloudact-api-service-%s" % suffix,
        "cloudact_image_registry": registry,
        "cloudact_image_repository": repository,
        "cloudact_image": facts.get("cloudact_image")
        or ":".join(p for p in (repository, facts.get("cloudact_image_tag") or "") if p),
        "cloudact_build_bucket": facts.get("cloudact_build_bucket") or "%s_cloudbuild" % project,
        "cloudact_triggers_run_url": facts.get("cloudact_triggers_run_url")
        or "https://%s-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/%s/jobs" % (region, project),
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


def rehearsing(environ=None):
    """Whether REHEARSE=1 (or true/yes) asks for a rehearsal on localcloud."""
    environ = os.environ if environ is None else environ
    return (environ.get(REHEARSE_VARIABLE) or "").strip().lower() in ("1", "true", "yes")


def client_environment(root, facts, environ=None):
    """(client env, localcloud state or None): what points this run's Google clients at localcloud.

    A localcloud inventory (cloudact_localcloud) gets localcloud's client-env.json as it is. Any
    other inventory gets it only under REHEARSE=1, with the key localcloud issued for the
    inventory's project (keys.json) in place of the local one; InputError when localcloud hosts
    no copy of that project. Otherwise ({}, None): a stage or prod run never sees localcloud.
    The state says `rehearse` and, for a rehearsal, `key_project`.
    """
    local = bool(facts.get("cloudact_localcloud"))
    rehearse = not local and rehearsing(environ)
    if not local and not rehearse:
        return {}, None
    state = localcloud_state(root, environ=environ)
    state["rehearse"] = rehearse
    env = dict(state["env"])
    if rehearse:
        project = facts.get("cloudact_gcp_project") or ""
        env.pop(KEY_VARIABLE, None)  # never the local project's key
        keys = _read_json(Path(state["state_dir"]) / "keys.json")
        if state["up"] and project not in keys:
            raise InputError(
                "REHEARSE=1: localcloud (%s) hosts no copy of project %r (it hosts %s)"
                % (state["state_dir"], project, ", ".join(sorted(keys)) or "none: restart it")
            )
        if project in keys:
            env[KEY_VARIABLE] = keys[project]
            state["key_project"] = project
        state["env"] = env
    return env, state


def _read_json(path):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def credentials_path(facts, client_env, environ=None, rehearse=False):
    """The key file: the inventory's, localcloud's issued key, then $GCP_SERVICE_ACCOUNT_FILE; '' for ADC.

    In a rehearsal only localcloud's key of the project counts (never ADC, an inventory's real key
    or the caller's $GCP_SERVICE_ACCOUNT_FILE): InputError when there is none.
    """
    environ = os.environ if environ is None else environ
    if rehearse:
        path = (client_env or {}).get(KEY_VARIABLE) or ""
        if not path:
            raise InputError(
                "REHEARSE=1: no key of project %r from localcloud (is it up? `make local-up`)"
                % (facts.get("cloudact_gcp_project") or "")
            )
        return path
    return (
        facts.get("cloudact_credentials_file")
        or (client_env or {}).get(KEY_VARIABLE)
        or environ.get(KEY_VARIABLE)
        or ""
    )


def run_credentials(facts, client_env, state, root, environ=None):
    """The credentials of this run, chosen and checked once for the plays and the CLIs.

    {path, kind, file, check}: kind `serviceaccount` with the checked key `file`, or `application`
    (default credentials) when no key is named. InputError, one line, when localcloud (ENV=local or
    a rehearsal) does not answer or the key is missing, not a key, or of another project.
    """
    from ansible_collections.cloudact.gcp.plugins.module_utils.credentials import check_key

    env = facts.get("cloudact_env")
    rehearse = bool(state and state.get("rehearse"))
    if state is not None and not state.get("up"):
        raise InputError(
            "%sENV=%s: %s; start it with `make local-up`"
            % ("REHEARSE=1 " if rehearse else "", env, state.get("reason"))
        )
    path = credentials_path(facts, client_env, environ, rehearse=rehearse)
    if not path:
        return {"path": "", "kind": "application", "file": None, "check": None}
    checked = check_key(path, facts.get("cloudact_gcp_project"), root=str(root))
    if not checked["ok"]:
        raise InputError("ENV=%s: %s" % (env, checked["error"]))
    return {"path": path, "kind": "serviceaccount", "file": checked["path"], "check": checked}


# ---- one environment, built once per run ------------------------------------------------------------

FACT = "cloudact_environment_model"  # the play's fact that carries the built environment to every action


class Environment:
    """One environment of one run: its facts (plain and derived), the catalog, localcloud's client
    environment, the credentials and the client. Built once:

    - in a play by the `cloudact.gcp.env_facts` action, from the play's variables (so Ansible's own
      precedence made them: the cloudact_env role's defaults, the inventory, -e); it publishes the
      environment as one fact (FACT, `to_fact`), and every later action rebuilds the object from it
      (`from_fact`) without composing anything; `cloudact.gcp.preflight` adds the credentials;
    - by a CLI (toolkit.live_status, toolkit.ask, the doctor) with `load`, which reads the same files
      with the same precedence (the defaults, then the inventory's group_vars/all files in name order,
      then the extra variables; tests/unit/test_environment_precedence.py compares it with Ansible's).

    The client is made on first use, one per process; its token is the run's (module_utils/tokens.py).
    """

    def __init__(self, root, facts, catalog, client_env, localcloud=None, credentials=None, word=""):
        self.root = Path(root)
        self.facts = facts
        self.catalog = catalog
        self.client_env = dict(client_env or {})
        self.localcloud = localcloud
        self.credentials = credentials
        self.word = word or facts.get("cloudact_env") or ""
        self._client = None

    # ---- building it ----------------------------------------------------------------------------

    @classmethod
    def compose(cls, facts, root, word="", inventory=None, environ=None):
        """The environment of these plain facts: the word checked, the derived facts, the facts
        checked, the catalog validated against the secrets, localcloud's client environment."""
        from ansible_collections.cloudact.gcp.plugins.module_utils import catalog

        root = Path(root)
        check_environment(facts.get("cloudact_env"), root, inventory=inventory)
        facts = dict(facts)
        facts.update(derive(facts))
        check_facts(facts)
        parsed = catalog.load_catalog(
            root / facts["cloudact_catalog_file"], root=root, secrets=set(facts["cloudact_secrets"])
        )
        client_env, state = client_environment(root, facts, environ)
        return cls(root, facts, parsed.as_dict(), client_env, state, word=word)

    @classmethod
    def load(cls, word, root, extra_vars=None, environ=None):
        """For a CLI: the environment an ENV word names (an alias gives its environment), with the
        -e of ANSIBLE_ARGS over the inventory."""
        name = check_environment(word, root)
        facts = read_facts(name, root)
        facts.update(extra_vars or {})
        return cls.compose(facts, root, word=word, environ=environ)

    @classmethod
    def from_fact(cls, fact):
        """The environment a play's env_facts (and preflight) built, from FACT."""
        if not isinstance(fact, dict) or "facts" not in fact:
            raise InputError(
                "%s is not set: a play runs cloudact.gcp.env_facts (the cloudact_env role) first" % FACT
            )
        return cls(
            fact["root"],
            dict(fact["facts"]),
            fact["catalog"],
            fact.get("client_env") or {},
            fact.get("localcloud"),
            fact.get("credentials"),
            word=fact.get("word") or "",
        )

    def to_fact(self):
        return {
            "root": str(self.root),
            "word": self.word,
            "facts": self.facts,
            "catalog": self.catalog,
            "client_env": self.client_env,
            "localcloud": self.localcloud,
            "credentials": self.credentials,
        }

    # ---- what it holds --------------------------------------------------------------------------

    @property
    def name(self):
        return self.facts["cloudact_env"]

    @property
    def project(self):
        return self.facts["cloudact_gcp_project"]

    @property
    def region(self):
        return self.facts["cloudact_gcp_region"]

    @property
    def jobs(self):
        return self.catalog["jobs"]

    def resolve(self, word, scheduled=False):
        """A user's job word (shortcut, alias, full name) -> the catalog job (a dict); one-line InputError."""
        from ansible_collections.cloudact.gcp.plugins.module_utils import catalog

        parsed = catalog.from_dict(self.catalog)
        job = parsed.resolve(word)
        if scheduled and not job.scheduled:
            names = ", ".join(j.shortcut for j in parsed.scheduled)
            raise InputError(
                "job %r has no trigger (it runs by hand); jobs with one: %s" % (job.shortcut, names)
            )
        return job.as_dict()

    def get(self, key, default=None):
        return self.facts.get(key, default)

    def image_facts(self):
        """The facts the image model reads (module_utils/image.py), with the checkout."""
        return dict(self.facts, cloudact_root=str(self.root))

    def choose_credentials(self, environ=None):
        """{path, kind, file, check}: chosen and checked once (run_credentials), then kept."""
        if self.credentials is None:
            self.credentials = run_credentials(
                self.facts, self.client_env, self.localcloud, self.root, environ
            )
        return self.credentials

    def client(self):
        """The run's client in this process (made once), with the chosen credentials and the run's
        shared token; a CLI applies `client_env` to its process first (`apply`)."""
        if self._client is None:
            from ansible_collections.cloudact.gcp.plugins.module_utils import client as api_client

            chosen = self.choose_credentials()
            self._client = api_client.Client(lambda: api_client.credentials(chosen["kind"], chosen["file"]))
        return self._client

    def apply(self, environ=None):
        """Point this process's clients at localcloud when the run is local or a rehearsal (a CLI does
        what a play's `environment:` does for its tasks)."""
        if self.localcloud is not None:
            (os.environ if environ is None else environ).update(self.client_env)
