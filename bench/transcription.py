"""`make bench`, transcriptions: speed and quality of the real-time transcription pipeline.

    .venv/bin/python -m bench.transcription [--engine pocketsphinx] [--model PATH]

Sentences spoken by espeak-ng (`bench/speech.py`) are encoded to Opus RTP as a browser sends
them and go through the server's own pipeline (`parlour.transcription`: PyAV decode, 16 kHz
resample, WebRTC VAD, the engine):

- **word error rate**: every sentence through the pipeline, its final text scored against the
  sentence (substitutions + deletions + insertions over the reference words, all sentences);
- **real-time factor per stream**: CPU seconds the pipeline spends per second of audio, in
  this process (`time.process_time`), over the sentences back to back with their pauses
  (speech about half the time) and over continuous speech (no pauses: the worst case);
- **speakers per core**: 1 / RTF of continuous speech, then checked live: K streams fed in
  real time to one worker process (`TranscriberPool(workers=1)`, one core), K = 1, 2, 4, …,
  reporting how long after the audio that ended an utterance (the VAD's 0.6 s of silence
  after the speech) was sent its final result arrives (the median must stay within 2 s to
  count as keeping up), until that median passes 10 s or results go missing;
- the engine alone on the same sentences (the WAV resampled to 16 kHz, one utterance each,
  no Opus and no VAD), to tell the pipeline's losses from the engine's.

Results go to `bench/results/<date>-transcription.json` and `.md`; the last line printed
is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import av

from bench.procstat import ProcessTree
from bench.speech import SENTENCES, opus_frames, rtp_packets, speak_wav, word_errors
from parlour.domain.transcriptions import Utterance
from parlour.transcription import EngineSpec, TranscriberPool
from parlour.transcription.engines import load_engine
from parlour.transcription.pipeline import StreamPipeline

RESULTS = Path(__file__).with_name("results")
LATE = 2.0  # seconds: a final result later than this after speech ended is not real time


def spoken(tmp: Path, pad: float) -> list[tuple[str, list[tuple[int, bytes]], float]]:
    """(sentence, Opus frames, seconds of audio) for every sentence."""
    out = []
    for i, text in enumerate(SENTENCES):
        frames = opus_frames(speak_wav(text, tmp / f"s{i}.wav"), pad_seconds=pad)
        out.append((text, frames, (frames[-1][0] + 960) / 48000))
    return out


def pcm16k(path: Path) -> bytes:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
    pcm = bytearray()
    with av.open(str(path)) as src:
        for frame in src.decode(audio=0):
            for out in resampler.resample(frame):
                pcm += bytes(out.planes[0])[: out.samples * 2]
    return bytes(pcm)


def run_pipeline(engine: Any, frames: list[tuple[int, bytes]]) -> tuple[list[str], float]:
    """Final texts and CPU seconds of one stream through the whole pipeline."""
    finals: list[str] = []

    def emit(text: str, final: bool, start: float, end: float) -> None:
        if final:
            finals.append(text)

    start = time.process_time()
    pipeline = StreamPipeline(engine, "en-US", False, emit)
    for ts, payload in frames:
        pipeline.opus(ts, payload)
    pipeline.close()
    return finals, time.process_time() - start


def concatenated(clips: list[list[tuple[int, bytes]]]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    offset = 0
    for frames in clips:
        out.extend((offset + ts, payload) for ts, payload in frames)
        offset += frames[-1][0] + 960
    return out


async def live(
    spec: EngineSpec, frames: list[tuple[int, bytes]], utterance_ends: list[float], k: int
) -> dict[str, Any]:
    """K streams of the same speech fed in real time to one worker; final-result delays."""
    pool = TranscriberPool(spec, workers=1)
    delays: list[float] = []
    finals = 0
    expected = k * len(utterance_ends)
    all_heard = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        # Load the engine and make a recogniser first (one sentence through a warm-up
        # stream): the worker's start-up is not the streams' delay.
        warmed = asyncio.Event()
        warm = pool.open_stream(
            language="en-US",
            partial_results=False,
            payload_types=(),
            on_result=lambda u: warmed.set() if u.final else None,
        )
        for packet in rtp_packets(frames[: 50 * 6]):
            warm.feed(packet)
        warm.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(warmed.wait(), 120)
        t0 = 0.0

        def on_result(u: Utterance) -> None:
            nonlocal finals
            if u.final:
                finals += 1
                # How long after the audio that ended the utterance was sent.
                delays.append(loop.time() - (t0 + u.end))
                if finals >= expected:
                    all_heard.set()

        streams = [
            pool.open_stream(
                language="en-US", partial_results=False, payload_types=(), on_result=on_result
            )
            for _ in range(k)
        ]
        packets = rtp_packets(frames)
        worker = ProcessTree(pool._workers[0].process.pid)  # the one worker's own CPU
        cpu_before = worker.cpu_seconds()
        t0 = loop.time()
        for (ts, _), packet in zip(frames, packets, strict=True):
            delay = t0 + ts / 48000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for stream in streams:
                stream.feed(packet)
        for stream in streams:
            stream.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_heard.wait(), 60)
        worker_cpu = worker.cpu_seconds() - cpu_before
    finally:
        await pool.close()
    return {
        "streams": k,
        "finals": finals,
        "expected_finals": expected,
        "delay_median_s": round(statistics.median(delays), 3) if delays else None,
        "delay_max_s": round(max(delays), 3) if delays else None,
        "worker_cpu_s": round(worker_cpu, 2),
        # Streams of this audio (with its pauses) that one core would keep up with.
        "speakers_per_core": round(k * ((frames[-1][0] + 960) / 48000) / worker_cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="pocketsphinx")
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-streams", type=int, default=16)
    args = parser.parse_args()
    spec = EngineSpec(args.engine, args.model)
    engine = load_engine(spec.name, spec.model)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        paused = spoken(tmp, pad=1.0)
        tight = spoken(tmp, pad=0.0)
        wavs = [(text, pcm16k(tmp / f"s{i}.wav")) for i, text in enumerate(SENTENCES)]

    sentences = []
    errors = words = 0
    cpu = audio = 0.0
    for text, frames, seconds in paused:
        finals, spent = run_pipeline(engine, frames)
        heard = " ".join(finals)
        e, w = word_errors(text, heard)
        errors, words = errors + e, words + w
        cpu, audio = cpu + spent, audio + seconds
        sentences.append(
            {"text": text, "heard": heard, "wer": round(e / w, 3), "seconds": round(seconds, 2)}
        )
    wer = errors / words
    rtf_paused = cpu / audio

    engine_errors = 0
    for text, pcm in wavs:
        recognizer = engine.recognizer("en-US")
        recognizer.accept(pcm)
        engine_errors += word_errors(text, recognizer.finish())[0]
    engine_wer = engine_errors / words

    continuous = concatenated([frames for _, frames, _ in tight])
    continuous_seconds = (continuous[-1][0] + 960) / 48000
    _, spent = run_pipeline(engine, continuous)
    rtf_continuous = spent / continuous_seconds
    per_core = 1 / rtf_continuous

    # Live: the paused sentences back to back, in real time, K streams on one worker.
    stream = concatenated([frames for _, frames, _ in paused])
    ends = []
    offset = 0.0
    for _, _, seconds in paused:
        ends.append(offset + seconds - 1.0)  # speech ends 1 s (the pad) before the clip
        offset += seconds
    runs = []
    k = 1
    while k <= args.max_streams:
        run = asyncio.run(live(spec, stream, ends, k))
        runs.append(run)
        print(f"live: {run}", flush=True)
        hopeless = run["delay_median_s"] is None or run["delay_median_s"] > 5 * LATE
        if hopeless or run["finals"] < run["expected_finals"]:
            break
        k *= 2
    live_ok = max(
        (
            r["streams"]
            for r in runs
            if r["delay_median_s"] is not None
            and r["delay_median_s"] <= LATE
            and r["finals"] >= r["expected_finals"]
        ),
        default=0,
    )

    date = dt.date.today().isoformat()
    result = {
        "date": date,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "engine": spec.name,
        "model": spec.model,
        "sentences": sentences,
        "wer": round(wer, 3),
        "engine_alone_wer": round(engine_wer, 3),
        "rtf_with_pauses": round(rtf_paused, 3),
        "rtf_continuous_speech": round(rtf_continuous, 3),
        "speakers_per_core_continuous": round(per_core, 1),
        "live": runs,
        "live_streams_on_one_worker": live_ok,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{date}-transcription.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Transcription bench, {date} ({spec.name}, {os.cpu_count()} CPUs)",
        "",
        f"- word error rate: **{wer:.1%}** over {len(SENTENCES)} sentences ({words} words); "
        f"the engine alone on the same audio: {engine_wer:.1%}",
        f"- real-time factor per stream: **{rtf_paused:.3f}** with pauses, "
        f"**{rtf_continuous:.3f}** continuous speech",
        f"- speakers per core (continuous speech): **{per_core:.1f}**; live on one worker: "
        f"**{live_ok}** streams with final results within {LATE:.0f} s "
        f"(load average at the end: {os.getloadavg()[0]:.1f})",
        "",
        "| sentence | heard | WER |",
        "|---|---|---|",
        *(f"| {s['text']} | {s['heard']} | {s['wer']:.0%} |" for s in sentences),
        "",
        "| live streams | finals | median delay (s) | max delay (s) | worker CPU (s) "
        "| speakers per core |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['streams']} | {r['finals']}/{r['expected_finals']} | "
            f"{r['delay_median_s']} | {r['delay_max_s']} | {r['worker_cpu_s']} "
            f"| {r['speakers_per_core']} |"
            for r in runs
        ),
        "",
    ]
    (RESULTS / f"{date}-transcription.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(
        f"transcription wer={wer:.3f} rtf={rtf_continuous:.3f} "
        f"speakers_per_core={per_core:.1f} live_streams_one_worker={live_ok}"
    )


if __name__ == "__main__":
    main()
