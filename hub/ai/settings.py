"""Per-company AI assist settings (`ai_setting`, `ai_task_setting`): each task on or off,
auto-apply or suggest-only, its two thresholds, which integrations, the price of a CPU hour.
A company without rows has the defaults below; the settings page writes through `set_task`
and `set_company`, which refuse bad values with a sentence and store nothing.

What the thresholds mean (`action`): a suggestion at or above `high` is applied (mode `auto`),
between `low` and `high` it is offered, below `low` nothing is shown; a suggestion people
rejected for the same input is never applied again, only offered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.providers import registry
from hub.errors import ValidationError
from hub.schema import AI_MODES, AI_TASKS, ai_setting, ai_task_setting

DEFAULT_LOW, DEFAULT_HIGH = 0.5, 0.9
DEFAULT_PRICE_PER_CPU_HOUR = 0.05
FEEDBACK_RETRAIN = 20  # verdicts since the newest model that warrant training again before the night (hub/ai/training.py)
PAGE = "/settings/integrations/ai"  # the settings page (hub/web/ai_page.py); hold-back reasons point people to it


def percent(probability: float | None) -> str:
    """A probability or share as a reason or a page says it: "83%" ("—" when unmeasured)."""
    return "—" if probability is None else f"{probability * 100:.0f}%"


@dataclass(frozen=True)
class TaskSetting:
    task: str
    enabled: bool = True
    mode: str = "auto"
    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH

    def action(self, probability: float, *, rejected_before: bool = False) -> str:
        """auto_applied, suggested or none for a suggestion of this probability."""
        if not self.enabled or probability < self.low:
            return "none"
        if probability >= self.high and self.mode == "auto" and not rejected_before:
            return "auto_applied"
        return "suggested"


@dataclass(frozen=True)
class AISettings:
    company_id: int
    tasks: dict[str, TaskSetting] = field(default_factory=dict)
    integration_ids: list[int] | None = None  # None: every integration
    price_per_cpu_hour: float = DEFAULT_PRICE_PER_CPU_HOUR

    def task(self, name: str) -> TaskSetting:
        return self.tasks.get(name) or TaskSetting(name)

    def covers(self, integration_id: int) -> bool:
        return self.integration_ids is None or integration_id in self.integration_ids


def read(conn: Connection, company_id: int) -> AISettings:
    row = conn.execute(sa.select(ai_setting).where(ai_setting.c.company_id == company_id)).first()
    tasks = {r.task: TaskSetting(r.task, r.enabled, r.mode, float(r.threshold_low), float(r.threshold_high))
             for r in conn.execute(sa.select(ai_task_setting).where(ai_task_setting.c.company_id == company_id))}
    if row is None:
        return AISettings(company_id, tasks)
    return AISettings(company_id, tasks, row.integration_ids, float(row.price_per_cpu_hour))


def _fraction(name: str, value: Any) -> float:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"{name} must be a number between 0 and 1, not '{value}'") from None
    if not 0 <= number <= 1:
        raise ValidationError(f"{name} must be between 0 and 1, not {value}")
    return float(round(number, 3))


def set_task(conn: Connection, company_id: int, task: str, *, enabled: bool | None = None, mode: str | None = None,
             low: Any = None, high: Any = None) -> TaskSetting:
    """Change a task's settings (what is not given stays); returns the result."""
    if task not in AI_TASKS:
        raise ValidationError(f"unknown AI task '{task}' (one of {', '.join(AI_TASKS)})")
    if mode is not None and mode not in AI_MODES:
        raise ValidationError(f"mode must be one of {', '.join(AI_MODES)}, not '{mode}'")
    now = read(conn, company_id).task(task)
    new = TaskSetting(task, now.enabled if enabled is None else bool(enabled), mode or now.mode,
                      now.low if low is None else _fraction("the low threshold", low),
                      now.high if high is None else _fraction("the high threshold", high))
    if new.low > new.high:
        raise ValidationError(f"the low threshold ({new.low}) must not be above the high one ({new.high})")
    values = {"enabled": new.enabled, "mode": new.mode, "threshold_low": new.low, "threshold_high": new.high}
    conn.execute(insert(ai_task_setting).values(company_id=company_id, task=task, **values)
                 .on_conflict_do_update(index_elements=["company_id", "task"], set_={**values, "updated_at": sa.func.now()}))
    return new


def set_company(conn: Connection, company_id: int, *, price_per_cpu_hour: Any = None,
                integration_ids: list[int] | None | str = "keep") -> AISettings:
    """Change the company-wide settings; `integration_ids=None` means every integration."""
    now = read(conn, company_id)
    price = now.price_per_cpu_hour
    if price_per_cpu_hour is not None:
        try:
            price = float(Decimal(str(price_per_cpu_hour)))
        except InvalidOperation:
            raise ValidationError(f"the price per CPU hour must be a number, not '{price_per_cpu_hour}'") from None
        if price < 0:
            raise ValidationError("the price per CPU hour must not be negative")
    ids = now.integration_ids if integration_ids == "keep" else (None if integration_ids is None else sorted({int(i) for i in integration_ids}))
    values = {"price_per_cpu_hour": price, "integration_ids": ids}
    conn.execute(insert(ai_setting).values(company_id=company_id, **values)
                 .on_conflict_do_update(index_elements=["company_id"], set_={**values, "updated_at": sa.func.now()}))
    return read(conn, company_id)


def accounting_providers() -> tuple[str, ...]:
    """The ledgers the assist works on (their coded bill lines train it): the providers with
    the accounting capability."""
    return tuple(registry.with_capability("accounting"))


def at_threshold(table: list[dict], threshold: float) -> dict:
    """The held-out evaluation's row for a threshold (precision, coverage), or {} when it was
    not measured there."""
    return next((row for row in table if abs(row["threshold"] - threshold) < 1e-9), {})
