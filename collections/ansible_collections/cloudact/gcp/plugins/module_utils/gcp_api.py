# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the cloudact.gcp modules: the module's client, and normalise + compare.

Auth comes from google.cloud's GcpSession/GcpModule (same auth kinds, key files and GCP_* env
fallbacks); the calls go through the collection's one client (module_utils/client.py: one
authorised session per module run, api-core's retry with Retry-After, the pager, the LRO waiter).
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import tokens
from ansible_collections.cloudact.gcp.plugins.module_utils.client import (  # noqa: F401 - re-exported
    DEFAULT_DEADLINE,
    SCOPES,
    ApiError,
    Client,
    error_message,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import (  # noqa: F401 - re-exported
    duration,
    duration_seconds,
)
from ansible_collections.google.cloud.plugins.module_utils.gcp_utils import GcpModule, GcpSession

DEFAULT_SCOPES = list(SCOPES)

# Options every cloudact.gcp module adds to google.cloud's auth options.
COMMON_ARGS = dict(
    request_deadline=dict(type="float", default=DEFAULT_DEADLINE),
)


# Set by the collection's controller-side action (plugin_utils/controller.py) while it runs a
# module's main() in ansible-playbook's own process: builds the module object from the task's
# args instead of the AnsiballZ payload. Empty in a module's own process.
IN_PROCESS = []


def gcp_module(argument_spec, **kwargs):
    """A GcpModule with the common options; project is required for every call we make."""
    spec = dict(COMMON_ARGS)
    spec.update(argument_spec)
    if IN_PROCESS:
        return prepared(IN_PROCESS[-1](spec, kwargs))
    return prepared(GcpModule(argument_spec=spec, **kwargs))


def prepared(mod):
    """The module with the default scope, or failed when no project is set (a module or its action)."""
    if not mod.params.get("scopes"):
        mod.params["scopes"] = list(DEFAULT_SCOPES)
    if not mod.params.get("project"):
        mod.fail_json(msg="project is required (set it, module_defaults or GCP_PROJECT)")
    return mod


class GcpApi(Client):
    """The client of one module run: credentials and headers as google.cloud's GcpSession makes them."""

    def __init__(self, mod, product, **kwargs):
        gcp = GcpSession(mod, product)  # validates the auth options the way google.cloud does
        params = mod.params

        def made():  # on the first Google call (a plain call needs none); the run's shared token
            creds = gcp._credentials()
            if params.get("auth_kind") != "serviceaccount":
                return creds
            path = params.get("service_account_file") or ""
            return tokens.shared(creds, path, params.get("scopes") or SCOPES, tokens.state_dir())

        super().__init__(
            credentials=made,
            deadline=mod.params.get("request_deadline") or DEFAULT_DEADLINE,
            headers=gcp._headers(),
            **kwargs,
        )
        self.module = mod


# ---- normalise + compare ------------------------------------------------------------------------------


def cpu(value):
    """ "1", 1, "1000m" -> "1"; "500m" stays."""
    text = str(value).strip()
    if text.endswith("m") and text[:-1].isdigit():
        milli = int(text[:-1])
        return str(milli // 1000) if milli % 1000 == 0 else text
    return text


def memory(value):
    """ "2048Mi" -> "2Gi"; "512Mi" stays; "2G" stays (a different unit, compared as given)."""
    text = str(value).strip()
    if text.endswith("Mi") and text[:-2].isdigit() and int(text[:-2]) % 1024 == 0:
        return "%dGi" % (int(text[:-2]) // 1024)
    return text


def changed_fields(before, after):
    """Keys whose values differ between two flat dicts of owned fields, in after's order."""
    keys = list(after) + [k for k in before if k not in after]
    return [k for k in keys if before.get(k) != after.get(k)]


def short_name(name):
    return (name or "").rsplit("/", 1)[-1]


def validate_entries(spec, entries, kind):
    """Validate each entry of a batch option against the single-resource spec.

    Returns the validated entries; raises ValueError naming the entry and its problems.
    """
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    validator = ArgumentSpecValidator(spec)
    out = []
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            raise ValueError("%s[%d]: expected a mapping of options, got %r" % (kind, index, entry))
        result = validator.validate(entry)
        if result.error_messages:
            raise ValueError(
                "%s[%d] (%s): %s" % (kind, index, entry.get("name", "?"), "; ".join(result.error_messages))
            )
        out.append(result.validated_parameters)
    names = [e["name"] for e in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError("%s: %s listed more than once" % (kind, ", ".join(dupes)))
    return out
