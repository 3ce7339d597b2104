"""Spoken sentences for transcription tests and the bench: `espeak-ng` (Debian) says them,
PyAV encodes them to 20 ms Opus frames as a browser would send them, and `word_error_rate`
scores what a recogniser heard against the text."""

from __future__ import annotations

import fractions
import shutil
import subprocess
import tempfile
from pathlib import Path

import av

from tests.recording_samples import EncodedFrame, Packet, packetize

#: The voice and speed PocketSphinx's US English model understands best among espeak-ng's.
VOICE = "en-us+klatt"
SPEED = 130
SENTENCES = (
    "the weather is nice today",
    "hello world this is a test",
    "please call me tomorrow morning",
    "i would like to order a pizza",
    "can you hear me now",
)


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak_wav(text: str, path: Path, *, pad_seconds: float = 0.0) -> Path:
    """A WAV of `text` spoken by espeak-ng (22.05 kHz mono), with `pad_seconds` of silence
    before and after it if asked."""
    subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", str(SPEED), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    if pad_seconds:
        raw = path.with_suffix(".raw.wav")
        path.rename(raw)
        with av.open(str(raw)) as src, av.open(str(path), "w", format="wav") as dst:
            rate = src.streams.audio[0].rate
            out = dst.add_stream("pcm_s16le", rate=rate, layout="mono")
            silence = bytes(2 * int(rate * pad_seconds))
            pcm = bytearray(silence)
            for frame in src.decode(audio=0):
                pcm += bytes(frame.planes[0])[: frame.samples * 2]
            pcm += silence
            chunk = 2 * 1024
            pts = 0
            for i in range(0, len(pcm), chunk):
                part = bytes(pcm[i : i + chunk])
                f = av.AudioFrame(format="s16", layout="mono", samples=len(part) // 2)
                f.planes[0].update(part)
                f.sample_rate = rate
                f.pts = pts
                f.time_base = fractions.Fraction(1, rate)
                pts += len(part) // 2
                for p in out.encode(f):
                    dst.mux(p)
            for p in out.encode(None):
                dst.mux(p)
        raw.unlink()
    return path


def opus_of_wav(path: Path, *, pad_seconds: float = 1.0) -> list[EncodedFrame]:
    """20 ms Opus frames (48 kHz, mono) of a WAV file, with silence before and after."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48000
    ctx.layout = "mono"
    ctx.format = "s16"
    ctx.bit_rate = 32000
    ctx.time_base = fractions.Fraction(1, 48000)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    pcm = bytearray(bytes(2 * int(48000 * pad_seconds)))
    with av.open(str(path)) as src:
        for frame in src.decode(audio=0):
            for out in resampler.resample(frame):
                pcm += bytes(out.planes[0])[: out.samples * 2]
    pcm += bytes(2 * int(48000 * pad_seconds))
    pcm += bytes(-len(pcm) % 1920)
    frames: list[EncodedFrame] = []
    first: int | None = None
    count = len(pcm) // 1920
    for i in range(count + 1):
        frame: av.AudioFrame | None = None
        if i < count:
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update(bytes(pcm[i * 1920 : (i + 1) * 1920]))
            frame.sample_rate = 48000
            frame.pts = i * 960
            frame.time_base = fractions.Fraction(1, 48000)
        for packet in ctx.encode(frame):
            assert packet.pts is not None
            first = packet.pts if first is None else first
            frames.append(EncodedFrame(bytes(packet), packet.pts - first, True))
    return frames


def spoken_packets(text: str, *, pad_seconds: float = 1.0) -> list[Packet]:
    """RTP packets (Opus, payload type 111) of `text` spoken."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = speak_wav(text, Path(tmp) / "s.wav")
        return packetize("OPUS", opus_of_wav(wav, pad_seconds=pad_seconds))


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() or c == "'" else " " for c in text.lower()).split()]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / words of the reference (Levenshtein)."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            cur = min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
            prev, row[j] = row[j], cur
    return row[len(hyp)] / max(1, len(ref))
