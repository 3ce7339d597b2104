"""Publisher hints: which simulcast layers a publisher keeps encoding, and the layers the
allocation may still choose once paused."""

from __future__ import annotations

from parlour.domain.bandwidth import SimulcastLayer
from parlour.services.publisher_hints import PublisherHints
from parlour.services.track_switch_off import SwitchOff, VideoTrack

LOW = SimulcastLayer(width=320, height=240, bitrate=150_000)
HIGH = SimulcastLayer(width=640, height=480, bitrate=600_000)
OFF = SimulcastLayer(active=False)


def encodings(message: dict | None, track: str = "MT1") -> list[bool]:
    assert message is not None and message["type"] == "publisher_hints"
    [hint] = [h for h in message["publisher"]["hints"] if h["track"] == track]
    return [e["enabled"] for e in sorted(hint["encodings"], key=lambda e: e["layer_index"])]


def test_layers_above_the_highest_watched_are_paused_once_seen() -> None:
    hints = PublisherHints()
    # Nothing seen yet: every layer stays on, whatever is watched.
    assert encodings(hints.update({"MT1": (3, 0)})) == [True, True, True]
    hints.layers("MT1", (LOW, HIGH, OFF))
    message = hints.update({"MT1": (3, 0)})
    assert encodings(message) == [True, False, True]  # the third never arrived
    assert message is not None and message["publisher"]["id"] == 2
    assert hints.update({"MT1": (3, 0)}) is None  # unchanged: nothing sent
    # Nobody watches: every layer seen arriving rests (the encoder too); the third, never
    # seen, stays on until it is.
    assert encodings(hints.update({"MT1": (3, -1)})) == [False, False, True]
    # Someone subscribes again: the layers up to the one chosen come back.
    assert encodings(hints.update({"MT1": (3, 0)})) == [True, False, True]


def test_a_paused_layer_stays_a_choice_as_it_last_arrived() -> None:
    hints = PublisherHints()
    hints.layers("MT1", (LOW, HIGH))
    hints.update({"MT1": (2, 0)})
    seen = hints.layers("MT1", (LOW, SimulcastLayer(active=False)))
    assert seen == (LOW, HIGH)
    # Watched again: on, and from then on what arrives is reported as it is.
    assert encodings(hints.update({"MT1": (2, 1)})) == [True, True]
    assert hints.layers("MT1", (LOW, OFF)) == (LOW, OFF)


def test_client_reset_and_unpublished_tracks_send_again() -> None:
    hints = PublisherHints()
    hints.layers("MT1", (LOW, HIGH))
    hints.update({"MT1": (2, 0)})
    hints.received({"type": "client_reset", "track": "MT1", "id": 1})
    assert encodings(hints.update({"MT1": (2, 0)})) == [True, False]
    hints.received(
        {"type": "publisher_hints", "id": 3, "hints": [{"track": "MT1", "result": "OK"}]}
    )
    hints.received({"type": "nonsense"})
    assert hints.update({}) is None
    assert encodings(hints.update({"MT1": (2, 0)})) == [True, True]  # forgotten: afresh


def test_switch_off_chooses_layers_by_render_size() -> None:
    switch = SwitchOff({"video": {"mode": "collaboration"}})
    switch.message(
        "render_hints",
        {
            "type": "render_hints",
            "subscriber": {
                "id": 1,
                "hints": [
                    {
                        "track": "MT1",
                        "enabled": True,
                        "render_dimensions": {"width": 160, "height": 120},
                    },
                    {
                        "track": "MT2",
                        "enabled": True,
                        "render_dimensions": {"width": 640, "height": 480},
                    },
                ],
            },
        },
    )
    tracks = [
        VideoTrack("MT1", "PA1", "cam", "standard", 750_000, (LOW, HIGH)),
        VideoTrack("MT2", "PA2", "cam", "standard", 750_000, (LOW, HIGH)),
        VideoTrack("MT3", "PA3", "cam", "standard", 750_000, (LOW, HIGH)),  # no hint
        VideoTrack("MT4", "PA4", "cam", "standard", 300_000),  # not simulcast
    ]
    switch.allocate(tracks, None)
    assert switch.layers == {"MT1": (0, 2), "MT2": (1, 2), "MT3": (1, 2)}
    assert tracks[0].best_bitrate == HIGH.bitrate and tracks[0].lowest_bitrate == LOW.bitrate
    assert tracks[3].best_bitrate == 300_000 and tracks[3].lowest_bitrate is None


def test_the_profiles_render_dimensions_choose_layers_without_hints() -> None:
    """The deprecated ``bandwidthProfile.video.renderDimensions`` (per priority) is the render
    size of tracks with no render hint: a small one gets the low layer, a large one the top."""
    tracks = [
        VideoTrack("MT1", "PA1", "cam", "standard", 750_000, (LOW, HIGH)),
        VideoTrack("MT2", "PA2", "cam", "low", 750_000, (LOW, HIGH)),
    ]
    dims = {"standard": {"width": 176, "height": 144}, "low": {"width": 640, "height": 480}}
    small = SwitchOff({"video": {"render_dimensions": dims}})
    small.allocate(tracks, None)
    assert small.layers == {"MT1": (0, 2), "MT2": (1, 2)}
    default = SwitchOff({"video": {}})  # standard 640x480, low 176x144
    default.allocate(tracks, None)
    assert default.layers == {"MT1": (1, 2), "MT2": (0, 2)}


def test_a_bitrate_cap_lowers_the_layer() -> None:
    switch = SwitchOff({"video": {"max_subscription_bandwidth": 400_000}})
    tracks = [VideoTrack("MT1", "PA1", "cam", "high", 750_000, (LOW, HIGH))]
    switch.allocate(tracks, None)
    assert switch.layers == {"MT1": (0, 2)}


def test_a_hint_not_applied_is_sent_again_a_few_times() -> None:
    hints = PublisherHints()
    hints.layers("MT1", (LOW, HIGH))
    hints.update({"MT1": (2, 0)})
    failed = {
        "type": "publisher_hints",
        "id": 1,
        "hints": [{"track": "MT1", "result": "COULD_NOT_APPLY_HINT"}],
    }
    for _ in range(3):
        hints.received(failed)
        assert encodings(hints.update({"MT1": (2, 0)})) == [True, False]
    hints.received(failed)
    assert hints.update({"MT1": (2, 0)}) is None  # given up
    hints.received(
        {"type": "publisher_hints", "id": 9, "hints": [{"track": "MT1", "result": "OK"}]}
    )
    hints.received(failed)
    assert encodings(hints.update({"MT1": (2, 0)})) == [True, False]  # counting afresh
