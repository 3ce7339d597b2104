"""The worker-side pipeline with a fake recogniser: utterances cut by the voice detector,
partial results, RTP timeline gaps as silence, late packets; and the engine loader."""

from __future__ import annotations

import math
import struct

import pytest

from parlour.transcription import engines
from parlour.transcription.engines import load_engine
from parlour.transcription.pipeline import FRAME, MAX_UTTERANCE, StreamPipeline, _energy_vad
from parlour.transcription.pool import parse_rtp
from tests.speech_samples import have_espeak, spoken_packets


class FakeRecognizer:
    def __init__(self) -> None:
        self.pcm = 0
        self.utterances = 0

    def accept(self, pcm: bytes) -> None:
        self.pcm += len(pcm)

    def partial(self) -> str:
        return f"partial {self.pcm}"

    def finish(self) -> str:
        self.utterances += 1
        done, self.pcm = self.pcm, 0
        return f"utterance {self.utterances} of {done} bytes"


class FakeEngine:
    def __init__(self) -> None:
        self.recognizers: list[FakeRecognizer] = []

    def recognizer(self, language: str) -> FakeRecognizer:
        r = FakeRecognizer()
        self.recognizers.append(r)
        return r


def fake_engine(model: str | None) -> FakeEngine:
    return FakeEngine()


def tone(seconds: float, amplitude: int = 9000) -> bytes:
    n = int(16000 * seconds)
    return struct.pack(
        f"<{n}h",
        *(
            int(amplitude * math.sin(2 * math.pi * (200 + 50 * (i // 800 % 5)) * i / 16000))
            for i in range(n)
        ),
    )


def silence(seconds: float) -> bytes:
    return bytes(2 * int(16000 * seconds))


def run(pcm: bytes, *, partials: bool) -> list[tuple[str, bool, float, float]]:
    out: list[tuple[str, bool, float, float]] = []
    pipeline = StreamPipeline(FakeEngine(), "en-US", partials, lambda *a: out.append(a))
    pipeline._is_speech = _energy_vad  # a tone is "speech" to the energy detector
    pipeline.pcm(pcm)
    pipeline.close()
    return out


def test_two_utterances_separated_by_silence() -> None:
    out = run(silence(1) + tone(1.5) + silence(1) + tone(1) + silence(1), partials=False)
    finals = [o for o in out if o[1]]
    assert len(finals) == 2 and len(out) == 2
    (_, _, s1, e1), (_, _, s2, e2) = finals
    assert 0.6 <= s1 <= 1.0 and 2.4 <= e1 <= 3.3
    assert 3.2 <= s2 <= 3.6 and e2 > s2


def test_partials_only_when_asked_and_long_speech_is_cut() -> None:
    out = run(tone(3) + silence(1), partials=True)
    partials = [o for o in out if not o[1]]
    assert len(partials) >= 4 and all(p[0].startswith("partial") for p in partials)
    long = run(tone(MAX_UTTERANCE * FRAME / 16000 + 2) + silence(1), partials=False)
    assert len(long) == 2  # cut at 15 s, the rest a second utterance


def test_energy_vad() -> None:
    assert not _energy_vad(silence(0.03))
    assert _energy_vad(tone(0.03))


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
def test_opus_gaps_late_packets_and_garbage() -> None:
    out: list[tuple[str, bool, float, float]] = []
    pipeline = StreamPipeline(FakeEngine(), "en-US", False, lambda *a: out.append(a))
    packets = [parse_rtp(p) for p in spoken_packets("hello there", pad_seconds=0.5)]
    frames = [(ts, payload) for _, _, ts, payload in filter(None, packets)]
    half = len(frames) // 2
    for ts, payload in frames[:half]:
        pipeline.opus(ts, payload)
    pipeline.opus(frames[0][0], frames[0][1])  # late: ignored
    pipeline.opus(frames[half][0], b"\xff\xff\xff")  # undecodable: ignored
    # Two seconds of silence on the RTP timeline (a muted sender): the utterance ends.
    for ts, payload in frames[half:]:
        pipeline.opus(ts + 96000, payload)
    pipeline.close()
    assert len([o for o in out if o[1]]) == 2
    assert out[1][2] > out[0][3]


def test_engines_load_by_name_or_callable() -> None:
    with pytest.raises(ValueError, match="unknown"):
        load_engine("nope", None)
    with pytest.raises(ValueError, match="PARLOUR_TRANSCRIPTION_MODEL"):
        load_engine("vosk", None)
    with pytest.raises(ValueError, match="PARLOUR_TRANSCRIPTION_MODEL"):
        load_engine("faster-whisper", None)
    custom = load_engine(f"{__name__}:fake_engine", None)
    assert isinstance(custom, FakeEngine)
    assert engines.BUILT_IN["pocketsphinx"] is engines.PocketSphinxEngine


def test_pocketsphinx_recognizer_partials_and_finals_of_silence() -> None:
    recognizer = load_engine("pocketsphinx", None).recognizer("en-US")
    assert recognizer.finish() == ""
    recognizer.accept(silence(0.5))
    assert isinstance(recognizer.partial(), str)
    recognizer.accept(silence(0.5))
    assert isinstance(recognizer.finish(), str)


def test_transcription_settings_come_from_the_environment() -> None:
    from parlour.config import Config

    config = Config.from_env(
        {
            "PARLOUR_TRANSCRIPTION_ENGINE": "vosk",
            "PARLOUR_TRANSCRIPTION_MODEL": "/srv/model",
            "PARLOUR_TRANSCRIPTION_LANGUAGES": "en-US,en-GB",
            "PARLOUR_TRANSCRIPTION_WORKERS": "3",
        }
    )
    assert (config.transcription_engine, config.transcription_model) == ("vosk", "/srv/model")
    assert config.transcription_languages == "en-US,en-GB"
    assert config.transcription_workers == 3
    assert Config().transcription_engine == "pocketsphinx"
