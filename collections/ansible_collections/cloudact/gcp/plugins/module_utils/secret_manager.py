# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret Manager reads of the collection: whether secrets exist (never reading a value)."""

from __future__ import annotations

BASE = "https://secretmanager.googleapis.com/v1"


def existing(api, project, names):
    """[{name, exists}] for each secret name, from its metadata only."""
    found = []
    for name in names:
        url = "%s/projects/%s/secrets/%s" % (BASE, project, name)
        found.append(
            {
                "name": name,
                "exists": api.request("GET", url, "secret %s" % name, allow_missing=True) is not None,
            }
        )
    return found


def missing_message(missing, project):
    return "secret(s) %s do not exist in project %s: create them (gcloud secrets create NAME) first" % (
        ", ".join(missing),
        project,
    )
