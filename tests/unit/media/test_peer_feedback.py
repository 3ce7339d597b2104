"""RTCP feedback from the SFU to a publisher: receiver reports (loss, jitter, LSR/DLSR), REMB,
NACKs, and RTX repairs that count as received.

Found with the real twilio-video SDK in Chromium: without receiver reports the publisher's
`getStats()` has no `remote-inbound-rtp`, so the SDK reports `null` loss, jitter and
round-trip time for every local track (`room.getStats()` `localAudioTrackStats` /
`localVideoTrackStats`). The offer below is the SDK's real first offer (Chromium 156).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from parlour.domain.sids import TrackSid
from parlour.media import rtcp, rtp
from parlour.media.codecs import ServerCapabilities
from parlour.media.dtls import Certificate
from parlour.media.peer import Peer
from parlour.media.router import Router
from parlour.media.udp import MediaSocket
from tests.unit.media.chrome_offer import AUDIO_ID, DATA_ID, OFFER, VIDEO_ID

AUDIO_SSRC, VIDEO_SSRC, VIDEO_RTX_SSRC = 3364439724, 1142849503, 3162591883
OPUS, VP8, VP8_RTX = 111, 96, 97


class NoListener:
    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        pass

    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None:
        pass

    def media_failed(self, reason: str) -> None:
        pass


class Recorder:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_rtcp(self, packet: bytes | bytearray) -> None:
        self.sent.append(bytes(packet))

    def packets(self) -> list[rtcp.RtcpPacket]:
        return [p for raw in self.sent for p in rtcp.parse_rtcp(raw)]


def packet(ssrc: int, payload_type: int, seq: int, timestamp: int) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq, timestamp, ssrc) + b"\x90\x00media"


@pytest.fixture
async def publisher() -> AsyncIterator[Peer]:
    socket = await MediaSocket.bind("127.0.0.1", 0)
    peer = Peer(
        room_sid="RM" + "0" * 32,
        participant_sid="PA" + "1" * 32,
        router=Router("RM" + "0" * 32),
        socket=socket,
        certificate=Certificate.generate(),
        listener=NoListener(),
        capabilities=ServerCapabilities.default(("VP8", "H264")),
        on_close=lambda peer: None,
    )
    try:
        answer = await peer.client_description(
            "pc", "offer", 1, OFFER, [AUDIO_ID, VIDEO_ID, DATA_ID]
        )
        assert answer is not None
        assert set(peer.producers) == {AUDIO_ID, VIDEO_ID}
        yield peer
    finally:
        peer.close()
        await asyncio.sleep(0.01)  # the DTLS shutdown task
        socket.close()
        await socket.wait_closed()


def reports(recorder: Recorder) -> dict[int, rtcp.ReportBlock]:
    [rr] = [p for p in recorder.packets() if isinstance(p, rtcp.ReceiverReport)]
    return {block.ssrc: block for block in rr.reports}


async def test_publisher_gets_receiver_reports_with_loss_and_sender_report_timing(
    publisher: Peer,
) -> None:
    for seq in range(100, 110):
        if seq != 104:
            publisher._on_rtp(packet(VIDEO_SSRC, VP8, seq, 3000 * seq))
    for seq in range(10, 15):
        publisher._on_rtp(packet(AUDIO_SSRC, OPUS, seq, 960 * seq))
    ntp = 0xE8F1_2345_6789_ABCD
    publisher._on_rtcp(rtcp.sender_report(VIDEO_SSRC, ntp, 3000 * 109, 9, 45))

    first = Recorder()
    publisher.send_feedback(first, time.monotonic() + 0.25)
    blocks = reports(first)
    assert set(blocks) == {AUDIO_SSRC, VIDEO_SSRC}
    video, audio = blocks[VIDEO_SSRC], blocks[AUDIO_SSRC]
    assert (video.packets_lost, video.fraction_lost, video.highest_seq) == (1, 25, 109)
    assert video.lsr == (ntp >> 16) & 0xFFFFFFFF
    assert 0.2 * 65536 < video.dlsr < 5 * 65536  # ~0.25 s in 1/65536 s
    assert (audio.packets_lost, audio.highest_seq, audio.lsr, audio.dlsr) == (0, 14, 0, 0)
    # Jitter in timestamp units from real arrival times: small here, not a frame interval.
    assert video.jitter < 3000
    nacks = [p for p in first.packets() if isinstance(p, rtcp.Nack)]
    assert [(n.media_ssrc, n.seqs) for n in nacks] == [(VIDEO_SSRC, (104,))]
    assert any(isinstance(p, rtcp.Remb) for p in first.packets())
    assert isinstance(rtcp.parse_rtcp(first.sent[-1])[0], rtcp.ReceiverReport)  # compound: RR first

    # The publisher repairs 104 over RTX: received after all, no longer NACKed or lost.
    repaired = rtp.wrap_rtx(
        packet(VIDEO_SSRC, VP8, 104, 3000 * 104), ssrc=VIDEO_RTX_SSRC, payload_type=VP8_RTX, seq=1
    )
    publisher._on_rtp(repaired)
    second = Recorder()
    publisher.send_feedback(second, time.monotonic() + 0.5)
    assert reports(second)[VIDEO_SSRC].packets_lost == 0
    assert not [p for p in second.packets() if isinstance(p, rtcp.Nack)]


async def test_no_receiver_report_before_media(publisher: Peer) -> None:
    recorder = Recorder()
    publisher.send_feedback(recorder, time.monotonic())
    assert [type(p) for p in recorder.packets()] == [rtcp.Remb]


async def test_an_answer_already_applied_is_ignored_when_a_client_resyncs(
    publisher: Peer,
) -> None:
    # The real SDK's `sync` after a signaling blip carries its current local description,
    # which may be the answer to a server offer applied long ago; it must not fail (53403).
    revision = publisher.negotiator.last_revision
    assert publisher.negotiator.pending_offer_revision is None
    stale = await publisher.client_description(
        "pc", "answer", revision, OFFER, [AUDIO_ID, VIDEO_ID, DATA_ID]
    )
    assert stale is None
    assert set(publisher.producers) == {AUDIO_ID, VIDEO_ID}
