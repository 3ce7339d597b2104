"""RTP test packets shared by the `parlour.media` RTP/RTCP tests (built by hand, independent
of the code under test), and aiortc interop helpers.
"""

from __future__ import annotations

import struct

from aiortc import rtp as artp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

from parlour.media.rtp import AUDIO_LEVEL_URI, MID_URI

ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

# Chrome-like publisher ids and aiortc-like subscriber ids (aiortc: mid=1, audio-level=2, ...)
CHROME = {AUDIO_LEVEL_URI: 1, ABS_SEND_TIME_URI: 2, TWCC_URI: 3, MID_URI: 4}
AIORTC = {MID_URI: 1, AUDIO_LEVEL_URI: 2}

# V=2 X=1 CC=0 | M=1 PT=111 | seq 0x1234 | ts 100 | SSRC 0xDEADBEEF
# + one-byte block: audio-level(id 1)=0x85, mid(id 4)="0", then 1 byte of padding
GOLDEN_AUDIO = bytes.fromhex("90ef1234 00000064 deadbeef bede0001 1085 4030 a1a2a3a4a5")


def build(
    *,
    pt: int = 96,
    marker: int = 0,
    seq: int = 1,
    ts: int = 1000,
    ssrc: int = 0x1111,
    ext: list[tuple[int, bytes]] | None = None,
    csrcs: tuple[int, ...] = (),
    payload: bytes = b"\x01\x02\x03\x04",
    padding: int = 0,
) -> bytes:
    """Build an RTP packet by hand (independent of the code under test)."""
    block = b""
    if ext:
        body = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in ext)
        body += bytes(-len(body) % 4)
        block = struct.pack("!HH", 0xBEDE, len(body) // 4) + body
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if block else 0) | len(csrcs)
    head = struct.pack("!BBHII", b0, (marker << 7) | pt, seq, ts, ssrc)
    head += b"".join(struct.pack("!I", c) for c in csrcs)
    tail = bytes(padding - 1) + bytes([padding]) if padding else b""
    return head + block + payload + tail


def aiortc_map(ids: dict[str, int]) -> artp.HeaderExtensionsMap:
    hmap = artp.HeaderExtensionsMap()
    hmap.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in ids.items()]
        )
    )
    return hmap


def extensions(pkt: bytes) -> list[tuple[int, bytes]]:
    """Return the header extension elements of an RTP packet, parsed by aiortc."""
    if not pkt[0] & 0x10:
        return []
    pos = 12 + 4 * (pkt[0] & 0x0F)
    profile, words = struct.unpack_from("!HH", pkt, pos)
    body = bytes(pkt[pos + 4 : pos + 4 + 4 * words])
    assert len(body) == 4 * words
    return artp.unpack_header_extensions(profile, body)


def payload(pkt: bytes) -> bytes:
    """Return the payload of an RTP packet (without padding), parsed by aiortc."""
    return artp.RtpPacket.parse(pkt).payload
