"""A snapshot of the Dagster definitions (pipelines.definitions.defs), committed in
tests/snapshots/definitions.json, so that a refactor cannot silently drop, rename or rewire an
asset, check, job, schedule, sensor, partition set or resource.

The snapshot holds what operators and run history depend on: asset keys with their group,
partitions and deps; asset checks (asset, name, blocking); jobs with their selection and
partitions; schedules (cron, job, time zone, default status); sensors (type, targets, default
status, minimum interval); the dynamic partition sets; the resource keys. Descriptions are
left out: they change often and change nothing.

An intended change is accepted by rewriting the file and committing it:
    HUB_UPDATE_SNAPSHOTS=1 scripts/test.sh tests/test_definitions_snapshot.py
"""

import difflib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
ACCEPT = "HUB_UPDATE_SNAPSHOTS=1 scripts/test.sh tests/test_definitions_snapshot.py"


def _partitions_name(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    return getattr(partitions_def, "name", None) or type(partitions_def).__name__


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


def definitions_snapshot(definitions: dg.Definitions) -> dict[str, Any]:
    """The canonical, JSON-ready description of `definitions` (sorted, no descriptions)."""
    repo = definitions.get_repository_def()
    asset_graph = repo.asset_graph
    specs = sorted(definitions.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string())
    assets = {
        spec.key.to_user_string(): {
            "group": spec.group_name,
            "partitions": _partitions_name(spec.partitions_def),
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
        }
        for spec in specs
    }
    checks = sorted(
        ({"asset": key.asset_key.to_user_string(), "name": key.name, "blocking": asset_graph.get_check_spec(key).blocking}
         for key in asset_graph.asset_check_keys),
        key=lambda c: (c["asset"], c["name"]),
    )
    jobs = {}
    for job in sorted(definitions.jobs or [], key=lambda j: j.name):
        resolved = definitions.resolve_job_def(job.name)
        jobs[job.name] = {
            "selection": str(job.selection) if hasattr(job, "selection") else None,  # declared (asset jobs)
            "assets": sorted(k.to_user_string() for k in resolved.asset_layer.selected_asset_keys),
            "partitions": _partitions_name(resolved.partitions_def),
            "tags": dict(sorted(resolved.tags.items())),
        }
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "job": schedule.job_name,
            "timezone": schedule.execution_timezone,
            "default_status": _enum(schedule.default_status),
        }
        for schedule in sorted(repo.schedule_defs, key=lambda s: s.name)
    }
    sensors = {
        sensor.name: {
            "type": _enum(sensor.sensor_type),
            "targets": sorted(
                t.resolvable_to_job if isinstance(t.resolvable_to_job, str) else t.resolvable_to_job.name
                for t in sensor.targets
            ),
            "default_status": _enum(sensor.default_status),
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
        }
        for sensor in sorted(repo.sensor_defs, key=lambda s: s.name)
    }
    partitions_defs = [spec.partitions_def for spec in specs] + [repo.get_job(name).partitions_def for name in jobs]
    dynamic = sorted({p.name for p in partitions_defs if isinstance(p, dg.DynamicPartitionsDefinition)})
    return {
        "assets": assets,
        "asset_checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
        "dynamic_partitions": dynamic,
        "resources": sorted(repo.get_top_level_resources()),
    }


def _render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def snapshot_diff(definitions: dg.Definitions, committed: str) -> list[str]:
    """Unified diff lines from the committed snapshot to `definitions` ([] when equal)."""
    current = _render(definitions_snapshot(definitions))
    return list(difflib.unified_diff(committed.splitlines(), current.splitlines(),
                                     "tests/snapshots/definitions.json (committed)", "pipelines.definitions.defs (now)",
                                     lineterm=""))


def test_definitions_match_the_committed_snapshot():
    if os.environ.get("HUB_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(_render(definitions_snapshot(defs)))
    assert SNAPSHOT.exists(), f"no snapshot yet: write it with `{ACCEPT}` and commit it"
    diff = snapshot_diff(defs, SNAPSHOT.read_text())
    assert not diff, (
        "The Dagster definitions differ from tests/snapshots/definitions.json:\n" + "\n".join(diff)
        + f"\n\nIf the change is intended, accept it with `{ACCEPT}` and commit the snapshot."
    )


def test_an_unintended_change_shows_as_a_readable_diff():
    # the inventory schedule moved to half past, and a stray asset joined the hub group
    moved = dg.ScheduleDefinition(name="inventory_hourly", job_name="inventory_job", cron_schedule="30 * * * *",
                                  default_status=dg.DefaultScheduleStatus.RUNNING)

    @dg.asset(key=["hub", "stray"], group_name="hub")
    def stray() -> None:
        return None

    changed = dg.Definitions(
        assets=[*defs.assets, stray],
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=[moved, *(s for s in defs.schedules if s.name != "inventory_hourly")],
        sensors=defs.sensors,
        resources=defs.resources,
        executor=defs.executor,
    )
    diff = snapshot_diff(changed, SNAPSHOT.read_text())
    assert '-      "cron": "0 * * * *",' in diff
    assert '+      "cron": "30 * * * *",' in diff
    assert '+    "hub/stray": {' in diff
    assert diff[0].startswith("--- tests/snapshots/definitions.json") and diff[1].startswith("+++ pipelines.definitions.defs")
    # and the unchanged definitions give none
    assert snapshot_diff(defs, SNAPSHOT.read_text()) == []
