"""Media sources for the Python SDK: pre-encoded tracks that cost no encoding CPU.

A `PreEncodedVideoTrack` encodes a short synthetic clip once (VP8, PyAV) and then replays
the encoded packets forever; aiortc's sender packetizes `av.Packet`s without re-encoding
them. Bots and load generators use it to publish realistic video cheaply. The clip has a
keyframe every `gop` frames, since a replayed packet stream cannot honour a PLI.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
from aiortc import MediaStreamTrack

__all__ = ["PreEncodedVideoTrack", "encode_test_clip"]

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


def encode_test_clip(
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    frames: int = 60,
    gop: int = 30,
    bitrate: int = 500_000,
) -> list[bytes]:
    """Encode a moving test pattern to VP8 once; returns the packets' bytes in order."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.bit_rate = bitrate
    codec.gop_size = gop
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[bytes] = []
    for index in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        luma = bytearray(frame.planes[0].buffer_size)
        band = (index * 4) % height
        stride = frame.planes[0].line_size
        for row in range(height):
            value = 200 if band <= row < band + 16 else 40 + (row * 100) // height
            luma[row * stride : row * stride + width] = bytes([value]) * width
        frame.planes[0].update(bytes(luma))
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = index
        if index % gop == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out


class PreEncodedVideoTrack(MediaStreamTrack):
    """A video track that replays pre-encoded VP8 packets at `fps`."""

    kind = "video"

    def __init__(self, packets: list[bytes] | None = None, *, fps: int = 30) -> None:
        super().__init__()
        self._packets = packets if packets is not None else encode_test_clip(fps=fps)
        self._fps = fps
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet[Any]:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index / self._fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = self._packets[self._index % len(self._packets)]
        packet = av.Packet(data)
        packet.pts = self._index * (90000 // self._fps)
        packet.time_base = VIDEO_TIME_BASE
        self._index += 1
        return packet
