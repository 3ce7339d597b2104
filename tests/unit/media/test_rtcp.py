"""RTCP (`parlour.media.rtcp`): builders, parser, aiortc interop, fuzzing."""

from __future__ import annotations

import struct

import pytest
from aiortc import rtp as artp
from hypothesis import given, settings
from hypothesis import strategies as st

from parlour.media import rtcp
from parlour.media.rtcp import Bye, Fir, Nack, Pli, ReceiverReport, Remb, ReportBlock, SenderReport
from parlour.media.rtp import RtpError


def test_builders_parse_in_aiortc() -> None:
    (p,) = artp.RtcpPacket.parse(rtcp.pli(1, 2))
    assert isinstance(p, artp.RtcpPsfbPacket) and (p.fmt, p.ssrc, p.media_ssrc) == (1, 1, 2)

    (f,) = artp.RtcpPacket.parse(bytes(Fir(1, ((0xABCDEF01, 300),))))
    assert isinstance(f, artp.RtcpPsfbPacket) and (f.fmt, f.media_ssrc) == (4, 0)
    assert f.fci == bytes.fromhex("abcdef01 2c000000")

    (n,) = artp.RtcpPacket.parse(rtcp.nack(1, 2, [10, 11, 26, 27, 100]))
    assert isinstance(n, artp.RtcpRtpfbPacket) and (n.fmt, n.media_ssrc) == (1, 2)
    assert n.lost == [10, 11, 26, 27, 100]

    block = ReportBlock(0x55, 12, -3, 70000, 40, 0x12345678, 655)
    (rr,) = artp.RtcpPacket.parse(rtcp.receiver_report(9, [block]))
    assert isinstance(rr, artp.RtcpRrPacket) and rr.ssrc == 9
    info = rr.reports[0]
    assert (info.ssrc, info.fraction_lost, info.packets_lost) == (0x55, 12, -3)
    assert (info.highest_sequence, info.jitter, info.lsr, info.dlsr) == (70000, 40, 0x12345678, 655)

    (sr,) = artp.RtcpPacket.parse(rtcp.sender_report(3, 2**63 + 5, 4, 5, 6, [block]))
    assert isinstance(sr, artp.RtcpSrPacket) and sr.ssrc == 3
    assert (sr.sender_info.ntp_timestamp, sr.sender_info.rtp_timestamp) == (2**63 + 5, 4)
    assert (sr.sender_info.packet_count, sr.sender_info.octet_count) == (5, 6)
    assert sr.reports[0].packets_lost == -3

    (remb,) = artp.RtcpPacket.parse(rtcp.remb(7, 1_500_000, [0x10, 0x20]))
    assert isinstance(remb, artp.RtcpPsfbPacket) and remb.fmt == 15
    bitrate, ssrcs = artp.unpack_remb_fci(remb.fci)
    assert ssrcs == [0x10, 0x20] and 1_500_000 - bitrate < 1_500_000 / 2**17

    (bye,) = artp.RtcpPacket.parse(rtcp.bye([4, 5], "left"))
    assert isinstance(bye, artp.RtcpByePacket) and bye.sources == [4, 5]


def test_aiortc_packets_parse_in_ours() -> None:
    info = artp.RtcpReceiverInfo(
        ssrc=0x77,
        fraction_lost=3,
        packets_lost=-8,
        highest_sequence=65600,
        jitter=12,
        lsr=5,
        dlsr=6,
    )
    sender = artp.RtcpSenderInfo(
        ntp_timestamp=0xE0000000_80000000, rtp_timestamp=123, packet_count=4, octet_count=400
    )
    compound = (
        bytes(artp.RtcpSrPacket(ssrc=1, sender_info=sender, reports=[info]))
        + bytes(artp.RtcpSdesPacket(chunks=[artp.RtcpSourceInfo(ssrc=1, items=[(1, b"x")])]))
        + bytes(artp.RtcpRrPacket(ssrc=2, reports=[info]))
        + bytes(artp.RtcpRtpfbPacket(fmt=1, ssrc=3, media_ssrc=4, lost=[100, 101, 103, 140]))
        + bytes(artp.RtcpPsfbPacket(fmt=1, ssrc=5, media_ssrc=6))
        + bytes(
            artp.RtcpPsfbPacket(
                fmt=15, ssrc=7, media_ssrc=0, fci=artp.pack_remb_fci(300_000, [8, 9])
            )
        )
        + bytes(artp.RtcpByePacket(sources=[10]))
    )
    block = ReportBlock(0x77, 3, -8, 65600, 12, 5, 6)
    assert rtcp.parse_rtcp(compound) == [
        SenderReport(1, 0xE0000000_80000000, 123, 4, 400, (block,)),
        ReceiverReport(2, (block,)),
        Nack(3, 4, (100, 101, 103, 140)),
        Pli(5, 6),
        Remb(7, 300_000, (8, 9)),
        Bye((10,)),
    ]


def test_objects_serialize_symmetrically() -> None:
    block = ReportBlock(1, 2, 3, 4, 5, 6, 7)
    packets = [
        SenderReport(1, 2, 3, 4, 5, (block, block)),
        ReceiverReport(8, (block,)),
        ReceiverReport(8),
        Bye((1, 2), "bye now"),
        Bye(()),
        Nack(1, 2, (65534, 65535, 0, 1, 17, 18, 30000)),
        Pli(3, 4),
        Fir(5, ((6, 7), (8, 255))),
        Remb(9, 262143, (10,)),
        Remb(9, 0, ()),
    ]
    assert rtcp.parse_rtcp(b"".join(bytes(p) for p in packets)) == packets


def test_nack_packing_across_wrap_and_dedup() -> None:
    data = rtcp.nack(1, 2, [0, 65535, 65534, 0, 15, 16, 17])
    # ordered around the first number: 65534 65535 0 | 15 16 17 (15 is 17 past 65534)
    assert data[12:] == struct.pack("!HHHH", 65534, 0b11, 15, 0b11)
    assert rtcp.parse_rtcp(data) == [Nack(1, 2, (65534, 65535, 0, 15, 16, 17))]
    with pytest.raises(RtpError):
        rtcp.nack(1, 2, [])


def test_remb_mantissa_exponent() -> None:
    data = rtcp.remb(1, 2**40 + 12345, [1])
    (parsed,) = rtcp.parse_rtcp(data)
    assert isinstance(parsed, Remb)
    assert parsed.bitrate == (2**40 + 12345) >> 23 << 23
    assert artp.unpack_remb_fci(data[12:])[0] == parsed.bitrate
    with pytest.raises(RtpError):
        rtcp.remb(1, -1, [])
    with pytest.raises(RtpError):
        rtcp.remb(1, 2**90, [])
    with pytest.raises(RtpError):
        rtcp.remb(1, 1, list(range(256)))


def test_builder_limits() -> None:
    block = ReportBlock(1, 0, 0, 0, 0)
    with pytest.raises(RtpError):
        rtcp.receiver_report(1, [block] * 32)
    with pytest.raises(RtpError):
        rtcp.sender_report(1, 0, 0, 0, 0, [block] * 32)
    with pytest.raises(RtpError):
        rtcp.bye(list(range(32)))
    # lost counts beyond 24 bits are clamped
    (rr,) = rtcp.parse_rtcp(rtcp.receiver_report(1, [ReportBlock(1, 0, -(2**30), 0, 0)]))
    assert isinstance(rr, ReceiverReport) and rr.reports[0].packets_lost == -(2**23)


def test_parse_skips_what_it_does_not_read() -> None:
    twcc = bytes([0x8F, 205, 0, 3]) + bytes(12)
    app = bytes([0x80, 204, 0, 2]) + b"\x00\x00\x00\x01NAME"
    xr = bytes([0x80, 207, 0, 1]) + bytes(4)
    afb = bytes([0x8F, 206, 0, 3]) + bytes(8) + b"ABCD"  # application feedback, not REMB
    sli = bytes([0x82, 206, 0, 2]) + bytes(8)
    short_sr = bytes([0x80, 200, 0, 1]) + bytes(4)
    short_rr = bytes([0x80, 201, 0, 0])
    short_fb = bytes([0x81, 206, 0, 1]) + bytes(4)
    stream = twcc + app + xr + afb + sli + short_sr + short_rr + short_fb + rtcp.pli(1, 2)
    assert rtcp.parse_rtcp(stream) == [Pli(1, 2)]


def test_parse_handles_padding_truncation_and_bad_versions() -> None:
    padded = bytes([0xA1, 206, 0, 3]) + struct.pack("!II", 1, 2) + b"\x00\x00\x00\x04"
    assert rtcp.parse_rtcp(padded) == [Pli(1, 2)]
    short_after_pad = bytes([0xA1, 206, 0, 2]) + struct.pack("!II", 1, 2)  # 2 pad: 6 bytes
    assert rtcp.parse_rtcp(short_after_pad) == []
    huge_pad = bytes([0xA1, 206, 0, 2]) + struct.pack("!II", 1, 200)
    assert rtcp.parse_rtcp(huge_pad + rtcp.pli(3, 4)) == [Pli(3, 4)]
    zero_pad = bytes([0xA1, 206, 0, 2]) + bytes(8)
    assert rtcp.parse_rtcp(zero_pad + rtcp.pli(3, 4)) == [Pli(3, 4)]
    # a bad header ends the walk; what came before is kept
    assert rtcp.parse_rtcp(rtcp.pli(1, 2) + b"\x40\xce\x00\x02" + rtcp.pli(3, 4)) == [Pli(1, 2)]
    assert rtcp.parse_rtcp(rtcp.pli(1, 2) + rtcp.pli(3, 4)[:-1]) == [Pli(1, 2)]
    assert rtcp.parse_rtcp(b"") == [] and rtcp.parse_rtcp(b"\x80\xc8") == []
    # counts larger than the data: parse what is there
    sr = bytearray(rtcp.sender_report(1, 2, 3, 4, 5))
    sr[0] |= 5
    assert rtcp.parse_rtcp(bytes(sr)) == [SenderReport(1, 2, 3, 4, 5)]
    bye = bytes([0x83, 203, 0, 1]) + b"\x00\x00\x00\x09"
    assert rtcp.parse_rtcp(bye) == [Bye((9,))]
    reason = bytes([0x81, 203, 0, 2]) + b"\x00\x00\x00\x09" + b"\x09ab\xff"
    assert rtcp.parse_rtcp(reason) == [Bye((9,), "ab\ufffd")]
    remb_short = bytearray(rtcp.remb(1, 1000, [1, 2]))
    remb_short[16] = 9  # claims 9 SSRCs, carries 2
    assert rtcp.parse_rtcp(bytes(remb_short)) == [Remb(1, 1000, (1, 2))]


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200))
def test_parse_rtcp_fuzz_never_raises(data: bytes) -> None:
    packets = rtcp.parse_rtcp(data)
    kinds = (SenderReport, ReceiverReport, Bye, Nack, Pli, Fir, Remb)
    assert all(isinstance(p, kinds) for p in packets)
    for p in packets:
        if not isinstance(p, (Bye, Nack)):  # BYE reasons and NACK lists may not re-encode 1:1
            assert rtcp.parse_rtcp(bytes(p)) == [p]


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=60),
    kind=st.sampled_from([200, 201, 203, 205, 206]),
    count=st.integers(0, 31),
)
def test_parse_rtcp_fuzz_structured(data: bytes, kind: int, count: int) -> None:
    body = data + bytes(-len(data) % 4)
    pkt = bytes([0x80 | count, kind]) + struct.pack("!H", len(body) // 4) + body
    assert rtcp.parse_rtcp(pkt + rtcp.pli(1, 2))[-1] == Pli(1, 2)


@settings(max_examples=200, deadline=None)
@given(seqs=st.lists(st.integers(0, 65535), min_size=1, max_size=60))
def test_nack_round_trip_property(seqs: list[int]) -> None:
    (parsed,) = rtcp.parse_rtcp(rtcp.nack(1, 2, seqs))
    assert isinstance(parsed, Nack)
    assert sorted(parsed.seqs) == sorted(set(seqs))
    assert len(parsed.seqs) == len(set(parsed.seqs))
