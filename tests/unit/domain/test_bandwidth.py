"""The Network Bandwidth Profile allocation: one test per rule, and properties."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parlour.domain.bandwidth import (
    Allocation,
    Candidate,
    Mode,
    OffReason,
    Priority,
    Profile,
    SwitchOffMode,
    TrackSource,
    allocate,
    publisher_needs,
    switch_changes,
)

KBPS = 1000


def cam(sid: str, publisher: str = "", **kw: object) -> Candidate:
    kw.setdefault("bitrate", 500 * KBPS)
    return Candidate(track_sid=sid, publisher_sid=publisher or "PA" + sid, **kw)  # type: ignore[arg-type]


def ons(allocation: Allocation) -> list[str]:
    return [d.track_sid for d in allocation.decisions if d.on]


def test_without_limits_every_track_is_on_at_its_best() -> None:
    result = allocate(Profile(), [cam("a"), cam("b", bitrate=900 * KBPS)])
    assert result.on == {"a", "b"}
    assert result.budget is None
    assert {d.track_sid: d.bitrate for d in result.decisions} == {"a": 500 * KBPS, "b": 900 * KBPS}


def test_priority_order_under_a_cap() -> None:
    profile = Profile(max_subscription_bitrate=1000 * KBPS)
    tracks = [
        cam("low", publish_priority=Priority.LOW),
        cam("std", publish_priority=Priority.STANDARD),
        cam("high", publish_priority=Priority.HIGH),
    ]
    result = allocate(profile, tracks)
    assert [d.track_sid for d in result.decisions] == ["high", "std", "low"]
    assert ons(result) == ["high", "std"]
    low = result.decision("low")
    assert low is not None and low.reason is OffReason.BANDWIDTH and low.bitrate == 0


def test_a_lower_track_that_still_fits_stays_on() -> None:
    profile = Profile(max_subscription_bitrate=700 * KBPS)
    tracks = [
        cam("high", publish_priority=Priority.HIGH),
        cam("big", bitrate=400 * KBPS),
        cam("small", publish_priority=Priority.LOW, bitrate=150 * KBPS),
    ]
    assert allocate(profile, tracks).on == {"high", "small"}


def test_lowest_layer_keeps_tracks_on_and_the_rest_is_shared() -> None:
    profile = Profile(max_subscription_bitrate=1000 * KBPS)
    tracks = [
        cam("a", bitrate=800 * KBPS, min_bitrate=100 * KBPS),
        cam("b", bitrate=800 * KBPS, min_bitrate=100 * KBPS),
    ]
    result = allocate(profile, tracks)
    assert result.on == {"a", "b"}
    assert [d.bitrate for d in result.decisions] == [500 * KBPS, 500 * KBPS]


def test_presentation_mode_fills_in_rank_order() -> None:
    profile = Profile(mode=Mode.PRESENTATION, max_subscription_bitrate=1000 * KBPS)
    tracks = [
        cam("cam", bitrate=800 * KBPS, min_bitrate=100 * KBPS),
        cam("screen", bitrate=800 * KBPS, min_bitrate=100 * KBPS, source=TrackSource.SCREEN),
    ]
    result = allocate(profile, tracks)
    assert [(d.track_sid, d.bitrate) for d in result.decisions] == [
        ("screen", 800 * KBPS),
        ("cam", 200 * KBPS),
    ]


def test_collaboration_mode_shares_by_render_area() -> None:
    profile = Profile(mode=Mode.COLLABORATION, max_subscription_bitrate=1000 * KBPS)
    tracks = [
        cam("big", bitrate=2000 * KBPS, min_bitrate=0, render_area=3 * 100),
        cam("small", bitrate=2000 * KBPS, min_bitrate=0, render_area=100),
    ]
    result = allocate(profile, tracks)
    assert {d.track_sid: d.bitrate for d in result.decisions} == {
        "big": 750 * KBPS,
        "small": 250 * KBPS,
    }


def test_dominant_speaker_gets_the_dominant_speaker_priority() -> None:
    profile = Profile(max_subscription_bitrate=500 * KBPS, dominant_speaker_priority=Priority.HIGH)
    tracks = [cam("a", publisher="PA1"), cam("b", publisher="PA2")]
    result = allocate(profile, tracks, dominant_speaker="PA2")
    assert ons(result) == ["b"]
    assert result.decisions[0].priority is Priority.HIGH


def test_dominant_speaker_priority_is_a_minimum_and_breaks_ties() -> None:
    profile = Profile(max_subscription_bitrate=500 * KBPS, dominant_speaker_priority=Priority.LOW)
    tracks = [cam("a", publisher="PA1", publish_priority=Priority.HIGH), cam("b", publisher="PA2")]
    result = allocate(profile, tracks, dominant_speaker="PA2")
    assert ons(result) == ["a"]
    assert result.decision("b") is not None and result.decision("b").priority is Priority.STANDARD  # type: ignore[union-attr]
    # Equal priorities: the dominant speaker first.
    tied = allocate(
        Profile(max_subscription_bitrate=500 * KBPS),
        [cam("a", "PA1"), cam("b", "PA2")],
        dominant_speaker="PA2",
    )
    assert ons(tied) == ["b"]


def test_subscriber_priority_overrides_the_publisher() -> None:
    profile = Profile(max_subscription_bitrate=500 * KBPS)
    tracks = [
        cam("a", publish_priority=Priority.HIGH, subscribe_priority=Priority.LOW),
        cam("b", publish_priority=Priority.STANDARD),
    ]
    assert ons(allocate(profile, tracks)) == ["b"]


def test_render_hint_disabled_switches_off_whatever_the_priority() -> None:
    tracks = [
        cam("a", publish_priority=Priority.HIGH, enabled=False),
        cam("b", enabled=True),
        cam("c"),
    ]
    result = allocate(Profile(), tracks)
    assert result.on == {"b", "c"}
    a = result.decision("a")
    assert a is not None and a.reason is OffReason.DISABLED_BY_SUBSCRIBER


def test_manual_switch_off_then_switch_on() -> None:
    # clientTrackSwitchOffControl "manual": switchOff()/switchOn() arrive as enabled hints.
    before = allocate(Profile(), [cam("a"), cam("b")])
    off = allocate(Profile(), [cam("a", enabled=False), cam("b")])
    back = allocate(Profile(), [cam("a", enabled=True), cam("b")])
    assert switch_changes(before, off) == (("a",), ())
    assert switch_changes(off, back) == ((), ("a",))
    assert switch_changes(None, off) == (("a",), ("b",))


def test_disabled_switch_off_mode_never_switches_off_for_bandwidth() -> None:
    profile = Profile(max_subscription_bitrate=100 * KBPS, switch_off_mode=SwitchOffMode.DISABLED)
    tracks = [
        cam("a", min_bitrate=150 * KBPS),
        cam("b", min_bitrate=150 * KBPS),
        cam("c", enabled=False),
    ]
    result = allocate(profile, tracks)
    assert result.on == {"a", "b"}
    assert [d.bitrate for d in result.decisions if d.on] == [150 * KBPS, 150 * KBPS]


def test_estimate_applies_always_when_predicted_and_on_congestion_when_detected() -> None:
    tracks = [cam("a"), cam("b")]
    assert allocate(Profile(), tracks, available_bitrate=600 * KBPS).on == {"a"}
    detected = Profile(switch_off_mode=SwitchOffMode.DETECTED)
    assert allocate(detected, tracks, available_bitrate=600 * KBPS).on == {"a", "b"}
    assert allocate(detected, tracks, available_bitrate=600 * KBPS, congested=True).on == {"a"}
    # The smaller of the cap and the estimate.
    capped = Profile(max_subscription_bitrate=1200 * KBPS)
    assert allocate(capped, tracks, available_bitrate=5000 * KBPS).budget == 1200 * KBPS


def test_a_single_top_track_over_the_budget_stays_on_alone() -> None:
    result = allocate(Profile(max_subscription_bitrate=100 * KBPS), [cam("a"), cam("b", bitrate=0)])
    assert ons(result) == ["a"]
    assert result.decisions[0].bitrate == 500 * KBPS


def test_max_tracks_and_non_positive_limits() -> None:
    tracks = [cam("a"), cam("b", enabled=False), cam("c"), cam("d")]
    result = allocate(Profile(max_tracks=2), tracks)
    assert result.on == {"a", "c"}
    d = result.decision("d")
    assert d is not None and d.reason is OffReason.MAX_TRACKS
    assert allocate(Profile(max_tracks=0, max_subscription_bitrate=0), tracks).on == {"a", "c", "d"}


def test_screen_shares_rise_only_in_presentation_mode() -> None:
    tracks = [cam("cam"), cam("screen", source=TrackSource.SCREEN)]
    assert allocate(Profile(max_subscription_bitrate=500 * KBPS), tracks).on == {"cam"}
    presentation = Profile(mode=Mode.PRESENTATION, max_subscription_bitrate=500 * KBPS)
    assert allocate(presentation, tracks).on == {"screen"}
    assert TrackSource.guess("screen-share") is TrackSource.SCREEN
    assert TrackSource.guess("camera") is TrackSource.CAMERA


def test_publisher_hint_when_every_subscriber_switched_it_off() -> None:
    alice = allocate(Profile(), [cam("a", enabled=False), cam("b")])
    bob = allocate(Profile(), [cam("a", enabled=False), cam("b", enabled=False)])
    needs = publisher_needs(["a", "b", "unsubscribed"], [alice, bob])
    assert [(n.track_sid, n.needed, n.max_bitrate) for n in needs] == [
        ("a", False, 0),
        ("b", True, 500 * KBPS),
        ("unsubscribed", False, 0),
    ]


def test_deterministic_and_duplicates_keep_the_first() -> None:
    tracks = [cam("a"), cam("a", bitrate=1), cam("b")]
    first = allocate(Profile(max_subscription_bitrate=800 * KBPS), tracks)
    assert first == allocate(Profile(max_subscription_bitrate=800 * KBPS), tracks)
    assert [d.track_sid for d in first.decisions] == ["a", "b"]


def test_priority_wire_names() -> None:
    assert Priority.of("standard") is Priority.STANDARD
    assert Priority.HIGH.wire == "high"
    assert Priority.HIGH > Priority.STANDARD > Priority.LOW


# --------------------------------------------------------------------------------------------
# Properties

CANDIDATES = st.lists(
    st.builds(
        Candidate,
        track_sid=st.sampled_from([f"MT{i}" for i in range(10)]),
        publisher_sid=st.sampled_from(["PA1", "PA2", "PA3"]),
        publish_priority=st.sampled_from(Priority),
        subscribe_priority=st.none() | st.sampled_from(Priority),
        source=st.sampled_from(TrackSource),
        enabled=st.none() | st.booleans(),
        render_area=st.none() | st.integers(min_value=-10, max_value=2_000_000),
        bitrate=st.integers(min_value=0, max_value=3_000_000),
        min_bitrate=st.none() | st.integers(min_value=-10, max_value=3_000_000),
    ),
    max_size=10,
)
PROFILES = st.builds(
    Profile,
    mode=st.sampled_from(Mode),
    max_subscription_bitrate=st.none() | st.integers(min_value=-1, max_value=5_000_000),
    max_tracks=st.none() | st.integers(min_value=-1, max_value=6),
    dominant_speaker_priority=st.sampled_from(Priority),
    switch_off_mode=st.sampled_from(SwitchOffMode),
)
PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(
    profile=PROFILES,
    candidates=CANDIDATES,
    estimate=st.none() | st.integers(min_value=-1, max_value=5_000_000),
    speaker=st.none() | st.sampled_from(["PA1", "PA2"]),
    congested=st.booleans(),
)
def test_properties(
    profile: Profile,
    candidates: list[Candidate],
    estimate: int | None,
    speaker: str | None,
    congested: bool,
) -> None:
    result = allocate(
        profile,
        candidates,
        available_bitrate=estimate,
        dominant_speaker=speaker,
        congested=congested,
    )
    sids = {c.track_sid for c in candidates}
    # OFF ∪ ON = candidates, disjoint; ranks are 0..n-1.
    assert result.on | result.off == sids
    assert not result.on & result.off
    assert [d.rank for d in result.decisions] == list(range(len(sids)))
    on = [d for d in result.decisions if d.on]
    first = {c.track_sid: c for c in reversed(candidates)}
    for d in result.decisions:
        c = first[d.track_sid]
        assert (d.reason is None) == d.on
        if c.enabled is False:
            assert not d.on and d.reason is OffReason.DISABLED_BY_SUBSCRIBER
        if d.on:
            assert c.lowest_bitrate <= d.bitrate <= max(c.bitrate, c.lowest_bitrate)
        else:
            assert d.bitrate == 0
    # Ranks follow effective priority.
    assert [d.priority for d in result.decisions] == sorted(
        (d.priority for d in result.decisions), reverse=True
    )
    # The cap: exceeded only by a single top-ranked track alone, or in "disabled" mode.
    if result.budget is not None and sum(d.bitrate for d in on) > result.budget:
        if profile.switch_off_mode is not SwitchOffMode.DISABLED:
            assert len(on) == 1
            assert all(not d.on for d in result.decisions if d.rank < on[0].rank)
            assert first[on[0].track_sid].lowest_bitrate > result.budget
    # max_tracks
    if profile.max_tracks is not None and profile.max_tracks > 0:
        assert len(on) <= profile.max_tracks
    # Every enabled track is on when nothing limits.
    if result.budget is None and (profile.max_tracks is None or profile.max_tracks <= 0):
        assert result.on == {s for s, c in first.items() if c.enabled is not False}
    # Publisher needs agree with the allocation.
    needs = publisher_needs(sorted(sids), [result])
    assert {n.track_sid for n in needs if n.needed} == result.on
