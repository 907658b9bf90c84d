"""Dagster's GraphQL API, spoken over httpx: launch a job run, read its status and its events.

Why not `dagster_graphql.DagsterGraphQLClient`: the core (hub/) must not import Dagster
(the import-linter contract in pyproject.toml forbids `dagster_graphql` too), and the client
would bring `gql` and `requests` for three small requests. The mutation and queries below
are those of dagster-graphql 1.13's client (dagster_graphql/client/client_queries.py:
`launchPipelineExecution`, and `repositoriesOrError` to find the job's code location) plus
`runOrError`, `runsOrError` and `logsForRun` of the same schema; `tests/test_sync_now.py` runs
them against a real `dagster-webserver`.

Why some requests are asked again: dagster-webserver keeps pooled connections to its
PostgreSQL storage, and after the server restarts each one fails its next request ("server
closed the connection unexpectedly", HTTP 500) before the pool reconnects; one "sync now" can
meet several of them (found by the PostgreSQL restart drill, tests/drills). A query is asked
again after a 5xx. A launch is not blindly: each carries a launch id tag, and after a 5xx the
hub asks for a run with that tag before launching again, so a launch whose answer was lost
is not made twice.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from hub.errors import HubError

# the run statuses after which nothing more happens (dagster DagsterRunStatus)
FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
ATTEMPTS, RETRY_PAUSE_S = 4, 0.3  # per request after a 5xx (see the module docstring)
LAUNCH_TAG = "hub/launch_id"  # a launch's own id, to find its run when the answer was a 5xx

_JOBS = """
query HubJobLocations {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } pipelines { name } } }
    ... on PythonError { message }
  }
}
"""

_PARTITIONS = """
query HubJobPartitions($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { partitionKeysOrError { partitionKeys } }
    ... on Error { message }
  }
}
"""

_LAUNCH = """
mutation HubLaunchRun($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PipelineConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

_TAGGED = """
query HubRunsTagged($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId } }
    ... on Error { message }
  }
}
"""

_STATUS = """
query HubRunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""

_PROGRESS = """
query HubRunProgress($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status jobName tags { key value } startTime endTime stepStats { stepKey status } }
    ... on Error { message }
  }
}
"""

_EVENTS = """
query HubRunEvents($runId: ID!, $afterCursor: String) {
  logsForRun(runId: $runId, afterCursor: $afterCursor) {
    __typename
    ... on EventConnection { cursor events {
      __typename
      ... on MessageEvent { eventType message stepKey }
      ... on ExecutionStepFailureEvent { error { message } }
    } }
    ... on Error { message }
  }
}
"""


@dataclass(frozen=True)
class RunEvent:
    event_type: str | None
    message: str
    step_key: str | None
    error: str | None = None  # a failed step's exception message


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands: its status, job, tags (its partition is `dagster/partition`),
    start and end (epoch seconds, None until then) and its steps with their status so far."""

    status: str
    job_name: str
    tags: dict[str, str]
    start_time: float | None
    end_time: float | None
    steps: tuple[tuple[str, str | None], ...]  # (step key, status: IN_PROGRESS, SUCCESS, FAILURE, SKIPPED)

    @property
    def partition(self) -> str | None:
        return self.tags.get("dagster/partition")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class DagsterServerError(HubError):
    """Dagster answered a request with a 5xx."""


class DagsterApi:
    """One Dagster webserver, e.g. `http://127.0.0.1:3000` (its UI and `/graphql`)."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DagsterApi:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{run_id}"

    def _post(self, query: str, variables: dict[str, Any] | None) -> httpx.Response:
        """One request; a 5xx raises DagsterServerError (asked again by `_query`)."""
        try:
            response = self._http.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}})
        except httpx.HTTPError as exc:
            raise HubError(f"cannot reach Dagster at {self.url} (HUB_DAGSTER_URL): {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise DagsterServerError(f"Dagster at {self.url} answered HTTP {response.status_code} to a GraphQL request")
        return response

    def _query(self, query: str, variables: dict[str, Any] | None = None, attempts: int = ATTEMPTS) -> dict[str, Any]:
        """The answer's data; a 5xx is asked again up to `attempts` requests in all (tenacity,
        as the provider clients' retries)."""
        response = tenacity.Retrying(stop=tenacity.stop_after_attempt(attempts), wait=tenacity.wait_fixed(RETRY_PAUSE_S),
                                     retry=tenacity.retry_if_exception_type(DagsterServerError), reraise=True)(self._post, query, variables)
        if response.status_code != 200:
            raise HubError(f"Dagster at {self.url} answered HTTP {response.status_code} to a GraphQL request")
        try:
            body = response.json()
        except ValueError:
            raise HubError(f"{self.url}/graphql did not answer JSON: is it a Dagster webserver?") from None
        if body.get("errors"):
            raise HubError(f"Dagster GraphQL error: {body['errors'][0].get('message', body['errors'][0])}")
        return body["data"]

    def _job_location(self, job_name: str) -> tuple[str, str]:
        """(code location, repository) of the one repository that has the job."""
        found = self._query(_JOBS)["repositoriesOrError"]
        if found["__typename"] != "RepositoryConnection":
            raise HubError(f"Dagster cannot list its code locations: {found.get('message', found['__typename'])}")
        places = [(node["location"]["name"], node["name"]) for node in found["nodes"]
                  if any(job["name"] == job_name for job in node["pipelines"])]
        if len(places) != 1:
            where = "no code location" if not places else f"{len(places)} code locations"
            raise HubError(f"Dagster at {self.url} has the job {job_name} in {where}")
        return places[0]

    def launch(self, job_name: str, partition_key: str, tags: dict[str, str]) -> str:
        """Launch a run of `job_name` for one partition, with `tags`; returns its run id.

        Refuses a partition the job does not have: Dagster would launch the run anyway and
        fail it later with a less telling error."""
        location, repository = self._job_location(job_name)
        selector = {"repositoryLocationName": location, "repositoryName": repository, "pipelineName": job_name}
        job = self._query(_PARTITIONS, {"selector": selector})["pipelineOrError"]
        if job["__typename"] != "Pipeline":
            raise HubError(f"Dagster cannot read the job {job_name}: {job.get('message', job['__typename'])}")
        if partition_key not in job["partitionKeysOrError"]["partitionKeys"]:
            raise HubError(f"Dagster has no partition {partition_key} of {job_name} yet: integration_partitions_sensor "
                           "adds it at its next tick after the integration is connected")
        launch_id = uuid.uuid4().hex
        params = {
            "selector": selector,
            "runConfigData": {},
            "mode": "default",
            "executionMetadata": {"tags": [{"key": k, "value": v}
                                           for k, v in {**tags, "dagster/partition": partition_key, LAUNCH_TAG: launch_id}.items()]},
        }
        for attempt in range(1, ATTEMPTS + 1):
            try:
                result = self._query(_LAUNCH, {"executionParams": params}, attempts=1)["launchPipelineExecution"]
                break
            except DagsterServerError:
                # the run may exist (the failure came after it was stored): launched once, not twice
                if found := self._runs_tagged(LAUNCH_TAG, launch_id):
                    return found[0]
                if attempt == ATTEMPTS:
                    raise
                time.sleep(RETRY_PAUSE_S)
        if result["__typename"] == "LaunchRunSuccess":
            return result["run"]["runId"]
        detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", [])) or result["__typename"]
        raise HubError(f"Dagster did not launch {job_name}: {detail.strip().splitlines()[0] if detail.strip() else detail}")

    def _runs_tagged(self, key: str, value: str) -> list[str]:
        result = self._query(_TAGGED, {"filter": {"tags": [{"key": key, "value": value}]}})["runsOrError"]
        if result["__typename"] != "Runs":
            raise HubError(f"Dagster cannot list runs: {result.get('message', result['__typename'])}")
        return [run["runId"] for run in result["results"]]

    def run_status(self, run_id: str) -> str:
        result = self._query(_STATUS, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise HubError(f"Dagster has no run {run_id}: {result.get('message', result['__typename'])}")
        return result["status"]

    def run_progress(self, run_id: str) -> RunProgress:
        """One request for what a page following the run shows (the settings pages' "sync now")."""
        result = self._query(_PROGRESS, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise HubError(f"Dagster has no run {run_id}: {result.get('message', result['__typename'])}")
        return RunProgress(result["status"], result["jobName"], {t["key"]: t["value"] for t in result["tags"]},
                           result.get("startTime"), result.get("endTime"),
                           tuple((step["stepKey"], step.get("status")) for step in result["stepStats"]))

    def events_after(self, run_id: str, cursor: str | None) -> tuple[list[RunEvent], str | None]:
        """The run's events after `cursor` (None: from the start), and the cursor to ask with next."""
        result = self._query(_EVENTS, {"runId": run_id, "afterCursor": cursor})["logsForRun"]
        if result["__typename"] != "EventConnection":
            raise HubError(f"Dagster cannot read the events of run {run_id}: {result.get('message', result['__typename'])}")
        events = [RunEvent(e.get("eventType"), e.get("message", ""), e.get("stepKey"), (e.get("error") or {}).get("message"))
                  for e in result["events"]]
        return events, result["cursor"]
