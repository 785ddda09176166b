# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud Monitoring v3 over REST, through the collection's one client (docs/gcp-rest.md, "Cloud Monitoring").

The calls the alerts converge, the doctor and `make incidents` make: alertPolicies and
notificationChannels (list with a filter, create, patch with updateMask, delete; a channel with
`force`), notificationChannelDescriptors.list (each type's label keys), alerts.list (incidents), and
the Secret Manager reads of the channels' secret labels.

Ownership: Monitoring has no resource-level IAM and no names of ours (the server assigns every ID), so
what the toolkit made is found by its userLabels: `managed_by=cloudact-toolkit` and `cloudact_env=<env>`
(OWNER_LABELS). A list is one call filtered by them (Google's sorting-and-filtering grammar); a resource
without both is someone else's and never touched.

Writes follow the one retry rule (module_utils/verbs.py): a create is a POST that is not safe to repeat,
so after a lost answer the caller's `look` lists the resource by its labels and adopts it only when it
is this environment's with the desired fields; a PATCH carries no etag (Monitoring has none), so it is
looked at the same way; a DELETE is resent (a 404 then means done). Google asks that writes to a
project's policies and channels be made one at a time: the converges make them in order, never at once.
"""

from __future__ import annotations

import base64

from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

BASE = "https://monitoring.googleapis.com/v3"
SECRETS = "https://secretmanager.googleapis.com/v1"
MANAGED_BY = "managed_by"
TOOLKIT = "cloudact-toolkit"
ENV_LABEL = "cloudact_env"
ACCESS = "secretmanager.versions.access"


def owner_labels(env):
    """The userLabels that mark a policy or channel as this environment's."""
    return {MANAGED_BY: TOOLKIT, ENV_LABEL: env}


def owner_filter(env, **labels):
    """`user_label.managed_by="cloudact-toolkit" AND user_label.cloudact_env="<env>"` (and more labels)."""
    pairs = dict(owner_labels(env), **labels)
    return " AND ".join('user_label.%s="%s"' % (k, v) for k, v in pairs.items())


def owner_of(resource):
    """The environment that made a policy or channel (its cloudact_env), else None (not the toolkit's)."""
    labels = (resource or {}).get("userLabels") or {}
    if labels.get(MANAGED_BY) != TOOLKIT:
        return None
    return labels.get(ENV_LABEL) or None


def check_owner(owner, what):
    """Refuse an empty owner: it would select every toolkit resource of the project (and mark none)."""
    if not owner or not str(owner).strip():
        raise InputError(
            "owner %r: an empty owner would select every %s the toolkit made in the project, of any "
            "environment; name the environment (e.g. stage)" % (owner or "", what)
        )


def project_url(project, collection):
    return "%s/projects/%s/%s" % (BASE, project, collection)


def resource_url(name):
    return "%s/%s" % (BASE, name)


def list_owned(api, project, collection, key, env, **labels):
    """Every policy or channel (`collection`: alertPolicies or notificationChannels) of this environment."""
    return api.list_all(
        project_url(project, collection),
        key,
        "%s of %s" % (collection, env),
        params={"filter": owner_filter(env, **labels)},
    )


def list_policies(api, project, env, **labels):
    return list_owned(api, project, "alertPolicies", "alertPolicies", env, **labels)


def list_channels(api, project, env, **labels):
    return list_owned(api, project, "notificationChannels", "notificationChannels", env, **labels)


def policies_using(api, project, channel):
    """Every policy of the project (anyone's) that notifies `channel` (its resource name)."""
    return api.list_all(
        project_url(project, "alertPolicies"),
        "alertPolicies",
        "alert policies using %s" % channel,
        params={"filter": 'notification_channels="%s"' % channel},
    )


def descriptors(api, project):
    """{type: [label keys]} of the project's notification channel descriptors (one list call)."""
    items = api.list_all(
        project_url(project, "notificationChannelDescriptors"),
        "channelDescriptors",
        "notification channel descriptors of %s" % project,
    )
    return {d.get("type"): [lab.get("key") for lab in d.get("labels") or []] for d in items}


def create(api, project, collection, body, what, look):
    """POST a new policy or channel; after a lost answer `look` finds it (or None: sent again)."""
    return api.request("POST", project_url(project, collection), what, json=body, look=look)


def patch(api, name, body, mask, what, look):
    """PATCH with updateMask (Monitoring's field paths, snake_case); looked at after a lost answer."""
    return api.request(
        "PATCH", resource_url(name), what, json=body, params={"updateMask": ",".join(mask)}, look=look
    )


def delete(api, name, what, force=False):
    """DELETE (a channel with `force` is also removed from the policies that name it); gone is done."""
    params = {"force": "true"} if force else None
    api.request("DELETE", resource_url(name), what, allow_missing=True, params=params)


def list_alerts(api, project, filter_text="", order_by="open_time desc"):
    """The project's alerts (incidents), newest first, matching `filter_text`."""
    params = {"orderBy": order_by}
    if filter_text:
        params["filter"] = filter_text
    return api.list_all(project_url(project, "alerts"), "alerts", "alerts of %s" % project, params=params)


# ---- the secrets behind sensitive labels ------------------------------------------------------------


def secret_ref(value, project):
    """{secret, version, name} of a label given as {secret: ID or projects/P/secrets/S, version}."""
    secret = str(value.get("secret") or "")
    version = str(value.get("version") or "latest")
    name = secret if secret.startswith("projects/") else "projects/%s/secrets/%s" % (project, secret)
    return {"secret": secret, "version": version, "name": name}


def read_secret(api, ref):
    """The value of a secret version (`ref` from secret_ref); ApiError as the API answered (404, 403)."""
    body = api.request(
        "GET",
        "%s/%s/versions/%s:access" % (SECRETS, ref["name"], ref["version"]),
        "secret %s" % ref["secret"],
    )
    return base64.b64decode(body["payload"]["data"]).decode("utf-8")


def secret_problems(api, refs, who):
    """One line per secret of `refs` that does not exist or that the caller cannot read (testIamPermissions
    of secretmanager.versions.access on each secret: a read, nothing is accessed)."""
    problems = []
    for ref in refs:
        try:
            got = api.request(
                "POST",
                "%s/%s:testIamPermissions" % (SECRETS, ref["name"]),
                "secret %s" % ref["secret"],
                json={"permissions": [ACCESS]},
                allow_missing=True,
            )
        except ApiError as exc:
            if exc.status != 403:
                raise
            got = {}
        if got is None:
            problems.append(
                "secret %s does not exist in %s: create it (gcloud secrets create %s) and add the "
                "channel's value as its version" % (ref["secret"], ref["name"].split("/")[1], ref["secret"])
            )
        elif ACCESS not in (got.get("permissions") or []):
            problems.append(
                "you (%s) lack %s on secret %s: ask for roles/secretmanager.secretAccessor on it or run "
                "with an account that has it" % (who, ACCESS, ref["secret"])
            )
    return problems
