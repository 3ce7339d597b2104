"""A subscriber's downlink: transport-wide numbers stamped on egress, feedback into the
estimate, the estimate handed to the allocation only after congestion, and probes."""

from __future__ import annotations

from collections.abc import Callable

from parlour.media import rtcp, rtp
from parlour.media.bwe import SendHistory
from parlour.media.downlink import (
    CONGESTION_MEMORY,
    PROBE_INTERVAL,
    Downlink,
    TransportCcSender,
    stamp,
)
from parlour.media.rewrite import ExtensionRewriter
from tests.unit.media.rtp_packets import build


def elements(packet: bytes) -> dict[int, bytes]:
    start, _ = rtp.payload_bounds(packet)
    pos = 12 + (packet[0] & 0x0F) * 4
    assert packet[pos : pos + 2] == b"\xbe\xde"
    found = dict(rtp._extension_elements(packet, pos + 4, start, 0xBEDE))
    return found


def test_stamp_appends_an_element_or_makes_a_block() -> None:
    plain = build(seq=7, payload=b"PAYLOAD")
    out = stamp(plain, 3, 0x1234)
    assert out[0] & 0x10 and rtp.payload_bounds(out)[0] == 20
    assert elements(out) == {3: b"\x12\x34"}
    assert out[rtp.payload_bounds(out)[0] :] == b"PAYLOAD"
    with_ext = build(ext=[(4, b"1"), (1, b"\x85")], csrcs=(9,), payload=b"XY")
    out = stamp(with_ext, 3, 0xFFFF)
    assert elements(out) == {4: b"1", 1: b"\x85", 3: b"\xff\xff"}
    assert out[rtp.payload_bounds(out)[0] :] == b"XY"
    two_byte = bytearray(build(ext=[(4, b"1")]))
    two_byte[12:14] = b"\x10\x00"
    assert stamp(bytes(two_byte), 3, 1) == bytes(two_byte)


def test_a_rewritten_packet_keeps_its_extensions_and_gains_the_number() -> None:
    rewriter = ExtensionRewriter({"urn:a": 1}, {"urn:a": 2, rtp.MID_URI: 4}, mid="0")
    packet = build(ext=[(1, b"\x10")])
    start = 12
    block = rewriter.rewrite_block(packet, start)
    rewritten = packet[:12] + bytes(block) + packet[start + 4 + 4 :]
    stamped = stamp(bytes(rewritten), 3, 42)
    assert elements(stamped) == {2: b"\x10", 4: b"0", 3: b"\x00\x2a"}


class Sink:
    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []

    def send_rtp(self, packet: bytes) -> None:
        self.rtp.append(packet)

    def send_rtcp(self, packet: bytes) -> None:
        self.rtcp.append(packet)


def test_the_sender_numbers_every_packet_and_remembers_it() -> None:
    sink = Sink()
    history = SendHistory(16)
    clock = iter([1.0, 1.5, 2.0])
    sender = TransportCcSender(sink, 5, history, lambda: next(clock))
    sender.seq = 0xFFFF
    sender.send_rtp(build(seq=1))
    sender.cluster = 3
    sender.send_rtp(build(seq=2))
    sender.send_rtcp(b"rtcp")
    assert [elements(p)[5] for p in sink.rtp] == [b"\xff\xff", b"\x00\x00"]
    assert history.get(0xFFFF) == (1.0, len(sink.rtp[0]), 0)
    assert history.get(0) == (1.5, len(sink.rtp[1]), 3)
    assert sink.rtcp == [b"rtcp"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Prober:
    def __init__(self, packets: int) -> None:
        self.packets = packets

    def probe_packets(self, count: int) -> list[bytes]:
        return [build(seq=i, payload=bytes(1000)) for i in range(min(count, self.packets))]


def feedback_all(downlink: Downlink, clock: Clock, sink: Sink, *, lost_every: int = 0) -> None:
    """The receiver reports every packet sent so far, arriving 20 ms after it left."""
    sender = downlink.sender
    assert sender is not None
    first = (sender.seq - len(sink.rtp)) & 0xFFFF
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
    assert downlink.sink(transport, None) is transport
    assert downlink.limit(0.0) == (None, False)
    sink = downlink.sink(transport, 3)
    assert downlink.sink(transport, 3) is sink
    assert downlink.limit(0.0) == (None, False)  # no congestion seen: no limit
    # Heavy loss: congestion; the estimate now limits.
    for _ in range(30):
        for _ in range(10):
            sink.send_rtp(build(payload=bytes(1000)))
            clock.now += 0.01
        feedback_all(downlink, clock, transport, lost_every=3)
    limit, congested = downlink.limit(clock.now)
    assert limit is not None and congested
    # Calm again: still limited for a while; then a probe is sent, paced, and read.
    for _ in range(int(PROBE_INTERVAL * 10) + 10):
        for _ in range(10):
            sink.send_rtp(build(payload=bytes(1000)))
            clock.now += 0.01
        feedback_all(downlink, clock, transport)
    limit, congested = downlink.limit(clock.now)
    assert limit is not None and not congested
    downlink.tick(limit // 2, [Prober(100)], clock.now)
    assert not scheduled  # not wanted: no probe
    downlink.tick(limit * 3, [Prober(2)], clock.now)
    assert not scheduled  # too few packets to probe with
    downlink.tick(limit * 3, [Prober(100)], clock.now)
    assert downlink.probes == 1 and len(scheduled) == 5
    for _delay, send in scheduled:
        clock.now += 0.02
        send()
    probe_packets = len(transport.rtp)
    assert probe_packets >= 5
    feedback_all(downlink, clock, transport)
    before = downlink.estimator.estimate
    downlink.tick(limit * 3, [Prober(100)], clock.now + 2)
    assert downlink.estimator.estimate > before
    assert downlink.limit(clock.now + CONGESTION_MEMORY + 5) == (None, False)
    downlink.sink(transport, None)
    scheduled[0][1]()  # a slice after the sender went: nothing sent
