"""Times on the section pages, in the company's timezone (hub/web/times.py): one callable per
page, taking a datetime or the ISO text that JSON history entries hold."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from hub.web.times import exact


def company_clock(tz_name: str) -> Callable[[datetime | str | None], str]:
    def show(when: datetime | str | None) -> str:
        if when is None or when == "":
            return "—"
        if isinstance(when, str):
            try:
                when = datetime.fromisoformat(when)
            except ValueError:
                return when
        return exact(when, tz_name)

    return show
