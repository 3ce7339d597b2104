"""The send-side estimator on synthetic transport feedback: a steady path, a bottleneck
(delay overuse), loss, probes; and the transport-feedback wire format."""

from __future__ import annotations

import random

import pytest

from parlour.media import bwe, rtcp
from parlour.media.rtp import RtpError


class Path:
    """A simulated bottleneck: propagation delay, capacity (bps), random loss."""

    def __init__(self, capacity: float, *, delay: float = 0.03, loss: float = 0.0) -> None:
        self.capacity = capacity
        self.delay = delay
        self.loss = loss
        self.free_at = 0.0
        self.rng = random.Random(1)

    def arrival(self, send: float, size: int) -> float | None:
        start = max(send, self.free_at)
        self.free_at = start + size * 8 / self.capacity
        if self.rng.random() < self.loss:
            return None
        return self.free_at + self.delay


class Sender:
    """Sends at a rate, stamps transport-wide numbers, feeds back every 100 ms."""

    def __init__(self, path: Path, estimator: bwe.BandwidthEstimator) -> None:
        self.path = path
        self.estimator = estimator
        self.history = bwe.SendHistory()
        self.seq = 65000  # wraps during the tests
        self.now = 0.0
        self.pending: list[tuple[int, float | None]] = []
        self.estimates: list[int] = []
        self.usages: list[bwe.BandwidthUsage] = []

    def send(self, size: int, cluster: int = 0) -> None:
        seq = self.seq
        self.seq = (self.seq + 1) & 0xFFFF
        self.history.sent(seq, self.now, size, cluster)
        self.pending.append((seq, self.path.arrival(self.now, size)))

    def run(self, rate: float, seconds: float, size: int = 1200) -> None:
        interval = size * 8 / rate
        end = self.now + seconds
        next_feedback = self.now + 0.1
        while self.now < end:
            self.send(size)
            self.now += interval
            if self.now >= next_feedback:
                self.feedback()
                next_feedback += 0.1

    def feedback(self) -> None:
        if not self.pending:
            return
        base = self.pending[0][0]
        arrivals = [None if t is None else int(t * 1e6) for _, t in self.pending]
        wire = rtcp.transport_feedback(1, 2, base, 0, arrivals)
        [parsed] = rtcp.parse_rtcp(wire)
        assert isinstance(parsed, rtcp.TransportFeedback)
        self.estimates.append(self.estimator.on_feedback(parsed, self.history, self.now))
        self.usages.append(self.estimator.usage)
        self.pending = []


def test_a_steady_path_grows_the_estimate_up_to_what_was_acknowledged() -> None:
    est = bwe.BandwidthEstimator(initial=300_000)
    sender = Sender(Path(5_000_000), est)
    sender.run(600_000, 15)
    assert bwe.BandwidthUsage.OVERUSING not in sender.usages
    assert not est.congested(sender.now)
    assert est.acked_bitrate is not None and 500_000 < est.acked_bitrate < 700_000
    assert 600_000 < est.estimate <= 1.5 * est.acked_bitrate + 10_000 + 1


def test_sending_over_a_bottleneck_is_overuse_and_the_estimate_falls_below_it() -> None:
    est = bwe.BandwidthEstimator(initial=2_000_000)
    sender = Sender(Path(1_000_000), est)
    sender.run(1_500_000, 4)
    assert bwe.BandwidthUsage.OVERUSING in sender.usages
    assert est.congested(sender.now)
    assert est.estimate < 1_000_000
    first = sender.usages.index(bwe.BandwidthUsage.OVERUSING)
    assert first * 0.1 < 2.0  # detected within two seconds


def test_heavy_loss_lowers_the_estimate() -> None:
    est = bwe.BandwidthEstimator(initial=1_000_000)
    sender = Sender(Path(10_000_000, loss=0.25), est)
    sender.run(800_000, 3)
    assert est.loss > 0.1
    assert est.congested(sender.now)
    assert est.estimate < 500_000


def test_light_loss_is_tolerated() -> None:
    est = bwe.BandwidthEstimator(initial=500_000)
    sender = Sender(Path(10_000_000, loss=0.01), est)
    sender.run(400_000, 5)
    assert not est.congested(sender.now)
    assert est.estimate >= 500_000


def test_a_probe_raises_the_estimate_to_what_got_through() -> None:
    est = bwe.BandwidthEstimator(initial=300_000)
    sender = Sender(Path(3_000_000), est)
    sender.run(200_000, 3)
    capped = est.estimate
    assert capped < 400_000  # bounded by what was acknowledged
    for _ in range(40):  # a 2 Mbps burst of 40 packets
        sender.send(1200, cluster=7)
        sender.now += 1200 * 8 / 2_000_000
    sender.feedback()
    rate = est.probe_result(7)
    assert rate is not None and 1_500_000 < rate <= 2_100_000
    assert est.estimate > 1_400_000
    assert est.probe_result(7) is None  # consumed
    assert est.probe_result(8) is None


def test_a_probe_into_a_bottleneck_measures_the_bottleneck() -> None:
    est = bwe.BandwidthEstimator(initial=300_000)
    sender = Sender(Path(800_000), est)
    sender.run(200_000, 2)
    for _ in range(40):
        sender.send(1200, cluster=1)
        sender.now += 1200 * 8 / 3_000_000
    sender.feedback()
    rate = est.probe_result(1)
    assert rate is not None and rate < 900_000


def test_duplicate_and_unknown_feedback_is_ignored() -> None:
    est = bwe.BandwidthEstimator()
    history = bwe.SendHistory(16)
    history.sent(5, 0.0, 100)
    fb = rtcp.TransportFeedback(1, 2, 5, 0, (1000, 2000, None))
    est.on_feedback(fb, history, 0.1)
    assert est.loss == 0.0  # 6 and 7 were never sent (unknown): not lost
    est.on_feedback(fb, history, 0.2)
    assert est.feedbacks == 2
    with pytest.raises(ValueError, match="power of two"):
        bwe.SendHistory(100)
    assert history.get(6) is None and history.get(5) == (0.0, 100, 0)


def test_the_trendline_needs_a_full_window_and_adapts_its_threshold() -> None:
    trend = bwe.TrendlineEstimator()
    for i in range(30):
        trend.update(0.02, 0.02, i * 0.02)
    assert trend.usage is bwe.BandwidthUsage.NORMAL
    assert 6.0 <= trend.threshold < 12.5  # quiet: the threshold came down
    for i in range(30, 60):
        trend.update(0.010, 0.02, i * 0.02)  # queues draining: arrivals closer than sends
    assert trend.usage is bwe.BandwidthUsage.UNDERUSING


def test_aimd_holds_after_underuse_and_respects_bounds() -> None:
    aimd = bwe.AimdRateControl(10_000)
    assert aimd.update(bwe.BandwidthUsage.NORMAL, None, 0.0) == bwe.MIN_BITRATE
    aimd.update(bwe.BandwidthUsage.UNDERUSING, None, 1.0)
    held = aimd.update(bwe.BandwidthUsage.NORMAL, None, 2.0)
    assert held == bwe.MIN_BITRATE  # leaves hold first
    assert aimd.update(bwe.BandwidthUsage.NORMAL, None, 3.0) > held
    assert aimd.update(bwe.BandwidthUsage.OVERUSING, None, 4.0) < 40_000


def test_transport_feedback_round_trips_with_small_large_and_negative_deltas() -> None:
    arrivals = [64_000_000, None, 64_000_250, 64_500_000, 64_400_000, None, None, 70_000_000]
    wire = rtcp.transport_feedback(0x11, 0x22, 65534, 9, arrivals)
    [fb] = rtcp.parse_rtcp(wire)
    assert isinstance(fb, rtcp.TransportFeedback)
    assert (fb.sender_ssrc, fb.media_ssrc, fb.base_seq, fb.feedback_count) == (0x11, 0x22, 65534, 9)
    assert fb.arrivals == tuple(arrivals)
    assert fb.received()[:2] == [(65534, 64_000_000), (0, 64_000_250)]
    assert bytes(fb) == wire
    with pytest.raises(RtpError):
        rtcp.transport_feedback(1, 2, 0, 0, [])
    with pytest.raises(RtpError):
        rtcp.transport_feedback(1, 2, 0, 0, [0, 20_000_000])


def test_run_length_and_one_bit_chunks_parse() -> None:
    # base 10, 20 packets: a run of 16 "small delta", then a 1-bit vector (4 used).
    body = (1).to_bytes(4, "big") + (2).to_bytes(4, "big")
    body += (10).to_bytes(2, "big") + (20).to_bytes(2, "big") + (1).to_bytes(3, "big") + b"\x00"
    body += (0x2000 | 16).to_bytes(2, "big")  # run length, symbol 1, 16 packets
    body += (0x8000 | (0b1010 << 10)).to_bytes(2, "big")  # 1-bit vector: 1,0,1,0
    body += bytes([4] * 16) + bytes([8, 8])
    body += bytes(-len(body) % 4)
    wire = bytes([0x8F, 205]) + (len(body) // 4).to_bytes(2, "big") + body
    [fb] = rtcp.parse_rtcp(wire)
    assert isinstance(fb, rtcp.TransportFeedback)
    assert len(fb.arrivals) == 20
    assert fb.arrivals[0] == 64_000 + 1000 and fb.arrivals[15] == 64_000 + 16_000
    assert fb.arrivals[16] == 64_000 + 18_000 and fb.arrivals[17] is None
    assert rtcp.parse_rtcp(wire[:-8]) == []  # truncated deltas: skipped
    reserved = bytearray(wire)
    reserved[20:22] = (0x6000 | 16).to_bytes(2, "big")
    assert rtcp.parse_rtcp(bytes(reserved)) == []


def test_the_uplink_estimate_follows_loss_within_bounds() -> None:
    up = bwe.UplinkEstimator(1_000_000, minimum=150_000, maximum=2_000_000)
    assert up.update(0.0, 900_000, 0.0) == 1_000_000
    assert up.update(0.0, 900_000, 1.0) == 1_080_000  # 8 % a second
    assert up.update(0.05, 900_000, 2.0) == 1_080_000  # moderate loss: hold
    assert up.update(0.30, 800_000, 3.0) == 680_000  # what arrived, less half the loss
    assert up.update(0.50, 0, 4.0) == int(680_000 * 0.8)
    for t in range(5, 60):
        up.update(0.0, 1_000_000, float(t))
    assert up.estimate == 2_000_000
    for t in range(60, 80):
        up.update(0.9, 100_000, float(t))
    assert up.estimate == 150_000
