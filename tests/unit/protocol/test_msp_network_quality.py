"""``network_quality`` MSP messages: the SDK's exact shapes, round trips, validation, fuzz."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.protocol import msp_network_quality as nq
from parlour.protocol.msp_network_quality import (
    BandwidthStats,
    FractionLostStats,
    IceSummary,
    LatencyStats,
    MediaLevels,
    NetworkQualityLevels,
    NetworkQualityMessage,
    NetworkQualityProtocolError,
    NetworkQualityReport,
    NetworkQualityVerbosity,
    ReceiverSummary,
    RemoteNetworkQualityLevels,
    SenderSummary,
    SendOrRecvStats,
    TrackKindSummary,
    UnknownNetworkQualityMessageError,
    encode_message,
    parse_message,
)
from parlour.protocol.signaling import SignalingProtocolError, UnknownMessageTypeError
from tests.unit.protocol import json_fuzz
from tests.unit.protocol.json_fuzz import FUZZ

V = NetworkQualityVerbosity

# What createNetworkQualityInputsMessage() builds from PeerConnectionReport.summarize() in
# Chrome, after JSON.stringify (undefined members dropped): audio and video published and
# subscribed; SenderReport.rtt is remote-inbound roundTripTime / 1000.
CHROME_REPORT: dict[str, Any] = {
    "type": "network_quality",
    "ice": {"availableSend": 2_500_000, "recv": 812_345.6, "rtt": 0.041, "send": 1_203_456.2},
    "send": {"bitrate": 1_180_000.5, "rtt": 0.0000405},
    "recv": {"bitrate": 800_000, "fractionLost": 0.0125, "jitter": 0.004},
    "audio": {
        "send": {"bitrate": 32_000, "rtt": 0.00004},
        "recv": {"bitrate": 31_000, "fractionLost": 0.02, "jitter": 0.003},
    },
    "video": {
        "send": {"bitrate": 1_148_000.5, "rtt": 0.000041},
        "recv": {"bitrate": 769_000, "fractionLost": 0.005, "jitter": 0.005},
    },
    "reportLevel": 3,
    "remoteReportLevel": 2,
}
# Right after the channel opens: IceReport(0, 0), no RTP streams yet (no fractionLost/jitter/
# rtt: average([]) is undefined), default verbosity {local: 1, remote: 0}.
FIRST_REPORT: dict[str, Any] = {
    "type": "network_quality",
    "ice": {"recv": 0, "send": 0},
    "send": {"bitrate": 0},
    "recv": {"bitrate": 0},
    "audio": {"send": {"bitrate": 0}, "recv": {"bitrate": 0}},
    "video": {"send": {"bitrate": 0}, "recv": {"bitrate": 0}},
    "reportLevel": 1,
    "remoteReportLevel": 0,
}
# The SDK's own unit test publishes empty inputs.
EMPTY_REPORT: dict[str, Any] = {"type": "network_quality", "reportLevel": 1, "remoteReportLevel": 0}

MINIMAL_REPLY: dict[str, Any] = {
    "type": "network_quality",
    "local": 4,
    "remotes": [{"sid": "PA" + "1" * 32, "level": 3}],
}
MODERATE_LOCAL: dict[str, Any] = {
    "level": 3,
    "audio": {"send": 5, "recv": 4},
    "video": {"send": 3, "recv": 5},
}
DETAILED_SEND_STATS: dict[str, Any] = {
    "bandwidth": {"actual": 1_148_000.5, "available": 2_500_000, "level": 4},
    "fractionLost": {"fractionLost": 0.05, "level": 3},
    "latency": {"jitter": 0.004, "rtt": 0.041, "level": 5},
}
DETAILED_REPLY: dict[str, Any] = {
    "type": "network_quality",
    "local": {
        "level": 3,
        "audio": {"send": 5, "recv": 4},
        "video": {
            "send": 3,
            "recv": 5,
            "sendStats": DETAILED_SEND_STATS,
            "recvStats": {
                "bandwidth": {"actual": None, "available": None, "level": None},
                "fractionLost": {"fractionLost": 0, "level": 5},
                "latency": {"jitter": None, "rtt": 0.041, "level": 5},
            },
        },
    },
    "remotes": [
        {"sid": "PA" + "2" * 32, "level": 5, **{k: MODERATE_LOCAL[k] for k in ("audio", "video")}},
    ],
}
# The SDK unit test's server message: levels object, remotes null.
SDK_TEST_REPLY: dict[str, Any] = {
    "type": "network_quality",
    "local": MODERATE_LOCAL,
    "remotes": None,
}

CLIENT_MESSAGES = [CHROME_REPORT, FIRST_REPORT, EMPTY_REPORT]
SERVER_MESSAGES = [MINIMAL_REPLY, DETAILED_REPLY, SDK_TEST_REPLY]


# ---------------------------------------------------------------------------------------------
# Client → server


def test_chrome_report_fields() -> None:
    report = NetworkQualityReport.parse(CHROME_REPORT)
    assert report.report_level is V.DETAILED
    assert report.remote_report_level is V.MODERATE
    assert report.ice == IceSummary(
        send=1_203_456.2, recv=812_345.6, available_send=2_500_000, rtt=0.041
    )
    assert report.send == SenderSummary(bitrate=1_180_000.5, rtt=0.0000405)
    assert report.recv == ReceiverSummary(bitrate=800_000, fraction_lost=0.0125, jitter=0.004)
    assert report.audio == TrackKindSummary(
        send=SenderSummary(bitrate=32_000, rtt=0.00004),
        recv=ReceiverSummary(bitrate=31_000, fraction_lost=0.02, jitter=0.003),
    )
    assert report.video is not None and report.video.recv is not None
    assert report.video.recv.fraction_lost == 0.005


@pytest.mark.parametrize("message", CLIENT_MESSAGES)
def test_client_messages_round_trip_exactly(message: dict[str, Any]) -> None:
    report = NetworkQualityReport.parse(message)
    assert report.to_json() == message
    assert list(report.to_json())[0] == "type"
    assert parse_message(encode_message(report)) == report
    assert parse_message(json.dumps(message).encode()) == report


def test_first_report_has_no_loss_jitter_or_rtt() -> None:
    report = NetworkQualityReport.parse(FIRST_REPORT)
    assert report.ice == IceSummary(send=0, recv=0)
    assert report.recv == ReceiverSummary(bitrate=0)
    empty = NetworkQualityReport.parse(EMPTY_REPORT)
    assert (empty.ice, empty.send, empty.audio) == (None, None, None)


def test_nan_bitrate_arrives_as_null() -> None:
    # A missing bytesSent makes the SDK's bitrate NaN, which JSON.stringify writes as null.
    message = {**EMPTY_REPORT, "send": {"bitrate": None}, "ice": {"rtt": None, "send": 5}}
    report = NetworkQualityReport.parse(message)
    assert report.send == SenderSummary()
    assert report.ice == IceSummary(send=5)


def test_fractional_verbosity_is_floored() -> None:
    # setNetworkQualityConfiguration only range-checks, so {local: 2.5} reaches the wire.
    report = NetworkQualityReport.parse({**EMPTY_REPORT, "reportLevel": 2.5})
    assert report.report_level is V.MODERATE


def test_unknown_members_are_kept() -> None:
    message = {**EMPTY_REPORT, "future": [1], "ice": {"send": 1, "x": True}}
    report = NetworkQualityReport.parse(message)
    assert report.extra == {"future": [1]}
    assert report.to_json() == message


def test_ready_is_an_unknown_type() -> None:
    with pytest.raises(UnknownNetworkQualityMessageError) as info:
        parse_message('{"type":"ready"}')
    assert info.value.message_type == "ready"
    assert isinstance(info.value, UnknownMessageTypeError)
    assert isinstance(info.value, SignalingProtocolError)


@pytest.mark.parametrize(
    ("message", "path"),
    [
        ({**EMPTY_REPORT, "reportLevel": 4}, "network_quality.reportLevel"),
        ({**EMPTY_REPORT, "reportLevel": -1}, "network_quality.reportLevel"),
        ({**EMPTY_REPORT, "remoteReportLevel": "2"}, "network_quality.remoteReportLevel"),
        ({**EMPTY_REPORT, "remoteReportLevel": True}, "network_quality.remoteReportLevel"),
        ({"type": "network_quality", "reportLevel": 1}, "network_quality.remoteReportLevel"),
        ({**EMPTY_REPORT, "ice": [1]}, "network_quality.ice"),
        ({**EMPTY_REPORT, "ice": {"rtt": "fast"}}, "network_quality.ice.rtt"),
        (
            {**EMPTY_REPORT, "audio": {"recv": {"jitter": False}}},
            "network_quality.audio.recv.jitter",
        ),
        ({**EMPTY_REPORT, "type": 7}, "network_quality.type"),
    ],
)
def test_malformed_reports_name_the_member(message: dict[str, Any], path: str) -> None:
    with pytest.raises(NetworkQualityProtocolError, match=rf"^{path}: expected"):
        NetworkQualityReport.parse(message)


@pytest.mark.parametrize(
    "raw", ["", "[", "NaN", '{"type":"network_quality","reportLevel":Infinity}', b"\xff", "1e999"]
)
def test_not_json_is_rejected(raw: str | bytes) -> None:
    with pytest.raises(NetworkQualityProtocolError):
        parse_message(raw)


# ---------------------------------------------------------------------------------------------
# Server → client


def test_minimal_reply() -> None:
    message = NetworkQualityMessage.parse(MINIMAL_REPLY)
    assert message.local == 4
    assert message.remotes == (RemoteNetworkQualityLevels(sid="PA" + "1" * 32, level=3),)
    assert message.to_json() == MINIMAL_REPLY


def test_detailed_reply() -> None:
    message = NetworkQualityMessage.parse(DETAILED_REPLY)
    assert isinstance(message.local, NetworkQualityLevels)
    video = message.local.video
    assert video is not None and video.send_stats is not None
    assert video.send_stats == SendOrRecvStats(
        bandwidth=BandwidthStats(actual=1_148_000.5, available=2_500_000, level=4),
        fraction_lost=FractionLostStats(fraction_lost=0.05, level=3),
        latency=LatencyStats(jitter=0.004, rtt=0.041, level=5),
    )
    assert message.local.audio == MediaLevels(send=5, recv=4)
    assert message.to_json() == DETAILED_REPLY


def test_sdk_test_reply_with_null_remotes() -> None:
    message = NetworkQualityMessage.parse(SDK_TEST_REPLY)
    assert message.remotes is None
    assert message.to_json() == {"type": "network_quality", "local": MODERATE_LOCAL}


def test_missing_level_is_the_minimum_as_in_the_sdk() -> None:
    local = {"audio": {"send": 5, "recv": 4}, "video": {"send": 2, "recv": 5}}
    message = NetworkQualityMessage.parse({"type": "network_quality", "local": local})
    assert isinstance(message.local, NetworkQualityLevels)
    assert message.local.level == 2


def reply(**members: Any) -> dict[str, Any]:
    return {"type": "network_quality", **members}


BAD_STATS = {"send": 1, "recv": 1, "sendStats": {"latency": {"rtt": "x"}}}


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (reply(local=6), "network_quality.local"),
        (reply(local=2.0), "network_quality.local"),
        (reply(local="5"), "network_quality.local"),
        (reply(local={"audio": {"send": 1, "recv": 1}}), "network_quality.local.level"),
        (reply(local={"level": 3, "audio": {"send": 1}}), "network_quality.local.audio.recv"),
        (reply(remotes={}), "network_quality.remotes"),
        (reply(remotes=[{"level": 3}]), r"network_quality.remotes\[0\].sid"),
        (reply(remotes=[{"sid": "PA1"}]), r"network_quality.remotes\[0\].level"),
        (reply(remotes=[{"sid": ""}]), r"network_quality.remotes\[0\].sid"),
        (
            reply(local={"level": 1, "video": BAD_STATS}),
            "network_quality.local.video.sendStats.latency.rtt",
        ),
    ],
)
def test_malformed_replies_name_the_member(message: dict[str, Any], path: str) -> None:
    with pytest.raises(NetworkQualityProtocolError, match=rf"^{path}: expected"):
        NetworkQualityMessage.parse(message)


DETAILED_LEVELS = NetworkQualityLevels.parse(DETAILED_REPLY["local"])


def test_build_at_each_verbosity() -> None:
    remote_sid = "PA" + "3" * 32
    remotes = [(remote_sid, DETAILED_LEVELS)]

    minimal = NetworkQualityMessage.build(
        DETAILED_LEVELS, remotes, report_level=V.MINIMAL, remote_report_level=V.NONE
    )
    assert minimal.to_json() == {"type": "network_quality", "local": 3}

    # A local verbosity of none counts as minimal, as in the SDK.
    none = NetworkQualityMessage.build(
        DETAILED_LEVELS, remotes, report_level=V.NONE, remote_report_level=V.MINIMAL
    )
    assert none.to_json() == {
        "type": "network_quality",
        "local": 3,
        "remotes": [{"sid": remote_sid, "level": 3}],
    }

    moderate = NetworkQualityMessage.build(
        DETAILED_LEVELS, remotes, report_level=V.MODERATE, remote_report_level=V.DETAILED
    )
    assert moderate.to_json()["local"] == MODERATE_LOCAL
    assert moderate.to_json()["remotes"] == [{"sid": remote_sid, **DETAILED_REPLY["local"]}]

    detailed = NetworkQualityMessage.build(
        DETAILED_LEVELS, [], report_level=V.DETAILED, remote_report_level=V.MODERATE
    )
    assert detailed.to_json() == {
        "type": "network_quality",
        "local": DETAILED_REPLY["local"],
        "remotes": [],
    }

    unknown = NetworkQualityMessage.build(
        None, [], report_level=V.MINIMAL, remote_report_level=V.NONE
    )
    assert unknown.to_json() == {"type": "network_quality"}


def test_remote_levels_without_sid() -> None:
    remote = RemoteNetworkQualityLevels.of("PA1", DETAILED_LEVELS, V.MODERATE)
    assert remote.levels == DETAILED_LEVELS.at_verbosity(V.MODERATE)


def test_public_names_exist() -> None:
    assert all(hasattr(nq, name) for name in nq.__all__)


# ---------------------------------------------------------------------------------------------
# Fuzz: arbitrary input parses (and then round-trips) or raises the module's error

LEAVES = json_fuzz.json_leaves(["network_quality"], int_bits=70) | st.integers(
    min_value=-1, max_value=6
)
KEYS = st.sampled_from(
    [
        "type", "ice", "send", "recv", "audio", "video", "reportLevel", "remoteReportLevel",
        "bitrate", "rtt", "jitter", "fractionLost", "availableSend", "local", "remotes", "sid",
        "level", "sendStats", "recvStats", "bandwidth", "latency", "actual", "available", "x",
    ]
)  # fmt: skip
JSON_VALUES = json_fuzz.json_values(LEAVES, KEYS, max_size=6, max_leaves=25)
PARSERS = st.sampled_from([NetworkQualityReport, NetworkQualityMessage])


def check(cls: type[NetworkQualityReport] | type[NetworkQualityMessage], value: object) -> None:
    json_fuzz.parses_and_round_trips(
        cls.parse, value, NetworkQualityProtocolError, lambda p: json.loads(encode_message(p))
    )


@FUZZ
@given(value=JSON_VALUES, cls=PARSERS, typed=st.booleans())
def test_fuzz_arbitrary_json(value: object, cls: Any, typed: bool) -> None:
    if typed and isinstance(value, dict):
        value = {**value, "type": "network_quality"}
    check(cls, value)


@FUZZ
@given(raw=st.text() | st.binary())
def test_fuzz_arbitrary_text(raw: str | bytes) -> None:
    try:
        parse_message(raw)
    except NetworkQualityProtocolError:
        pass


GOLDEN = [(NetworkQualityReport, m) for m in CLIENT_MESSAGES] + [
    (NetworkQualityMessage, m) for m in SERVER_MESSAGES
]


@FUZZ
@given(data=st.data(), replacement=JSON_VALUES, delete=st.booleans())
def test_fuzz_mutated_golden_messages(
    data: st.DataObject, replacement: object, delete: bool
) -> None:
    cls, golden = data.draw(st.sampled_from(GOLDEN))
    check(cls, json_fuzz.mutated(data, golden, replacement, delete))
