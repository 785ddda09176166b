# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The owned fields of a resource: normalised values and their comparison, and batch entries validated.

Shared by the converging action plugins (cloud_run_job, cloud_scheduler_job), the doctor's plans and
the info modules; imports only the standard library and ansible-core.
"""

from __future__ import annotations

from ansible_collections.cloudact.gcp.plugins.module_utils.timefmt import duration

__all__ = ["changed_fields", "cpu", "duration", "memory", "short_name", "validate_entries"]


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
