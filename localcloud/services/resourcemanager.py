"""Cloud Resource Manager v1 and v3 (cloudresourcemanager.googleapis.com): the hosted projects.

Covered: `projects.get` (v1: `projectNumber`, `projectId`, `lifecycleState`, `name`; v3: `name`
= `projects/<number>`, `projectId`, `state`, `displayName`), and the project's allow policy:
`getIamPolicy`, `setIamPolicy`, `testIamPermissions` (served by localcloud/iam_enforce.py over
localcloud/iam.py; a stale etag is 409 ABORTED, v3 naming both etags). A project localcloud does not
host is 403 "The caller does not have permission", as Google answers for a project you cannot see.
Not covered: create/update/delete/list/search/move, folders, organizations, tags, liens, org policy.
"""

from __future__ import annotations

import re
from typing import ClassVar

from werkzeug.wrappers import Request, Response

from localcloud import projects
from localcloud.iam import IamError
from localcloud.service import Service, Unauthenticated, google_error, json_response
from localcloud.services.run_errors import UNAUTHENTICATED

CREATED = "2025-01-06T09:00:00.000Z"  # a fixed creation time for the hosted projects
NO_PERMISSION = "The caller does not have permission"
_GET = re.compile(r"^/(?P<version>v1|v3)/projects/(?P<project>[^/:]+)$")


class ResourceManagerService(Service):
    name = "resourcemanager"
    hosts = ("cloudresourcemanager.googleapis.com",)
    permissions: ClassVar[dict[str, str]] = {
        "cloudresourcemanager.projects.get": "resourcemanager.projects.get",
        "cloudresourcemanager.projects.getIamPolicy": "resourcemanager.projects.getIamPolicy",
        "cloudresourcemanager.projects.setIamPolicy": "resourcemanager.projects.setIamPolicy",
        "cloudresourcemanager.projects.testIamPermissions": "",
    }

    def routes(self) -> list[tuple[str, str]]:
        return [("GET", "/v1/projects/{project}"), ("GET", "/v3/projects/{project}")]

    def iam_missing(self, resource: str) -> IamError | None:
        project = projects.project_id(resource.split("/")[1])
        return None if project in projects.BY_ID else IamError(403, NO_PERMISSION, "PERMISSION_DENIED")

    def handle(self, request: Request) -> Response:
        try:
            self.cloud.authenticate(request)
        except Unauthenticated:
            return google_error(401, UNAUTHENTICATED, "UNAUTHENTICATED")
        match = _GET.match(request.path)
        if not match or request.method != "GET":
            return google_error(
                404, f"localcloud Resource Manager does not emulate {request.method} {request.path}"
            )
        hosted = projects.BY_ID.get(projects.project_id(match["project"]))
        if hosted is None:
            return google_error(403, NO_PERMISSION, "PERMISSION_DENIED")
        if match["version"] == "v1":
            return json_response(
                {
                    "projectNumber": hosted.number,
                    "projectId": hosted.project,
                    "lifecycleState": "ACTIVE",
                    "name": hosted.project,
                    "createTime": CREATED,
                }
            )
        return json_response(
            {
                "name": f"projects/{hosted.number}",
                "projectId": hosted.project,
                "state": "ACTIVE",
                "displayName": hosted.project,
                "createTime": CREATED,
                "updateTime": CREATED,
                "etag": 'W/"' + hosted.number + '"',
            }
        )
