"""A subscriber's downlink: transport-wide numbers stamped on egress, feedback into the
estimate, the estimate handed to the allocation only after congestion, and probes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from parlour.media import rtcp, rtp
from parlour.media.downlink import CONGESTION_MEMORY, PROBE_INTERVAL, Downlink
from parlour.media.rewrite import ExtensionRewriter, RtpRewriter, TransportCc
from tests.unit.media.rtp_packets import build


def elements(packet: bytes) -> dict[int, bytes]:
    start, _ = rtp.payload_bounds(packet)
    pos = 12 + (packet[0] & 0x0F) * 4
    assert packet[pos : pos + 2] == b"\xbe\xde"
    return dict(rtp._extension_elements(packet, pos + 4, start, 0xBEDE))


class History:
    def __init__(self) -> None:
        self.sent: list[tuple[int, float, int, int]] = []

    def record(self, seq: int, at: float, size: int, cluster: int) -> None:
        self.sent.append((seq, at, size, cluster))


def test_rewritten_packets_get_transport_wide_numbers_in_their_extension_block() -> None:
    history = History()
    tcc = TransportCc(3, history.record, lambda: 7.5)
    tcc.seq = 0xFFFF
    plain = RtpRewriter(0xAAAA, 100)  # no extension rewriting: blocks kept as they are
    plain.transport_cc = tcc
    with_mid = RtpRewriter(
        0xBBBB,
        100,
        extensions=ExtensionRewriter({"urn:a": 1}, {"urn:a": 2, rtp.MID_URI: 4}, mid="0"),
    )
    with_mid.transport_cc = tcc
    out = [
        plain.rewrite(build(seq=1, payload=b"PAYLOAD")),  # no block: one made
        with_mid.rewrite(build(seq=2, ext=[(1, b"\x10")], payload=b"XY")),
        with_mid.rewrite(build(seq=3, csrcs=(9, 10), payload=b"Z")),  # CSRCs, MID inserted
    ]
    assert elements(out[0]) == {3: b"\xff\xff"}
    assert out[0][rtp.payload_bounds(out[0])[0] :] == b"PAYLOAD"
    assert elements(out[1]) == {2: b"\x10", 4: b"0", 3: b"\x00\x00"}
    assert out[1][rtp.payload_bounds(out[1])[0] :] == b"XY"
    assert elements(out[2]) == {4: b"0", 3: b"\x00\x01"}
    assert out[2][12:20] == (9).to_bytes(4, "big") + (10).to_bytes(4, "big")
    assert history.sent == [
        (0xFFFF, 7.5, len(out[0]), 0),
        (0, 7.5, len(out[1]), 0),
        (1, 7.5, len(out[2]), 0),
    ]
    two_byte = bytearray(build(seq=4, ext=[(4, b"1")]))
    two_byte[12:14] = b"\x10\x00"
    plain.rewrite(bytes(two_byte))  # not stamped, number not used
    assert tcc.seq == 2 and len(history.sent) == 3
    with pytest.raises(rtp.RtpError):
        TransportCc(15, history.record, lambda: 0.0)


class Sink:
    def __init__(self) -> None:
        self.rtp: list[bytes] = []

    def send_rtp(self, packet: bytes) -> None:
        self.rtp.append(packet)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Stream:
    """A consumer's rewriter stamping its packets, and a prober made of it."""

    def __init__(self, downlink: Downlink) -> None:
        self.rewriter = RtpRewriter(0xAAAA, 100)
        self.rewriter.transport_cc = downlink.transport_cc
        self.seq = 0

    def packet(self) -> bytes:
        self.seq += 1
        return self.rewriter.rewrite(build(seq=self.seq, payload=bytes(1000)))

    def probe_packets(self, count: int) -> list[bytes]:
        return [self.packet() for _ in range(count)]


def feedback_all(downlink: Downlink, clock: Clock, sink: Sink, *, lost_every: int = 0) -> None:
    """The receiver reports every packet sent so far, arriving 20 ms after it left."""
    tcc = downlink.transport_cc
    assert tcc is not None
    first = (tcc.seq - len(sink.rtp)) & 0xFFFF
    arrivals: list[int | None] = []
    for i in range(len(sink.rtp)):
        sent = downlink.history.get((first + i) & 0xFFFF)
        assert sent is not None
        lost = lost_every and i % lost_every == 0
        arrivals.append(None if lost else int((sent[0] + 0.02) * 1e6))
    [fb] = rtcp.parse_rtcp(rtcp.transport_feedback(1, 2, first, 0, arrivals))
    assert isinstance(fb, rtcp.TransportFeedback)
    downlink.on_feedback(fb)
    sink.rtp.clear()


def test_the_estimate_limits_only_after_congestion_and_probes_raise_it() -> None:
    clock = Clock()
    scheduled: list[tuple[float, Callable[[], None]]] = []
    downlink = Downlink(lambda delay, cb: scheduled.append((delay, cb)), clock)
    transport = Sink()
    assert downlink.configure(None) is None
    assert downlink.limit(0.0) == (None, False)
    tcc = downlink.configure(3)
    assert tcc is not None and downlink.configure(3) is tcc
    assert downlink.configure(20) is None  # two-byte ids: not stamped
    tcc = downlink.configure(3)
    stream = Stream(downlink)
    assert downlink.limit(0.0) == (None, False)  # no congestion seen: no limit
    # Heavy loss: congestion; the estimate now limits.
    for _ in range(30):
        for _ in range(10):
            transport.send_rtp(stream.packet())
            clock.now += 0.01
        feedback_all(downlink, clock, transport, lost_every=3)
    limit, congested = downlink.limit(clock.now)
    assert limit is not None and congested
    # Calm again: still limited for a while; then a probe is sent, paced, and read.
    for _ in range(int(PROBE_INTERVAL * 10) + 10):
        for _ in range(10):
            transport.send_rtp(stream.packet())
            clock.now += 0.01
        feedback_all(downlink, clock, transport)
    limit, congested = downlink.limit(clock.now)
    assert limit is not None and not congested
    downlink.tick(limit // 2, [stream], transport, clock.now)
    assert not scheduled  # not wanted: no probe
    downlink.tick(limit * 3, [], transport, clock.now)
    assert not scheduled  # nothing to probe with
    downlink.tick(limit * 3, [stream], transport, clock.now)
    assert downlink.probes == 1 and len(scheduled) == 5
    for _delay, send in scheduled:
        clock.now += 0.02
        send()
    assert len(transport.rtp) >= 5
    assert tcc is not None and tcc.cluster == 0
    feedback_all(downlink, clock, transport)
    before = downlink.estimator.estimate
    downlink.tick(limit * 3, [stream], transport, clock.now + 2)
    assert downlink.estimator.estimate > before
    assert downlink.limit(clock.now + CONGESTION_MEMORY + 5) == (None, False)
    downlink.configure(None)
    scheduled[0][1]()  # a slice after transport-wide CC went: nothing sent
    assert transport.rtp == []
