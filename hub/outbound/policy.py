"""An endpoint's delivery policy: retry schedule, jitter, Retry-After bounds, timeout,
concurrency and the auto-disable rule; stored in `webhook_endpoint.retry_policy`.

Only the keys an operator set are stored; the rest come from `DEFAULTS`, so improving a
default reaches every endpoint that did not choose otherwise.

Why these defaults (shared/reference/webhooks.md, findings 3 and 4):

* ``schedule``: Svix's, which Standard Webhooks cites: the first attempt at once, then
  5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after each failure (8 attempts over about
  27.6 h). Entry *n* is the wait after failed attempt *n*; when the list is used up the
  delivery has failed for good (it can still be replayed).
* ``jitter`` ±20 %: endpoints that failed together do not all come back in the same
  second (a thundering herd on a receiver that just recovered).
* ``Retry-After`` (seconds or an HTTP date) on a failed response is honoured but clamped to
  ``[base, retry_after_max_factor x base]`` of the scheduled wait: a receiver may ask us to
  wait longer, within reason, but cannot pull retries earlier than the schedule or push
  them out forever (Svix issue #2199/#2200 behaviour).
* ``timeout`` 15 s for the whole exchange (connect, send, headers, capped body): a slow
  receiver costs one of its own concurrency slots for at most that long.
* ``concurrency`` 8: requests in flight to one endpoint at once (per worker). This, not a
  global queue, is what keeps one slow endpoint from delaying the others.
* auto-disable: when the endpoint has failed every attempt for ``disable_after_seconds``
  (5 days, as hosted Svix) **and** at least ``disable_after_failures`` (8, one full
  schedule) attempts in a row. Time alone would disable an endpoint that failed twice,
  five days apart; a count alone would disable a busy endpoint within seconds of a
  short outage. ``disable_after_seconds: null`` makes the rule count-only. A 410 response
  disables at once, whatever the policy.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from hub.errors import ValidationError

__all__ = ["DEFAULTS", "DeliveryPolicy", "format_duration", "parse_duration", "parse_retry_after", "schedule_for"]

MAX_TIMEOUT_S = 60.0
MAX_SCHEDULE_LEN = 20
MAX_DELAY_S = 7 * 86400.0


@dataclass(frozen=True)
class DeliveryPolicy:
    schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    jitter: float = 0.2
    retry_after_max_factor: float = 2.0
    timeout: float = 15.0
    concurrency: int = 8
    disable_after_seconds: float | None = 5 * 86400
    disable_after_failures: int = 8

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> "DeliveryPolicy":
        """Validate stored or operator-given overrides; unknown keys are refused so a typo
        ("shedule") does not silently fall back to the default."""
        value = dict(value or {})
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValidationError(
                f"unknown retry policy key(s) {', '.join(sorted(unknown))}; known: {', '.join(cls.__dataclass_fields__)}"
            )
        merged = {**asdict(DEFAULTS), **value}
        schedule = merged["schedule"]
        if not isinstance(schedule, (list, tuple)) or len(schedule) > MAX_SCHEDULE_LEN or not all(
            _number(x) and 0 <= x <= MAX_DELAY_S for x in schedule
        ):
            raise ValidationError(f"retry policy schedule must be a list of at most {MAX_SCHEDULE_LEN} waits in seconds, each 0..{MAX_DELAY_S:.0f}")
        _range(merged, "jitter", 0, 0.9)
        _range(merged, "retry_after_max_factor", 1, 100)
        _range(merged, "timeout", 0.05, MAX_TIMEOUT_S)
        if not isinstance(merged["concurrency"], int) or isinstance(merged["concurrency"], bool) or not 1 <= merged["concurrency"] <= 64:
            raise ValidationError("retry policy concurrency must be an integer 1..64")
        if merged["disable_after_seconds"] is not None:
            _range(merged, "disable_after_seconds", 0, 90 * 86400)
        failures = merged["disable_after_failures"]
        if not isinstance(failures, int) or isinstance(failures, bool) or not 1 <= failures <= 100_000:
            raise ValidationError("retry policy disable_after_failures must be an integer 1..100000")
        merged["schedule"] = tuple(float(x) for x in schedule)
        return cls(**merged)

    def overrides(self) -> dict[str, Any]:
        """The keys that differ from `DEFAULTS`, as stored."""
        out = {}
        for key, default in asdict(DEFAULTS).items():
            mine = getattr(self, key)
            if mine != default:
                out[key] = list(mine) if isinstance(mine, tuple) else mine
        return out

    def next_delay(self, failed_attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after failed attempt `failed_attempt` (1-based); None when the
        schedule is used up. A receiver's Retry-After replaces the jittered wait, clamped
        to ``[base, retry_after_max_factor x base]``."""
        if failed_attempt < 1 or failed_attempt > len(self.schedule):
            return None
        base = self.schedule[failed_attempt - 1]
        if retry_after is not None:
            return min(max(retry_after, base), base * self.retry_after_max_factor)
        return base * (rng or random).uniform(1 - self.jitter, 1 + self.jitter)


DEFAULTS = DeliveryPolicy()


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _range(merged: dict, key: str, low: float, high: float) -> None:
    value = merged[key]
    if not _number(value) or not low <= value <= high:
        raise ValidationError(f"retry policy {key} must be a number {low}..{high}")


_SECONDS = re.compile(r"[0-9]{1,10}")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header as seconds from `now`: delta-seconds or an HTTP date
    (RFC 9110 10.2.3). Unparsable values are ignored (None) rather than trusted."""
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # an HTTP date is GMT by definition
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, when.timestamp() - now)


# ---- the schedule as people write it (the settings page's retry policy editor) ----------

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|sec|m|min|h|d)?", re.IGNORECASE)
_UNITS = {None: 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"30"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"250ms"`` as seconds; anything else
    is a `ValidationError` naming what was not understood."""
    match = _DURATION.fullmatch((text or "").strip())
    if match is None:
        raise ValidationError(f"{text.strip()!r} is not a duration (write e.g. 30s, 5m, 2h or 1d)")
    return float(match[1]) * _UNITS[match[2].lower() if match[2] else None]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling `parse_duration` reads back: 36000 -> ``10h``."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1 and round(seconds * 1000) == seconds * 1000:
        return f"{int(seconds * 1000)}ms"
    return f"{seconds:g}s"


def schedule_for(max_attempts: int, waits: list[float]) -> list[float]:
    """The `schedule` for at most `max_attempts` attempts with these waits between them.

    Fewer waits than gaps: the last wait repeats (Svix's schedule ends with 10 h, 10 h), so
    "8 attempts, 5s 5m 30m 2h" is a complete answer. More waits than gaps is refused rather
    than silently cut, because the person meant something else."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not 1 <= max_attempts <= MAX_SCHEDULE_LEN + 1:
        raise ValidationError(f"max attempts must be a whole number 1..{MAX_SCHEDULE_LEN + 1}")
    gaps = max_attempts - 1
    if gaps == 0:
        if waits:
            raise ValidationError("with 1 attempt there is no retry: leave the waits empty")
        return []
    if not waits:
        raise ValidationError(f"give the wait before each retry ({gaps} retries), e.g. 5s, 5m, 30m")
    if len(waits) > gaps:
        raise ValidationError(f"{len(waits)} waits given for {max_attempts} attempts: give at most {gaps}")
    return [float(w) for w in waits] + [float(waits[-1])] * (gaps - len(waits))
