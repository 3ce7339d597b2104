"""Time as a port: services read the time only from a `Clock`.

`SystemClock` is the real one; tests use `parlour.testing.FakeClock`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock", "utc"]

utc = dt.UTC


class Clock(Protocol):
    """Where services get the time from."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock, for measuring intervals."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(tz=dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()
