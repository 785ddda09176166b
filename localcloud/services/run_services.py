"""Cloud Run v2 services, only for URL discovery: get and list over a registry seeded with each hosted
project's API service (cloudact-api-service-local, -test in cloudact-testing-1, -prod in cloudact-prod),
to which the admin call POST /_localcloud/run/services adds one."""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud.projects import BY_ID, PROJECTS
from localcloud.service import json_response
from localcloud.services import run_shapes as shapes
from localcloud.services.run_base import RunState, list_body, new_etag
from localcloud.services.run_errors import ApiError


class RunServices(RunState):
    """services.get/list over the registry, and the admin call that adds to it."""

    def _seed_services(self) -> None:
        """Each hosted project's API service (with its *.run.app URI), unless it is registered already."""
        region = self.cloud.region
        for hosted in PROJECTS:
            name = f"projects/{hosted.project}/locations/{region}/services/{hosted.api_service}"
            if name not in self._state["services"]:
                self._put_service(hosted.project, region, hosted.api_service, hosted.api_uri)

    def _put_service(self, project: str, region: str, service_id: str, uri: str) -> dict[str, Any]:
        now = self._now()
        name = f"projects/{project}/locations/{region}/services/{service_id}"
        revision = f"{service_id}-00001-loc"
        service = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "generation": "1",
            "createTime": now,
            "updateTime": now,
            "creator": "localcloud",
            "lastModifier": "localcloud",
            "launchStage": "GA",
            "ingress": "INGRESS_TRAFFIC_ALL",
            "template": {
                "containers": [
                    {
                        "image": f"localcloud/{service_id}",
                        "resources": {"limits": dict(shapes.DEFAULT_LIMITS)},
                    }
                ],
                "maxInstanceRequestConcurrency": 80,
                "timeout": "300s",
            },
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "observedGeneration": "1",
            "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
            "latestReadyRevision": f"{name}/revisions/{revision}",
            "latestCreatedRevision": f"{name}/revisions/{revision}",
            "trafficStatuses": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "uri": uri,
            "urls": [uri],
            "etag": new_etag(),
        }
        self._state["services"][name] = service
        return service

    def _get_service(self, request, body, principal, project, location, service):
        name = f"projects/{project}/locations/{location}/services/{service}"
        with self._lock:
            found = self._state["services"].get(name)
        if found is None:
            raise ApiError(
                404,
                f"Resource '{service}' of kind 'SERVICE' in region '{location}' in project "
                f"'{project}' does not exist.",
            )
        return found

    def _list_services(self, request, body, principal, project, location):
        prefix = f"projects/{project}/locations/{location}/services/"
        with self._lock:
            items = [s for name, s in sorted(self._state["services"].items()) if name.startswith(prefix)]
        return list_body("services", items, request)

    def handle_admin(self, request: Request, subpath: str) -> Response:
        """POST /_localcloud/run/services {"service": ID, "uri": URL, "project"?: P}: register a service for
        services.get (in cloudact-local unless another hosted project is named)."""
        if subpath == "services" and request.method == "POST":
            body = request.get_json(silent=True) or {}
            if not isinstance(body.get("service"), str) or not str(body.get("uri", "")).startswith(
                "https://"
            ):
                return json_response(
                    {"error": 'expected {"service": "<id>", "uri": "https://..."}'}, status=400
                )
            project = body.get("project") or self.cloud.project
            if project not in BY_ID:
                return json_response(
                    {"error": f"project {project!r} is not hosted: one of {', '.join(BY_ID)}"}, status=400
                )
            with self._lock:
                service = self._put_service(project, self.cloud.region, body["service"], body["uri"])
                self._save()
            return json_response(service)
        return super().handle_admin(request, subpath)
