"""Pre-encoded media for the load generator: encode once, replay as RTP, count without decoding.

The benchmark's synthetic clients must not spend CPU on codecs, or they would measure themselves
instead of the SFU. So:

* `EncodedLoop.build` encodes a few seconds of a synthetic moving picture to VP8 and a tone to
  Opus, once, with PyAV (the only place a codec runs; ~1 s of CPU).
* `VideoSender` / `AudioSender` replay that loop as RTP packets forever (RFC 7741 VP8
  packetization, RFC 7587 Opus), patching only sequence numbers, timestamps, PictureID and the
  send stamp per packet.
* `StreamStats` is the subscriber side: it parses just enough of each decrypted RTP packet to
  count packets, bytes, loss, duplicates and keyframes, and one-way delay.

Every RTP payload ends with a 12-byte *stamp*: ``b"PLB1"`` + the sender's
``time.monotonic_ns()`` (8 bytes, big-endian). CLOCK_MONOTONIC is system-wide on Linux, so a
receiver in another process on the same host computes the one-way delay as
``recv_ns - stamp``. Nobody decodes the payloads, so the trailing bytes are harmless.
"""

from __future__ import annotations

import fractions
import json
import math
import random
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "AUDIO_CLOCK_RATE",
    "AUDIO_FRAME_SAMPLES",
    "DEFAULT_MAX_PAYLOAD",
    "STAMP_MAGIC",
    "STAMP_SIZE",
    "VIDEO_CLOCK_RATE",
    "AudioSender",
    "EncodedLoop",
    "ReceiverStats",
    "StreamStats",
    "VideoSender",
    "rtp_payload",
]

STAMP_MAGIC = b"PLB1"
STAMP_SIZE = 12  # magic (4) + monotonic_ns (8)
VIDEO_CLOCK_RATE = 90_000
AUDIO_CLOCK_RATE = 48_000
AUDIO_FRAME_SAMPLES = 960  # 20 ms at 48 kHz
AUDIO_FRAME_NS = 20_000_000
#: Largest RTP payload (VP8 descriptor + data + stamp). 12 (RTP) + 1100 + SFU header extensions
#: (~20-40) + SRTP tag (10-16) stays under the 1200-byte WebRTC MTU.
DEFAULT_MAX_PAYLOAD = 1100
VP8_DESCRIPTOR_SIZE = 4  # X=1 | I=1, M=1 (15-bit PictureID)

_STAMP = struct.Struct(">4sQ")
_RTP = struct.Struct(">BBHII")
# RTP header + the 4-byte VP8 payload descriptor, packed in one call.
_RTP_VP8 = struct.Struct(">BBHIIBBH")
_LOOP_FILE_MAGIC = b"PLBLOOP1"


# --------------------------------------------------------------------------------------------
# Encoding (once, at start)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class EncodedLoop:
    """A few seconds of encoded VP8 + Opus, replayed in a loop by the senders.

    ``video_frames[i]`` is the VP8 bitstream of frame *i* (one frame per 1/fps s);
    ``video_keyframe[i]`` tells whether it is a keyframe (frame 0 always is).
    ``audio_frames[j]`` is one 20 ms Opus packet.
    """

    video_frames: list[bytes]
    video_keyframe: list[bool]
    audio_frames: list[bytes]
    fps: int = 30
    width: int = 640
    height: int = 360
    video_kbps: int = 500
    _chunk_cache: dict[int, list[list[tuple[bytes, int, int]]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(
        cls,
        seconds: float = 4.0,
        fps: int = 30,
        video_kbps: int = 500,
        width: int = 640,
        height: int = 360,
        keyframe_every_s: float | None = 2.0,
        audio_kbps: int = 32,
        seed: int = 1,
    ) -> EncodedLoop:
        """Encode ``seconds`` of synthetic video (VP8, realtime CBR) and audio (Opus, 20 ms).

        Keyframes are forced at frame 0 and every ``keyframe_every_s`` seconds (None or <= 0:
        only frame 0); no others are produced. Deterministic for a given ``seed`` (up to the
        encoder build). Raises `RuntimeError` if the encoder output is unusable (achieved video
        bitrate outside ±25 % of the target, or keyframes not where requested).
        """
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"width and height must be even and positive, not {width}x{height}")
        if not 1 <= fps <= 240:
            raise ValueError(f"fps must be in 1..240, not {fps}")
        n_video = max(1, round(seconds * fps))
        n_audio = max(1, round(seconds * 1000 / 20))
        every = round(keyframe_every_s * fps) if keyframe_every_s and keyframe_every_s > 0 else 0
        wanted = [i == 0 or (every > 0 and i % every == 0) for i in range(n_video)]
        frames, keys = _encode_vp8(n_video, fps, video_kbps, width, height, wanted, seed)
        audio = _encode_opus(n_audio, audio_kbps, seed)
        loop = cls(frames, keys, audio, fps=fps, width=width, height=height, video_kbps=video_kbps)
        if keys != wanted:
            have = [i for i, k in enumerate(keys) if k]
            raise RuntimeError(f"VP8 keyframes at {have}, wanted {wanted.count(True)} forced ones")
        achieved = loop.video_bitrate_bps
        if not 0.75 * video_kbps * 1000 <= achieved <= 1.25 * video_kbps * 1000:
            raise RuntimeError(f"VP8 bitrate {achieved / 1000:.0f} kbit/s, target {video_kbps}")
        return loop

    # -- derived figures ----------------------------------------------------------------------

    @property
    def seconds(self) -> float:
        """Duration of the video loop in seconds."""
        return len(self.video_frames) / self.fps

    @property
    def video_bitrate_bps(self) -> float:
        """Achieved VP8 bitrate over the loop (bitstream only, no RTP/stamp overhead)."""
        return sum(map(len, self.video_frames)) * 8 / self.seconds

    @property
    def audio_bitrate_bps(self) -> float:
        """Achieved Opus bitrate over the loop (bitstream only)."""
        return sum(map(len, self.audio_frames)) * 8 / (len(self.audio_frames) * 0.02)

    @property
    def keyframe_indices(self) -> list[int]:
        """Indices of the keyframes in `video_frames`."""
        return [i for i, k in enumerate(self.video_keyframe) if k]

    def video_chunks(
        self, max_payload: int = DEFAULT_MAX_PAYLOAD
    ) -> list[list[tuple[bytes, int, int]]]:
        """Per frame, its RTP packets as ``(vp8 data chunk, descriptor byte 0, marker bit)``.

        Chunks are balanced (libwebrtc style) so that descriptor + chunk + stamp fits in
        ``max_payload``. Computed once per size and shared by all senders of this loop.
        """
        cached = self._chunk_cache.get(max_payload)
        if cached is not None:
            return cached
        budget = max_payload - VP8_DESCRIPTOR_SIZE - STAMP_SIZE
        if budget < 1:
            raise ValueError(f"max_payload {max_payload} leaves no room for VP8 data")
        out: list[list[tuple[bytes, int, int]]] = []
        for frame in self.video_frames:
            count = max(1, -(-len(frame) // budget))
            base, extra = divmod(len(frame), count)
            packets: list[tuple[bytes, int, int]] = []
            pos = 0
            for i in range(count):
                size = base + (1 if i < extra else 0)
                # X=1 always; S=1 on the first packet of the frame; partition id 0;
                # RTP marker bit on the last packet.
                d0 = 0x90 if i == 0 else 0x80
                packets.append((frame[pos : pos + size], d0, 0x80 if i == count - 1 else 0))
                pos += size
            out.append(packets)
        self._chunk_cache[max_payload] = out
        return out

    def video_packets_per_second(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> float:
        """RTP packets per second one `VideoSender` sends for this loop."""
        return sum(map(len, self.video_chunks(max_payload))) / self.seconds

    # -- cache file ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the loop to ``path`` (so worker processes can `load` instead of encoding)."""
        meta = {
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "video_kbps": self.video_kbps,
            "video": [len(f) for f in self.video_frames],
            "keyframe": self.video_keyframe,
            "audio": [len(f) for f in self.audio_frames],
        }
        head = json.dumps(meta).encode()
        body = b"".join(self.video_frames) + b"".join(self.audio_frames)
        Path(path).write_bytes(_LOOP_FILE_MAGIC + struct.pack(">I", len(head)) + head + body)

    @classmethod
    def load(cls, path: str | Path) -> EncodedLoop:
        """Read a loop written by `save`."""
        data = Path(path).read_bytes()
        if not data.startswith(_LOOP_FILE_MAGIC):
            raise ValueError(f"{path}: not a media loop file")
        (head_len,) = struct.unpack_from(">I", data, len(_LOOP_FILE_MAGIC))
        pos = len(_LOOP_FILE_MAGIC) + 4
        meta = json.loads(data[pos : pos + head_len])
        pos += head_len

        def take(sizes: list[int]) -> list[bytes]:
            nonlocal pos
            out = []
            for size in sizes:
                out.append(data[pos : pos + size])
                pos += size
            return out

        video = take(meta["video"])
        audio = take(meta["audio"])
        if pos != len(data):
            raise ValueError(f"{path}: truncated or trailing data")
        return cls(
            video,
            [bool(k) for k in meta["keyframe"]],
            audio,
            fps=meta["fps"],
            width=meta["width"],
            height=meta["height"],
            video_kbps=meta["video_kbps"],
        )


def _synthetic_video(
    count: int, width: int, height: int, kbps: int, fps: int, seed: int
) -> Iterator[Any]:
    """Yield ``count`` yuv420p frames (numpy, PyAV's planar layout) of a moving test scene.

    A smooth textured background pans right to left (luma and chroma together, so motion
    search finds it), a sprite bounces over it, and a little fresh noise per frame (scaled to
    the target bits per pixel) keeps the encoder spending its budget.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    scale = width / 320
    # Smooth random texture, periodic in x (the background wraps around as it pans).
    texture = rng.standard_normal((height, width))
    k = max(2, int(4 * scale))
    for axis in (0, 1):  # separable box blur (wrap-around), via cumulative sums
        ext = np.concatenate([texture, texture.take(range(k), axis=axis)], axis=axis)
        csum = np.cumsum(ext, axis=axis)
        n = csum.shape[axis]
        texture = (csum.take(range(k, n), axis=axis) - csum.take(range(n - k), axis=axis)) / k
    texture *= 20 / texture.std()
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = yy[::2, ::2], xx[::2, ::2]  # chroma sample positions, in luma pixels
    # Periods divide the width, so the pattern tiles; two copies side by side to slice from.
    luma_bg = 128 + 50 * np.sin(xx * (12 * np.pi / width)) * np.cos(yy * (6 * np.pi / height))
    luma_bg = np.tile((luma_bg + texture).round(), 2).astype(np.int16)
    u_bg = np.tile(128 + 40 * np.sin(cx * (16 * np.pi / width)), 2).round().astype(np.uint8)
    v_bg = 128 + 40 * np.cos(cy * (8 * np.pi / height)) * np.sin(cx * (10 * np.pi / width))
    v_bg = np.tile(v_bg, 2).round().astype(np.uint8)
    bits_per_pixel = kbps * 1000 / (width * height * fps)
    amp = min(12, max(1, round(bits_per_pixel * 40)))
    noise = rng.integers(-amp, amp + 1, (8, height, width), dtype=np.int16)
    box = max(2, min(width, height) // 4) // 2 * 2
    sprite = (255 - (128 + texture[:box, :box] * 3).clip(0, 255)).astype(np.int16)
    step = max(2, round(3 * scale)) // 2 * 2  # even, so chroma moves by whole samples
    half_w = width // 2
    for t in range(count):
        dx = (t * step) % width
        luma = luma_bg[:, dx : dx + width] + noise[t % len(noise)]
        u = u_bg[:, dx // 2 : dx // 2 + half_w].copy()
        v = v_bg[:, dx // 2 : dx // 2 + half_w].copy()
        bx = int((width - box) * (0.5 + 0.5 * math.sin(2 * math.pi * t / count))) // 2 * 2
        by = (t * step) % max(2, height - box) // 2 * 2
        luma[by : by + box, bx : bx + box] = sprite
        u[by // 2 : (by + box) // 2, bx // 2 : (bx + box) // 2] = 60
        v[by // 2 : (by + box) // 2, bx // 2 : (bx + box) // 2] = 200
        planes = np.concatenate([luma.clip(0, 255).astype(np.uint8).ravel(), u.ravel(), v.ravel()])
        yield planes.reshape(-1, width)


def _encode_vp8(
    count: int, fps: int, kbps: int, width: int, height: int, keyframes: list[bool], seed: int
) -> tuple[list[bytes], list[bool]]:
    """Encode ``count`` synthetic frames; keyframes forced exactly where ``keyframes`` says."""
    import av
    from av.video.frame import PictureType

    codec = av.CodecContext.create("libvpx", "w")
    codec.width = width
    codec.height = height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.bit_rate = kbps * 1000
    codec.gop_size = 1 << 30  # keyframes only where forced
    codec.qmin = 2  # libwebrtc's VP8 quantizer range
    codec.qmax = 56
    codec.thread_count = 1
    # Close to libwebrtc's VP8 settings: realtime, no lag, one token partition, CBR with a 1 s
    # buffer, keyframes capped at 9x an average frame (libwebrtc's max-intra-rate at 30 fps).
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "auto-alt-ref": "0",
        "partitions": "0",
        "static-thresh": "0",
        "minrate": str(kbps * 1000),
        "maxrate": str(kbps * 1000),
        "bufsize": str(kbps * 1000),
        "undershoot-pct": "100",
        "overshoot-pct": "15",
        "max-intra-rate": "900",
    }
    # Warm the rate controller up (2 s, discarded), so the loop starts at a steady bitrate.
    warmup = 2 * fps
    out: list[bytes] = []
    keys: list[bool] = []

    def collect(packets: list[Any]) -> None:
        for packet in packets:
            if packet.pts is not None and packet.pts >= warmup:
                out.append(bytes(packet))
                keys.append(bool(packet.is_keyframe))

    scene = _synthetic_video(warmup + count, width, height, kbps, fps, seed)
    for pts, planes in enumerate(scene):
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = pts
        frame.time_base = codec.time_base
        if pts >= warmup and keyframes[pts - warmup]:
            frame.pict_type = PictureType.I
        collect(codec.encode(frame))
    collect(codec.encode(None))
    if len(out) != count:
        raise RuntimeError(f"VP8 encoder gave {len(out)} frames for {count}")
    return out, keys


def _encode_opus(count: int, kbps: int, seed: int) -> list[bytes]:
    """Encode ``count`` 20 ms Opus packets of a warbling tone with a little noise."""
    import av
    import numpy as np

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_CLOCK_RATE
    codec.format = "s16"
    codec.layout = "mono"
    codec.bit_rate = kbps * 1000
    codec.time_base = fractions.Fraction(1, AUDIO_CLOCK_RATE)
    codec.options = {"application": "voip", "frame_duration": "20", "vbr": "constrained"}
    rng = np.random.default_rng(seed)
    t = np.arange(count * AUDIO_FRAME_SAMPLES) / AUDIO_CLOCK_RATE
    pitch = 440 + 60 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / AUDIO_CLOCK_RATE
    signal = 0.3 * np.sin(phase) + 0.03 * rng.standard_normal(t.size)
    pcm = (signal * 32767).astype(np.int16)
    out: list[bytes] = []
    for j in range(count):
        chunk = pcm[j * AUDIO_FRAME_SAMPLES : (j + 1) * AUDIO_FRAME_SAMPLES].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = AUDIO_CLOCK_RATE
        frame.pts = j * AUDIO_FRAME_SAMPLES
        frame.time_base = codec.time_base
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    if len(out) < count:
        raise RuntimeError(f"Opus encoder gave {len(out)} packets for {count}")
    return out[:count]


# --------------------------------------------------------------------------------------------
# Sending: replay the loop as RTP
# --------------------------------------------------------------------------------------------


def _nearest_keyframes(keyframe: list[bool]) -> list[int]:
    """For each frame index, the index of the nearest keyframe in the (cyclic) loop."""
    keys = [i for i, k in enumerate(keyframe) if k]
    if not keys:
        raise ValueError("the loop has no keyframe")
    n = len(keyframe)
    out = []
    for i in range(n):
        ahead = min(keys, key=lambda k: (k - i) % n)
        behind = min(keys, key=lambda k: (i - k) % n)
        out.append(ahead if (ahead - i) % n <= (i - behind) % n else behind)
    return out


def _first_seq_and_timestamp(seq: int | None, timestamp: int | None) -> tuple[int, int]:
    """A stream's first sequence number and timestamp: as given, or random (RFC 3550 §5.1)."""
    first_seq = random.getrandbits(16) if seq is None else seq
    first_ts = random.getrandbits(32) if timestamp is None else timestamp
    return first_seq & 0xFFFF, first_ts & 0xFFFFFFFF


class VideoSender:
    """Replays an `EncodedLoop`'s VP8 frames as RTP packets (RFC 7741), one frame per call.

    Each packet: 12-byte RTP header (no CSRC, no extensions), 4-byte VP8 payload descriptor
    (X=1, S on a frame's first packet, PID 0, I=1 with a 15-bit PictureID), a chunk of the
    frame, and the 12-byte stamp. Marker bit on a frame's last packet. Timestamps advance by
    90000/fps per frame, sequence numbers by one per packet (mod 2**16).
    """

    __slots__ = (
        "_chunks",
        "_frame_bytes",
        "_keyframe_for",
        "_keyframe_wanted",
        "_pt",
        "bytes_sent",
        "fps",
        "frame_index",
        "frames_sent",
        "keyframe_requests",
        "packets_sent",
        "picture_id",
        "seq",
        "ssrc",
        "timestamp",
        "timestamp_step",
    )

    def __init__(
        self,
        loop: EncodedLoop,
        ssrc: int,
        payload_type: int = 96,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        first_seq: int | None = None,
        first_timestamp: int | None = None,
        first_picture_id: int | None = None,
    ) -> None:
        self._chunks = loop.video_chunks(max_payload)
        overhead = 12 + VP8_DESCRIPTOR_SIZE + STAMP_SIZE
        self._frame_bytes = [sum(len(c) + overhead for c, _, _ in f) for f in self._chunks]
        self._keyframe_for = _nearest_keyframes(loop.video_keyframe)
        self._pt = payload_type & 0x7F
        self.ssrc = ssrc & 0xFFFFFFFF
        #: Sequence number of the next packet; RTP timestamp of the next frame.
        self.seq, self.timestamp = _first_seq_and_timestamp(first_seq, first_timestamp)
        #: PictureID of the next frame (15 bits).
        self.picture_id = (
            random.getrandbits(15) if first_picture_id is None else first_picture_id
        ) & 0x7FFF
        self.fps = loop.fps
        self.timestamp_step = VIDEO_CLOCK_RATE // loop.fps
        #: Index in the loop of the next frame.
        self.frame_index = 0
        self._keyframe_wanted = False
        self.frames_sent = 0
        self.packets_sent = 0
        self.bytes_sent = 0
        self.keyframe_requests = 0

    @property
    def frame_interval_ns(self) -> int:
        """Wall time between frames (pace `next_frame` calls with it)."""
        return 1_000_000_000 // self.fps

    def request_keyframe(self) -> None:
        """Make the next frame a keyframe (on PLI/FIR): jump to the loop's nearest one.

        Nearest in loop order, backwards or forwards (ties go forwards); timestamps and
        PictureIDs carry on regardless, so the jump is invisible at the RTP level.
        """
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    def next_frame(self, now_ns: int) -> list[bytes]:
        """The RTP packets of the next frame, stamped with ``now_ns`` (time.monotonic_ns())."""
        index = self.frame_index
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            index = self._keyframe_for[index]
        chunks = self._chunks[index]
        self.frame_index = index + 1 if index + 1 < len(self._chunks) else 0
        stamp = _STAMP.pack(STAMP_MAGIC, now_ns)
        pack = _RTP_VP8.pack
        pt = self._pt
        ssrc = self.ssrc
        ts = self.timestamp
        pid = 0x8000 | self.picture_id
        seq = self.seq
        out = []
        for chunk, d0, marker in chunks:
            out.append(pack(0x80, pt | marker, seq, ts, ssrc, d0, 0x80, pid) + chunk + stamp)
            seq = (seq + 1) & 0xFFFF
        self.seq = seq
        self.timestamp = (ts + self.timestamp_step) & 0xFFFFFFFF
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        self.frames_sent += 1
        self.packets_sent += len(out)
        self.bytes_sent += self._frame_bytes[index]
        return out


class AudioSender:
    """Replays an `EncodedLoop`'s Opus packets as RTP, one 20 ms packet per call.

    Timestamps advance by 960 (48 kHz), sequence numbers by one; marker bit on the first packet
    only (start of the talkspurt). The stamp is appended to each Opus payload.
    """

    __slots__ = (
        "_frames",
        "_pt",
        "bytes_sent",
        "frame_index",
        "packets_sent",
        "seq",
        "ssrc",
        "timestamp",
    )

    #: Wall time between packets.
    packet_interval_ns = AUDIO_FRAME_NS

    def __init__(
        self,
        loop: EncodedLoop,
        ssrc: int,
        payload_type: int = 111,
        *,
        first_seq: int | None = None,
        first_timestamp: int | None = None,
    ) -> None:
        self._frames = loop.audio_frames
        self._pt = payload_type & 0x7F
        self.ssrc = ssrc & 0xFFFFFFFF
        self.seq, self.timestamp = _first_seq_and_timestamp(first_seq, first_timestamp)
        self.frame_index = 0
        self.packets_sent = 0
        self.bytes_sent = 0

    def next_packet(self, now_ns: int) -> bytes:
        """The next Opus RTP packet, stamped with ``now_ns`` (time.monotonic_ns())."""
        frames = self._frames
        index = self.frame_index
        seq = self.seq
        ts = self.timestamp
        marker = 0x80 if self.packets_sent == 0 else 0
        packet = (
            _RTP.pack(0x80, marker | self._pt, seq, ts, self.ssrc)
            + frames[index]
            + _STAMP.pack(STAMP_MAGIC, now_ns)
        )
        self.frame_index = index + 1 if index + 1 < len(frames) else 0
        self.seq = (seq + 1) & 0xFFFF
        self.timestamp = (ts + AUDIO_FRAME_SAMPLES) & 0xFFFFFFFF
        self.packets_sent += 1
        self.bytes_sent += len(packet)
        return packet


# --------------------------------------------------------------------------------------------
# Receiving: count, don't decode
# --------------------------------------------------------------------------------------------


def rtp_payload(packet: bytes) -> bytes:
    """The payload of an RTP packet: after CSRCs and header extension, before padding."""
    if len(packet) < 12 or packet[0] & 0xC0 != 0x80:
        raise ValueError("not an RTP packet")
    b0 = packet[0]
    off = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if len(packet) < off + 4:
            raise ValueError("truncated header extension")
        off += 4 + 4 * int.from_bytes(packet[off + 2 : off + 4], "big")
    end = len(packet) - (packet[-1] if b0 & 0x20 else 0)
    if end < off:
        raise ValueError("truncated RTP packet")
    return packet[off:end]


_SEEN_WINDOW = 4096  # dedupe/reorder window in packets (power of two)
_SEEN_MASK = _SEEN_WINDOW - 1
_EXT_OFFSET = 0x10000  # first packet's extended seq, so slightly older ones stay positive


class StreamStats:
    """Receiver-side accounting for one RTP stream (one SSRC), fed decrypted packets.

    Counts since the last `reset_window` (or creation): unique packets and bytes, expected
    packets (highest extended sequence number - first + 1) and so loss, duplicates, packets too
    late to be accounted, VP8 keyframes (video only), and one-way delays from the stamps.
    ``first_packet_ns`` / ``first_keyframe_ns`` are since creation (receive times of the first
    packet and of the first packet of the first keyframe).

    Sequence numbers are unwrapped; reordering within 4096 packets is handled and duplicates
    in that window are not counted twice. Packets older than that, or (after a reset) from
    before the window, count as ``late`` only.
    """

    __slots__ = (
        "_base",
        "_base_fixed",
        "_delay_cap",
        "_delay_seen",
        "_max_ext",
        "_seen",
        "_video",
        "bytes",
        "delays_ns",
        "duplicates",
        "first_keyframe_ns",
        "first_packet_ns",
        "keyframes",
        "kind",
        "late",
        "malformed",
        "packets",
        "payload_bytes",
        "payload_type",
        "ssrc",
    )

    def __init__(
        self, kind: Literal["video", "audio"] = "video", *, max_delay_samples: int = 100_000
    ) -> None:
        if kind not in ("video", "audio"):
            raise ValueError(f"kind must be 'video' or 'audio', not {kind!r}")
        self.kind = kind
        self._video = kind == "video"
        self._delay_cap = max_delay_samples
        self.ssrc: int | None = None
        self.payload_type: int | None = None
        self.first_packet_ns: int | None = None
        self.first_keyframe_ns: int | None = None
        self._max_ext = -1
        self._seen = [-1] * _SEEN_WINDOW
        self.malformed = 0
        self.reset_window()

    def reset_window(self) -> None:
        """Start a new measurement window: counts, loss and delays restart from here."""
        self.packets = 0
        self.bytes = 0
        self.payload_bytes = 0
        self.duplicates = 0
        self.late = 0
        self.keyframes = 0
        self.delays_ns = array("q")
        self._delay_seen = 0
        self._base = self._max_ext + 1
        self._base_fixed = True

    def feed(self, packet: bytes, recv_ns: int) -> None:
        """Account one decrypted RTP packet received at ``recv_ns`` (time.monotonic_ns())."""
        n = len(packet)
        if n < 12:
            self.malformed += 1
            return
        b0 = packet[0]
        off = 12 + ((b0 & 0x0F) << 2)
        if b0 & 0x10:
            if n < off + 4:
                self.malformed += 1
                return
            off += 4 + (((packet[off + 2] << 8) | packet[off + 3]) << 2)
        if b0 & 0x20:
            n -= packet[-1]
        if n < off or b0 & 0xC0 != 0x80:
            self.malformed += 1
            return

        seq = (packet[2] << 8) | packet[3]
        top = self._max_ext
        if top < 0:  # first packet ever
            ext = top = self._max_ext = seq + _EXT_OFFSET
            self._base = ext
            self._base_fixed = False
            self.first_packet_ns = recv_ns
            self.ssrc = int.from_bytes(packet[8:12], "big")
            self.payload_type = packet[1] & 0x7F
        else:
            delta = (seq - top) & 0xFFFF
            if delta < 0x8000:
                ext = top + delta
                if delta:
                    self._max_ext = ext
            else:  # older than the highest: reordered, late or duplicate
                ext = top + delta - 0x10000
                if top - ext >= _SEEN_WINDOW:
                    self.late += 1
                    return
            if ext < self._base:
                if self._base_fixed:
                    self.late += 1
                    return
                self._base = ext
        seen = self._seen
        slot = ext & _SEEN_MASK
        if seen[slot] == ext:
            self.duplicates += 1
            return
        seen[slot] = ext

        self.packets += 1
        self.bytes += len(packet)
        self.payload_bytes += n - off

        if self._video and n - off > 3:
            d0 = packet[off]
            if d0 & 0x17 == 0x10:  # S=1, PID=0: the frame's first byte follows the descriptor
                p = off + 1
                if d0 & 0x80:
                    x = packet[p]
                    p += 1
                    if x & 0x80:
                        p += 2 if packet[p] & 0x80 else 1
                    if x & 0x40:
                        p += 1
                    if x & 0x30:
                        p += 1
                if p < n and not packet[p] & 0x01:
                    self.keyframes += 1
                    if self.first_keyframe_ns is None:
                        self.first_keyframe_ns = recv_ns

        if n - off < STAMP_SIZE:
            return
        magic, sent_ns = _STAMP.unpack_from(packet, n - STAMP_SIZE)
        if magic == STAMP_MAGIC:
            delay = recv_ns - sent_ns
            delays = self.delays_ns
            if len(delays) < self._delay_cap:
                delays.append(delay)
            else:  # reservoir sampling keeps a uniform sample of the window
                j = int(random.random() * (self._delay_seen + 1))
                if j < self._delay_cap:
                    delays[j] = delay
            self._delay_seen += 1

    # -- results ------------------------------------------------------------------------------

    @property
    def expected(self) -> int:
        """Packets expected in the window (from the sequence numbers)."""
        return max(0, self._max_ext - self._base + 1) if self._max_ext >= 0 else 0

    @property
    def lost(self) -> int:
        """Expected minus received (unique) packets in the window."""
        return max(0, self.expected - self.packets)

    @property
    def highest_seq(self) -> int | None:
        """Extended highest sequence number (first cycle is 0), or None before any packet."""
        return None if self._max_ext < 0 else self._max_ext - _EXT_OFFSET

    @property
    def delay_count(self) -> int:
        """Stamped packets seen in the window (``len(delays_ns)`` is capped, this is not)."""
        return self._delay_seen

    def delay_percentiles_ms(self, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
        """Nearest-rank percentiles of the window's one-way delays, in ms (empty if none)."""
        if not self.delays_ns:
            return {}
        ordered = sorted(self.delays_ns)
        last = len(ordered) - 1
        out = {
            f"p{q:g}": ordered[min(last, max(0, math.ceil(q / 100 * len(ordered)) - 1))] / 1e6
            for q in qs
        }
        out["max"] = ordered[-1] / 1e6
        out["mean"] = sum(ordered) / len(ordered) / 1e6
        return out

    def summary(self, *, include_samples: bool = False) -> dict[str, Any]:
        """The window's figures as a JSON-friendly dict (``delays_ns`` only if asked for)."""
        expected = self.expected
        lost = self.lost
        out: dict[str, Any] = {
            "kind": self.kind,
            "ssrc": self.ssrc,
            "payload_type": self.payload_type,
            "packets": self.packets,
            "bytes": self.bytes,
            "payload_bytes": self.payload_bytes,
            "expected": expected,
            "lost": lost,
            "loss_pct": 100.0 * lost / expected if expected else 0.0,
            "duplicates": self.duplicates,
            "late": self.late,
            "malformed": self.malformed,
            "keyframes": self.keyframes,
            "first_packet_ns": self.first_packet_ns,
            "first_keyframe_ns": self.first_keyframe_ns,
            "highest_seq": self.highest_seq,
            "delay_count": self._delay_seen,
            "delay_samples": len(self.delays_ns),
            "delay_ms": self.delay_percentiles_ms(),
        }
        if include_samples:
            out["delays_ns"] = self.delays_ns.tolist()
        return out


class ReceiverStats:
    """`StreamStats` per SSRC, created on first sight; video or audio by payload type."""

    __slots__ = ("_audio_pts", "_max_delay_samples", "streams")

    def __init__(
        self,
        audio_payload_types: frozenset[int] = frozenset({111}),
        *,
        max_delay_samples: int = 100_000,
    ) -> None:
        self._audio_pts = audio_payload_types
        self._max_delay_samples = max_delay_samples
        self.streams: dict[int, StreamStats] = {}

    def feed(self, packet: bytes, recv_ns: int) -> StreamStats | None:
        """Account ``packet`` on its SSRC's stream (None if too short to have one)."""
        if len(packet) < 12:
            return None
        ssrc = int.from_bytes(packet[8:12], "big")
        stats = self.streams.get(ssrc)
        if stats is None:
            kind: Literal["video", "audio"] = (
                "audio" if packet[1] & 0x7F in self._audio_pts else "video"
            )
            stats = self.streams[ssrc] = StreamStats(
                kind, max_delay_samples=self._max_delay_samples
            )
        stats.feed(packet, recv_ns)
        return stats

    def reset_window(self) -> None:
        """`StreamStats.reset_window` on every stream."""
        for stats in self.streams.values():
            stats.reset_window()
