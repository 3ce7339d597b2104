"""bench.report (results, Markdown, plots, headline) and bench.progress."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.progress import Progress, format_duration
from bench.report import (
    RUN_KEYS,
    derive,
    headline,
    machine_info,
    make_run,
    markdown,
    max_size_under,
    new_document,
    percentile,
    write_results,
)

HEADLINE = re.compile(
    r"^meeting egress_pkts_per_cpu_s parlour=(\d+|nan) janus=(\d+|nan) ratio=(\d+\.\d\d|nan)"
    r" loss_pct parlour=(\d+\.\d\d|nan) janus=(\d+\.\d\d|nan)$"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(server: str, size: int, *, scenario: str = "meeting", **fields: Any) -> dict[str, Any]:
    """A plausible run: efficiency and loss given, the rest filled in."""
    defaults: dict[str, Any] = {
        "publishers": size,
        "subscribers": size,
        "duration_s": 10.0,
        "server_cpu_s": 5.0,
        "loadgen_cpu_s": 12.0,
        "egress_pkts": 100_000,
        "egress_pkts_per_s": 10_000.0,
        "egress_bits_per_s": 25_000_000.0,
        "egress_pkts_per_cpu_s": 20_000.0,
        "expected_pkts": 100_100,
        "lost_pkts": 100,
        "loss_pct": 0.1,
        "delay_ms_p50": 3.2,
        "delay_ms_p99": 12.5,
        "join_ms_p50": 180.0,
        "join_ms_p95": 260.0,
        "server_rss_bytes": 80 * 1024 * 1024,
        "rss_per_participant_bytes": 80 * 1024 * 1024 / size,
    }
    defaults.update(fields)
    return make_run(server, scenario, size, **defaults)


def document(runs: list[dict[str, Any]], *, quick: bool = False) -> dict[str, Any]:
    doc = new_document(machine_info(janus_version="1.2.3", parlour_version="0.1.0"), quick=quick)
    doc["date"] = "2025-01-02"
    doc["runs"] = runs
    doc["notes"] = ["Janus ran in its default configuration."]
    return doc


@pytest.fixture
def full_doc() -> dict[str, Any]:
    runs = []
    for size in (4, 8, 16):
        runs.append(run("parlour", size, egress_pkts_per_cpu_s=30_000.0 - size, loss_pct=0.05))
        runs.append(run("janus", size, egress_pkts_per_cpu_s=12_000.0 + size, loss_pct=0.2))
    runs.append(run("parlour", 4, scenario="audio_only", egress_pkts_per_cpu_s=50_000.0))
    runs.append(run("janus", 4, scenario="audio_only", egress_pkts_per_cpu_s=40_000.0))
    runs.append(run("parlour", 9, scenario="broadcast", publishers=1, subscribers=8))
    runs.append(make_run("janus", "broadcast", 9, error="janus crashed:\nsegfault | core"))
    return document(runs)


# -- headline -----------------------------------------------------------------------------------


def test_headline_uses_the_largest_common_meeting_size(full_doc: dict[str, Any]) -> None:
    line = headline(full_doc)
    assert HEADLINE.match(line), line
    assert line == (
        "meeting egress_pkts_per_cpu_s parlour=29984 janus=12016 ratio=2.50"
        " loss_pct parlour=0.05 janus=0.20"
    )


def test_headline_with_a_missing_server() -> None:
    doc = document([run("parlour", 8, egress_pkts_per_cpu_s=12345.6, loss_pct=0.123)])
    line = headline(doc)
    assert HEADLINE.match(line), line
    assert line == (
        "meeting egress_pkts_per_cpu_s parlour=12346 janus=nan ratio=nan"
        " loss_pct parlour=0.12 janus=nan"
    )


def test_headline_with_no_results_at_all() -> None:
    line = headline(document([]))
    assert HEADLINE.match(line), line
    assert line.count("nan") == 5


def test_headline_with_differing_sizes_takes_the_largest_common_one() -> None:
    runs = [
        run("parlour", 8, egress_pkts_per_cpu_s=20_000.0, loss_pct=0.1),
        run("parlour", 16, egress_pkts_per_cpu_s=19_000.0, loss_pct=0.2),
        run("parlour", 32, egress_pkts_per_cpu_s=18_000.0, loss_pct=0.3),
        run("janus", 8, egress_pkts_per_cpu_s=10_000.0, loss_pct=0.5),
        run("janus", 16, egress_pkts_per_cpu_s=8_000.0, loss_pct=0.6),
        # Janus failed at 32: not a size both servers ran without error.
        make_run("janus", "meeting", 32, error="timeout"),
    ]
    line = headline(document(runs))
    assert HEADLINE.match(line), line
    assert line == (
        "meeting egress_pkts_per_cpu_s parlour=19000 janus=8000 ratio=2.38"
        " loss_pct parlour=0.20 janus=0.60"
    )


def test_headline_with_no_common_size_gives_no_ratio() -> None:
    runs = [run("parlour", 8, egress_pkts_per_cpu_s=2000.0), run("janus", 4)]
    line = headline(document(runs))
    assert HEADLINE.match(line), line
    assert " parlour=2000 janus=20000 ratio=nan " in line


def test_headline_takes_the_median_of_repeats_and_nan_for_unmeasured() -> None:
    runs = [
        run("parlour", 8, egress_pkts_per_cpu_s=v, loss_pct=None) for v in (100.0, 300.0, 200.0)
    ]
    runs.append(run("janus", 8, egress_pkts_per_cpu_s=50.0, loss_pct=1.0))
    line = headline(document(runs))
    assert HEADLINE.match(line), line
    assert "parlour=200 janus=50 ratio=4.00 loss_pct parlour=nan janus=1.00" in line


# -- markdown -----------------------------------------------------------------------------------


def test_markdown_has_the_figures(full_doc: dict[str, Any]) -> None:
    full_doc["settings"] = {"duration_s": 20.0, "loadgen_procs": 2}
    md = markdown(full_doc)
    assert "Settings: duration_s=20.0, loadgen_procs=2." in md
    for heading in ("Meeting", "Audio-only", "Broadcast", "under 1 % loss", "Notes"):
        assert heading in md
    for column in (
        "Egress pkt / CPU-s",
        "Egress Mbit/s",
        "Server CPU %",
        "Loss %",
        "Delay p50 ms",
        "Delay p99 ms",
        "Join p50 ms",
        "Join p95 ms",
        "RSS / participant MiB",
    ):
        assert md.count(f" {column} |") == 3  # one table per scenario
    assert "29,984 / 12,016 (2.50×)" in md  # egress per CPU-s at 16
    assert "25.0 / 25.0 (1.00×)" in md  # Mbit/s
    assert "50 / 50 (1.00×)" in md  # server CPU %: 5 CPU-s over 10 s
    assert "0.05 / 0.20 |" in md  # loss, without a ratio
    assert "3.2 / 3.2 (1.00×)" in md and "12.5 / 12.5" in md  # delay
    assert "180 / 180" in md and "260 / 260" in md  # join
    assert "| 16 (16/16) |" in md and "5.00 / 5.00 (1.00×)" in md  # RSS MiB per participant
    assert "- parlour: 16" in md and "- janus: 16" in md
    assert "Janus ran in its default configuration." in md
    assert "/ error |" in md  # janus broadcast cells
    assert "janus crashed: segfault \\| core" in md  # the error, on one line, table-safe
    assert headline(full_doc) in md
    for line in md.splitlines():
        if line.startswith("| "):
            assert line.count(" | ") == 9  # 10 columns, no stray pipes


def test_markdown_marks_missing_figures() -> None:
    doc = document([make_run("parlour", "meeting", 4, loss_pct=0.0)])
    md = markdown(doc)
    assert "| 4 | – |" in md
    assert "0.00 / – |" in md


def test_markdown_embeds_plots_when_given(full_doc: dict[str, Any]) -> None:
    md = markdown(full_doc, plots={"Loss": "x-meeting-loss.png"})
    assert "![Loss](x-meeting-loss.png)" in md


# -- max_size_under -----------------------------------------------------------------------------


def test_max_size_under_stops_at_the_first_failing_size() -> None:
    runs = [
        run("parlour", 4, loss_pct=0.1),
        run("parlour", 8, loss_pct=0.9),
        run("parlour", 16, loss_pct=1.0),  # not *under* 1 %
        run("parlour", 32, loss_pct=0.5),  # a lucky run above a failure does not count
        run("janus", 4, loss_pct=0.2),
        make_run("janus", "meeting", 8, error="crashed"),
        run("janus", 4, scenario="broadcast", loss_pct=5.0),
    ]
    doc = document(runs)
    assert max_size_under(doc, "parlour") == 8
    assert max_size_under(doc, "parlour", loss_pct=2.0) == 32
    assert max_size_under(doc, "janus") == 4
    assert max_size_under(doc, "janus", "broadcast") is None
    assert max_size_under(doc, "nobody") is None


def test_max_size_under_needs_every_repeat_to_pass() -> None:
    doc = document([run("janus", 4, loss_pct=0.1), run("janus", 4, loss_pct=3.0)])
    assert max_size_under(doc, "janus") is None


# -- write_results ------------------------------------------------------------------------------


def test_write_results_writes_json_markdown_and_plots(
    full_doc: dict[str, Any], tmp_path: Path
) -> None:
    full_doc["runs"][0]["delay_ms_p99"] = math.nan  # not valid JSON: written as null
    paths = write_results(full_doc, tmp_path / "results")
    assert set(paths) == {"json", "md", "egress_png", "loss_png"}
    assert paths["json"] == tmp_path / "results" / "2025-01-02.json"
    assert paths["md"].name == "2025-01-02.md"
    assert paths["egress_png"].name == "2025-01-02-meeting-egress.png"
    assert paths["loss_png"].name == "2025-01-02-meeting-loss.png"

    saved = json.loads(paths["json"].read_text())
    assert saved["max_meeting_under_1pct"] == {"parlour": 16, "janus": 16}
    assert saved["runs"][0]["delay_ms_p99"] is None
    assert set(saved["runs"][0]) == set(RUN_KEYS)
    assert saved["machine"]["janus_version"] == "1.2.3"

    md = paths["md"].read_text()
    assert "(2025-01-02-meeting-egress.png)" in md and "(2025-01-02-meeting-loss.png)" in md
    for key in ("egress_png", "loss_png"):
        data = paths[key].read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_write_results_names_quick_runs_apart(tmp_path: Path) -> None:
    paths = write_results(document([], quick=True), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2025-01-02-quick-meeting-egress.png",
        "2025-01-02-quick-meeting-loss.png",
        "2025-01-02-quick.json",
        "2025-01-02-quick.md",
    ]
    assert paths["egress_png"].read_bytes().startswith(PNG_SIGNATURE)  # a "no results" plot
    assert json.loads(paths["json"].read_text())["quick"] is True


# -- run helpers --------------------------------------------------------------------------------


def test_make_run_fills_every_key_and_rejects_unknown_ones() -> None:
    r = make_run("janus", "meeting", 4, loss_pct=0.5)
    assert tuple(r) == RUN_KEYS
    assert r["loss_pct"] == 0.5 and r["error"] is None
    with pytest.raises(TypeError):
        make_run("janus", "meeting", 4, los_pct=0.5)


def test_derive_fills_only_missing_figures() -> None:
    r = make_run(
        "parlour",
        "meeting",
        4,
        duration_s=10.0,
        server_cpu_s=2.0,
        egress_pkts=50_000,
        expected_pkts=1000,
        lost_pkts=5,
        server_rss_bytes=4000,
        egress_pkts_per_s=1.0,  # already set: kept
    )
    derive(r)
    assert r["egress_pkts_per_s"] == 1.0
    assert r["egress_pkts_per_cpu_s"] == 25_000.0
    assert r["loss_pct"] == pytest.approx(0.5)
    assert r["rss_per_participant_bytes"] == 1000.0
    assert derive(make_run("janus", "meeting", 4))["loss_pct"] is None


def test_new_document_shape() -> None:
    doc = new_document(machine_info(), quick=False)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", doc["date"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["started_at"])
    assert doc["machine"]["cpus"] >= 1 and doc["machine"]["python"]
    assert doc["max_meeting_under_1pct"] == {"parlour": None, "janus": None}
    assert doc["runs"] == [] and doc["notes"] == [] and doc["quick"] is False


# -- percentile ---------------------------------------------------------------------------------


def test_percentile_interpolates_linearly() -> None:
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 0) == 15
    assert percentile(values, 100) == 50
    assert percentile(values, 50) == 35
    assert percentile(values, 25) == 20
    assert percentile(values, 40) == pytest.approx(29.0)  # position 1.6 between 20 and 35
    assert percentile(reversed(values), 90) == pytest.approx(46.0)
    assert percentile([7], 99) == 7
    assert percentile([], 50) is None


def test_percentile_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([1, 2], 101)
    with pytest.raises(ValueError):
        percentile([1, 2], -1)


# -- progress -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_format_duration() -> None:
    assert format_duration(0) == "0:00"
    assert format_duration(75) == "1:15"
    assert format_duration(3725) == "1:02:05"


def test_progress_plain_lines_with_eta() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(4, out, clock=clock)
    assert not progress.tty  # StringIO is not a terminal
    progress.step("parlour meeting 4")
    progress.status("warming up")
    clock.now += 60
    progress.step("parlour meeting 8")  # one step took 60 s; three remain
    clock.now += 30
    progress.status("steady")
    progress.log("note")
    progress.done()
    lines = out.getvalue().splitlines()
    assert len(lines) == 6
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines)
    assert lines[0].endswith("[1/4] parlour meeting 4 (0:00 elapsed)")
    assert lines[1].endswith("[1/4] parlour meeting 4 · warming up (0:00 elapsed)")
    assert lines[2].endswith("[2/4] parlour meeting 8 (1:00 elapsed, ETA 3:00)")
    assert lines[3].endswith("[2/4] parlour meeting 8 · steady (1:30 elapsed, ETA 2:30)")
    assert lines[4].endswith(" note")
    assert lines[5].endswith("done: 2/4 steps in 1:30")


def test_progress_rewrites_the_line_on_a_tty() -> None:
    out = io.StringIO()
    progress = Progress(2, out, tty=True, clock=FakeClock())
    progress.step("a")
    progress.status("x")
    progress.step("b")
    progress.done()
    text = out.getvalue()
    assert text.startswith("\r[1/2] a (0:00 elapsed)\x1b[K\r[1/2] a · x (0:00 elapsed)\x1b[K\n")
    assert "\r[2/2] b" in text
    assert text.endswith("\ndone: 2/2 steps in 0:00\n")


def test_saturated_runs_are_shown_marked_but_never_counted() -> None:
    def run(server: str, size: int, pkts: float, saturated: str | None = None) -> dict:
        return report.make_run(
            server=server,
            scenario="meeting",
            size=size,
            publishers=size,
            subscribers=size,
            duration_s=10.0,
            server_cpu_s=5.0,
            egress_pkts_per_cpu_s=pkts,
            loss_pct=0.0,
            saturated=saturated,
        )

    doc = report.new_document({"cpus": 2}, quick=False)
    doc["runs"] = [
        run("parlour", 8, 40000.0),
        run("janus", 8, 20000.0),
        run("parlour", 16, 90000.0, "the machine ran out of cores"),
        run("janus", 16, 95000.0, "the machine ran out of cores"),
    ]
    assert report.headline(doc).startswith(
        "meeting egress_pkts_per_cpu_s parlour=40000 janus=20000 ratio=2.00"
    )
    assert report.max_size_under(doc, "parlour") == 8
    table = report.markdown(doc)
    assert "90,000* / 95,000* (0.95×)" in table
    assert "parlour size 16: the machine ran out of cores" in table


# -- mediasoup beside Parlour and Janus ---------------------------------------------------------

MEDIASOUP_LINE = re.compile(
    r"^meeting_vs_mediasoup egress_pkts_per_cpu_s parlour=(\d+|nan) mediasoup=(\d+|nan)"
    r" ratio=(\d+\.\d\d|nan) loss_pct parlour=(\d+\.\d\d|nan) mediasoup=(\d+\.\d\d|nan)$"
)


def test_mediasoup_line_at_the_largest_size_both_ran(full_doc: dict[str, Any]) -> None:
    full_doc["runs"] += [
        run("mediasoup", 4, egress_pkts_per_cpu_s=40_000.0, loss_pct=0.0),
        run("mediasoup", 8, egress_pkts_per_cpu_s=50_000.0, loss_pct=0.01),
        make_run("mediasoup", "meeting", 16, error="worker died"),
    ]
    line = report.mediasoup_line(full_doc)
    assert MEDIASOUP_LINE.match(line), line
    assert line == (
        "meeting_vs_mediasoup egress_pkts_per_cpu_s parlour=29992 mediasoup=50000 ratio=0.60"
        " loss_pct parlour=0.05 mediasoup=0.01"
    )
    # The headline is untouched by a third server.
    assert headline(full_doc) == (
        "meeting egress_pkts_per_cpu_s parlour=29984 janus=12016 ratio=2.50"
        " loss_pct parlour=0.05 janus=0.20"
    )


def test_mediasoup_line_when_mediasoup_did_not_run(full_doc: dict[str, Any]) -> None:
    line = report.mediasoup_line(full_doc)
    assert MEDIASOUP_LINE.match(line), line
    assert "parlour=29984 mediasoup=nan ratio=nan loss_pct parlour=0.05 mediasoup=nan" in line
    assert "mediasoup" not in markdown(full_doc)  # no third column without its runs


def test_markdown_tables_and_plots_include_mediasoup(
    full_doc: dict[str, Any], tmp_path: Path
) -> None:
    full_doc["machine"]["mediasoup_version"] = "3.27.1"
    full_doc["runs"] += [
        run("mediasoup", size, egress_pkts_per_cpu_s=60_000.0, loss_pct=0.0) for size in (4, 8, 16)
    ]
    md = markdown(full_doc)
    assert "# Parlour SFU vs Janus VideoRoom and mediasoup" in md
    assert "mediasoup 3.27.1" in md
    assert "**Parlour / Janus / mediasoup (Parlour ÷ Janus / Parlour ÷ mediasoup)**" in md
    assert "29,984 / 12,016 / 60,000 (2.50× / 0.50×)" in md  # egress per CPU-s at 16
    assert "0.05 / 0.20 / 0.00 |" in md  # loss, without ratios
    assert "- mediasoup: 16" in md
    assert "Beside mediasoup: `" + report.mediasoup_line(full_doc) + "`" in md
    # Broadcast: Janus failed, mediasoup did not run it: "error" and "–" in their places.
    assert "/ error / – (" in md or "/ error / – |" in md
    for line in md.splitlines():
        if line.startswith("| "):
            assert line.count(" | ") == 9
    paths = write_results(full_doc, tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert saved["max_meeting_under_1pct"] == {"parlour": 16, "janus": 16, "mediasoup": 16}
    assert paths["egress_png"].read_bytes().startswith(PNG_SIGNATURE)


# -- media workers -----------------------------------------------------------------------------


def worker_run(workers: int, pkts_s: float, per_cpu: float, **fields: Any) -> dict[str, Any]:
    return run(
        "parlour",
        16,
        rooms=2,
        media_workers=workers,
        egress_pkts_per_s=pkts_s,
        egress_pkts_per_cpu_s=per_cpu,
        server_busiest_cpu_pct=fields.pop("busiest", 50.0),
        **fields,
    )


def test_workers_line_scaling_and_efficiency(full_doc: dict[str, Any], tmp_path: Path) -> None:
    full_doc["workers"] = [
        worker_run(0, 50_000.0, 40_000.0),
        worker_run(1, 45_000.0, 36_000.0, busiest=99.0, loss_pct=3.0),
        worker_run(2, 63_000.0, 33_000.0),
    ]
    line = report.workers_line(full_doc)
    assert line == (
        "media_workers rooms=2x16 egress_pkts_per_s w0=50000 w1=45000 w2=63000 scaling=1.40"
        " egress_pkts_per_cpu_s w0=40000 w1=36000 w2=33000 efficiency=0.92"
        " busiest_cpu_pct w0=50 w1=99 w2=50 loss_pct w0=0.10 w1=3.00 w2=0.10"
    )
    md = markdown(full_doc)
    assert "## Media workers" in md and "`" + line + "`" in md
    assert "| 0 (in the server process) | 50,000 | 40,000 | 50 | 50 | 0.10 | 12.5 |  |" in md
    assert "| 1 | 45,000 | 36,000 | 50 | 99 | 3.00 | 12.5 |  |" in md
    paths = write_results(full_doc, tmp_path)
    assert paths["workers_png"].read_bytes().startswith(PNG_SIGNATURE)
    assert "![Media workers](" in paths["md"].read_text()


def test_workers_line_when_a_configuration_failed(full_doc: dict[str, Any]) -> None:
    full_doc["workers"] = [
        worker_run(0, 50_000.0, 40_000.0),
        worker_run(1, 45_000.0, 36_000.0, error="no media at 3 subscribers"),
        worker_run(2, 63_000.0, 33_000.0),
    ]
    line = report.workers_line(full_doc)
    assert "w1=nan" in line and "scaling=nan" in line and "efficiency=nan" in line
    assert "| 1 | 45,000 |" in markdown(full_doc) and "no media at 3 subscribers" in markdown(
        full_doc
    )
    del full_doc["workers"]
    assert "## Media workers" not in markdown(full_doc)


def test_simulcast_line_and_layer_table() -> None:
    kbps = {"small": 151.0, "medium": 498.4, "large": 1502.6}
    doc = document(
        [
            run(
                "parlour",
                8,
                scenario="simulcast",
                egress_pkts_per_cpu_s=40_000.0,
                loss_pct=0.0,
                render_kbps=kbps,
            ),
            run(
                "parlour",
                16,
                scenario="simulcast",
                egress_pkts_per_cpu_s=45_000.0,
                loss_pct=0.0,
                render_kbps=kbps,
            ),
            run(
                "janus",
                8,
                scenario="simulcast",
                egress_pkts_per_cpu_s=20_000.0,
                loss_pct=0.5,
                render_kbps={**kbps, "large": 1400.0},
            ),
            make_run("janus", "simulcast", 16, error="saturated"),
        ]
    )
    # The largest size every measured server ran; mediasoup not measured: nan.
    assert report.simulcast_line(doc) == (
        "simulcast egress_pkts_per_cpu_s parlour=40000 janus=20000 mediasoup=nan"
        " loss_pct parlour=0.00 janus=0.50 mediasoup=nan size=8"
    )
    text = markdown(doc)
    assert "## Simulcast meeting" in text
    assert "| parlour | 8 | 151 | 498 | 1,503 |" in text
    assert "| janus | 8 | 151 | 498 | 1,400 |" in text
    assert "| janus | 16 | – | – | – |" in text
    # Without simulcast runs: no line, no table.
    assert "simulcast" not in markdown(document([run("parlour", 8)]))
