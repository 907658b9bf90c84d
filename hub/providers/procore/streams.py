"""Procore pull streams: RFIs, submittals and daily logs of the projects linked to the
integration, with their record mappings. They are read by the "procore" adapter and written
by their page writer (hub/sync/project_records.py: the linked projects, resume positions, recycled
records), which tags each record with its log type and whether it came from the recycle bin.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Any

from hub.providers.procore.client import MAX_PER_PAGE, PER_PAGE
from hub.schema import daily_log, rfi, submittal
from hub.sync.project_records import LOG_TYPE, RECYCLED, read_linked, write_page
from hub.sync.stream_spec import StreamSpec

read_pages = partial(read_linked, per_page=PER_PAGE, max_per_page=MAX_PER_PAGE)


# ---- record mappings ------------------------------------------------------------------
def _day(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def is_deleted(record: dict[str, Any]) -> bool:
    return bool(record.get(RECYCLED) or record.get("deleted") or record.get("deleted_at"))


def remote_version(record: dict[str, Any]) -> str | None:
    """`updated_at`, marked when recycled (in case recycling leaves `updated_at` alone)."""
    stamp = record.get("updated_at")
    return f"{stamp} deleted" if is_deleted(record) else stamp


def remote_id(record: dict[str, Any]) -> str:
    return str(record["id"])


def log_remote_id(record: dict[str, Any]) -> str:
    """Each log type is its own Procore resource, so ids are only unique within a type."""
    return f"{record[LOG_TYPE]}:{record['id']}"


def rfi_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"number": r.get("full_number") or r.get("number"), "subject": r.get("subject") or "",
            "status": r.get("status"), "due_date": _day(r.get("due_date"))}


def submittal_row(r: dict[str, Any]) -> dict[str, Any]:
    status = r.get("status")
    if isinstance(status, dict):  # v1.1: {"id", "name", "status"}
        status = status.get("status") or status.get("name")
    return {"number": r.get("formatted_number") or r.get("number"), "title": r.get("title") or "",
            "status": str(status).lower() if status else None, "due_date": _day(r.get("due_date"))}


def daily_log_row(r: dict[str, Any]) -> dict[str, Any]:
    notes = r.get("comment") or r.get("notes")
    if not notes and r.get("sky"):
        notes = f"{r['sky']}, {r.get('temperature_average')}°"
    return {"log_date": _day(r.get("date")), "log_type": r[LOG_TYPE], "notes": notes or None}


# ---- the streams ---------------------------------------------------------------------------
RFIS = StreamSpec(
    "procore", "rfis", "rfi", rfi, "rfis", rfi_row, remote_id, remote_version, is_deleted, {"status": "deleted"},
    upsert=write_page, read=read_pages,
    description="RFIs of the linked Procore projects into rfi; recycled ones kept with status deleted.")
SUBMITTALS = StreamSpec(
    "procore", "submittals", "submittal", submittal, "submittals", submittal_row, remote_id, remote_version, is_deleted,
    {"status": "deleted"}, upsert=write_page, read=read_pages,
    description="Submittals of the linked Procore projects into submittal; recycled ones kept with status deleted.")
DAILY_LOGS = StreamSpec(
    "procore", "daily_logs", "daily_log", daily_log, "daily_logs", daily_log_row, log_remote_id, remote_version,
    is_deleted, {}, upsert=write_page, read=read_pages,
    description="Manpower, notes and weather logs of the linked Procore projects (last 90 days on a full read) into daily_log.")
STREAMS = (RFIS, SUBMITTALS, DAILY_LOGS)
