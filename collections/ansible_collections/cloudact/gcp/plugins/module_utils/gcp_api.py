# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real modules' side of the collection (the *_info modules Ansible runs as modules): their
options and their client.

Auth comes from google.cloud's GcpSession/GcpModule (same auth kinds, key files and GCP_* env
fallbacks: the modules of the `gcp` action group take google.cloud's auth options); the calls go
through the collection's one client (module_utils/client.py: the one retry rule, the pager, the LRO
waiter) with the run's shared token (module_utils/tokens.py). The controller-side action plugins do
not come here: they use the run's environment (module_utils/environment.py) and its client.
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import tokens
from ansible_collections.cloudact.gcp.plugins.module_utils.client import (
    DEFAULT_DEADLINE,
    SCOPES,
    ApiError,
    Client,
    error_message,
)
from ansible_collections.google.cloud.plugins.module_utils.gcp_utils import GcpModule, GcpSession

# What a real module imports from here: its options, its client, and the client's error and its message.
__all__ = ["ApiError", "GcpApi", "error_message", "gcp_module"]

DEFAULT_SCOPES = list(SCOPES)

# Options every cloudact.gcp module adds to google.cloud's auth options.
COMMON_ARGS = dict(
    request_deadline=dict(type="float", default=DEFAULT_DEADLINE),
)


def gcp_module(argument_spec, **kwargs):
    """A GcpModule with the common options; project is required for every call we make."""
    spec = dict(COMMON_ARGS)
    spec.update(argument_spec)
    mod = GcpModule(argument_spec=spec, **kwargs)
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
