"""One track's audio path inside a worker process: Opus → PCM → voice activity → engine.

Opus frames (one per RTP packet, with their RTP timestamps) are decoded with PyAV and
resampled to 16 kHz mono. Gaps in the RTP timeline (packet loss, a muted or silent sender
using DTX) become silence, so that an utterance ends when its speaker stops. A voice-activity
detector (WebRTC's, from `webrtcvad-wheels`; an energy threshold if it is missing) cuts the
audio into utterances: one starts after 90 ms of speech in the last 150 ms (with 300 ms of
audio before it), ends after 600 ms without speech or at 15 s. Each utterance is fed to the
track's `Recognizer` as it arrives: partial results are reported at most every 500 ms while
it goes on (if asked for), the final one when it ends.
"""

from __future__ import annotations

import array
import collections
import math
from collections.abc import Callable
from typing import Any

import av

from parlour.transcription.engines import SAMPLE_RATE, Recognizer, SpeechEngine

__all__ = ["StreamPipeline"]

FRAME = 480  # samples in one 30 ms VAD frame at 16 kHz
FRAME_BYTES = FRAME * 2
START_WINDOW = 5  # frames: speech starts when START_SPEECH of the last 5 are speech
START_SPEECH = 3
PRE_ROLL = 10  # frames of audio kept before the start
END_SILENCE = 20  # frames (600 ms) of non-speech end an utterance
MAX_UTTERANCE = 500  # frames (15 s)
PARTIAL_EVERY = 17  # frames (~500 ms)
MAX_GAP = SAMPLE_RATE  # at most 1 s of silence is inserted for one gap
OPUS_RATE = 48000

#: (text, final, start seconds, end seconds)
Emit = Callable[[str, bool, float, float], None]


def _vad() -> Callable[[bytes], bool]:
    try:
        import webrtcvad
    except ImportError:  # pragma: no cover - the dependency is declared
        return _energy_vad
    vad = webrtcvad.Vad(2)
    return lambda frame: bool(vad.is_speech(frame, SAMPLE_RATE))


def _energy_vad(frame: bytes) -> bool:
    samples = array.array("h", frame)
    rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
    return rms > 500.0


class StreamPipeline:
    def __init__(
        self, engine: SpeechEngine, language: str, partial_results: bool, emit: Emit
    ) -> None:
        self._engine = engine
        self._language = language
        self._partials = partial_results
        self._emit = emit
        self._decoder: Any = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate = OPUS_RATE
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._is_speech = _vad()
        self._recognizer: Recognizer | None = None
        self._pending = bytearray()  # PCM not yet cut into VAD frames
        self._frames = 0  # VAD frames seen: the stream's clock
        self._next_ts: int | None = None  # RTP timestamp expected next
        self._recent: collections.deque[tuple[bytes, bool]] = collections.deque(maxlen=PRE_ROLL)
        self._in_utterance = False
        self._utt_start = 0
        self._utt_frames = 0
        self._silence = 0
        self._last_partial = ""
        self._since_partial = 0

    # -- input --------------------------------------------------------------------------

    def opus(self, timestamp: int, payload: bytes) -> None:
        """One Opus frame with its RTP timestamp (48 kHz clock)."""
        if self._next_ts is not None:
            gap = (timestamp - self._next_ts) & 0xFFFFFFFF
            if gap >= 0x80000000:
                return  # late or duplicate: already past it
            if gap:
                self.pcm(bytes(2 * min(MAX_GAP, gap * SAMPLE_RATE // OPUS_RATE)))
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except (av.error.FFmpegError, ValueError):
            return
        produced = 0
        for frame in frames:
            produced += frame.samples
            for out in self._resampler.resample(frame):
                self.pcm(bytes(out.planes[0])[: out.samples * 2])
        self._next_ts = (timestamp + (produced or 960)) & 0xFFFFFFFF

    def pcm(self, data: bytes) -> None:
        """16 kHz mono s16le audio."""
        self._pending += data
        while len(self._pending) >= FRAME_BYTES:
            frame = bytes(self._pending[:FRAME_BYTES])
            del self._pending[:FRAME_BYTES]
            self._frame(frame)

    def close(self) -> None:
        if self._in_utterance:
            self._finish()

    # -- utterances ---------------------------------------------------------------------

    def _frame(self, frame: bytes) -> None:
        speech = self._is_speech(frame)
        self._frames += 1
        if not self._in_utterance:
            self._recent.append((frame, speech))
            window = list(self._recent)[-START_WINDOW:]
            if sum(1 for _, s in window if s) >= START_SPEECH:
                self._begin()
            return
        self._feed(frame)
        self._utt_frames += 1
        self._silence = 0 if speech else self._silence + 1
        if self._silence >= END_SILENCE or self._utt_frames >= MAX_UTTERANCE:
            self._finish()
            return
        if self._partials:
            self._since_partial += 1
            if self._since_partial >= PARTIAL_EVERY:
                self._since_partial = 0
                assert self._recognizer is not None
                text = self._recognizer.partial().strip()
                if text and text != self._last_partial:
                    self._last_partial = text
                    self._emit(
                        text,
                        False,
                        self._utt_start * FRAME / SAMPLE_RATE,
                        self._frames * FRAME / SAMPLE_RATE,
                    )

    def _begin(self) -> None:
        if self._recognizer is None:
            self._recognizer = self._engine.recognizer(self._language)
        self._in_utterance = True
        self._utt_start = self._frames - len(self._recent)
        self._utt_frames = len(self._recent)
        self._silence = 0
        self._last_partial = ""
        self._since_partial = 0
        self._feed(b"".join(f for f, _ in self._recent))
        self._recent.clear()

    def _feed(self, pcm: bytes) -> None:
        assert self._recognizer is not None
        self._recognizer.accept(pcm)

    def _finish(self) -> None:
        assert self._recognizer is not None
        self._in_utterance = False
        text = self._recognizer.finish().strip()
        if text:
            self._emit(
                text,
                True,
                self._utt_start * FRAME / SAMPLE_RATE,
                self._frames * FRAME / SAMPLE_RATE,
            )
