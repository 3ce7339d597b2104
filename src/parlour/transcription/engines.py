"""Speech engines: what turns 16 kHz mono speech into text, inside a worker process.

An engine is loaded once per worker process (`load_engine`) and gives each transcribed track
its own `Recognizer`, fed one utterance at a time (the voice-activity detector decides where
utterances start and end). Three engines are built in:

- `pocketsphinx` (the default): CMU PocketSphinx and the US English model its PyPI wheel
  ships, so it works on a fresh machine with nothing downloaded. Fast, modest accuracy.
- `vosk`: Kaldi models (`pip install vosk`; `PARLOUR_TRANSCRIPTION_MODEL` is the unpacked
  model directory, e.g. `vosk-model-small-en-us-0.15`).
- `faster-whisper`: Whisper through CTranslate2 (`pip install faster-whisper`;
  `PARLOUR_TRANSCRIPTION_MODEL` is a converted model directory). It has no streaming
  partial results: it answers once per utterance.

Any other engine is `module:callable` (`PARLOUR_TRANSCRIPTION_ENGINE=mypkg.asr:engine`): the
callable gets the model path (or None) and returns a `SpeechEngine`. docs/configuration.md,
"Transcriptions", shows one.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

__all__ = ["Recognizer", "SpeechEngine", "load_engine"]

SAMPLE_RATE = 16000


class Recognizer(Protocol):
    """One track's recogniser. PCM is 16-bit little-endian mono at 16 kHz."""

    def accept(self, pcm: bytes) -> None:
        """More audio of the current utterance."""
        ...

    def partial(self) -> str:
        """The best guess for the utterance so far ("" if none or not supported)."""
        ...

    def finish(self) -> str:
        """The utterance ended: its final text; the recogniser is ready for the next."""
        ...


class SpeechEngine(Protocol):
    def recognizer(self, language: str) -> Recognizer: ...


# -- PocketSphinx ---------------------------------------------------------------------------


class _SphinxRecognizer:
    """Partial results decode incrementally (live cepstral normalisation); the final result
    decodes the whole utterance at once, normalised over all of it, which PocketSphinx
    recognises markedly better. Without partials the audio is decoded once.

    Decoders (a loaded model each) are the engine's, lent for a live utterance or one final
    decode: a worker needs as many as it has streams partially decoding at once, plus one.
    """

    def __init__(self, engine: PocketSphinxEngine) -> None:
        self._engine = engine
        self._pcm = bytearray()
        self._live: Any = None  # the decoder of the live utterance, if partials started one
        self._decoded = 0  # bytes of `_pcm` it has seen

    def accept(self, pcm: bytes) -> None:
        self._pcm += pcm

    def partial(self) -> str:
        if self._live is None:
            self._live = self._engine.acquire()
            self._live.start_utt()
            self._decoded = 0
        self._live.process_raw(bytes(self._pcm[self._decoded :]), False, False)
        self._decoded = len(self._pcm)
        hyp = self._live.hyp()
        return str(hyp.hypstr) if hyp is not None else ""

    def finish(self) -> str:
        decoder = self._live
        if decoder is not None:
            decoder.end_utt()
            self._live = None
        else:
            decoder = self._engine.acquire()
        pcm, self._pcm = bytes(self._pcm), bytearray()
        try:
            if not pcm:
                return ""
            decoder.start_utt()
            decoder.process_raw(pcm, False, True)
            decoder.end_utt()
            hyp = decoder.hyp()
            return str(hyp.hypstr) if hyp is not None else ""
        finally:
            self._engine.release(decoder)


class PocketSphinxEngine:
    """PocketSphinx; `model` is a directory with `acoustic-model/`, `language-model.lm.bin`
    and `pronounciation-dictionary.dict` (None: the wheel's US English model)."""

    def __init__(self, model: str | None = None) -> None:
        from pocketsphinx import Config, Decoder, get_model_path

        kwargs: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        if model:
            kwargs.update(
                hmm=f"{model}/acoustic-model",
                lm=f"{model}/language-model.lm.bin",
                dict=f"{model}/pronounciation-dictionary.dict",
            )
        else:
            base = get_model_path("en-us")
            kwargs.update(
                hmm=f"{base}/en-us", lm=f"{base}/en-us.lm.bin", dict=f"{base}/cmudict-en-us.dict"
            )
        self._config = Config(**kwargs)
        self._decoder = Decoder
        self._free: list[Any] = [Decoder(self._config)]  # loaded now: the worker is ready

    def acquire(self) -> Any:
        return self._free.pop() if self._free else self._decoder(self._config)

    def release(self, decoder: Any) -> None:
        self._free.append(decoder)

    def recognizer(self, language: str) -> Recognizer:
        return _SphinxRecognizer(self)


# -- Vosk -----------------------------------------------------------------------------------


class _VoskRecognizer:
    def __init__(self, recognizer: Any) -> None:
        self._rec = recognizer

    def accept(self, pcm: bytes) -> None:
        self._rec.AcceptWaveform(pcm)

    def partial(self) -> str:
        import json

        return str(json.loads(self._rec.PartialResult()).get("partial", ""))

    def finish(self) -> str:
        import json

        return str(json.loads(self._rec.FinalResult()).get("text", ""))


class VoskEngine:
    def __init__(self, model: str | None) -> None:
        if not model:
            raise ValueError("the vosk engine needs PARLOUR_TRANSCRIPTION_MODEL (a directory)")
        import vosk  # type: ignore[import-not-found]

        self._model = vosk.Model(model)
        self._vosk = vosk

    def recognizer(self, language: str) -> Recognizer:
        return _VoskRecognizer(self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE))


# -- faster-whisper -------------------------------------------------------------------------


class _WhisperRecognizer:
    def __init__(self, model: Any, language: str) -> None:
        self._model = model
        self._language = language.split("-")[0]
        self._pcm = bytearray()

    def accept(self, pcm: bytes) -> None:
        self._pcm += pcm

    def partial(self) -> str:
        return ""

    def finish(self) -> str:
        import numpy as np

        audio = np.frombuffer(bytes(self._pcm), dtype=np.int16).astype(np.float32) / 32768.0
        self._pcm.clear()
        segments, _ = self._model.transcribe(audio, language=self._language, beam_size=1)
        return " ".join(s.text.strip() for s in segments).strip()


class FasterWhisperEngine:
    def __init__(self, model: str | None) -> None:
        if not model:
            raise ValueError("the faster-whisper engine needs PARLOUR_TRANSCRIPTION_MODEL")
        from faster_whisper import WhisperModel  # type: ignore[import-not-found]

        self._model = WhisperModel(model, device="cpu", compute_type="int8", cpu_threads=1)

    def recognizer(self, language: str) -> Recognizer:
        return _WhisperRecognizer(self._model, language)


BUILT_IN = {
    "pocketsphinx": PocketSphinxEngine,
    "vosk": VoskEngine,
    "faster-whisper": FasterWhisperEngine,
}


def load_engine(name: str, model: str | None) -> SpeechEngine:
    """The engine called `name` (built in, or `module:callable`), loaded with `model`."""
    factory: Any
    if name in BUILT_IN:
        factory = BUILT_IN[name]
    elif ":" in name:
        module, _, attr = name.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    else:
        raise ValueError(f"unknown transcription engine {name!r}")
    engine: SpeechEngine = factory(model)
    return engine
