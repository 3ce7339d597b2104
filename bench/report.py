"""Benchmark results: the JSON document, its Markdown report, plots and the headline line.

A *run* is one server x scenario x room size measurement, a JSON-serialisable dict with the
keys of ``RUN_KEYS`` (None when not measured); ``make_run`` builds one. The *document* holds
the runs of one ``make bench`` invocation::

    {"date": "YYYY-MM-DD", "started_at": iso, "machine": {...}, "quick": bool,
     "runs": [run, ...], "max_meeting_under_1pct": {"parlour": int|None, "janus": int|None},
     "notes": [str, ...]}

``write_results`` writes ``<date>.json``, ``<date>.md`` and two PNG plots (``<date>-quick.*``
for quick runs), and a third for media workers; ``headline`` is the one line ``make bench``
ends with, ``mediasoup_line`` the Parlour-to-mediasoup line printed just before it,
``workers_line`` the media-worker scaling line before that.

The document's ``workers`` list holds Parlour runs of one load (one meeting per core, at
once) with its SFU in the server process (``media_workers`` 0), in one worker, and in one
worker per core.

``SERVERS`` (Parlour, Janus) are always in the tables; a peer with runs in the document
(mediasoup, see ``PEERS``) gets its own value in every cell and its own ratio.

When a server has several error-free runs at the same scenario and size (repeats), every
figure is the median over them.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_KEYS",
    "SCENARIOS",
    "SERVERS",
    "derive",
    "figure",
    "headline",
    "machine_info",
    "make_run",
    "markdown",
    "max_size_under",
    "mediasoup_line",
    "new_document",
    "workers_line",
    "percentile",
    "write_results",
]

Run = dict[str, Any]
Doc = dict[str, Any]

SERVERS = ("parlour", "janus")
PEERS = ("mediasoup",)  # in the tables when the document has runs of them
SCENARIOS = ("meeting", "audio_only", "broadcast", "simulcast", "simulcast_switching")
RUN_KEYS = (
    "server",
    "scenario",
    "size",
    "publishers",
    "subscribers",
    "duration_s",
    "server_cpu_s",
    "loadgen_cpu_s",
    "egress_pkts",
    "server_egress_pkts",
    "egress_pkts_per_s",
    "egress_bits_per_s",
    "egress_pkts_per_cpu_s",
    "expected_pkts",
    "lost_pkts",
    "loss_pct",
    "delay_ms_p50",
    "delay_ms_p99",
    "join_ms_p50",
    "join_ms_p95",
    "server_rss_bytes",
    "rss_per_participant_bytes",
    "server_busiest_cpu_pct",
    "rooms",
    "media_workers",
    "render_kbps",
    "switches_per_s",
    "saturated",
    "error",
)

MIB = 1024 * 1024

# -- building results ---------------------------------------------------------------------------


def make_run(server: str, scenario: str, size: int, **fields: Any) -> Run:
    """A run dict with every key of ``RUN_KEYS`` (None unless given); unknown keys are errors."""
    unknown = set(fields) - set(RUN_KEYS)
    if unknown:
        raise TypeError(f"unknown run fields: {sorted(unknown)}")
    run: Run = dict.fromkeys(RUN_KEYS)
    run.update(server=server, scenario=scenario, size=size, **fields)
    return run


def _ratio(num: Any, den: Any) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return float(num) / float(den)


def derive(run: Run) -> Run:
    """Fill the derived figures that are still None from the raw ones, in place (and return it).

    ``egress_pkts_per_s`` = egress_pkts / duration_s, ``egress_pkts_per_cpu_s`` = egress_pkts /
    server_cpu_s, ``loss_pct`` = 100 * lost_pkts / expected_pkts and
    ``rss_per_participant_bytes`` = server_rss_bytes / size. (``egress_bits_per_s`` needs byte
    counts the run does not hold, so the load generator sets it.)
    """
    formulas: dict[str, Callable[[], float | None]] = {
        "egress_pkts_per_s": lambda: _ratio(run.get("egress_pkts"), run.get("duration_s")),
        "egress_pkts_per_cpu_s": lambda: _ratio(run.get("egress_pkts"), run.get("server_cpu_s")),
        "loss_pct": lambda: _scale(_ratio(run.get("lost_pkts"), run.get("expected_pkts")), 100),
        "rss_per_participant_bytes": lambda: _ratio(run.get("server_rss_bytes"), run.get("size")),
    }
    for key, formula in formulas.items():
        if run.get(key) is None:
            run[key] = formula()
    return run


def _scale(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def machine_info(
    *,
    janus_version: str | None = None,
    parlour_version: str | None = None,
    mediasoup_version: str | None = None,
) -> dict[str, Any]:
    """The ``machine`` block: CPU count and model, Python and the servers' versions."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "model": model,
        "python": platform.python_version(),
        "janus_version": janus_version,
        "parlour_version": parlour_version,
        "mediasoup_version": mediasoup_version,
    }


def new_document(machine: Mapping[str, Any], *, quick: bool) -> Doc:
    """An empty results document dated now (local date; ``started_at`` in UTC)."""
    return {
        "date": time.strftime("%Y-%m-%d"),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": dict(machine),
        "quick": quick,
        "runs": [],
        "max_meeting_under_1pct": dict.fromkeys(SERVERS),
        "notes": [],
    }


# -- statistics -----------------------------------------------------------------------------


def percentile(values: Iterable[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) of ``values`` by linear interpolation, None if empty.

    Linear between closest ranks (numpy's default, Excel's PERCENTILE.INC): the sorted values
    sit at positions 0..n-1 and the percentile is read at position ``p/100 * (n-1)``. So p=0 is
    the minimum, p=100 the maximum and p=50 the median.
    """
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, not {p}")
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return None
    pos = p / 100 * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ok_runs(doc: Doc, server: str, scenario: str, *, include_saturated: bool = False) -> list[Run]:
    """Runs without error; without `saturated` ones too unless asked (those are shown in the
    tables, marked, but never count for the headline or the loss limit)."""
    return [
        r
        for r in doc.get("runs", [])
        if r.get("server") == server
        and r.get("scenario") == scenario
        and not r.get("error")
        and (include_saturated or not r.get("saturated"))
        and r.get("size") is not None
    ]


def _sizes(doc: Doc, server: str, scenario: str, *, include_saturated: bool = False) -> set[int]:
    runs = _ok_runs(doc, server, scenario, include_saturated=include_saturated)
    return {int(r["size"]) for r in runs}


def figure(
    doc: Doc, server: str, scenario: str, size: int, key: str, *, include_saturated: bool = False
) -> float | None:
    """One figure of a server's error-free runs at a scenario and size (median over repeats)."""
    values = [
        float(r[key])
        for r in _ok_runs(doc, server, scenario, include_saturated=include_saturated)
        if r["size"] == size and _finite(r.get(key))
    ]
    return statistics.median(values) if values else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def max_size_under(
    doc: Doc, server: str, scenario: str = "meeting", loss_pct: float = 1.0
) -> int | None:
    """The largest size up to which every tested size ran with loss below ``loss_pct`` percent.

    Sizes are taken in increasing order and the search stops at the first size that fails (an
    error, a saturated machine, loss at or above the limit, or loss not measured), so a lucky
    run above a failing size does not count. With repeats, every run at a size must pass.
    None if even the smallest size fails or the server has no runs for the scenario.
    """
    runs = [r for r in doc.get("runs", []) if r.get("server") == server]
    by_size: dict[int, list[Run]] = {}
    for r in runs:
        if r.get("scenario") == scenario and r.get("size") is not None:
            by_size.setdefault(int(r["size"]), []).append(r)
    best: int | None = None
    for size in sorted(by_size):
        passed = all(
            not r.get("error")
            and not r.get("saturated")
            and _finite(r.get("loss_pct"))
            and r["loss_pct"] < loss_pct
            for r in by_size[size]
        )
        if not passed:
            break
        best = size
    return best


def _max_meeting(doc: Doc) -> dict[str, int | None]:
    """``max_meeting_under_1pct`` computed from the runs; the stored value for a server that has
    no meeting runs in the document."""
    stored = doc.get("max_meeting_under_1pct") or {}
    has_runs = {r.get("server") for r in doc.get("runs", []) if r.get("scenario") == "meeting"}
    return {s: max_size_under(doc, s) if s in has_runs else stored.get(s) for s in _servers(doc)}


def _servers(doc: Doc) -> list[str]:
    present = {r.get("server") for r in doc.get("runs", [])} - set(SERVERS) - {None}
    peers = [p for p in PEERS if p in present]
    return [*SERVERS, *peers, *sorted(present - set(PEERS))]


# -- headline -------------------------------------------------------------------------------


def _int_or_nan(value: float | None) -> str:
    return "nan" if value is None else str(round(value))


def _fixed2_or_nan(value: float | None) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.2f}"


def _pair(
    doc: Doc, first: str, second: str
) -> tuple[dict[str, float | None], dict[str, float | None], float | None]:
    """(egress per CPU-s, loss %) of two servers in the meeting scenario, and their ratio,
    at the largest size both ran without error (see `headline`)."""
    pair = (first, second)
    sizes = {s: _sizes(doc, s, "meeting") for s in pair}
    common = sizes[first] & sizes[second]
    at: dict[str, int | None] = {
        s: max(common) if common else (max(sizes[s]) if sizes[s] else None) for s in pair
    }

    def get(server: str, key: str) -> float | None:
        size = at[server]
        return None if size is None else figure(doc, server, "meeting", size, key)

    eff = {s: get(s, "egress_pkts_per_cpu_s") for s in pair}
    loss = {s: get(s, "loss_pct") for s in pair}
    ratio = _ratio(eff[first], eff[second]) if common else None
    return eff, loss, ratio


def headline(doc: Doc) -> str:
    """The line ``make bench`` ends with::

        meeting egress_pkts_per_cpu_s parlour=<n> janus=<n> ratio=<p/j> loss_pct parlour=<x>
        janus=<x>

    (one line). Figures come from the meeting scenario at the largest size both servers ran
    without error. If only one server has error-free meeting runs, its figures are taken at its
    own largest size and the other server's figures and the ratio are ``nan``; if both have runs
    but no size in common, each is taken at its own largest size and the ratio is ``nan``
    (figures from different sizes are not compared). A figure that was not measured is ``nan``.
    """
    eff, loss, ratio = _pair(doc, "parlour", "janus")
    return (
        "meeting egress_pkts_per_cpu_s"
        f" parlour={_int_or_nan(eff['parlour'])} janus={_int_or_nan(eff['janus'])}"
        f" ratio={_fixed2_or_nan(ratio)}"
        f" loss_pct parlour={_fixed2_or_nan(loss['parlour'])}"
        f" janus={_fixed2_or_nan(loss['janus'])}"
    )


def mediasoup_line(doc: Doc) -> str:
    """Parlour beside mediasoup, printed with the headline (in quick runs too)::

        meeting_vs_mediasoup egress_pkts_per_cpu_s parlour=<n> mediasoup=<n> ratio=<p/m>
        loss_pct parlour=<x> mediasoup=<x>

    (one line), chosen as in `headline`: at the largest meeting size both ran without error,
    ``nan`` for what was not measured (mediasoup skipped: every mediasoup figure is ``nan``).
    """
    eff, loss, ratio = _pair(doc, "parlour", "mediasoup")
    return (
        "meeting_vs_mediasoup egress_pkts_per_cpu_s"
        f" parlour={_int_or_nan(eff['parlour'])} mediasoup={_int_or_nan(eff['mediasoup'])}"
        f" ratio={_fixed2_or_nan(ratio)}"
        f" loss_pct parlour={_fixed2_or_nan(loss['parlour'])}"
        f" mediasoup={_fixed2_or_nan(loss['mediasoup'])}"
    )


def _worker_runs(doc: Doc) -> dict[int, Run]:
    """The media-worker runs without error, by worker count."""
    return {
        int(r["media_workers"]): r
        for r in doc.get("workers") or []
        if not r.get("error") and r.get("media_workers") is not None
    }


def workers_line(doc: Doc) -> str:
    """Parlour's SFU in 0 (in the server process), 1 and N media workers, one line::

        media_workers rooms=<R>x<size> egress_pkts_per_s w0=<n> w1=<n> w<N>=<n>
        scaling=<wN/w1> egress_pkts_per_cpu_s w0=<n> w1=<n> w<N>=<n> efficiency=<wN/w1>
        busiest_cpu_pct w0=<x> … loss_pct w0=<x> …

    ``scaling`` is the egress rate of N workers over one worker's (the same offered load:
    above 1 only where one worker was the ceiling), ``efficiency`` the same for packets per
    CPU-second (below 1: the cost of more processes). ``nan`` for what was not measured.
    """
    by = _worker_runs(doc)
    counts = sorted({int(r["media_workers"]) for r in doc.get("workers") or []})
    some = next(iter(by.values()), None) or next(iter(doc.get("workers") or []), {})
    top = max(counts) if counts else 0

    def each(key: str, fmt: Callable[[float | None], str]) -> str:
        return " ".join(f"w{n}={fmt(by[n].get(key) if n in by else None)}" for n in counts)

    def ratio(key: str) -> str:
        if 1 not in by or top not in by:
            return "nan"
        return _fixed2_or_nan(_ratio(by[top].get(key), by[1].get(key)))

    return (
        f"media_workers rooms={some.get('rooms', 1)}x{some.get('size', '?')}"
        f" egress_pkts_per_s {each('egress_pkts_per_s', _int_or_nan)}"
        f" scaling={ratio('egress_pkts_per_s')}"
        f" egress_pkts_per_cpu_s {each('egress_pkts_per_cpu_s', _int_or_nan)}"
        f" efficiency={ratio('egress_pkts_per_cpu_s')}"
        f" busiest_cpu_pct {each('server_busiest_cpu_pct', _int_or_nan)}"
        f" loss_pct {each('loss_pct', _fixed2_or_nan)}"
    )


def _workers_table(doc: Doc) -> list[str]:
    runs = sorted(doc.get("workers") or [], key=lambda r: int(r.get("media_workers") or 0))
    out = [
        "| Media workers | Egress pkt/s | Egress pkt / CPU-s | Server CPU % | Busiest process"
        " CPU % | Loss % | Delay p99 ms | Note |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        cpu = _ratio(r.get("server_cpu_s"), r.get("duration_s"))
        note = r.get("error") or (f"saturated: {r['saturated']}" if r.get("saturated") else "")
        workers = int(r.get("media_workers") or 0)
        out.append(
            f"| {workers if workers else '0 (in the server process)'}"
            f" | {_fmt(r.get('egress_pkts_per_s'), '{:,.0f}')}"
            f" | {_fmt(r.get('egress_pkts_per_cpu_s'), '{:,.0f}')}"
            f" | {_fmt(None if cpu is None else 100 * cpu, '{:,.0f}')}"
            f" | {_fmt(r.get('server_busiest_cpu_pct'), '{:,.0f}')}"
            f" | {_fmt(r.get('loss_pct'), '{:.2f}')}"
            f" | {_fmt(r.get('delay_ms_p99'), '{:,.1f}')}"
            f" | {_one_line(str(note), 120)} |"
        )
    return out


# -- markdown -------------------------------------------------------------------------------

# (column title, figure key for _cell_value, number format, show the Parlour/Janus ratio)
_Column = tuple[str, str, str, bool]
_COLUMNS: tuple[_Column, ...] = (
    ("Egress pkt / CPU-s", "egress_pkts_per_cpu_s", "{:,.0f}", True),
    ("Egress Mbit/s", "egress_mbit_s", "{:,.1f}", True),
    ("Server CPU %", "server_cpu_pct", "{:,.0f}", True),
    ("Loss %", "loss_pct", "{:.2f}", False),
    ("Delay p50 ms", "delay_ms_p50", "{:,.1f}", True),
    ("Delay p99 ms", "delay_ms_p99", "{:,.1f}", True),
    ("Join p50 ms", "join_ms_p50", "{:,.0f}", True),
    ("Join p95 ms", "join_ms_p95", "{:,.0f}", True),
    ("RSS / participant MiB", "rss_mib_per_participant", "{:,.2f}", True),
)


def _cell_value(doc: Doc, server: str, scenario: str, size: int, key: str) -> float | None:
    """A run figure, or one of the display figures computed from run figures (saturated runs
    included: the table marks them)."""

    def get(name: str) -> float | None:
        return figure(doc, server, scenario, size, name, include_saturated=True)

    if key == "egress_mbit_s":
        return _scale(get("egress_bits_per_s"), 1e-6)
    if key == "rss_mib_per_participant":
        return _scale(get("rss_per_participant_bytes"), 1 / MIB)
    if key == "server_cpu_pct":
        return _scale(_ratio(get("server_cpu_s"), get("duration_s")), 100)
    return get(key)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else spec.format(value)


def _cell(values: Mapping[str, float | None], state: Mapping[str, str], col: _Column) -> str:
    """``parlour / janus (ratio×)``, with a peer ``parlour / janus / mediasoup (p÷j× / p÷m×)``;
    a server whose runs all failed shows ``error``. ``values`` and ``state`` hold the table's
    servers, Parlour first."""
    _title, _key, spec, with_ratio = col
    servers = list(values)
    if all(values[s] is None for s in servers) and "error" not in state.values():
        return "–"
    texts = [
        "error"
        if state[s] == "error"
        else _fmt(values[s], spec) + ("*" if state[s] == "saturated" and values[s] else "")
        for s in servers
    ]
    text = " / ".join(texts)
    p = values[servers[0]]
    if not (with_ratio and p):
        return text
    ratios = [_ratio(p, values[s]) for s in servers[1:]]
    if all(r is None for r in ratios):
        return text
    return text + " (" + " / ".join("–" if r is None else f"{r:.2f}×" for r in ratios) + ")"


def _scenarios(doc: Doc) -> list[str]:
    present = {r.get("scenario") for r in doc.get("runs", [])} - {None}
    return [s for s in SCENARIOS if s in present] + sorted(present - set(SCENARIOS))


def _row_label(doc: Doc, scenario: str, size: int) -> str:
    runs = [
        r for r in doc.get("runs", []) if r.get("scenario") == scenario and r.get("size") == size
    ]
    pubs = next((r["publishers"] for r in runs if r.get("publishers") is not None), None)
    subs = next((r["subscribers"] for r in runs if r.get("subscribers") is not None), None)
    if pubs is None or subs is None:
        return str(size)
    return f"{size} ({pubs}/{subs})"


def _scenario_table(doc: Doc, scenario: str) -> list[str]:
    runs = [r for r in doc.get("runs", []) if r.get("scenario") == scenario]
    sizes = sorted({int(r["size"]) for r in runs if r.get("size") is not None})
    servers = _servers(doc)
    ok_sizes = {s: _sizes(doc, s, scenario) for s in servers}
    shown_sizes = {s: _sizes(doc, s, scenario, include_saturated=True) for s in servers}
    saturated: list[str] = []
    header = ["Size (pub/sub)", *(c[0] for c in _COLUMNS)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---:"] * len(header)) + "|",
    ]
    errors: list[str] = []
    for size in sizes:
        state: dict[str, str] = {}
        for server in servers:
            failed = [
                r
                for r in runs
                if r.get("size") == size and r.get("server") == server and r.get("error")
            ]
            errors += [f"- {server} size {size}: {_one_line(str(r['error']))}" for r in failed]
            saturated += [
                f"- {server} size {size}: {_one_line(str(r['saturated']))}"
                for r in runs
                if r.get("size") == size and r.get("server") == server and r.get("saturated")
            ]
            if size in ok_sizes[server]:
                state[server] = "ok"
            elif size in shown_sizes[server]:
                state[server] = "saturated"
            else:
                state[server] = "error" if failed else "missing"
        cells = [_row_label(doc, scenario, size)]
        for col in _COLUMNS:
            values = {s: _cell_value(doc, s, scenario, size, col[1]) for s in servers}
            cells.append(_cell(values, state, col))
        lines.append("| " + " | ".join(cells) + " |")
    if saturated:
        lines += [
            "",
            "\\* Saturated: shown, but not counted for the headline or the loss limit:",
            "",
            *saturated,
        ]
    if errors:
        lines += ["", "Errors:", "", *errors]
    return lines


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


_NAMES = {"parlour": "Parlour", "janus": "Janus", "mediasoup": "mediasoup"}

_SCENARIO_TITLES = {
    "meeting": "Meeting",
    "audio_only": "Audio-only meeting",
    "broadcast": "Broadcast",
    "simulcast": "Simulcast meeting",
    "simulcast_switching": "Simulcast meeting, layers switching",
}

RENDERS = ("small", "medium", "large")


def simulcast_line(doc: Doc) -> str:
    """The simulcast meeting beside the peers, printed when the scenario ran::

        simulcast egress_pkts_per_cpu_s parlour=<n> janus=<n> mediasoup=<n> loss_pct
        parlour=<x> janus=<x> mediasoup=<x> size=<n>

    (one line) at the largest simulcast size every measured server ran without error (else
    each at its own largest); ``nan`` for what was not measured.
    """
    servers = ("parlour", "janus", "mediasoup")
    sizes = {s: _sizes(doc, s, "simulcast") for s in servers}
    measured = [sizes[s] for s in servers if sizes[s]]
    common = set.intersection(*measured) if measured else set()
    at = {s: max(common) if common else (max(sizes[s]) if sizes[s] else None) for s in servers}

    def get(server: str, key: str) -> float | None:
        size = at[server]
        return None if size is None else figure(doc, server, "simulcast", size, key)

    size = max(common) if common else None
    return (
        "simulcast egress_pkts_per_cpu_s "
        + " ".join(f"{s}={_int_or_nan(get(s, 'egress_pkts_per_cpu_s'))}" for s in servers)
        + " loss_pct "
        + " ".join(f"{s}={_fixed2_or_nan(get(s, 'loss_pct'))}" for s in servers)
        + f" size={size if size is not None else 'nan'}"
    )


def switch_cost_us(doc: Doc, server: str, size: int) -> float | None:
    """Server CPU per layer switch (µs): the CPU per second of the switching meeting over the
    steady one, divided by the switches per second (None without both runs)."""

    def cpu_per_s(scenario: str) -> float | None:
        cpu = figure(doc, server, scenario, size, "server_cpu_s")
        duration = figure(doc, server, scenario, size, "duration_s")
        return cpu / duration if cpu is not None and duration else None

    steady, switching = cpu_per_s("simulcast"), cpu_per_s("simulcast_switching")
    rate = figure(doc, server, "simulcast_switching", size, "switches_per_s")
    if steady is None or switching is None or not rate:
        return None
    return (switching - steady) / rate * 1e6


def _switch_table(doc: Doc) -> list[str]:
    runs = [r for r in doc.get("runs", []) if r.get("scenario") == "simulcast_switching"]
    if not runs:
        return []
    out = [
        "Layer switches: every subscriber changes render size every 2 s (small, medium, large,"
        " staggered); the cost is the extra server CPU over the steady simulcast meeting of the"
        " same size, per switch asked (noisy: a difference of two CPU figures).",
        "",
        "| Server | Size | Switches / s | Server CPU per switch, µs |",
        "|---|---:|---:|---:|",
    ]
    for r in sorted(runs, key=lambda r: (_servers(doc).index(r["server"]), r["size"])):
        rate = r.get("switches_per_s")
        cost = switch_cost_us(doc, r["server"], r["size"])
        out.append(
            f"| {r['server']} | {r['size']} | {_fmt(rate, '{:.1f}')} | {_fmt(cost, '{:,.0f}')} |"
        )
    return out


def _render_table(doc: Doc) -> list[str]:
    """Video received per stream by subscribers of each render size (kbit/s): which layer
    each server forwarded (small ≈ 150, medium ≈ 500, large ≈ 1,500 as sent)."""
    runs = [r for r in doc.get("runs", []) if r.get("scenario") == "simulcast"]
    if not any(r.get("render_kbps") for r in runs):
        return []
    out = [
        "Video received per stream, kbit/s, by the subscriber's render size (the layers sent:"
        " 320×180 at 150, 640×360 at 500, 1280×720 at 1,500):",
        "",
        "| Server | Size | " + " | ".join(RENDERS) + " |",
        "|---|---:|" + "---:|" * len(RENDERS),
    ]
    for r in sorted(runs, key=lambda r: (_servers(doc).index(r["server"]), r["size"])):
        kbps = r.get("render_kbps") or {}
        cells = [_fmt(kbps.get(size), "{:,.0f}") for size in RENDERS]
        out.append(f"| {r['server']} | {r['size']} | " + " | ".join(cells) + " |")
    return out


def markdown(doc: Doc, *, plots: Mapping[str, str] | None = None) -> str:
    """The Markdown report: machine, one table per scenario, the 1% loss limit and the notes.

    Each cell reads ``parlour / janus (parlour ÷ janus)``, with mediasoup runs in the document
    ``parlour / janus / mediasoup (parlour ÷ janus / parlour ÷ mediasoup)``; ``plots`` maps
    captions to image paths (relative to the Markdown file) to embed at the end.
    """
    machine = doc.get("machine") or {}
    servers = _servers(doc)
    peers = [_NAMES.get(s, s) for s in servers[len(SERVERS) :]]
    versus = "Janus VideoRoom" + "".join(f" and {p}" for p in peers)
    title = f"# Parlour SFU vs {versus} — {doc.get('date', '?')}"
    out = [title + (" (quick run)" if doc.get("quick") else ""), ""]
    facts = [
        f"{machine.get('cpus', '?')} × {machine.get('model', '?')}",
        f"Python {machine.get('python', '?')}",
        f"Parlour {machine.get('parlour_version') or '?'}",
        f"Janus {machine.get('janus_version') or '?'}",
    ]
    if machine.get("mediasoup_version") or "mediasoup" in servers:
        facts.append(f"mediasoup {machine.get('mediasoup_version') or '?'}")
    names = " / ".join(_NAMES.get(s, s) for s in servers)
    ratios = " / ".join(f"Parlour ÷ {_NAMES.get(s, s)}" for s in servers[1:])
    out += [
        "Machine: " + ", ".join(facts) + f". Started {doc.get('started_at', '?')}.",
        "",
    ]
    settings = doc.get("settings") or {}
    if settings:
        out += ["Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + ".", ""]
    out += [
        f"Each cell is **{names} ({ratios})**; – means not measured. Higher is"
        " better for egress; lower is better for CPU, loss, delay, join time and memory. Server"
        " CPU % is CPU-seconds per wall-second over the steady window (100 % = one core);"
        " loss ratios are not shown (they are dominated by noise near zero).",
        "",
        "Headline: `" + headline(doc) + "`",
        "",
    ]
    if "mediasoup" in servers:
        out += ["Beside mediasoup: `" + mediasoup_line(doc) + "`", ""]
    limits = _max_meeting(doc)
    out += ["## Largest meeting with under 1 % loss", ""]
    out += [f"- {s}: {limits[s] if limits[s] is not None else '–'}" for s in limits]
    out.append("")
    for scenario in _scenarios(doc):
        out += [f"## {_SCENARIO_TITLES.get(scenario, scenario)}", ""]
        out += _scenario_table(doc, scenario)
        out.append("")
        if scenario == "simulcast":
            out += ["`" + simulcast_line(doc) + "`", "", *_render_table(doc), ""]
        if scenario == "simulcast_switching":
            out += [*_switch_table(doc), ""]
    if doc.get("workers"):
        some = doc["workers"][0]
        out += [
            "## Media workers",
            "",
            f"Parlour alone, the same load each time: {some.get('rooms', 1)} meetings of"
            f" {some.get('size', '?')} at once (one per core), with the SFU in the server"
            " process, in one media worker, and in one worker per core (each room pinned to"
            " one worker). Server CPU counts every process (main and workers); the busiest"
            " process shows whether one core was the ceiling.",
            "",
            "`" + workers_line(doc) + "`",
            "",
            *_workers_table(doc),
            "",
        ]
    notes = doc.get("notes") or []
    if notes:
        out += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    if plots:
        out += ["## Plots", ""]
        for caption, path in plots.items():
            out += [f"![{caption}]({path})", ""]
    return "\n".join(out)


# -- files ----------------------------------------------------------------------------------


def _stem(doc: Doc) -> str:
    date = doc.get("date") or time.strftime("%Y-%m-%d")
    return f"{date}-quick" if doc.get("quick") else str(date)


def _json_safe(value: Any) -> Any:
    """Non-finite floats (not valid JSON) become None; tuples and paths become lists/strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _plot(
    doc: Doc, key: str, ylabel: str, title: str, path: Path, *, limit: float | None, fmt: str
) -> None:
    """A line per server of one meeting figure against meeting size (drawn with Agg)."""
    # Lazy: only the plots need the `bench` extra. A bare Figure (no pyplot) renders with the
    # Agg canvas and leaves matplotlib's global backend state alone.
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    fig = Figure(figsize=(7, 4.2), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    plotted = False
    all_sizes: set[int] = set()
    top = 0.0
    for server in _servers(doc):
        sizes = sorted(_sizes(doc, server, "meeting"))
        points = [(n, figure(doc, server, "meeting", n, key)) for n in sizes]
        xs = [n for n, v in points if v is not None]
        ys = [v for _n, v in points if v is not None]
        if xs:
            ax.plot(xs, ys, marker="o", label=server)
            all_sizes.update(xs)
            top = max(top, *ys)
            plotted = True
    if limit is not None and plotted:
        ax.axhline(limit, color="grey", linestyle="--", linewidth=1, label=f"{limit:g} %")
    if plotted:
        ax.legend()
        ax.set_ylim(bottom=0, top=None if top > 0 or limit else 1)
        ax.set_xticks(sorted(all_sizes))
        ax.yaxis.set_major_formatter(StrMethodFormatter(fmt if top >= 10 else "{x:g}"))
    else:
        ax.text(0.5, 0.5, "no meeting results", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("meeting size (participants)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.savefig(path, format="png")


def _plot_workers(doc: Doc, path: Path) -> None:
    """Bars: egress packets per second and per server CPU-second by media-worker count."""
    from matplotlib.figure import Figure

    runs = sorted(doc.get("workers") or [], key=lambda r: int(r.get("media_workers") or 0))
    fig = Figure(figsize=(7, 4.2), dpi=110, layout="constrained")
    rate, eff = fig.subplots(1, 2)
    labels = [str(int(r.get("media_workers") or 0)) for r in runs]
    rate.bar(labels, [r.get("egress_pkts_per_s") or 0 for r in runs], color="tab:blue")
    eff.bar(labels, [r.get("egress_pkts_per_cpu_s") or 0 for r in runs], color="tab:orange")
    rate.set_title("egress packets / s")
    eff.set_title("egress packets / server CPU-s")
    for ax in (rate, eff):
        ax.set_xlabel("media workers (0: in the server process)")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Media workers: the same load on 0, 1 and N workers")
    fig.savefig(path, format="png")


def write_results(doc: Doc, out_dir: Path) -> dict[str, Path]:
    """Write the JSON document, the Markdown report and the two meeting plots into ``out_dir``.

    Files are named after the document's date, ``<date>-quick`` for quick runs: ``<stem>.json``,
    ``<stem>.md``, ``<stem>-meeting-egress.png`` (egress packets per server CPU-second against
    meeting size) and ``<stem>-meeting-loss.png`` (loss % against meeting size). Existing files
    of the same name are replaced. Returns ``{"json", "md", "egress_png", "loss_png"}`` paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _stem(doc)
    paths = {
        "json": out_dir / f"{stem}.json",
        "md": out_dir / f"{stem}.md",
        "egress_png": out_dir / f"{stem}-meeting-egress.png",
        "loss_png": out_dir / f"{stem}-meeting-loss.png",
    }
    full = dict(doc)
    full["max_meeting_under_1pct"] = _max_meeting(doc)
    # Written first and forgivingly (odd objects as strings): the data must survive even if a
    # later step (the plots need matplotlib) fails.
    text = json.dumps(_json_safe(full), indent=2, allow_nan=False, default=str)
    paths["json"].write_text(text + "\n")
    plots = {
        "Egress packets per server CPU-second": paths["egress_png"].name,
        "Packet loss": paths["loss_png"].name,
    }
    if doc.get("workers"):
        paths["workers_png"] = out_dir / f"{stem}-workers.png"
        plots["Media workers"] = paths["workers_png"].name
    paths["md"].write_text(markdown(full, plots=plots))
    _plot(
        doc,
        "egress_pkts_per_cpu_s",
        "egress packets per server CPU-second",
        "Meeting: forwarding efficiency (higher is better)",
        paths["egress_png"],
        limit=None,
        fmt="{x:,.0f}",
    )
    _plot(
        doc,
        "loss_pct",
        "packet loss %",
        "Meeting: packet loss (lower is better)",
        paths["loss_png"],
        limit=1.0,
        fmt="{x:g}",
    )
    if "workers_png" in paths:
        _plot_workers(doc, paths["workers_png"])
    return paths
