"""A campaign's local start window ("09:00-11:30" in each party's own zones) as instants."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# HH:MM-HH:MM, ending at 24:00 at the latest (declared as the API's pattern, too).
WINDOW_PATTERN = r"^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$"
_WINDOW = re.compile(WINDOW_PATTERN)


@dataclass(frozen=True, slots=True)
class LocalWindow:
    start: time
    end: time  # exclusive; 24:00 is written as time.max

    @classmethod
    def parse(cls, text: str) -> LocalWindow:
        """'09:00-11:30' -> LocalWindow; raises ValueError on anything else."""
        m = _WINDOW.match(text.strip())
        if not m:
            raise ValueError(f"a window is 'HH:MM-HH:MM' (24:00 at the latest), not {text!r}")
        start = time(int(m[1]), int(m[2]))
        end = time.max if m[3] == "24:00" else time(int(m[4]), int(m[5]))
        if end <= start:
            raise ValueError(f"a window must end after it starts: {text!r}")
        return cls(start, end)

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"

    def today(self, zones: Iterable[str], now: datetime) -> tuple[datetime, datetime] | None:
        """The window on each zone's local date of `now`, intersected over the zones (a
        party whose zone is uncertain is called only when it is open in every one of them);
        None when the intersection is empty."""
        start: datetime | None = None
        end: datetime | None = None
        for zone in zones:
            s, e = _bounds(self.start, self.end, zone, now.astimezone(_zone(zone)).date())
            start = s if start is None or s > start else start
            end = e if end is None or e < end else end
        if start is None or end is None or end <= start:
            return None
        return start, end

    def next_open(
        self, zones: Iterable[str], now: datetime, days: int = 8
    ) -> tuple[datetime, datetime] | None:
        """The first window (intersected over the zones) that has not closed by `now`:
        today's, or one of the next `days` days' when today's has closed (a campaign
        started in the afternoon plans for tomorrow morning). Which days may be called
        is the engine's question, asked at the instant this returns."""
        zones = list(zones)
        for k in range(days + 1):
            bounds = self.today(zones, now + timedelta(days=k))
            if bounds is not None and now < bounds[1]:
                return bounds
        return None


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _bounds(start: time, end: time, zone: str, day: date) -> tuple[datetime, datetime]:
    tz = _zone(zone)
    return datetime.combine(day, start, tzinfo=tz), datetime.combine(day, end, tzinfo=tz)
