"""Dominant speaker identification (pure: standard library only, no clock reads).

Two parts, both cheap enough for every audio packet:

* `audio_level(pkt, ext_id)`: the RFC 6464 client-to-mixer audio level
  (``urn:ietf:params:rtp-hdrext:ssrc-audio-level``) of an RTP packet, read in place from its
  RFC 8285 header extension block (one-byte ``0xBEDE`` or two-byte ``0x100x`` form).
* `DominantSpeaker`: the dominant speaker of a room from those levels, by the algorithm of
  I. Volfin and I. Cohen, "Dominant Speaker Identification for Multipoint
  Videoconferencing" (IEEE 27th Convention of Electrical and Electronics Engineers in
  Israel, 2012), as adapted to RTP audio levels by Jitsi (``DominantSpeakerIdentification``
  in jitsi-utils, used by jitsi-videobridge) and mediasoup (``ActiveSpeakerObserver``).

The algorithm
-------------

Each participant's levels (one per 20 ms frame, turned into loudness ``127 - dBov``) are
kept for the last second (50 frames). Every decision interval (300 ms) three speech
activity scores are computed for each participant, on three time scales:

* **immediate**: the latest frame. Its loudness, above the participant's own noise floor
  (levels less than one sub-band above the floor count as silence), is quantized into one
  of 13 "sub-bands" of 10 (``N1``); the number of active sub-bands ``v`` is scored.
* **medium**: the latest 5 frames, 100 ms (``N2``); ``v`` is the number of frames with more
  than 7 active sub-bands (``MEDIUM_THRESHOLD``; loudness ≥ 80, i.e. -47 dBov or louder).
* **long**: the latest 10 blocks of 5 frames, 1 s (``N3``); ``v`` is the number of blocks
  all of whose 5 frames are active (more than 4, ``LONG_THRESHOLD``).

The score of ``v`` active units out of ``n`` is the log-likelihood ratio of speech over
silence with a binomial speech model and an exponential prior (the paper's eq. 9):
``ln C(n, v) + v ln p + (n - v) ln(1 - p) - ln λ + λ v`` with ``p = 0.5`` and
``λ = 0.78, 24, 47`` for the immediate, medium and long scales, clamped below at 1e-10.

The decision compares every other participant with the dominant speaker on all three scales:
``c_k = ln(score_k(candidate) / score_k(dominant))``. A candidate takes over only when
``c1 > 3``, ``c2 > 2`` and ``c3 > 0`` (``C1``, ``C2``, ``C3``); if several do, the one with
the largest ``c2`` wins. In practice the dominant speaker keeps the floor while any of its
last 5 frames is loud (``c2`` cannot exceed 2 otherwise), and a newcomer needs more fully
loud 100 ms blocks in the last second than the dominant speaker (``c3``): a cough of
200 ms (2 blocks) does not displace someone who has been talking, and a pause between two
sentences does not hand the floor to nobody.

Differences from Jitsi / mediasoup (whose constants are the ones above):

* **Nobody.** The state "no dominant speaker" is a silent virtual speaker (every score at
  the minimum). Jitsi and mediasoup nominate an arbitrary participant when there is none
  and never go back to none while anyone is in the room; here a participant becomes dominant
  only by speaking (the same three thresholds, against silence), and the dominant speaker
  is dropped (`dominant` None) after ``silence_timeout`` seconds without an active frame
  (loudness ≥ 80 and one sub-band above its floor). ``dominantSpeakerChanged(null)`` then
  fires in twilio-video, as the issue asks. ``silence_timeout=None`` keeps the speaker
  until someone else speaks, as Jitsi does.
* **Missing packets.** Jitsi pushes a silent frame for a participant without a level for
  40 ms, from a timer. Here a gap of more than ``0.1`` s between two levels of a
  participant, or between its last level and a `tick`, is filled with silent 20 ms frames
  (Opus DTX, muted senders, a vanished client), so a longer jitter burst does not punch
  holes into speech and no timer is needed.
* **Only known participants.** `level` for an id not `add`-ed is ignored (a late packet of a
  removed participant does not bring it back).

Time is passed in (``now``, monotonic seconds); levels older than the participant's last
one are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

from parlour.media.rtp import Packet

__all__ = [
    "C1",
    "C2",
    "C3",
    "DECISION_INTERVAL",
    "SILENCE_TIMEOUT",
    "DominantSpeaker",
    "audio_level",
]

# ---------------------------------------------------------------------------------------------
# RFC 6464 audio level


def audio_level(pkt: Packet | memoryview, ext_id: int) -> tuple[int, bool] | None:
    """Return ``(level, voice)`` from the packet's ssrc-audio-level header extension.

    ``level`` is in -dBov, 0 (loudest) to 127 (silence); ``voice`` is the V bit (the
    sender's voice activity detection). Reads the bytes in place; never raises.

    Args:
        pkt: a decrypted RTP packet.
        ext_id: the negotiated id of ``urn:ietf:params:rtp-hdrext:ssrc-audio-level``.

    Returns:
        None when the packet has no such element, or is not a well-formed RTP v2 packet
        (truncated header, CSRC list, extension block or element, bad padding count).
    """
    n = len(pkt)
    if n < 12:
        return None
    b0 = pkt[0]
    if (b0 & 0xD0) != 0x90 or ext_id <= 0:  # version 2 with the X bit
        return None
    pos = 12 + ((b0 & 0x0F) << 2)
    if pos + 4 > n:
        return None
    profile = (pkt[pos] << 8) | pkt[pos + 1]
    end = pos + 4 + (((pkt[pos + 2] << 8) | pkt[pos + 3]) << 2)
    if b0 & 0x20:  # padding: its count must fit after the header
        pad = pkt[n - 1]
        if pad == 0 or end + pad > n:
            return None
    elif end > n:
        return None
    pos += 4
    if profile == 0xBEDE:  # one-byte form (RFC 8285 §4.2)
        if ext_id > 14:
            return None
        while pos < end:
            h = pkt[pos]
            if h < 0x10:  # id 0: one padding byte
                pos += 1
                continue
            if h >= 0xF0:  # id 15: stop parsing
                return None
            if h >> 4 == ext_id:
                if pos + 2 + (h & 0x0F) > end:  # truncated element
                    return None
                v = pkt[pos + 1]
                return v & 0x7F, v >= 0x80
            pos += 2 + (h & 0x0F)
        return None
    if (profile & 0xFFF0) == 0x1000:  # two-byte form (RFC 8285 §4.3)
        while pos < end:
            i = pkt[pos]
            if i == 0:  # padding
                pos += 1
                continue
            if pos + 1 >= end:
                return None
            size = pkt[pos + 1]
            if i == ext_id:
                if size == 0 or pos + 2 + size > end:
                    return None
                v = pkt[pos + 2]
                return v & 0x7F, v >= 0x80
            pos += 2 + size
    return None


# ---------------------------------------------------------------------------------------------
# Dominant speaker identification: constants of Jitsi's DominantSpeakerIdentification and
# mediasoup's ActiveSpeakerObserver (Volfin & Cohen's parameters)

DECISION_INTERVAL: Final = 0.3
"""Seconds between decisions (Jitsi ``DECISION_INTERVAL`` = 300 ms)."""
SILENCE_TIMEOUT: Final = 3.0
"""Seconds without an active frame after which the dominant speaker is dropped (ours)."""

C1: Final = 3.0
"""Threshold of the relative immediate speech activity for a speaker switch."""
C2: Final = 2.0
"""Threshold of the relative medium speech activity."""
C3: Final = 0.0
"""Threshold of the relative long speech activity."""

_N1: Final = 13  # sub-bands of a frame (immediate scale)
_N2: Final = 5  # frames of a medium block
_N3: Final = 10  # medium blocks of the long interval
_MEDIUM_THRESHOLD: Final = 7  # a frame is active with more active sub-bands than this
_LONG_THRESHOLD: Final = 4  # a block is active with more active frames than this
_P: Final = 0.5
_LAMBDA_IMMEDIATE: Final = 0.78
_LAMBDA_MEDIUM: Final = 24.0
_LAMBDA_LONG: Final = 47.0
_MIN_SCORE: Final = 1e-10
_MAX_LEVEL: Final = 127
_SUBBAND: Final = (_MAX_LEVEL + _N1 - 1) // _N1  # 10 loudness units per sub-band
_ACTIVE: Final = (_MEDIUM_THRESHOLD + 1) * _SUBBAND  # loudness of an active frame: 80
_FRAMES: Final = _N2 * _N3  # 50 frames of history: 1 s
_MIN_LEVEL_WINDOW: Final = 15 * 1000 // 20  # levels before the noise floor may rise: 15 s

_FRAME: Final = 0.02  # seconds per level when filling gaps
_GAP: Final = 0.1  # a longer gap between levels is filled with silent frames


def _log_scores(n: int, lam: float) -> tuple[float, ...]:
    """ln(score(v)) for v = 0..n: the paper's speech activity score, clamped at 1e-10."""
    out = []
    for v in range(n + 1):
        s = (
            math.log(math.comb(n, v))
            + v * math.log(_P)
            + (n - v) * math.log(1 - _P)
            - math.log(lam)
            + lam * v
        )
        out.append(math.log(max(s, _MIN_SCORE)))
    return tuple(out)


_IMMEDIATE: Final = _log_scores(_N1, _LAMBDA_IMMEDIATE)
_MEDIUM: Final = _log_scores(_N2, _LAMBDA_MEDIUM)
_LONG: Final = _log_scores(_N3, _LAMBDA_LONG)
_SILENT: Final = (_IMMEDIATE[0], _MEDIUM[0], _LONG[0])  # all three at the minimum score


class _Speaker:
    """One participant's level history (loudness ``127 - dBov``, 0 = silence)."""

    __slots__ = ("active", "count", "floor", "last", "levels", "next_floor", "pos")

    def __init__(self, now: float | None) -> None:
        self.levels = [0] * _FRAMES  # ring; ``pos`` is the latest frame
        self.pos = 0
        self.last = now  # time of the latest frame (real or filled), None before any
        self.active = -math.inf  # time of the latest active frame
        self.floor = 0  # minimum loudness seen (0: not known yet)
        self.next_floor = 0  # minimum of the current window, to raise ``floor``
        self.count = 0  # levels in that window

    def silence(self, frames: int) -> None:
        """Push ``frames`` silent frames."""
        if frames >= _FRAMES:
            self.levels = [0] * _FRAMES
            return
        levels = self.levels
        pos = self.pos
        for _ in range(frames):
            pos = pos + 1 if pos < _FRAMES - 1 else 0
            levels[pos] = 0
        self.pos = pos

    def update_floor(self, b: int) -> None:
        """Track the noise floor: falls at once, rises slowly (Jitsi ``updateMinLevel``)."""
        floor = self.floor
        if floor == 0 or b < floor:
            self.floor = b
            self.next_floor = 0
            self.count = 0
        elif self.next_floor == 0:
            self.next_floor = b
            self.count = 1
        else:
            if b < self.next_floor:
                self.next_floor = b
            self.count += 1
            if self.count >= _MIN_LEVEL_WINDOW:
                # the geometric mean: a slow rise
                self.floor = min(int(math.sqrt(floor * self.next_floor)), _MAX_LEVEL)
                self.next_floor = 0
                self.count = 0

    def scores(self) -> tuple[float, float, float]:
        """ln of the immediate, medium and long speech activity scores."""
        levels = self.levels
        pos = self.pos
        quiet = self.floor + _SUBBAND  # less than one sub-band above the floor: silence
        active = quiet if quiet > _ACTIVE else _ACTIVE
        b = levels[pos]
        immediate = b // _SUBBAND if b >= quiet else 0
        medium = 0
        long = 0
        for block in range(_N3):
            loud = 0
            for _ in range(_N2):
                if levels[pos] >= active:
                    loud += 1
                pos = pos - 1 if pos else _FRAMES - 1
            if block == 0:
                medium = loud
            if loud > _LONG_THRESHOLD:
                long += 1
        return _IMMEDIATE[min(immediate, _N1)], _MEDIUM[medium], _LONG[long]


class DominantSpeaker:
    """The dominant speaker of one room, from its participants' audio levels.

    The owner calls `level` for every audio packet carrying a level and `tick` every
    `interval` seconds (a timer on the event loop), and tells subscribers when `tick` (or
    `remove`) reports a change.

    Args:
        interval: seconds between two `tick` calls, for the owner's timer (Jitsi: 0.3).
        silence_timeout: seconds without an active frame of the dominant speaker after
            which there is no dominant speaker; None: it stays until someone else speaks.
    """

    __slots__ = ("_dominant", "_silence_timeout", "_speakers", "interval")

    def __init__(
        self,
        *,
        interval: float = DECISION_INTERVAL,
        silence_timeout: float | None = SILENCE_TIMEOUT,
    ) -> None:
        self.interval = interval
        self._silence_timeout = silence_timeout
        self._speakers: dict[str, _Speaker] = {}
        self._dominant: str | None = None

    @property
    def dominant(self) -> str | None:
        """The dominant speaker's id, or None when nobody is."""
        return self._dominant

    def __contains__(self, speaker_id: object) -> bool:
        return speaker_id in self._speakers

    def __iter__(self) -> Iterator[str]:
        return iter(self._speakers)

    def __len__(self) -> int:
        return len(self._speakers)

    def add(self, speaker_id: str) -> None:
        """Start following a participant with audio (no-op if already followed)."""
        if speaker_id not in self._speakers:
            self._speakers[speaker_id] = _Speaker(None)

    def remove(self, speaker_id: str, now: float | None = None) -> bool:
        """Stop following a participant; return True if `dominant` changed.

        If it was the dominant speaker, `dominant` becomes None, or, when ``now`` is given,
        whoever is speaking enough at that time to win against silence.
        """
        if self._speakers.pop(speaker_id, None) is None or speaker_id != self._dominant:
            return False
        self._dominant = None
        if now is not None:
            self._decide(now)
        return True

    def level(self, speaker_id: str, level: int, now: float) -> None:
        """Record one audio level (``level`` in -dBov: 0 loudest, 127 silence) at ``now``.

        Called for every audio packet; unknown ids and levels older than the participant's
        latest one are ignored.
        """
        sp = self._speakers.get(speaker_id)
        if sp is None:
            return
        last = sp.last
        if last is not None:
            gap = now - last
            if gap < 0:
                return
            if gap > _GAP:
                sp.silence(round(gap / _FRAME) - 1)
        sp.last = now
        b = _MAX_LEVEL - level if 0 < level <= _MAX_LEVEL else (_MAX_LEVEL if level <= 0 else 0)
        pos = sp.pos + 1 if sp.pos < _FRAMES - 1 else 0
        sp.pos = pos
        sp.levels[pos] = b
        if b:
            sp.update_floor(b)
            if b >= _ACTIVE and b >= sp.floor + _SUBBAND:
                sp.active = now

    def tick(self, now: float) -> bool:
        """Make a decision at ``now``; return True if `dominant` changed."""
        return self._decide(now)

    def _decide(self, now: float) -> bool:
        for sp in self._speakers.values():  # silent frames for whoever sent nothing lately
            last = sp.last
            if last is not None and now - last > _GAP:
                frames = int((now - last) / _FRAME)
                sp.silence(frames)
                sp.last = last + frames * _FRAME
        old = self._dominant
        dominant = self._speakers.get(old) if old is not None else None
        if dominant is None:
            old_scores = _SILENT
            new = None
        elif self._silence_timeout is not None and now - dominant.active >= self._silence_timeout:
            old_scores = _SILENT  # silent long enough: compete with nobody
            new = None
        else:
            old_scores = dominant.scores()
            new = old
        i0, m0, l0 = old_scores
        best = C2
        for speaker_id, sp in self._speakers.items():
            if speaker_id == old:
                continue
            i, m, lg = sp.scores()
            c2 = m - m0
            if i - i0 > C1 and c2 > best and lg - l0 > C3:
                best = c2
                new = speaker_id
        self._dominant = new
        if new == old:
            return False
        if new is not None:  # its silence counts from now at the earliest
            won = self._speakers[new]
            won.active = max(won.active, now)
        return True
