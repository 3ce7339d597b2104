"""Spoken sentences for the transcription bench and tests: `espeak-ng` (Debian) says them,
PyAV encodes them to 20 ms Opus frames as a browser sends them, and `word_error_rate`
scores what a recogniser heard against the text."""

from __future__ import annotations

import fractions
import shutil
import subprocess
from pathlib import Path

import av

__all__ = [
    "SENTENCES",
    "encode_opus_pcm",
    "have_espeak",
    "opus_frames",
    "rtp_packets",
    "speak_wav",
    "word_error_rate",
]

#: The voice and speed PocketSphinx's US English model understands best among espeak-ng's.
VOICE = "en-us+klatt"
SPEED = 130
SENTENCES = (
    "the weather is nice today",
    "hello world this is a test",
    "please call me tomorrow morning",
    "i would like to order a pizza",
    "can you hear me now",
    "we will meet at the station at noon",
    "turn left at the next corner",
    "my favorite color is blue",
)
OPUS_PT = 111


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def _write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with av.open(str(path), "w", format="wav") as dst:
        out = dst.add_stream("pcm_s16le", rate=rate, layout="mono")
        chunk = 2048
        pts = 0
        for i in range(0, len(pcm), chunk):
            part = pcm[i : i + chunk]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(part) // 2)
            frame.planes[0].update(part)
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = fractions.Fraction(1, rate)
            pts += len(part) // 2
            for packet in out.encode(frame):
                dst.mux(packet)
        for packet in out.encode(None):
            dst.mux(packet)


def speak_wav(text: str, path: Path, *, pad_seconds: float = 0.0) -> Path:
    """A WAV of `text` spoken by espeak-ng (mono), with `pad_seconds` of silence before and
    after it."""
    subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", str(SPEED), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    if pad_seconds:
        with av.open(str(path)) as src:
            rate = src.streams.audio[0].rate
            pcm = bytearray()
            for frame in src.decode(audio=0):
                pcm += bytes(frame.planes[0])[: frame.samples * 2]
        silence = bytes(2 * int(rate * pad_seconds))
        _write_wav(path, silence + bytes(pcm) + silence, rate)
    return path


def opus_frames(path: Path, *, pad_seconds: float = 1.0) -> list[tuple[int, bytes]]:
    """(RTP timestamp from 0, payload) of the 20 ms Opus frames (48 kHz, mono, 32 kbit/s)
    of a WAV file, with `pad_seconds` of silence before and after it."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    pcm = bytearray(bytes(2 * int(48000 * pad_seconds)))
    with av.open(str(path)) as src:
        for frame in src.decode(audio=0):
            for out in resampler.resample(frame):
                pcm += bytes(out.planes[0])[: out.samples * 2]
    pcm += bytes(2 * int(48000 * pad_seconds))
    pcm += bytes(-len(pcm) % 1920)
    return encode_opus_pcm(bytes(pcm))


def encode_opus_pcm(pcm: bytes, *, layout: str = "mono") -> list[tuple[int, bytes]]:
    """(RTP timestamp from 0, payload) of the 20 ms Opus frames (48 kHz, 32 kbit/s) of
    signed 16-bit PCM, interleaved for `layout` (mono or stereo); a part frame is dropped."""
    frame_bytes = 960 * 2 * (2 if layout == "stereo" else 1)
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48000
    ctx.layout = layout
    ctx.format = "s16"
    ctx.bit_rate = 32000
    ctx.time_base = fractions.Fraction(1, 48000)
    frames: list[tuple[int, bytes]] = []
    first: int | None = None
    count = len(pcm) // frame_bytes
    for i in range(count + 1):
        frame: av.AudioFrame | None = None
        if i < count:
            frame = av.AudioFrame(format="s16", layout=layout, samples=960)
            frame.planes[0].update(pcm[i * frame_bytes : (i + 1) * frame_bytes])
            frame.sample_rate = 48000
            frame.pts = i * 960
            frame.time_base = fractions.Fraction(1, 48000)
        for packet in ctx.encode(frame):
            assert packet.pts is not None
            first = packet.pts if first is None else first
            frames.append((packet.pts - first, bytes(packet)))
    return frames


def rtp_packets(
    frames: list[tuple[int, bytes]], *, ssrc: int = 0x1234, seq: int = 1000, ts: int = 5000
) -> list[bytes]:
    """Plain RTP packets (payload type 111) of Opus frames."""
    out = []
    for n, (offset, payload) in enumerate(frames):
        header = bytes([0x80, OPUS_PT | (0x80 if n == 0 else 0)])
        header += ((seq + n) & 0xFFFF).to_bytes(2, "big")
        header += ((ts + offset) & 0xFFFFFFFF).to_bytes(4, "big")
        header += ssrc.to_bytes(4, "big")
        out.append(header + payload)
    return out


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c == "'" else " " for c in text.lower()).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words of the reference): Levenshtein."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            cur = min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
            prev, row[j] = row[j], cur
    return row[len(hyp)], len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / max(1, words)
