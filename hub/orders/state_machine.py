"""The life of an external order, as the seed's status set describes it:

    received -> accepted -> preparing -> ready -> picked_up -> delivered
    received -> rejected
    any state that has not ended -> cancelled

Provider events arrive late, twice, or out of order (Uber Eats and DoorDash both say so),
so the machine is monotonic: an event can only move an order forward along the main line,
never back (a late "accepted" after "picked_up" changes nothing), and the three end states
(delivered, rejected, cancelled) are final. Every event is kept in the history, whether it
moved the order or not, so what the provider said is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

MAIN_LINE = ("received", "accepted", "preparing", "ready", "picked_up", "delivered")
FINAL = frozenset({"delivered", "rejected", "cancelled"})
ALL = frozenset(MAIN_LINE) | FINAL


@dataclass(frozen=True)
class Transition:
    before: str
    after: str
    applied: bool
    why: str

    def history_entry(self, source: str, at: datetime | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "status": self.after if self.applied else self.before,
            "event_status": extra.pop("event_status", None),
            "applied": self.applied,
            "why": self.why,
            "source": source,
            "at": (at or datetime.now(timezone.utc)).isoformat(),
            **extra,
        }


def advance(current: str, event: str) -> Transition:
    """Where an order in `current` goes when an event says `event`."""
    if current not in ALL or event not in ALL:
        raise ValueError(f"unknown order status: {current if current not in ALL else event}")
    if current == event:
        return Transition(current, current, False, "duplicate")
    if current in FINAL:
        return Transition(current, current, False, f"{current} is final")
    if event == "cancelled":
        return Transition(current, event, True, "cancelled")
    if event == "rejected":
        if current == "received":
            return Transition(current, event, True, "rejected")
        return Transition(current, current, False, f"cannot reject an order already {current}")
    if MAIN_LINE.index(event) < MAIN_LINE.index(current):
        return Transition(current, current, False, f"late event: already {current}")
    return Transition(current, event, True, "advanced")
