"""BigQuery v2 REST query jobs: jobs.insert/get/cancel, jobs.query and getQueryResults. A query job runs to
completion when inserted; the newest 2000 are kept in memory for clients to poll and page.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud import bq_sql
from localcloud.bq_sql import QueryError
from localcloud.service import json_response
from localcloud.services.bigquery_db import (
    DEFAULT_LOCATION,
    PAGE_ROWS,
    REASON_STATUS,
    BigQueryDatabase,
    QueryResult,
    rest_error,
)

MAX_JOBS = 2000
_DML_STAT = {"INSERT": "insertedRowCount", "DELETE": "deletedRowCount", "UPDATE": "updatedRowCount"}


@dataclass
class Job:
    resource: dict[str, Any]
    result: QueryResult | None = None
    error: QueryError | None = None
    created: float = field(default_factory=time.time)


def _ms(t: float) -> str:
    return str(int(t * 1000))


class BigQueryJobs(BigQueryDatabase):
    """Query jobs and their result pages."""

    _jobs: OrderedDict[tuple[str, str], Job]

    def _job(self, project: str, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get((project, job_id))
        if job is None:
            raise QueryError("notFound", f"Not found: Job {project}:{job_id}")
        return job

    def _run_job(
        self, project: str, job_id: str, location: str, query_config: dict[str, Any], dry_run: bool = False
    ) -> Job:
        started = self.cloud.now().timestamp()
        job = Job(resource={})
        if query_config.get("useLegacySql") is True:
            job.error = QueryError(
                "invalidQuery", "Legacy SQL is not supported by localcloud: set useLegacySql=false"
            )
        else:
            try:
                params = bq_sql.bind_parameters(
                    query_config.get("queryParameters") or [], query_config.get("parameterMode")
                )
                job.result = self.run_query(query_config.get("query", ""), params, project, dry_run)
            except QueryError as err:
                job.error = err
        ended = max(self.cloud.now().timestamp(), started)
        stats: dict[str, Any] = {"totalBytesProcessed": "0", "cacheHit": False}
        if job.result:
            stats["statementType"] = job.result.statement_type
            if job.result.affected is not None:
                stats["numDmlAffectedRows"] = str(job.result.affected)
                stats["dmlStats"] = {
                    _DML_STAT.get(job.result.statement_type, "updatedRowCount"): str(job.result.affected)
                }
            if job.result.schema:
                stats["schema"] = {"fields": job.result.schema}
        status: dict[str, Any] = {"state": "DONE"}
        if job.error:
            problem = {"reason": job.error.reason, "message": job.error.message, "location": "query"}
            status.update(errorResult=problem, errors=[problem])
        job.resource = {
            "kind": "bigquery#job",
            "etag": f'"{job_id}"',
            "id": f"{project}:{location}.{job_id}",
            "selfLink": f"https://bigquery.googleapis.com/bigquery/v2/projects/{project}/jobs/{job_id}?location={location}",
            "user_email": "localcloud",
            "jobReference": {"projectId": project, "jobId": job_id, "location": location},
            "configuration": {
                "jobType": "QUERY",
                "query": {**query_config, "useLegacySql": False},
                **({"dryRun": True} if dry_run else {}),
            },
            "status": status,
            "statistics": {
                "creationTime": _ms(started),
                "startTime": _ms(started),
                "endTime": _ms(ended),
                "totalBytesProcessed": "0",
                "query": stats,
            },
        }
        if not dry_run:  # BigQuery keeps no dry-run jobs
            with self._lock:
                self._jobs[(project, job_id)] = job
                while len(self._jobs) > MAX_JOBS:
                    self._jobs.popitem(last=False)
        return job

    def _insert_job(self, project: str, body: dict[str, Any]) -> Response:
        ref = body.get("jobReference") or {}
        job_id = ref.get("jobId") or str(uuid.uuid4())
        config = (body.get("configuration") or {}).get("query")
        if config is None:
            raise QueryError("invalid", "Only query jobs are supported by localcloud (configuration.query)")
        with self._lock:
            if (project, job_id) in self._jobs:
                raise QueryError("duplicate", f"Already Exists: Job {project}:{job_id}")
        dry_run = bool((body.get("configuration") or {}).get("dryRun"))
        job = self._run_job(project, job_id, ref.get("location") or DEFAULT_LOCATION, config, dry_run)
        if dry_run and job.error:  # a dry run answers a bad query with an HTTP error, not a failed job
            return rest_error(REASON_STATUS.get(job.error.reason, 400), job.error.reason, job.error.message)
        return json_response(job.resource)

    def _query(self, project: str, body: dict[str, Any]) -> Response:
        config = {
            k: body[k] for k in ("query", "queryParameters", "parameterMode", "useLegacySql") if k in body
        }
        location = body.get("location") or DEFAULT_LOCATION
        dry_run = bool(body.get("dryRun"))
        job = self._run_job(project, f"job_{uuid.uuid4().hex}", location, config, dry_run)
        if job.error:  # jobs.query reports a failed query as an HTTP error
            return rest_error(REASON_STATUS.get(job.error.reason, 400), job.error.reason, job.error.message)
        page = self._results_page(job, 0, body.get("maxResults"))
        page["kind"] = "bigquery#queryResponse"
        return json_response(page)

    def _get_query_results(self, project: str, job_id: str, request: Request) -> Response:
        job = self._job(project, job_id)
        if job.error:
            return rest_error(REASON_STATUS.get(job.error.reason, 400), job.error.reason, job.error.message)
        start = int(request.args.get("pageToken") or request.args.get("startIndex") or 0)
        page = self._results_page(job, start, request.args.get("maxResults"))
        for key in ("location", "queryId", "dmlStats"):  # QueryResponse's, not GetQueryResultsResponse's
            page.pop(key, None)
        page.update(kind="bigquery#getQueryResultsResponse", etag=f'"{job_id}"')
        return json_response(page)

    def _results_page(self, job: Job, start: int, max_results: Any) -> dict[str, Any]:
        assert job.result is not None
        result = job.result
        ref = job.resource["jobReference"]
        page: dict[str, Any] = {
            "jobReference": ref,
            "jobComplete": True,
            "totalBytesProcessed": "0",
            "cacheHit": False,
            "location": ref["location"],
            "queryId": ref["jobId"],
        }
        if result.affected is not None:
            page["numDmlAffectedRows"] = str(result.affected)
            page["dmlStats"] = job.resource["statistics"]["query"].get("dmlStats", {})
        if result.statement_type != "SELECT":
            return page
        size = PAGE_ROWS if max_results in (None, "") else int(max_results)
        page["schema"] = {"fields": result.schema}
        page["totalRows"] = str(len(result.rows))
        if size > 0:
            chunk = result.rows[start : start + size]
            page["rows"] = [
                {"f": [{"v": bq_sql.encode_value(f, v)} for f, v in zip(result.schema, row, strict=True)]}
                for row in chunk
            ]
            if start + size < len(result.rows):
                page["pageToken"] = str(start + size)
        elif result.rows:
            page["pageToken"] = str(start)
        return page
