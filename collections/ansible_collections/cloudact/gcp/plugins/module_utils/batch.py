# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and converging the jobs of a region, shared by the cloud_run_job and cloud_scheduler_job actions.

`resource` is the module_utils module of one API (cloud_run or cloud_scheduler): it gives
KIND, LIST_PARAMS, jobs_url(), job_url(), and the owner of a resource (`owner_of`) and
of an entry (`own`).

The converging actions take one job (O(name)) or a batch (O(jobs)), optionally pruning unlisted
jobs by prefix (O(purge_prefix)). `converge_all` owns that part: the batch options, validating
every entry before any request, one list call for a batch (one GET for a single job), the
purge entries, and the result and diff shapes. It is a function of its inputs: it returns the
result, or raises (InputError for a bad input, ApiError for a refused call). A resource keeps its
verbs, its options and how to converge one job.

What a converge may touch is decided here, for both modules, before any change:
- O(owner) (an environment): every resource converged is marked as that environment's; one that
  another environment owns is refused, naming both (nothing is changed); an unlabelled one of a
  listed name is adopted and said so (`adopted`).
- O(purge_prefix) must name a prefix: an empty one would select every job of the region and is
  refused in the module itself. A purge deletes only jobs of this environment (or unlabelled ones),
  never another environment's.
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils import owner as owners
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError
from ansible_collections.cloudact.gcp.plugins.module_utils.fields import (
    changed_fields,
    short_name,
    validate_entries,
)

# The options a converging action adds to one job's options (documented in doc_fragments/gcp.py BATCH).
BATCH_OPTIONS = dict(
    location=dict(type="str", aliases=["region"]),  # default: the environment's region
    jobs=dict(type="list", elements="dict"),
    purge_prefix=dict(type="str"),
    owner=dict(type="str"),
    recent_grants=dict(type="list", elements="str", default=[]),
)
BATCH_VALIDATION = dict(
    required_one_of=[["name", "jobs"]],
    mutually_exclusive=[["name", "jobs"]],
    required_by={"purge_prefix": "jobs"},
)


def read_jobs(api, resource, project, location, name=None):
    """The job `name` ([] when it does not exist), or every job of the region (one paged list call)."""
    if name:
        job = api.request(
            "GET",
            resource.job_url(project, location, name),
            "%s %s" % (resource.KIND, name),
            allow_missing=True,
        )
        return [job] if job else []
    return api.list_all(
        resource.jobs_url(project, location),
        "jobs",
        "%ss of %s" % (resource.KIND, location),
        params=resource.LIST_PARAMS,
    )


def argument_spec(options):
    """The spec of a converging action: one job's `options` at top level, or a list of them as `jobs`."""
    spec = dict(BATCH_OPTIONS)
    spec.update(options)
    spec["name"] = dict(type="str")  # required in each entry, but a batch run has none
    return spec


def absent_entry(options, name):
    """The entry that deletes `name`: every option at its default, state absent."""
    entry = {key: spec.get("default") for key, spec in options.items()}
    entry.update(name=name, state="absent")
    return entry


def plan(name, current, before, after, **extra):
    """The result of converging job `name` from `before` (its owned fields, {} when `current` is None)
    to `after` (None: delete it): name, changed, operation (create, update, delete or none), the
    `extra` keys, changed_fields and spec. The module then carries out the operation."""
    result = dict(name=name, changed=False, operation="none", **extra, changed_fields=[], spec=before)
    if after is None:
        if current:
            result.update(changed=True, operation="delete", changed_fields=sorted(before), spec={})
        return result
    fields = changed_fields(before, after) if current else sorted(after)
    result.update(spec=after, changed_fields=fields)
    if not current:
        result.update(changed=True, operation="create")
    elif fields:
        result.update(changed=True, operation="update")
    return result


def field_diff(header, result, current, before, after):
    """Diff mode's before/after of the changed owned fields, as `plan` found them."""
    fields = result["changed_fields"]
    return dict(
        before={k: before[k] for k in fields if k in before} if current else {},
        after={k: after[k] for k in fields if k in (after or {})},
        before_header=header,
        after_header=header,
    )


def met_on_create(kind, name, found, who, have, env, wanted):
    """What a create met under its name (after a lost answer, or as a 409 ALREADY_EXISTS): `found`,
    whose owner is `who` and owned fields `have`, is adopted only when it is this environment's (`env`;
    any when None) and has the desired owned fields `wanted`; anything else is refused as a takeover.
    The resource, or ApiError."""
    differs = changed_fields(have, wanted)
    if (env and who != env) or differs:
        raise ApiError(
            "refused: %s %s already exists%s%s: the converge does not take over what it did not make; "
            "nothing was changed"
            % (
                kind,
                name,
                " (owned by %s)" % (who or "no environment") if env and who != env else "",
                " and differs in %s" % ", ".join(differs) if differs else "",
            ),
            409,
            "ALREADY_EXISTS",
        )
    return found


def propagation_note(message, status, recent_grants):
    """A PERMISSION_DENIED right after this converge's own grants is named as IAM propagation."""
    if status != 403 or not recent_grants:
        return message
    return (
        "%s -- propagating: this converge just granted %s; Google documents that IAM changes can "
        "take up to 7 minutes to apply (https://cloud.google.com/iam/docs/access-change-propagation): "
        "not a fault, run the same command again in a few minutes" % (message, "; ".join(recent_grants))
    )


def check_selector(prefix, resource, location):
    """Refuse an empty purge selector: it would select every job of the region."""
    if prefix is not None and not prefix.strip():
        raise ValueError(
            "purge_prefix %r: an empty prefix would select every %s in %s; name the prefix of the "
            "jobs to prune (e.g. cloudact-), or leave purge_prefix out to prune nothing"
            % (prefix, resource.KIND, location)
        )


def ownership(resource, entries, existing, env):
    """{name: 'adopted'} of the listed resources that have no owner; ValueError when another owns one."""
    adopted = {}
    for entry in entries:
        current = existing.get(entry["name"])
        if current is None:
            continue
        found = resource.owner_of(current)
        if found is None and entry.get("state") != "absent":
            adopted[entry["name"]] = "adopted"
        elif found is not None and found != env:
            raise ValueError(owners.refusal(resource.KIND, entry["name"], found, env))
    return adopted


def converge_all(
    api, p, options, resource, converge, project, check_mode, diff_mode, check=None, before=None
):
    """Converge the job or the batch of jobs of the validated options `p`; the result.

    check(entry) raises ValueError for a bad entry; it runs on every listed entry before any request.
    before(api, entries, project, location, env), when given, runs after the reads and before any
    change (a resource's own refusals that need a read).
    converge(api, entry, current, project, location, check_mode, env=owner) -> (result, diff), the
    result with `name` and `changed`.
    Raises InputError (a bad entry, a refused takeover) or ApiError (its message names IAM
    propagation when the same run just granted access).
    """
    location = p["location"]
    env = p.get("owner")
    batch = p["jobs"] is not None
    try:
        check_selector(p.get("purge_prefix"), resource, location)
        entries = validate_entries(options, p["jobs"], "jobs") if batch else [{k: p[k] for k in options}]
        if check:
            for entry in entries:
                check(entry)
        if env:
            entries = [resource.own(e, env) if e.get("state") != "absent" else e for e in entries]
        if batch:
            # One list call reads every job; each is then compared like a single GET would be.
            existing = {short_name(j.get("name")): j for j in read_jobs(api, resource, project, location)}
            listed = {e["name"] for e in entries}
            if p["purge_prefix"] is not None:
                entries += [
                    absent_entry(options, n)
                    for n in sorted(existing)
                    if n.startswith(p["purge_prefix"])
                    and n not in listed
                    and (not env or resource.owner_of(existing[n]) in (None, env))
                ]
        else:
            name = entries[0]["name"]
            found = read_jobs(api, resource, project, location, name)
            existing = {name: found[0]} if found else {}
        adopted = ownership(resource, entries, existing, env) if env else {}
        if before is not None:
            before(api, entries, project, location, env)
        results, diffs = [], []
        for entry in entries:
            current = existing.get(entry["name"])
            res, diff = converge(api, entry, current, project, location, check_mode, env=env)
            if entry["name"] in adopted:
                res["adopted"] = True
            results.append(res)
            if res["changed"]:
                diffs.append(diff)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except ApiError as exc:
        raise ApiError(
            propagation_note(str(exc), exc.status, p.get("recent_grants")), exc.status, exc.reason
        ) from None
    if batch:
        out = dict(changed=any(r["changed"] for r in results), jobs=results)
        if diff_mode:
            out["diff"] = diffs
    else:
        out = dict(results[0])
        out.pop("name")
        if diff_mode:
            out["diff"] = diff
    return out
