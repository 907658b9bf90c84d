"""Running a quality check (hub/quality/checks.py) with great-expectations 1.x, and writing
its outcome to `sync_log`.

Why GE is called directly: dagster-ge only supports great-expectations below 1.0 (it is built
on the removed `DataContext`), so the asset checks call this runner, which uses GE's 1.x API:
an ephemeral context (nothing written to disk), a pandas datasource with a whole-dataframe
batch, and one expectation suite per check.

Why lazily: `import great_expectations` takes ~3.5-5 s on the project's 2-core machine (pandas
alone ~0.5 s). Importing it at module level would slow every code-server load, sensor tick
and step process; here it is paid only by a step that has rows to validate, once per
process. A check with no rows passes without importing GE at all.

The sync_log row: one per run of a check for an integration, sync_type "check", action
"check_<name>", direction "outbound" (the checks guard an export), `completed` when the
check passed, else `failed` with one error per failing row (record id, code, reason).
It is written directly, in one statement at the end, instead of through
`hub.sync_log.record_sync`: that recorder also moves the integration's status to "syncing",
then "connected"/"error", and sets `last_sync_at`, which a check must not do (a passing
check is not a sync, and would turn an integration whose credentials failed back to
"connected").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.quality.checks import QualityCheck
from hub.errors import HubError, NotFoundError
from hub.redact import describe_error, redact
from hub.schema import integration, sync_log
from hub.sync_log import MAX_ERRORS_KEPT, MAX_MESSAGE_CHARS

SAMPLE_LIMIT = 20  # failing records shown in Dagster metadata and the outcome


class CheckError(HubError):
    """A check could not be evaluated (not: the data failed it)."""


def warm() -> None:
    """Import great-expectations now, off the request path: the web app calls it in a
    background thread at start, so the first export preview (which runs the checks) does not
    pay the import's seconds while an admin waits."""
    import great_expectations  # noqa: F401 - the import is the point


@dataclass
class CheckOutcome:
    check: str
    integration_id: int
    passed: bool
    rows_checked: int
    unexpected: int  # rows that failed at least one expectation
    sample: list[dict[str, Any]] = field(default_factory=list)  # up to SAMPLE_LIMIT {record_id, code, reason}
    failed_expectations: list[str] = field(default_factory=list)  # GE expectation types that failed
    sync_log_id: int | None = None
    ge_seconds: float = 0.0  # lazy GE import (first call in a process) + context + validation
    ge_import_seconds: float = 0.0  # the import alone; 0 once GE is loaded

    @property
    def summary(self) -> str:
        if self.passed:
            return f"{self.check}: {self.rows_checked} rows checked, all passed"
        return f"{self.check}: {self.unexpected} of {self.rows_checked} rows failed ({', '.join(self.failed_expectations)})"


def _clip(text: str) -> str:
    text = redact(text)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def load_rows(engine: Engine, check: QualityCheck, integration_id: int) -> tuple[list[str], list[dict[str, Any]]]:
    """The check's rows for one integration: column names and rows as dicts."""
    with engine.connect() as conn:
        found = conn.scalar(sa.select(integration.c.id).where(integration.c.id == integration_id))
        if found is None:
            raise NotFoundError(f"no integration {integration_id}")
        result = conn.execute(sa.text(check.sql), {"integration_id": integration_id})
        columns = list(result.keys())
        rows = [dict(r._mapping) for r in result]
        if "record_id" not in columns:
            raise CheckError(f"check {check.name}: its query returns no record_id column")
        if check.prepare is not None:  # narrows and annotates the rows (quality.QualityCheck.prepare)
            rows = check.prepare(conn, rows)
            columns += [c for c in (rows[0] if rows else {}) if c not in columns]
    return columns, rows


def to_frame(columns: list[str], rows: list[dict[str, Any]]):
    """A pandas DataFrame (pandas imported lazily) with the default RangeIndex, so a failing
    row's position in GE's result is its position in `rows`."""
    import pandas as pd  # heavy (~0.5 s): lazy like GE, see the module docstring

    return pd.DataFrame.from_records([tuple(r[c] for c in columns) for r in rows], columns=columns)


def validate(check: QualityCheck, frame) -> tuple[list[tuple[int, int]], list[str], float, float]:
    """Run the check's expectations on `frame` with GE.

    Returns (failures as (row position, expectation index), failed expectation types,
    seconds for the whole GE part, seconds for the import alone).
    """
    started = time.perf_counter()
    import great_expectations as gx  # lazy, see the module docstring
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    imported = time.perf_counter()
    context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),  # no docs site: nothing on disk
        progress_bars=ProgressBarsConfig(globally=False),  # no tqdm bars in the step logs
        analytics_enabled=False,
    ))
    batch = (
        context.data_sources.add_pandas(f"hub_{check.name}")
        .add_dataframe_asset(check.name)
        .add_batch_definition_whole_dataframe("all_rows")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(
        name=check.name,
        expectations=[getattr(gx.expectations, e.type)(**e.kwargs) for e in check.expectations],
    )
    # COMPLETE: every failing row's position (the frame keeps its default RangeIndex)
    result = batch.validate(suite, result_format="COMPLETE")
    failures: list[tuple[int, int]] = []
    failed_types: list[str] = []
    for number, outcome in enumerate(result.results):
        if outcome.success:
            continue
        info = outcome.exception_info or {}
        if info.get("raised_exception"):
            # the expectation could not run (wrong column, type): an error, not a verdict on the data
            raise CheckError(
                f"check {check.name}: expectation {outcome.expectation_config.type} raised "
                f"{_clip(str(info.get('exception_message') or 'an exception'))}"
            )
        failed_types.append(outcome.expectation_config.type)
        positions = outcome.result.get("unexpected_index_list")
        if positions is None:  # a table-level expectation: blame no row in particular
            failures.append((-1, number))
        else:
            failures.extend((int(p), number) for p in positions)
    if result.success != (not failed_types):
        raise CheckError(f"check {check.name}: GE reported success={result.success} with failed={failed_types}")
    ended = time.perf_counter()
    return failures, failed_types, ended - started, imported - started


def _errors(check: QualityCheck, rows: list[dict[str, Any]], failures: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """One error per failing row, with the reason of the first expectation it failed."""
    first: dict[int, int] = {}
    for position, number in failures:
        if position not in first or number < first[position]:
            first[position] = number
    errors = []
    for position in sorted(first):
        expectation = check.expectations[first[position]]
        if position < 0:
            errors.append({"record_id": None, "code": expectation.code, "message": _clip(expectation.reason)})
            continue
        row = rows[position]  # the values as the database gave them (pandas turns a nullable int into a float)
        errors.append({"record_id": str(row["record_id"]), "code": expectation.code, "message": _clip(expectation.describe(row))})
    return errors


def _write_log(engine: Engine, check: QualityCheck, integration_id: int, run_id: str | None, started_at: datetime,
               *, passed: bool, rows: int, errors: list[dict[str, Any]], failed: int, details: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return conn.scalar(
            sa.insert(sync_log)
            .values(
                integration_id=integration_id, sync_type="check", action=f"check_{check.name}", direction="outbound",
                entity_type=check.entity_type, status="completed" if passed else "failed",
                records_processed=rows, records_failed=failed, errors=errors[:MAX_ERRORS_KEPT],
                details=details, dagster_run_id=run_id, started_at=started_at, completed_at=sa.func.now(),
            )
            .returning(sync_log.c.id)
        )


def evaluate(engine: Engine, integration_id: int, check: QualityCheck) -> tuple[CheckOutcome, list[dict[str, Any]]]:
    """Validate `check` on one integration's rows and write NOTHING: (the outcome, every
    failing row's error {record_id, code, message}). `run_check` records it; the export
    preview (hub/sync/export_preview.py) only shows it. Raises when the check cannot be
    evaluated."""
    columns, rows = load_rows(engine, check, integration_id)
    if not rows:  # nothing the export would send: nothing to validate, GE not imported
        failures, failed_types, ge_seconds, import_seconds = [], [], 0.0, 0.0
    else:
        failures, failed_types, ge_seconds, import_seconds = validate(check, to_frame(columns, rows))
    errors = _errors(check, rows, failures)
    outcome = CheckOutcome(
        check=check.name, integration_id=integration_id, passed=not failed_types, rows_checked=len(rows),
        unexpected=len(errors), sample=[{k: e[k] for k in ("record_id", "code", "message")} for e in errors[:SAMPLE_LIMIT]],
        failed_expectations=failed_types, ge_seconds=round(ge_seconds, 3), ge_import_seconds=round(import_seconds, 3),
    )
    return outcome, errors


def run_check(engine: Engine, integration_id: int, check: QualityCheck, run_id: str | None = None) -> CheckOutcome:
    """Validate `check` on one integration's rows (`evaluate`) and record the outcome in sync_log.

    A check that cannot be evaluated (database error, broken expectation) writes a failed
    row with the reason and raises: it must not read as a pass, nor as a data failure.
    """
    started_at = datetime.now(timezone.utc)
    try:
        outcome, errors = evaluate(engine, integration_id, check)
    except NotFoundError:
        raise  # no integration: no row to write against
    except Exception as exc:
        _write_log(engine, check, integration_id, run_id, started_at, passed=False, rows=0, failed=0,
                   errors=[{"record_id": None, "code": "check_error", "message": describe_error(exc)}],
                   details={"check": check.name, "blocking": check.blocking, "error": True})
        raise
    outcome.sync_log_id = _write_log(
        engine, check, integration_id, run_id, started_at, passed=outcome.passed, rows=outcome.rows_checked, errors=errors,
        failed=len(errors),
        details={"check": check.name, "blocking": check.blocking, "unit": check.unit,
                 "failed_expectations": outcome.failed_expectations, "ge_seconds": outcome.ge_seconds},
    )
    return outcome
