"""A small progress display for long benchmark runs (no dependencies).

::

    progress = Progress(total_steps=len(plan))
    for run in plan:
        progress.step(f"{run.server} {run.scenario} size={run.size}")
        progress.status("warming up")
        ...
        progress.status(f"steady: {pkts_per_s:.0f} pkt/s")
    progress.done()

On a terminal the current step's line is rewritten in place (``\\r``) by each ``status()``; a
new ``step()`` leaves the previous step's last line on screen. On anything else (a log file,
CI) every call prints a plain line with a wall-clock timestamp. Each line shows the step
number, the elapsed time and an ETA estimated from the average duration of completed steps.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Progress of ``total_steps`` sequential steps, written to ``stream`` (default stderr).

    ``tty`` overrides terminal detection; ``clock`` (monotonic seconds) is injectable for tests.
    """

    def __init__(
        self,
        total_steps: int,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_steps = max(0, total_steps)
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.tty = _is_tty(self.stream) if tty is None else tty
        self._clock = clock
        self._t0 = clock()
        self._step_t0 = self._t0
        self.current = 0  # number of steps started; the current one is in progress
        self.label = ""
        self.text = ""
        self._line_open = False  # a TTY line is on screen without its newline yet

    # -- timing -------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Seconds since the display was created."""
        return self._clock() - self._t0

    def eta(self) -> float | None:
        """Estimated seconds until the last step ends, or None before any step has completed."""
        completed = self.current - 1
        if completed <= 0:
            return None
        average = (self._step_t0 - self._t0) / completed
        in_step = self._clock() - self._step_t0
        return max(0.0, average * (self.total_steps - completed) - in_step)

    # -- output -------------------------------------------------------------------------------

    def step(self, label: str) -> None:
        """Start the next step (the previous one counts as completed)."""
        if self._line_open:
            self._write("\n")
            self._line_open = False
        self.current += 1
        self._step_t0 = self._clock()
        self.label = label
        self.text = ""
        self._render()

    def status(self, text: str) -> None:
        """Show what the current step is doing now."""
        self.text = text
        self._render()

    def log(self, text: str) -> None:
        """Print a permanent line (a warning, a result) without disturbing the status line."""
        if self.tty:
            self._write("\r\x1b[K" + text + "\n")
            if self._line_open:
                self._write(self._fit(self._line()))
        else:
            self._write(f"{time.strftime('%H:%M:%S')} {text}\n")

    def done(self, text: str = "done") -> None:
        """Finish: close the status line and print the total time."""
        summary = f"{text}: {self.current}/{self.total_steps} steps in "
        summary += format_duration(self.elapsed)
        if self.tty:
            self._write(("\n" if self._line_open else "") + summary + "\n")
            self._line_open = False
        else:
            self._write(f"{time.strftime('%H:%M:%S')} {summary}\n")

    def _line(self) -> str:
        parts = [f"[{self.current}/{self.total_steps}] {self.label}"]
        if self.text:
            parts.append(self.text)
        eta = self.eta()
        timing = f"{format_duration(self.elapsed)} elapsed"
        timing += f", ETA {format_duration(eta)}" if eta is not None else ""
        return " · ".join(parts) + f" ({timing})"

    def _render(self) -> None:
        line = self._line()
        if self.tty:
            self._write("\r" + self._fit(line) + "\x1b[K")
            self._line_open = True
        else:
            self._write(f"{time.strftime('%H:%M:%S')} {line}\n")

    @staticmethod
    def _fit(line: str) -> str:
        """Truncate to the terminal width so a rewrite never wraps onto a second line."""
        width = shutil.get_terminal_size(fallback=(120, 24)).columns - 1
        return line if len(line) <= width else line[: max(1, width - 1)] + "…"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
