"""MSP track messages: the exact shapes twilio-video 2.36.0 builds and reads, round trips,
validation and fuzz (only `MspProtocolError` ever escapes a parser)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.protocol.msp_tracks import (
    BandwidthProfile,
    BandwidthProfileMode,
    ClientReset,
    HintResult,
    LayerEncoding,
    MspProtocolError,
    PublisherHint,
    PublisherHintResult,
    PublisherHints,
    PublisherHintsReply,
    Ready,
    RenderDimensions,
    RenderHint,
    RenderHintResult,
    RenderHintsReply,
    RenderHintsRequest,
    TrackPriorityUpdate,
    TrackSwitchOff,
    TrackSwitchOffMode,
    UnknownMspMessageTypeError,
    VideoBandwidthProfile,
    parse_msp,
)
from parlour.protocol.signaling import SignalingProtocolError, TrackPriority
from tests.unit.protocol import json_fuzz
from tests.unit.protocol.json_fuzz import FUZZ

MT1 = "MT" + "1" * 32
MT2 = "MT" + "2" * 32

# (channel, sender, the JSON exactly as the SDK sends or reads it, expected object)
GOLDEN: list[tuple[str, str, dict[str, Any], object]] = [
    # data/transport.js: the first message on every channel.
    ("track_priority", "client", {"type": "ready"}, Ready()),
    ("render_hints", "client", {"type": "ready"}, Ready()),
    # trackprioritysignaling.js sendTrackPriorityUpdate
    (
        "track_priority",
        "client",
        {"type": "track_priority", "track": MT1, "subscribe": "high"},
        TrackPriorityUpdate(track=MT1, subscribe=TrackPriority.HIGH),
    ),
    # RemoteVideoTrack.setPriority(null) clears the override.
    (
        "track_priority",
        "client",
        {"type": "track_priority", "track": MT1, "subscribe": None},
        TrackPriorityUpdate(track=MT1, subscribe=None),
    ),
    # trackswitchoffsignaling.js reads message.off / message.on
    (
        "track_switch_off",
        "server",
        {"type": "track_switch_off", "off": [MT1], "on": [MT2]},
        TrackSwitchOff(off=(MT1,), on=(MT2,)),
    ),
    # renderhintssignaling.js _sendHints
    (
        "render_hints",
        "client",
        {
            "type": "render_hints",
            "subscriber": {
                "id": 1,
                "hints": [
                    {
                        "track": MT1,
                        "enabled": True,
                        "render_dimensions": {"height": 360, "width": 640},
                    },
                    {"track": MT2, "enabled": False},
                ],
            },
        },
        RenderHintsRequest(
            id=1,
            hints=(
                RenderHint(
                    track=MT1,
                    enabled=True,
                    render_dimensions=RenderDimensions(width=640, height=360),
                ),
                RenderHint(track=MT2, enabled=False),
            ),
        ),
    ),
    # renderhintssignaling.js reads message.subscriber.hints[].result
    (
        "render_hints",
        "server",
        {
            "type": "render_hints",
            "subscriber": {"id": 1, "hints": [{"track": MT1, "result": "OK"}]},
        },
        RenderHintsReply(id=1, hints=(RenderHintResult(track=MT1, result="OK"),)),
    ),
    # publisherhintsignaling.js reads message.publisher.{id,hints}; peerconnection.js
    # reads encodings[].{enabled,layer_index}
    (
        "publisher_hints",
        "server",
        {
            "type": "publisher_hints",
            "publisher": {
                "id": 7,
                "hints": [
                    {
                        "track": MT1,
                        "encodings": [
                            {"enabled": False, "layer_index": 0},
                            {"enabled": True, "layer_index": 1},
                        ],
                    },
                    {"track": MT2, "encodings": None},
                ],
            },
        },
        PublisherHints(
            id=7,
            hints=(
                PublisherHint(
                    track=MT1,
                    encodings=(
                        LayerEncoding(layer_index=0, enabled=False),
                        LayerEncoding(layer_index=1, enabled=True),
                    ),
                ),
                PublisherHint(track=MT2, encodings=None),
            ),
        ),
    ),
    # publisherhintsignaling.js sendHintResponse
    (
        "publisher_hints",
        "client",
        {"type": "publisher_hints", "id": 7, "hints": [{"track": MT1, "result": "OK"}]},
        PublisherHintsReply(id=7, hints=(PublisherHintResult(track=MT1, result="OK"),)),
    ),
    # publisherhintsignaling.js sendTrackReplaced
    (
        "publisher_hints",
        "client",
        {"type": "client_reset", "track": MT1, "id": 1},
        ClientReset(track=MT1, id=1),
    ),
]


@pytest.mark.parametrize(("channel", "sender", "wire", "expected"), GOLDEN)
def test_golden_messages_parse_and_serialize_exactly(
    channel: str, sender: Any, wire: dict[str, Any], expected: object
) -> None:
    parsed = parse_msp(channel, sender, copy.deepcopy(wire))
    assert parsed == expected
    assert parsed.to_json() == wire
    assert type(parsed).parse(json.loads(json.dumps(parsed.to_json()))) == parsed


def test_absent_lists_and_fields_read_as_defaults() -> None:
    assert TrackSwitchOff.parse({"type": "track_switch_off"}) == TrackSwitchOff()
    assert TrackSwitchOff.parse({"type": "track_switch_off", "off": None}).to_json() == {
        "type": "track_switch_off",
        "off": [],
        "on": [],
    }
    assert TrackPriorityUpdate.parse({"type": "track_priority", "track": MT1}).subscribe is None
    assert RenderHintsReply.parse({"type": "render_hints", "subscriber": {"id": 3}}).hints == ()
    assert PublisherHint.parse({"track": MT1}).encodings is None


def test_unknown_members_are_kept() -> None:
    wire = {"type": "track_priority", "track": MT1, "subscribe": "low", "publish": "high", "x": [1]}
    parsed = TrackPriorityUpdate.parse(wire)
    assert parsed.extra == {"publish": "high", "x": [1]}
    assert parsed.to_json() == wire
    hint = RenderHint.parse({"track": MT1, "future": True})
    assert hint.to_json() == {"track": MT1, "future": True}


def test_render_dimensions_are_rounded_numbers() -> None:
    dims = RenderDimensions.parse({"width": 320.4, "height": 179.6})
    assert (dims.width, dims.height) == (320, 180)
    assert RenderDimensions.parse({"width": -1, "height": 0}).width == -1


@pytest.mark.parametrize(
    ("cls", "wire", "path"),
    [
        (
            TrackPriorityUpdate,
            {"type": "track_priority", "subscribe": "high"},
            "track_priority.track",
        ),
        (
            TrackPriorityUpdate,
            {"type": "track_priority", "track": MT1, "subscribe": "max"},
            "subscribe",
        ),
        (TrackPriorityUpdate, {"type": "track_switch_off", "track": MT1}, "track_priority.type"),
        (TrackSwitchOff, {"type": "track_switch_off", "off": [1]}, "off[0]"),
        (TrackSwitchOff, {"type": "track_switch_off", "off": "MT1"}, "off"),
        (TrackSwitchOff, {"type": "track_switch_off", "off": [MT1], "on": [MT1]}, "both"),
        (
            RenderHintsRequest,
            {"type": "render_hints", "subscriber": {"hints": []}},
            "subscriber.id",
        ),
        (RenderHintsRequest, {"type": "render_hints", "subscriber": {"id": -1, "hints": []}}, "id"),
        (RenderHintsRequest, {"type": "render_hints", "subscriber": {"id": 1}}, "subscriber.hints"),
        (
            RenderHintsRequest,
            {
                "type": "render_hints",
                "subscriber": {"id": 1, "hints": [{"track": MT1, "enabled": "no"}]},
            },
            "hints[0].enabled",
        ),
        (
            RenderHintsRequest,
            {
                "type": "render_hints",
                "subscriber": {
                    "id": 1,
                    "hints": [{"track": MT1, "render_dimensions": {"width": 1}}],
                },
            },
            "render_dimensions.height",
        ),
        (
            PublisherHints,
            {"type": "publisher_hints", "publisher": {"id": 0, "hints": []}},
            "publisher.id",
        ),
        (
            PublisherHints,
            {
                "type": "publisher_hints",
                "publisher": {"id": 1, "hints": [{"track": MT1, "encodings": [{}]}]},
            },
            "encodings[0].enabled",
        ),
        (
            PublisherHintsReply,
            {"type": "publisher_hints", "id": 1, "hints": [{"track": MT1}]},
            "result",
        ),
        (ClientReset, {"type": "client_reset", "track": "", "id": 1}, "track"),
    ],
)
def test_malformed_messages_name_the_member(cls: Any, wire: dict[str, Any], path: str) -> None:
    with pytest.raises(MspProtocolError, match=path.replace("[", r"\[").replace("]", r"\]")):
        cls.parse(wire)


def test_errors_are_signaling_protocol_errors() -> None:
    assert issubclass(MspProtocolError, SignalingProtocolError)
    assert issubclass(MspProtocolError, ValueError)
    with pytest.raises(MspProtocolError, match="expected an object"):
        Ready.parse([])


def test_dispatch_by_channel_and_sender() -> None:
    assert isinstance(parse_msp("render_hints", "server", GOLDEN[6][2]), RenderHintsReply)
    with pytest.raises(UnknownMspMessageTypeError) as caught:
        parse_msp("track_switch_off", "client", {"type": "track_switch_off"})
    assert caught.value.message_type == "track_switch_off"
    with pytest.raises(UnknownMspMessageTypeError):
        parse_msp("track_priority", "server", {"type": "ready"})
    with pytest.raises(UnknownMspMessageTypeError):
        parse_msp("active_speaker", "client", {"type": "track_priority"})
    with pytest.raises(MspProtocolError, match=r"render_hints\.type"):
        parse_msp("render_hints", "client", {"type": 3})


def test_constructors_check_what_the_sdk_would_drop() -> None:
    with pytest.raises(MspProtocolError):
        PublisherHints(id=0, hints=())
    with pytest.raises(MspProtocolError):
        TrackSwitchOff(off=(MT1,), on=(MT1,))


def test_publisher_hint_helper_and_results() -> None:
    hint = PublisherHint.all_layers(MT1, enabled=False, layers=2)
    assert hint.to_json() == {
        "track": MT1,
        "encodings": [{"enabled": False, "layer_index": 0}, {"enabled": False, "layer_index": 1}],
    }
    assert RenderHintResult(track=MT1).result == HintResult.OK
    assert (
        PublisherHintResult.parse({"track": MT1, "result": "SOMETHING_NEW"}).result
        == "SOMETHING_NEW"
    )


# --------------------------------------------------------------------------------------------
# bandwidth_profile


def test_bandwidth_profile_as_the_sdk_builds_it() -> None:
    # util/index.js createBandwidthProfilePayload for
    # {video: {mode: 'presentation', maxSubscriptionBitrate: 2500000, dominantSpeakerPriority:
    #  'high', trackSwitchOffMode: 'detected', clientTrackSwitchOffControl: 'manual',
    #  contentPreferencesMode: 'manual'}}: the last two are not sent.
    wire = {
        "video": {
            "track_switch_off": "detected",
            "mode": "presentation",
            "max_subscription_bandwidth": 2500000,
            "active_speaker_priority": "high",
        }
    }
    profile = BandwidthProfile.parse(wire)
    assert profile.video == VideoBandwidthProfile(
        mode=BandwidthProfileMode.PRESENTATION,
        max_subscription_bandwidth=2500000,
        active_speaker_priority=TrackPriority.HIGH,
        track_switch_off=TrackSwitchOffMode.DETECTED,
    )
    assert profile.to_json() == wire


def test_bandwidth_profile_deprecated_members_and_empty() -> None:
    wire = {
        "video": {
            "max_tracks": 3,
            "render_dimensions": {
                "high": {"height": 720, "width": 1280},
                "low": {"height": 0, "width": 0},
            },
        }
    }
    profile = BandwidthProfile.parse(wire)
    assert profile.video is not None
    assert profile.video.max_tracks == 3
    assert profile.video.render_dimensions == {
        TrackPriority.HIGH: RenderDimensions(width=1280, height=720),
        TrackPriority.LOW: RenderDimensions(width=0, height=0),
    }
    assert profile.to_json() == wire
    assert BandwidthProfile.parse({}) == BandwidthProfile()
    assert BandwidthProfile.parse({"video": {}}).video == VideoBandwidthProfile()


@pytest.mark.parametrize(
    ("wire", "path"),
    [
        ({"video": {"mode": "speaker"}}, "video.mode"),
        ({"video": {"max_subscription_bandwidth": "1M"}}, "max_subscription_bandwidth"),
        ({"video": {"active_speaker_priority": 1}}, "active_speaker_priority"),
        ({"video": {"track_switch_off": "never"}}, "track_switch_off"),
        ({"video": {"render_dimensions": {"high": []}}}, "render_dimensions.high"),
        ({"video": []}, "bandwidth_profile.video"),
        ("video", "bandwidth_profile"),
    ],
)
def test_bad_bandwidth_profiles(wire: object, path: str) -> None:
    with pytest.raises(MspProtocolError, match=path):
        BandwidthProfile.parse(wire)


# --------------------------------------------------------------------------------------------
# Fuzz

JSON_LEAVES = json_fuzz.json_leaves(
    ["high", "low", "standard", "OK", MT1, MT2, "grid", "detected", ""]
)
JSON_VALUES = json_fuzz.json_values(JSON_LEAVES)
KEYS = [
    "type", "track", "subscribe", "off", "on", "subscriber", "publisher", "id", "hints",
    "enabled", "render_dimensions", "width", "height", "result", "encodings", "layer_index",
    "video", "mode", "max_subscription_bandwidth", "max_tracks", "active_speaker_priority",
    "track_switch_off", "high", "low", "standard",
]  # fmt: skip
TYPES = [
    "ready",
    "track_priority",
    "track_switch_off",
    "render_hints",
    "publisher_hints",
    "client_reset",
]
SHAPED = json_fuzz.shaped(JSON_LEAVES, KEYS, TYPES)
CHANNELS = st.sampled_from(
    ["track_priority", "track_switch_off", "render_hints", "publisher_hints", "other"]
)
SENDERS = st.sampled_from(["client", "server"])


def check(channel: str, sender: Any, value: object) -> None:
    json_fuzz.parses_and_round_trips(
        lambda v: parse_msp(channel, sender, v), value, MspProtocolError
    )


def check_profile(value: object) -> None:
    json_fuzz.parses_and_round_trips(BandwidthProfile.parse, value, MspProtocolError)


@FUZZ
@given(channel=CHANNELS, sender=SENDERS, value=JSON_VALUES)
def test_fuzz_arbitrary_json(channel: str, sender: Any, value: object) -> None:
    check(channel, sender, value)
    check_profile(value)


@FUZZ
@given(
    channel=CHANNELS,
    sender=SENDERS,
    message_type=st.sampled_from(TYPES),
    body=st.dictionaries(st.sampled_from(KEYS), SHAPED, max_size=8),
    video=st.dictionaries(st.sampled_from(KEYS), SHAPED, max_size=8),
)
def test_fuzz_shaped_like_the_protocol(
    channel: str, sender: Any, message_type: str, body: dict[str, Any], video: dict[str, Any]
) -> None:
    check(channel, sender, {**body, "type": message_type})
    check_profile({"video": video})


@FUZZ
@given(data=st.data(), replacement=JSON_VALUES, delete=st.booleans())
def test_fuzz_mutated_golden_messages(
    data: st.DataObject, replacement: object, delete: bool
) -> None:
    channel, sender, golden, _ = data.draw(st.sampled_from(GOLDEN))
    check(channel, sender, json_fuzz.mutated(data, golden, replacement, delete))
