"""Network Quality Levels: per-metric thresholds, smoothing, unknown and broken states."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.domain.network_quality import (
    Direction,
    LinkSample,
    MediaKind,
    NetworkQualityEstimator,
    Smoothing,
    bandwidth_level,
    jitter_level,
    loss_level,
    rtt_level,
)

AUDIO, VIDEO = MediaKind.AUDIO, MediaKind.VIDEO
SEND, RECV = Direction.SEND, Direction.RECV

PERFECT = LinkSample(
    fraction_lost=0.0, jitter=0.002, rtt=0.020, bitrate=1_000_000, expected_bitrate=1_000_000
)


def feed(
    est: NetworkQualityEstimator,
    start: float,
    seconds: int,
    sample: LinkSample,
    kind: MediaKind = VIDEO,
    direction: Direction = SEND,
) -> float:
    """One sample a second for ``seconds`` seconds from ``start``; returns the next time."""
    for i in range(seconds):
        est.observe(start + i, kind, direction, sample)
    return start + seconds


def level(est: NetworkQualityEstimator, now: float) -> int | None:
    quality = est.quality(now)
    return None if quality is None else quality.level


# ---------------------------------------------------------------------------------------------
# Per-metric levels


@pytest.mark.parametrize(
    ("loss", "expected"),
    [(0.0, 5), (0.01, 5), (0.02, 4), (0.03, 4), (0.05, 3), (0.08, 2), (0.10, 2), (0.2, 1), (1, 1)],
)
def test_loss_levels(loss: float, expected: int) -> None:
    assert loss_level(loss) == expected


@pytest.mark.parametrize(
    ("rtt", "expected"), [(0.02, 5), (0.15, 5), (0.2, 4), (0.4, 3), (0.7, 2), (1.5, 1)]
)
def test_rtt_levels(rtt: float, expected: int) -> None:
    assert rtt_level(rtt) == expected


@pytest.mark.parametrize(
    ("jitter", "expected"), [(0.005, 5), (0.025, 4), (0.04, 3), (0.08, 2), (0.3, 1)]
)
def test_jitter_levels(jitter: float, expected: int) -> None:
    assert jitter_level(jitter) == expected


@pytest.mark.parametrize(
    ("bitrate", "expected_bitrate", "expected"),
    [
        (1_000_000, 1_000_000, 5),
        (950_000, 1_000_000, 5),
        (800_000, 1_000_000, 4),
        (600_000, 1_000_000, 3),
        (400_000, 1_000_000, 2),
        (100_000, 1_000_000, 1),
        (-5, 1_000_000, 1),
        (0, 0, 5),  # no demand
        (None, 0, 5),
        (None, 1_000_000, None),
        (1_000_000, None, None),
    ],
)
def test_bandwidth_levels(
    bitrate: float | None, expected_bitrate: float | None, expected: int | None
) -> None:
    assert bandwidth_level(bitrate, expected_bitrate) == expected


@pytest.mark.parametrize("value", [None, math.nan, math.inf])
def test_unknown_values_have_no_level(value: float | None) -> None:
    assert loss_level(value) is None
    assert rtt_level(value) is None
    assert jitter_level(value) is None


# ---------------------------------------------------------------------------------------------
# The estimator


def test_no_data_is_unknown() -> None:
    est = NetworkQualityEstimator()
    assert est.quality(0.0) is None
    est.observe(0.0, AUDIO, SEND, LinkSample())  # nothing known in it
    assert est.quality(0.0) is None


def test_perfect_link_is_5_with_sub_levels_and_values() -> None:
    est = NetworkQualityEstimator()
    now = feed(est, 0.0, 3, PERFECT)
    quality = est.quality(now)
    assert quality is not None and quality.level == 5
    send = quality.video.send
    assert (send.level, send.bandwidth_level, send.fraction_lost_level, send.latency_level) == (
        5,
        5,
        5,
        5,
    )
    assert send.bitrate == 1_000_000 and send.fraction_lost == 0.0
    assert send.rtt == pytest.approx(0.020) and send.jitter == pytest.approx(0.002)
    # Directions without samples have no demand: 5, with no sub-levels.
    assert quality.audio.recv.level == 5 and quality.audio.recv.fraction_lost_level is None


def test_first_sample_sets_the_level() -> None:
    est = NetworkQualityEstimator()
    est.observe(0.0, VIDEO, RECV, LinkSample(fraction_lost=0.05))
    assert level(est, 0.0) == 3


@pytest.mark.parametrize(("loss", "expected"), [(0.02, 4), (0.05, 3), (0.08, 2), (0.15, 1)])
def test_rising_loss_steps_the_level_down(loss: float, expected: int) -> None:
    est = NetworkQualityEstimator()
    now = feed(est, 0.0, 5, PERFECT)
    now = feed(est, now, 3, LinkSample(fraction_lost=loss))
    assert level(est, now - 1) == expected
    assert est.quality(now - 1).video.send.fraction_lost_level == expected  # type: ignore[union-attr]


def test_a_single_bad_report_does_not_flap() -> None:
    est = NetworkQualityEstimator()
    now = feed(est, 0.0, 5, PERFECT)
    est.observe(now, VIDEO, SEND, LinkSample(fraction_lost=0.3))
    assert level(est, now) == 5
    now = feed(est, now + 1, 5, PERFECT)
    assert level(est, now) == 5


def test_a_drop_needs_the_worse_level_held_for_degrade_after() -> None:
    est = NetworkQualityEstimator(smoothing=Smoothing(degrade_after=2.0))
    now = feed(est, 0.0, 5, PERFECT)
    bad = LinkSample(fraction_lost=0.05)
    est.observe(5.0, VIDEO, SEND, bad)
    est.observe(6.0, VIDEO, SEND, bad)
    assert level(est, 6.0) == 5  # held for 1 s
    est.observe(7.0, VIDEO, SEND, bad)
    assert level(est, 7.0) == 3  # held for 2 s
    assert now == 5.0


def test_a_drop_goes_to_the_best_of_the_recent_levels() -> None:
    est = NetworkQualityEstimator()
    feed(est, 0.0, 5, PERFECT)
    for t, loss in [(5.0, 0.05), (6.0, 0.15), (7.0, 0.15)]:
        est.observe(t, VIDEO, SEND, LinkSample(fraction_lost=loss))
    assert level(est, 7.0) == 3  # 3 has held for 2 s, 1 only for 1 s
    est.observe(8.0, VIDEO, SEND, LinkSample(fraction_lost=0.15))
    assert level(est, 8.0) == 1


def test_high_rtt_lowers_the_level() -> None:
    est = NetworkQualityEstimator()
    now = feed(est, 0.0, 5, LinkSample(rtt=0.6), kind=AUDIO, direction=RECV)
    quality = est.quality(now)
    assert quality is not None and quality.level == 2
    assert quality.audio.recv.latency_level == 2 and quality.audio.recv.rtt == pytest.approx(0.6)


def test_high_jitter_lowers_the_level() -> None:
    est = NetworkQualityEstimator()
    now = feed(est, 0.0, 5, PERFECT)
    now = feed(est, now, 3, LinkSample(jitter=0.04))
    quality = est.quality(now)
    assert quality is not None and quality.level == 3
    assert quality.video.send.latency_level == 3
    assert quality.video.send.fraction_lost_level == 5  # the other metrics stay


def test_low_bandwidth_lowers_the_level() -> None:
    est = NetworkQualityEstimator()
    sample = LinkSample(bitrate=400_000, expected_bitrate=1_500_000, available_bitrate=450_000)
    now = feed(est, 0.0, 3, sample)
    quality = est.quality(now)
    assert quality is not None and quality.level == 1
    assert quality.video.send.available_bitrate == 450_000


def test_level_is_the_minimum_over_kinds_and_directions() -> None:
    est = NetworkQualityEstimator()
    feed(est, 0.0, 3, PERFECT, kind=AUDIO, direction=SEND)
    feed(est, 0.0, 3, LinkSample(fraction_lost=0.02), kind=AUDIO, direction=RECV)
    feed(est, 0.0, 3, LinkSample(fraction_lost=0.05), kind=VIDEO, direction=RECV)
    quality = est.quality(3.0)
    assert quality is not None
    assert (quality.audio.send.level, quality.audio.recv.level) == (5, 4)
    assert (quality.video.send.level, quality.video.recv.level) == (5, 3)
    assert quality.level == 3


def test_recovery_waits_for_the_smoothing_window() -> None:
    est = NetworkQualityEstimator(smoothing=Smoothing(recover_after=10.0))
    now = feed(est, 0.0, 5, LinkSample(fraction_lost=0.15))
    assert level(est, now - 1) == 1
    # Good again from t=5: still 1 until the good level has held for 10 s.
    for t in range(5, 15):
        est.observe(float(t), VIDEO, SEND, PERFECT)
        assert level(est, float(t)) == 1, t
    est.observe(15.0, VIDEO, SEND, PERFECT)
    assert level(est, 15.0) == 5


def test_recovery_is_to_the_worst_level_of_the_window() -> None:
    est = NetworkQualityEstimator()
    feed(est, 0.0, 5, LinkSample(fraction_lost=0.15))
    feed(est, 5.0, 6, LinkSample(fraction_lost=0.05))
    feed(est, 11.0, 10, PERFECT)
    assert level(est, 15.0) == 3  # 3 or better for 10 s at t=15
    assert level(est, 20.0) == 3
    est.observe(21.0, VIDEO, SEND, PERFECT)
    assert level(est, 21.0) == 5


def test_stale_directions_are_forgotten() -> None:
    est = NetworkQualityEstimator(smoothing=Smoothing(stale_after=10.0))
    feed(est, 0.0, 3, LinkSample(fraction_lost=0.15))  # video until t=2
    feed(est, 0.0, 11, PERFECT, kind=AUDIO)  # audio until t=10
    assert level(est, 12.0) == 1
    # The video track stopped: 5 once its samples are stale; unknown once all are.
    assert level(est, 12.5) == 5
    assert level(est, 20.0) == 5
    assert est.quality(20.5) is None


def test_a_gap_restarts_the_smoothing() -> None:
    est = NetworkQualityEstimator()
    feed(est, 0.0, 5, LinkSample(fraction_lost=0.15))
    est.observe(30.0, VIDEO, SEND, PERFECT)
    assert level(est, 30.0) == 5


def test_broken_connection_is_0_then_starts_afresh() -> None:
    est = NetworkQualityEstimator()
    feed(est, 0.0, 5, LinkSample(fraction_lost=0.05))
    est.set_connected(False)
    quality = est.quality(5.0)
    assert quality is not None and quality.level == 0 and quality.audio.recv.level == 0
    est.set_connected(True)
    assert est.quality(6.0) is None
    est.observe(6.0, VIDEO, SEND, PERFECT)
    assert level(est, 6.0) == 5


def test_time_going_backwards_is_clamped() -> None:
    est = NetworkQualityEstimator()
    feed(est, 10.0, 3, PERFECT)
    est.observe(1.0, VIDEO, SEND, LinkSample(fraction_lost=0.5))
    assert level(est, 12.0) == 5


def test_same_inputs_same_levels() -> None:
    def run() -> list[int | None]:
        est = NetworkQualityEstimator()
        out = []
        for t in range(40):
            loss = 0.12 if 10 <= t < 20 else 0.0
            est.observe(t * 0.7, VIDEO, RECV, LinkSample(fraction_lost=loss, rtt=0.05))
            out.append(level(est, t * 0.7))
        return out

    assert run() == run()


# Any value, or none, in every field of a LinkSample.
OPTIONAL = st.none() | st.floats(allow_nan=True, allow_infinity=True)


@given(
    samples=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=100),
            st.sampled_from(MediaKind),
            st.sampled_from(Direction),
            st.builds(LinkSample, **{f.name: OPTIONAL for f in dataclasses.fields(LinkSample)}),
        ),
        max_size=30,
    )
)
def test_levels_stay_in_range(
    samples: list[tuple[float, MediaKind, Direction, LinkSample]],
) -> None:
    est = NetworkQualityEstimator()
    for now, kind, direction, sample in samples:
        est.observe(now, kind, direction, sample)
        quality = est.quality(now)
        if quality is not None:
            assert 1 <= quality.level <= 5
            for media in (quality.audio, quality.video):
                for d in (media.send, media.recv):
                    assert quality.level <= d.level <= 5
