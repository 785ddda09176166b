"""Cloud Run v2 operations: get, list, delete and wait. Job operations are done when created; a run
operation is rendered from its execution, and keeps its last word once the execution is deleted."""

from __future__ import annotations

import time
from typing import Any

from localcloud.services import run_shapes as shapes
from localcloud.services.run_base import TYPE_EXECUTION, RunState, list_body
from localcloud.services.run_errors import ApiError

MAX_WAIT_S = 60.0  # operations:wait caps a client's timeout at this


class RunOperations(RunState):
    """operations.get/list/delete/wait."""

    def _render_op(self, op: dict[str, Any]) -> dict[str, Any]:
        if "execution" not in op:
            return op
        execution = self._state["executions"].get(op["execution"])
        out: dict[str, Any] = {"name": op["name"]}
        if execution is None:  # deleted since: the operation's last word stands
            return {
                **out,
                **op.get("final", {"done": True, "error": {"code": 5, "message": "execution deleted"}}),
            }
        out["metadata"] = {"@type": TYPE_EXECUTION, **execution}
        if "completionTime" in execution:
            completed = next(c for c in execution["conditions"] if c["type"] == "Completed")
            out["done"] = True
            if completed["state"] == "CONDITION_FAILED" and completed.get("executionReason") != "CANCELLED":
                out["error"] = {"code": 9, "message": completed.get("message", "execution failed")}
            else:
                out["response"] = {"@type": TYPE_EXECUTION, **execution}
            op["final"] = {k: v for k, v in out.items() if k in ("done", "error", "response")}
        return out

    def _require_op(self, name: str) -> dict[str, Any]:
        op = self._state["operations"].get(name)
        if op is None:
            raise ApiError(404, f"Operation '{name}' was not found.")
        return op

    def _get_operation(self, request, body, principal, project, location, op):
        with self._lock:
            return self._render_op(
                self._require_op(f"projects/{project}/locations/{location}/operations/{op}")
            )

    def _list_operations(self, request, body, principal, project, location):
        prefix = f"projects/{project}/locations/{location}/operations/"
        with self._lock:
            ops = [
                self._render_op(op)
                for name, op in self._state["operations"].items()
                if name.startswith(prefix)
            ]
            return list_body("operations", ops, request)

    def _delete_operation(self, request, body, principal, project, location, op):
        name = f"projects/{project}/locations/{location}/operations/{op}"
        with self._lock:
            self._require_op(name)
            del self._state["operations"][name]
            self._save()
            return {}

    def _wait_operation(self, request, body, principal, project, location, op):
        name = f"projects/{project}/locations/{location}/operations/{op}"
        timeout = shapes.parse_duration(body["timeout"], "timeout") if body.get("timeout") else MAX_WAIT_S
        deadline = time.monotonic() + min(timeout, MAX_WAIT_S)
        with self._lock:
            while True:
                rendered = self._render_op(self._require_op(name))
                remaining = deadline - time.monotonic()
                if rendered.get("done") or remaining <= 0:
                    return rendered
                self._changed.wait(min(remaining, 0.5))
