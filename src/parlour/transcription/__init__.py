"""Real-time transcription (outbound adapter): Opus from the SFU's taps to text, on this
server's CPU, in worker processes (`pool.TranscriberPool`); engines in `engines.py`."""

from parlour.transcription.pool import EngineSpec, TranscriberPool

__all__ = ["EngineSpec", "TranscriberPool"]
