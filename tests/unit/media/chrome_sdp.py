"""Builders for the video codec lines of Chrome's offers, shared by the SDP and negotiation
tests: Chrome lists each codec as its rtpmap, its rtcp-fb lines, its fmtp, then its rtx."""

from __future__ import annotations

# The rtcp-fb lines Chrome gives every video codec but red and ulpfec.
FEEDBACK = ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")

H264 = "level-asymmetry-allowed=1;packetization-mode={mode};profile-level-id={profile}"

# Headless Chromium 156's video codecs, by payload type: name, fmtp, rtx payload type.
VIDEO_CODECS: dict[int, tuple[str, str | None, int | None]] = {
    96: ("VP8", None, 97),
    102: ("H264", H264.format(mode=1, profile="42001f"), 103),
    104: ("H264", H264.format(mode=0, profile="42001f"), 107),
    108: ("H264", H264.format(mode=1, profile="42e01f"), 109),
    114: ("H264", H264.format(mode=0, profile="42e01f"), 115),
    116: ("H264", H264.format(mode=1, profile="4d001f"), 117),
    39: ("H264", H264.format(mode=0, profile="4d001f"), 40),
    45: ("AV1", "level-idx=5;profile=0;tier=0", 46),
    98: ("VP9", "profile-id=0", 99),
    100: ("VP9", "profile-id=2", 101),
    118: ("red", None, 119),
    120: ("ulpfec", None, None),
}


def video_codec_lines(*payload_types: int) -> str:
    """Chrome's lines for these video codecs, in this order, each line ending in LF."""
    lines = []
    for pt in payload_types:
        name, fmtp, rtx = VIDEO_CODECS[pt]
        lines.append(f"a=rtpmap:{pt} {name}/90000")
        if name not in ("red", "ulpfec"):
            lines += [f"a=rtcp-fb:{pt} {fb}" for fb in FEEDBACK]
        if fmtp is not None:
            lines.append(f"a=fmtp:{pt} {fmtp}")
        if rtx is not None:
            lines += [f"a=rtpmap:{rtx} rtx/90000", f"a=fmtp:{rtx} apt={pt}"]
    return "".join(f"{line}\n" for line in lines)


# Headless Chromium 156's audio codec lines, in its offer order.
AUDIO_CODEC_LINES = """\
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
"""


def transport_lines(fingerprint: str, *, rtcp: bool = True) -> str:
    """The connection and ICE/DTLS lines of each m-section of the recorded Chrome offer (an
    application section has no rtcp line)."""
    rtcp_line = "a=rtcp:9 IN IP4 0.0.0.0\n" if rtcp else ""
    return f"""\
c=IN IP4 0.0.0.0
{rtcp_line}a=ice-ufrag:8Ia2
a=ice-pwd:MAMoeBGI1SkF3V0hzWeWgpyb
a=ice-options:trickle
a=fingerprint:sha-256 {fingerprint}
a=setup:actpass
"""
