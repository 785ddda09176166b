# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.preflight: the checks before any change, and the auth facts of the play's modules."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import client as api_client
from ansible_collections.cloudact.gcp.plugins.module_utils import (
    cloud_run,
    credentials,
    environment,
    secret_manager,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction, display


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(check_secrets=dict(type="bool", default=True))

    def act(self, args):
        env = self.var("cloudact_env")
        project = self.var("cloudact_gcp_project")
        client_env = self.var("cloudact_client_env", {}) or {}
        state = self.var("cloudact_localcloud_state") or {}
        rehearse = bool(state.get("rehearse"))
        if self.var("cloudact_localcloud") or rehearse:
            if not state.get("up"):
                raise InputError(
                    "%sENV=%s: %s; start it with `make local-up`"
                    % ("REHEARSE=1 " if rehearse else "", env, state.get("reason"))
                )
        facts = {}
        path = environment.credentials_path(
            {
                "cloudact_credentials_file": self.var("cloudact_credentials_file"),
                "cloudact_gcp_project": project,
            },
            client_env,
            rehearse=rehearse,
        )
        facts["cloudact_credentials_path"] = path
        facts["cloudact_auth_kind"] = "application"
        facts["cloudact_auth_file"] = None
        if path:
            checked = credentials.check_key(path, project, root=self.var("cloudact_root"))
            if not checked["ok"]:
                raise InputError("ENV=%s: %s" % (env, checked["error"]))
            facts.update(
                cloudact_credentials_check=checked,
                cloudact_auth_kind="serviceaccount",
                cloudact_auth_file=checked["path"],
            )
        api = api_client.Client(
            lambda: api_client.credentials(facts["cloudact_auth_kind"], facts["cloudact_auth_file"])
        )  # the facts this call sets: self.client() reads them from the play from the next task on
        out = {"changed": False, "ansible_facts": facts}
        if args["check_secrets"]:
            secrets = self.var("cloudact_secrets")
            keys = sorted({k for job in self.var("cloudact_catalog")["jobs"] for k in job["secrets"]})
            names = sorted(secrets[k]["secret"] for k in keys)
            missing = [s["name"] for s in secret_manager.existing(api, project, names) if not s["exists"]]
            if missing and not self.check_mode:
                raise InputError(secret_manager.missing_message(missing, project))
            if missing:
                display.warning(secret_manager.missing_message(missing, project))
        url = self.var("cloudact_api_url") or ""
        if not url:
            service = self.var("cloudact_api_service")
            region = self.var("cloudact_gcp_region")
            exists, url, _ = cloud_run.service_urls(api, project, region, service)
            if not url:
                raise InputError(
                    "ENV=%s: cloudact_api_url is empty and Cloud Run service %s %s in %s/%s: set "
                    "cloudact_api_url in inventories/%s/group_vars/all/"
                    % (env, service, "has no URL" if exists else "does not exist", project, region, env)
                )
            self.say("API URL discovered from Cloud Run service %s: %s" % (service, url))
        facts["cloudact_api_url_effective"] = url
        return out
