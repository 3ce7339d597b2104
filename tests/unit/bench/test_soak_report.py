"""The soak's verdict and its report of what was left over (pure pieces of bench/soak.py)."""

from __future__ import annotations

from pathlib import Path

from bench.soak import TOLERANCES, leftover_log, verdict


def test_leftover_log_keeps_the_lines_about_the_leftovers_sids(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "INFO recording started sid=RT1 room=RM1 track=MT1 codec=opus\n"
        "INFO recording started sid=RT2 room=RM1 track=MT2 codec=opus\n"
        "INFO participant disconnected sid=PA1 room=RM1 duration=3\n"
        "INFO participant disconnected sid=PA2 room=RM1 duration=3\n"
        "INFO recording completed sid=RT2 duration=3 size=10 frames=1 dropped=0\n"
    )
    row = {"kind": "recording", "sid": "RT1", "source_sid": "MT1", "participant_sid": "PA1"}
    assert leftover_log(log, [row]) == [
        "INFO recording started sid=RT1 room=RM1 track=MT1 codec=opus",
        "INFO participant disconnected sid=PA1 room=RM1 duration=3",
    ]
    assert leftover_log(log, [row], limit=1) == [
        "INFO recording started sid=RT1 room=RM1 track=MT1 codec=opus"
    ]
    assert leftover_log(log, []) == []
    assert leftover_log(tmp_path / "missing.log", [row]) == []


def test_verdict_names_each_series_above_its_tolerance() -> None:
    baseline = dict.fromkeys(TOLERANCES, 0.0)
    assert verdict(baseline, dict(baseline)) == []
    final = dict(baseline, db_recordings_processing=1.0, rss_mib=TOLERANCES["rss_mib"] + 1)
    assert verdict(baseline, final) == [
        "rss_mib: 0 at baseline, " + f"{TOLERANCES['rss_mib'] + 1:g} at the end",
        "db_recordings_processing: 0 at baseline, 1 at the end",
    ]
    assert verdict(baseline, final, check_memory=False) == [
        "db_recordings_processing: 0 at baseline, 1 at the end"
    ]
