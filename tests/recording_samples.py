"""Real media for recording tests: frames encoded by PyAV (libvpx, libx264, libopus) and
packetized by aiortc's own packetizers (`Vp8Encoder.pack`, `H264Encoder.pack`), so the
depacketizers are checked against an independent implementation."""

from __future__ import annotations

import fractions
import math
import struct
from dataclasses import dataclass

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket

from bench.speech import encode_opus_pcm

VIDEO_RATE = 90000
PT = {"VP8": 96, "H264": 102, "OPUS": 111}


@dataclass(frozen=True)
class EncodedFrame:
    data: bytes
    timestamp: int  # RTP clock units from the first frame
    keyframe: bool


@dataclass(frozen=True)
class Packet:
    media_time: float  # seconds from the start, when a live source would send it
    data: bytes  # the serialized RTP packet
    frame: int  # index of the frame it belongs to


def encode_video(
    codec: str, frames: int, *, fps: int = 30, size: tuple[int, int] = (160, 120), gop: int = 0
) -> list[EncodedFrame]:
    """`frames` pictures of moving content; a keyframe every `gop` frames (0: the first)."""
    width, height = size
    if codec == "VP8":
        ctx = av.CodecContext.create("libvpx", "w")
        ctx.options = {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "8"}
    else:
        ctx = av.CodecContext.create("libx264", "w")
        ctx.options = {"tune": "zerolatency", "preset": "ultrafast"}
        ctx.profile = "Baseline"
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fps
    ctx.gop_size = gop or 10_000
    ctx.bit_rate = 300_000
    out: list[EncodedFrame] = []
    for i in range(frames + 1):
        frame: av.VideoFrame | None = None
        if i < frames:
            frame = av.VideoFrame(width, height, "yuv420p")
            for n, plane in enumerate(frame.planes):
                row = bytes((x * 3 + i * 5 + n * 40) % 256 for x in range(plane.line_size))
                plane.update(row * (plane.buffer_size // plane.line_size))
            frame.pts = i
            if gop and i % gop == 0:
                frame.pict_type = av.video.frame.PictureType.I
        for packet in ctx.encode(frame):
            assert packet.pts is not None
            out.append(
                EncodedFrame(bytes(packet), packet.pts * VIDEO_RATE // fps, packet.is_keyframe)
            )
    return out


def encode_opus(seconds: float, *, tone: float = 440.0) -> list[EncodedFrame]:
    """20 ms Opus packets of a stereo sine tone."""
    samples = [
        int(8000 * math.sin(2 * math.pi * tone * k / 48000)) for k in range(int(seconds * 50) * 960)
    ]
    pcm = struct.pack(f"<{2 * len(samples)}h", *(s for s in samples for _ in (0, 1)))
    return [
        EncodedFrame(payload, timestamp, True)
        for timestamp, payload in encode_opus_pcm(pcm, layout="stereo")
    ]


def payloads(codec: str, frame: EncodedFrame) -> list[bytes]:
    """aiortc's RTP payloads for one frame."""
    if codec == "OPUS":
        return [frame.data]
    packet = av.Packet(frame.data)
    packet.pts = frame.timestamp
    packet.time_base = fractions.Fraction(1, VIDEO_RATE)
    encoder = Vp8Encoder() if codec == "VP8" else H264Encoder()
    return encoder.pack(packet)[0]


def packetize(
    codec: str,
    frames: list[EncodedFrame],
    *,
    ssrc: int = 0x1234,
    seq: int = 1000,
    timestamp: int = 5000,
    start: float = 0.0,
) -> list[Packet]:
    """RTP packets of `frames` (marker on the last packet of each video frame)."""
    clock = 48000 if codec == "OPUS" else VIDEO_RATE
    out: list[Packet] = []
    for index, frame in enumerate(frames):
        parts = payloads(codec, frame)
        for n, payload in enumerate(parts):
            rtp = RtpPacket(
                payload_type=PT[codec],
                marker=(n == len(parts) - 1) if codec != "OPUS" else index == 0,
                sequence_number=seq & 0xFFFF,
                timestamp=(timestamp + frame.timestamp) & 0xFFFFFFFF,
                ssrc=ssrc,
                payload=payload,
            )
            out.append(Packet(start + frame.timestamp / clock, rtp.serialize(), index))
            seq += 1
    return out


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B stream (3- or 4-byte start codes)."""
    nals = []
    for chunk in data.split(b"\x00\x00\x01"):
        chunk = chunk.rstrip(b"\x00")
        if chunk:
            nals.append(chunk)
    return nals
