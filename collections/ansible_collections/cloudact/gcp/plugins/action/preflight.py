# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.preflight: the checks before any change, and the auth facts of the play's modules."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import (
    access,
    alerts,
    cloud_run,
    environment,
    iam_policy,
    monitoring,
    secret_manager,
)
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction, display


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(
        check_secrets=dict(type="bool", default=True),
        needs=dict(type="str", default="", choices=["", *sorted(access.NEEDS)]),
        api_url=dict(type="bool", default=False),
    )

    def act(self, args):
        built = self.environment()
        env, project = built.name, built.project
        chosen = built.choose_credentials()  # once per run: the later actions read it from the fact
        facts = {
            "cloudact_credentials_path": chosen["path"],
            "cloudact_auth_kind": chosen["kind"],
            "cloudact_auth_file": chosen["file"],
            environment.FACT: built.to_fact(),
        }
        if chosen["check"]:
            facts["cloudact_credentials_check"] = chosen["check"]
        api = built.client()
        out = {"changed": False, "ansible_facts": facts}
        if args["needs"]:
            self.check_permissions(api, project, args["needs"], (chosen["check"] or {}).get("client_email"))
        if args["needs"] == "converge":
            self.check_channel_secrets(api, built, (chosen["check"] or {}).get("client_email"))
        if args["check_secrets"]:
            secrets = built.get("cloudact_secrets")
            keys = sorted({k for job in built.jobs for k in job["secrets"]})
            names = sorted(secrets[k]["secret"] for k in keys)
            missing = [s["name"] for s in secret_manager.existing(api, project, names) if not s["exists"]]
            if missing and not self.check_mode:
                raise InputError(secret_manager.missing_message(missing, project))
            if missing:
                display.warning(secret_manager.missing_message(missing, project))
        url = built.get("cloudact_api_url") or ""
        if not args["api_url"]:  # this play never calls the API: its Cloud Run service need not exist
            return out
        if not url:
            service = built.get("cloudact_api_service")
            region = built.region
            exists, url, _urls = cloud_run.service_urls(api, project, region, service)
            if not url:
                raise InputError(
                    "ENV=%s: cloudact_api_url is empty and Cloud Run service %s %s in %s/%s: set "
                    "cloudact_api_url in inventories/%s/group_vars/all/"
                    % (env, service, "has no URL" if exists else "does not exist", project, region, env)
                )
            self.say("API URL discovered from Cloud Run service %s: %s" % (service, url))
        facts["cloudact_api_url_effective"] = url
        return out

    def check_channel_secrets(self, api, built, email):
        """The alert channels' secrets exist and the operator may read them (secretmanager.versions.access,
        testIamPermissions on each: nothing is accessed here), before any change."""
        channels = [c for c in built.get("cloudact_alert_channels") or [] if isinstance(c, dict)]
        refs = [ref for _channel, _label, ref in alerts.secret_refs(channels, built.project)]
        problems = monitoring.secret_problems(api, refs, email or "the application default credentials")
        if problems:
            raise InputError("\n".join(problems))

    def check_permissions(self, api, project, needs, email):
        """The operator's own permissions for what the play will do, before any change."""
        wanted = set(access.NEEDS[needs])
        missing = wanted - iam_policy.test_permissions(api, project, wanted)
        if missing:
            who = email or "the application default credentials"
            raise InputError("\n".join(access.lacking_lines(who, project, missing)))
