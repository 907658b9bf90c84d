"""Emulator time: real time plus an offset that tests (and the admin API) can advance,
so token expiry, rate windows and CDC look-back limits are testable without sleeping."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        """Seconds since the epoch, as the emulated provider sees them."""
        with self._lock:
            return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=timezone.utc)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
