"""bench.procstat: CPU and memory accounting of a process tree from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import bench.procstat as procstat
from bench.procstat import CpuWindow, ProcessTree, WindowResult, read_stat

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

# Burns ~0.5 s of CPU, says so on stdout, then stays alive until stdin closes.
BURN = """
import sys, time
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
print("burnt", flush=True)
sys.stdin.read()
"""

# A shell (the tree's root) whose child python does the burning; the shell outlives it.
WRAPPED = ["/bin/sh", "-c", f"\"{sys.executable}\" -c '{BURN}'; echo exited; sleep 30"]


@pytest.fixture
def wrapped_burner() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        WRAPPED, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the shell and whatever it started
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_read_stat_of_self() -> None:
    st = read_stat(os.getpid())
    assert st.pid == os.getpid()
    assert st.ppid == os.getppid()
    assert st.utime + st.stime > 0


def test_read_stat_of_missing_process_raises() -> None:
    with pytest.raises(ProcessLookupError):
        read_stat(2**22 + 1)  # above pid_max's ceiling on 64-bit Linux


@pytest.fixture(params=["scan", "children-files"])
def discovery(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with both ways of finding descendants (the kernel may lack one)."""
    use_files = request.param == "children-files"
    if use_files and not procstat._HAVE_CHILDREN_FILES:
        pytest.skip("kernel built without CONFIG_PROC_CHILDREN")
    monkeypatch.setattr(procstat, "_HAVE_CHILDREN_FILES", use_files)
    return str(request.param)


def test_tree_includes_a_burning_grandchild(
    wrapped_burner: subprocess.Popen[str], discovery: str
) -> None:
    assert wrapped_burner.stdout is not None
    tree = ProcessTree(wrapped_burner.pid)
    assert wrapped_burner.stdout.readline().strip() == "burnt"
    pids = tree.pids()
    assert pids[0] == wrapped_burner.pid
    assert len(pids) == 2  # sh and its python child
    sh_alone = read_stat(wrapped_burner.pid)
    assert (sh_alone.utime + sh_alone.stime) / os.sysconf("SC_CLK_TCK") < 0.2
    assert 0.3 <= tree.cpu_seconds() < 5
    assert tree.rss_bytes() > 1024 * 1024
    assert tree.peak_rss_bytes() >= tree.rss_bytes()


def test_reaped_children_stay_counted_when_include_reaped(
    wrapped_burner: subprocess.Popen[str],
) -> None:
    assert wrapped_burner.stdout is not None and wrapped_burner.stdin is not None
    with_reaped = ProcessTree(wrapped_burner.pid)
    live_only = ProcessTree(wrapped_burner.pid, include_reaped=False)
    assert wrapped_burner.stdout.readline().strip() == "burnt"
    burner = with_reaped.pids()[1]
    before = with_reaped.cpu_seconds()
    wrapped_burner.stdin.close()  # the python child exits; sh reaps it and prints "exited"
    assert wrapped_burner.stdout.readline().strip() == "exited"
    assert burner not in with_reaped.pids()
    assert with_reaped.cpu_seconds() >= before
    assert live_only.cpu_seconds() < 0.2  # the burner's time left with it


def test_exclude_prunes_a_subtree(wrapped_burner: subprocess.Popen[str]) -> None:
    assert wrapped_burner.stdout is not None
    assert wrapped_burner.stdout.readline().strip() == "burnt"
    mine = ProcessTree(os.getpid(), exclude=[wrapped_burner.pid])
    assert wrapped_burner.pid not in mine.pids()
    assert wrapped_burner.pid in ProcessTree(os.getpid()).pids()


def test_cpu_window_measures_a_busy_child() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    window = CpuWindow(proc.pid)
    try:
        window.start()
        assert proc.stdout.readline().strip() == "burnt"
        result = window.stop()
    finally:
        proc.kill()
        proc.communicate()
    assert isinstance(result, WindowResult)
    assert 0.3 <= result.cpu_s < 5
    assert result.wall_s >= result.cpu_s * 0.5
    assert result.utilisation == pytest.approx(result.cpu_s / result.wall_s)
    assert window.cpu_s == result.cpu_s and window.utilisation == result.utilisation


def test_cpu_window_of_an_idle_process_is_near_zero() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)  # let the interpreter finish starting
        with CpuWindow(ProcessTree(proc.pid)) as window:
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    assert window.result is not None
    assert window.cpu_s < 0.05
    assert window.wall_s >= 0.2
    assert window.utilisation < 0.25


def test_cpu_window_uses_the_injected_clock() -> None:
    ticks = iter([10.0, 14.0])
    window = CpuWindow(os.getpid(), clock=lambda: next(ticks))
    window.start()
    assert window.stop().wall_s == 4.0


def test_cpu_window_misuse_raises() -> None:
    window = CpuWindow(os.getpid())
    with pytest.raises(RuntimeError):
        window.stop()
    with pytest.raises(RuntimeError):
        _ = window.utilisation


def test_vanished_root_raises_process_lookup_error() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: /proc/<pid> is gone
    tree = ProcessTree(proc.pid)
    assert not tree.alive()
    with pytest.raises(ProcessLookupError):
        tree.cpu_seconds()
    with pytest.raises(ProcessLookupError):
        tree.rss_bytes()


def test_descendants_exiting_mid_read_are_skipped() -> None:
    """Short-lived grandchildren come and go while the tree is read over and over."""
    script = "for i in $(seq 200); do /bin/true; done"
    proc = subprocess.Popen(["/bin/sh", "-c", script])
    tree = ProcessTree(proc.pid)
    try:
        while proc.poll() is None:
            try:
                tree.cpu_seconds()
                tree.rss_bytes()
            except ProcessLookupError:
                assert proc.poll() is not None  # only the root's own exit may raise
    finally:
        proc.kill()
        proc.wait()
