"""CPU and memory accounting for a process and its descendants, read from Linux ``/proc``.

``ProcessTree(pid)`` follows a process and everything it spawned (a server started through a
shell wrapper, a load generator with worker processes) and sums their CPU time and resident
memory. ``CpuWindow`` measures the CPU a tree used during a window of wall time::

    tree = ProcessTree(server.pid)
    window = CpuWindow(tree)
    window.start()
    ...  # steady state
    result = window.stop()  # result.cpu_s, result.wall_s, result.utilisation

Processes may exit at any moment: a descendant that vanishes while it is being read is skipped;
only the root's disappearance is an error (``ProcessLookupError``). Linux only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuWindow", "ProcessTree", "StatFields", "WindowResult", "read_stat"]

PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# The kernel only provides /proc/<pid>/task/<tid>/children with CONFIG_PROC_CHILDREN; without it
# descendants are found by reading every process's parent pid.
_HAVE_CHILDREN_FILES = (PROC / "self" / "task" / str(os.getpid()) / "children").exists()


@dataclass(frozen=True, slots=True)
class StatFields:
    """The fields of ``/proc/<pid>/stat`` this module uses (times in clock ticks)."""

    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int


def read_stat(pid: int) -> StatFields:
    """Parse ``/proc/<pid>/stat``; raises ``ProcessLookupError`` if the process has gone.

    The command name (field 2) may hold spaces and parentheses, so fields are counted from the
    last ``)``: after it come state (3), ppid (4), ... utime (14), stime (15), cutime (16),
    cstime (17).
    """
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise ProcessLookupError(pid) from exc
    rest = raw[raw.rfind(b")") + 2 :].split()
    if len(rest) < 15:  # pragma: no cover - a truncated read of a dying process
        raise ProcessLookupError(pid)
    return StatFields(
        pid=pid,
        ppid=int(rest[1]),
        utime=int(rest[11]),
        stime=int(rest[12]),
        cutime=int(rest[13]),
        cstime=int(rest[14]),
    )


def _all_pids() -> Iterator[int]:
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            yield int(entry.name)


def _children_from_task_files(pid: int) -> list[int]:
    """Children of every thread of ``pid`` (CONFIG_PROC_CHILDREN kernels)."""
    children: list[int] = []
    try:
        tasks = list(os.scandir(PROC / str(pid) / "task"))
    except (FileNotFoundError, ProcessLookupError):
        return children
    for task in tasks:
        try:
            text = (Path(task.path) / "children").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread (or the whole process) exited meanwhile
        children.extend(int(c) for c in text.split())
    return children


def _parent_map() -> dict[int, list[int]]:
    """ppid -> child pids for every process on the system (one scan of /proc)."""
    by_parent: dict[int, list[int]] = {}
    for pid in _all_pids():
        try:
            ppid = read_stat(pid).ppid
        except ProcessLookupError:
            continue
        by_parent.setdefault(ppid, []).append(pid)
    return by_parent


def _read_status_kib(pid: int, key: str) -> int:
    """A ``kB`` value (e.g. ``VmRSS``) from ``/proc/<pid>/status``; 0 when absent (zombies,
    kernel threads) and ``ProcessLookupError`` when the process has gone."""
    try:
        text = (PROC / str(pid) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise ProcessLookupError(pid) from exc
    prefix = key + ":"
    for line in text.splitlines():
        if line.startswith(prefix):
            return int(line.split()[1])
    return 0


class ProcessTree:
    """A process and all of its live descendants, re-discovered on every read.

    ``cpu_seconds()`` is the sum of ``utime + stime`` (``/proc/<pid>/stat`` fields 14 and 15)
    over the tree. With ``include_reaped`` (the default) it also adds each member's ``cutime +
    cstime`` (fields 16 and 17): the CPU of descendants that already exited and were waited
    for. That keeps the total monotonic when a helper process exits in the middle of a
    measurement window (its time moves from its own counters to its parent's) so window deltas
    never go negative. It also means the absolute value includes children reaped before the
    tree was created; use deltas (``CpuWindow``), not absolute values.

    ``exclude`` names pids whose whole subtrees are left out, e.g. a server that the measuring
    process spawned itself: ``ProcessTree(os.getpid(), exclude=[server.pid])``. (Once such a
    child is reaped its CPU lands in the parent's ``cutime``; stop windows before reaping.)
    """

    def __init__(
        self, pid: int, *, include_reaped: bool = True, exclude: Iterable[int] = ()
    ) -> None:
        self.pid = pid
        self.include_reaped = include_reaped
        self.exclude = frozenset(exclude)

    def __repr__(self) -> str:
        return f"ProcessTree(pid={self.pid})"

    def pids(self) -> list[int]:
        """The root pid followed by its live descendants (breadth first).

        Raises ``ProcessLookupError`` if the root process no longer exists.
        """
        if not (PROC / str(self.pid)).exists():
            raise ProcessLookupError(self.pid)
        by_parent = None if _HAVE_CHILDREN_FILES else _parent_map()
        found = [self.pid]
        seen = {self.pid}
        i = 0
        while i < len(found):
            parent = found[i]
            i += 1
            if by_parent is None:
                children = _children_from_task_files(parent)
            else:
                children = by_parent.get(parent, [])
            for child in children:
                if child not in seen and child not in self.exclude:
                    seen.add(child)
                    found.append(child)
        return found

    def cpu_ticks(self) -> int:
        """CPU time of the tree in clock ticks (see the class docstring for what is counted)."""
        total = 0
        for pid in self.pids():
            try:
                st = read_stat(pid)
            except ProcessLookupError:
                if pid == self.pid:
                    raise
                continue  # a descendant exited between discovery and read
            total += st.utime + st.stime
            if self.include_reaped:
                total += st.cutime + st.cstime
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the tree in seconds."""
        return self.cpu_ticks() / CLK_TCK

    def _sum_status(self, key: str) -> int:
        total = 0
        for pid in self.pids():
            try:
                total += _read_status_kib(pid, key)
            except ProcessLookupError:
                if pid == self.pid:
                    raise
        return total * 1024

    def rss_bytes(self) -> int:
        """Resident memory of the tree: the sum of each member's ``VmRSS``.

        Pages shared between members (e.g. after ``fork``) are counted once per member, so
        this over-counts multi-process trees; it is exact for a single process.
        """
        return self._sum_status("VmRSS")

    def peak_rss_bytes(self) -> int:
        """The sum of each live member's peak resident memory (``VmHWM``)."""
        return self._sum_status("VmHWM")

    def alive(self) -> bool:
        """Whether the root process still exists (a zombie counts as existing)."""
        return (PROC / str(self.pid)).exists()


@dataclass(frozen=True, slots=True)
class WindowResult:
    """CPU and wall time of one measurement window."""

    cpu_s: float
    wall_s: float

    @property
    def utilisation(self) -> float:
        """CPU seconds per wall second: 1.0 is one core fully busy (can exceed 1.0)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class CpuWindow:
    """Measures a tree's CPU time over a window: ``start()``, then ``stop()``.

    Reusable: each ``start()`` begins a new window. Also a context manager (``with
    CpuWindow(tree) as w: ...`` then ``w.result``).
    """

    def __init__(
        self, tree: ProcessTree | int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.tree = tree if isinstance(tree, ProcessTree) else ProcessTree(tree)
        self._clock = clock
        self._cpu0: float | None = None
        self._wall0 = 0.0
        self.result: WindowResult | None = None

    def start(self) -> None:
        """Begin the window (reads the tree's CPU time now)."""
        self.result = None
        self._cpu0 = self.tree.cpu_seconds()
        self._wall0 = self._clock()

    def stop(self) -> WindowResult:
        """End the window and return its CPU and wall seconds."""
        if self._cpu0 is None:
            raise RuntimeError("CpuWindow.stop() before start()")
        wall = self._clock() - self._wall0
        cpu = self.tree.cpu_seconds() - self._cpu0
        self._cpu0 = None
        self.result = WindowResult(cpu_s=max(cpu, 0.0), wall_s=wall)
        return self.result

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the last completed window."""
        return self._finished().cpu_s

    @property
    def wall_s(self) -> float:
        """Wall seconds of the last completed window."""
        return self._finished().wall_s

    @property
    def utilisation(self) -> float:
        """CPU seconds per wall second of the last completed window."""
        return self._finished().utilisation

    def _finished(self) -> WindowResult:
        if self.result is None:
            raise RuntimeError("the CPU window has not been stopped yet")
        return self.result

    def __enter__(self) -> CpuWindow:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # On an exception the window is abandoned (``result`` stays None) rather than read from
        # a tree that may have died, which would mask the original error.
        if self._cpu0 is not None and exc_type is None:
            self.stop()
        self._cpu0 = None
