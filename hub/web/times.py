"""Times as the settings pages show them: relative ("5 minutes ago") in the text, exact in
the company's timezone on hover (`title`) and machine-readable in `<time datetime>`."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def relative(when: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or datetime.now(timezone.utc)) - when).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size or unit == "minute":
            count = max(1, round(seconds / size))
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    raise AssertionError("unreachable")


def zone(tz_name: str):
    """The company's timezone; UTC for a name the system does not know."""
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def exact(when: datetime, tz_name: str) -> str:
    return when.astimezone(zone(tz_name)).strftime("%Y-%m-%d %H:%M:%S %Z")


def day(when: datetime, tz_name: str) -> str:
    """The date, in the company's timezone."""
    return when.astimezone(zone(tz_name)).date().isoformat()


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")
