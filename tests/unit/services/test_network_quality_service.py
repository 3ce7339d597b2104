"""Network quality replies: the client's report and the SFU's loss/jitter make the levels;
each side gets what its verbosity asks for."""

from __future__ import annotations

from parlour.domain.ports import LinkReport
from parlour.services.network_quality import NetworkQuality

REPORT = {
    "type": "network_quality",
    "ice": {"availableSend": 2_500_000, "recv": 500_000, "rtt": 0.003, "send": 500_000},
    "send": {"bitrate": 0},
    "recv": {"bitrate": 0},
    "audio": {"send": {"bitrate": 0}, "recv": {"bitrate": 0}},
    "video": {"send": {"bitrate": 0}, "recv": {"bitrate": 0}},
    "reportLevel": 1,
    "remoteReportLevel": 1,
}


def test_a_clean_link_is_five_and_remotes_are_listed() -> None:
    alice, bob = NetworkQuality(), NetworkQuality()
    assert alice.report(REPORT, 10.0)
    assert bob.report(REPORT | {"reportLevel": 3, "remoteReportLevel": 0}, 10.0)
    reply = alice.reply(10.0, [("PA" + "b" * 32, bob)]).to_json()
    assert reply["local"] == 5
    assert reply["remotes"] == [{"sid": "PA" + "b" * 32, "level": 5}]
    detailed = bob.reply(10.0, [("PA" + "a" * 32, alice)]).to_json()
    assert detailed["local"]["level"] == 5 and "recvStats" in detailed["local"]["audio"]
    assert "remotes" not in detailed


def test_loss_the_sfu_measures_lowers_the_level() -> None:
    bob = NetworkQuality()
    for second in range(12):
        now = 100.0 + second
        lossy = LinkReport("video", "recv", fraction_lost=0.2, jitter=0.01, at=now)
        bob.report(REPORT, now, [lossy])
    levels = bob.levels(111.0)
    assert levels is not None and levels.level == 1
    stale = LinkReport("video", "recv", fraction_lost=0.9, jitter=0.0, at=0.0)
    fresh = NetworkQuality()
    fresh.report(REPORT, 100.0, [stale])  # too old to count
    assert (fresh.levels(100.0) or levels).level == 5


def test_what_is_not_a_report_is_refused() -> None:
    quality = NetworkQuality()
    assert not quality.report({"type": "ready"}, 1.0)
    assert not quality.report({"type": "network_quality", "reportLevel": "x"}, 1.0)
    assert quality.levels(1.0) is None
