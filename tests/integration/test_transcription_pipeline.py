"""The transcription adapter on real speech: espeak-ng says a sentence, PyAV encodes it to
Opus RTP as a browser sends it, and `TranscriberPool` (worker processes: PyAV decode, 16 kHz
resample, WebRTC VAD, PocketSphinx) hears most of its words."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from parlour.domain.transcriptions import Utterance
from parlour.transcription import EngineSpec, TranscriberPool
from parlour.transcription.pool import parse_rtp
from tests.speech_samples import have_espeak, spoken_packets, word_error_rate

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

SENTENCE = "the weather is nice today"


async def _transcribe(
    pool: TranscriberPool, text: str, *, partials: bool
) -> tuple[list[Utterance], list[str]]:
    got: list[Utterance] = []
    errors: list[str] = []
    stream = pool.open_stream(
        language="en-US",
        partial_results=partials,
        payload_types=(111,),
        on_result=got.append,
        on_error=errors.append,
    )
    for packet in spoken_packets(text):
        stream.feed(packet)
    stream.close()
    for _ in range(600):  # the worker loads PocketSphinx first: generous on a busy machine
        if any(u.final for u in got) or errors:
            break
        await asyncio.sleep(0.1)
    return got, errors


async def test_a_spoken_sentence_is_transcribed_in_a_worker_process() -> None:
    pool = TranscriberPool(EngineSpec(), workers=1)
    try:
        got, errors = await _transcribe(pool, SENTENCE, partials=True)
    finally:
        await pool.close()
    assert errors == []
    finals = [u for u in got if u.final]
    assert len(finals) == 1
    heard = finals[0].text
    wer = word_error_rate(SENTENCE, heard)
    assert wer <= 0.4, f"heard {heard!r} (WER {wer:.0%})"
    # The utterance is placed after the second of silence before the speech.
    assert 0.5 <= finals[0].start < finals[0].end
    assert all(not u.final for u in got[:-1])


async def test_a_stream_of_silence_says_nothing_and_bad_packets_are_ignored() -> None:
    pool = TranscriberPool(EngineSpec(), workers=1)
    got: list[Utterance] = []
    try:
        stream = pool.open_stream(
            language="en-US", partial_results=False, payload_types=(111,), on_result=got.append
        )
        packets = spoken_packets("", pad_seconds=1.0)
        for packet in packets:
            stream.feed(packet)
        for junk in (
            b"",
            b"\x00" * 20,
            b"\x80\xc8" + b"\x00" * 30,
            b"\x80\x6f\x00\x01" + b"\x00" * 8,
        ):
            stream.feed(junk)
        stream.close()
        await asyncio.sleep(1.0)
    finally:
        await pool.close()
    assert got == []


async def test_an_unknown_engine_fails_its_streams() -> None:
    pool = TranscriberPool(EngineSpec(name="no-such-engine"), workers=1)
    errors: list[str] = []
    try:
        pool.open_stream(
            language="en-US",
            partial_results=False,
            payload_types=(),
            on_result=lambda u: None,
            on_error=errors.append,
        )
        for _ in range(300):
            if errors:
                break
            await asyncio.sleep(0.1)
    finally:
        await pool.close()
    assert errors and "no-such-engine" in errors[0]
    assert pool.failure is not None


def test_rtp_headers_with_csrcs_extension_and_padding_are_parsed() -> None:
    header = bytes([0xB1, 111]) + (7).to_bytes(2, "big") + (960).to_bytes(4, "big") + b"ssrc"
    csrc = b"cccc"
    ext = b"\xbe\xde\x00\x01" + b"\x10\xff\x00\x00"
    packet = header + csrc + ext + b"opus" + b"\x00\x02"
    assert parse_rtp(packet) == (111, 7, 960, b"opus")
    assert parse_rtp(b"\x40" + bytes(20)) is None  # version 1


KILLED_PARENT = """
import asyncio, sys
from parlour.transcription import EngineSpec, TranscriberPool

async def main():
    pool = TranscriberPool(EngineSpec(), workers=1)
    pool.open_stream(language="en-US", partial_results=False, payload_types=(),
                     on_result=lambda u: None)
    print(pool._workers[0].process.pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def test_workers_do_not_outlive_a_killed_server() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_PARENT], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError("the worker outlived its server")
