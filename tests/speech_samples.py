"""Spoken sentences for transcription tests (`bench/speech.py`, shared with the bench)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.speech import (
    SENTENCES,
    have_espeak,
    opus_frames,
    rtp_packets,
    speak_wav,
    word_error_rate,
)

__all__ = ["SENTENCES", "have_espeak", "speak_wav", "spoken_packets", "word_error_rate"]


def spoken_packets(text: str, *, pad_seconds: float = 1.0) -> list[bytes]:
    """RTP packets (Opus, payload type 111) of `text` spoken (or of silence if empty)."""
    with tempfile.TemporaryDirectory() as tmp:
        if text:
            wav = speak_wav(text, Path(tmp) / "s.wav")
        else:
            wav = speak_wav("a", Path(tmp) / "s.wav")
            with open(wav, "r+b") as f:  # keep the header, silence the samples
                f.seek(44)
                size = len(f.read())
                f.seek(44)
                f.write(bytes(size))
        return rtp_packets(opus_frames(wav, pad_seconds=pad_seconds))
