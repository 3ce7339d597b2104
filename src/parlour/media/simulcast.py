"""Simulcast and VP8 temporal scalability for one consumer, pure (no I/O, no clock).

A simulcast publisher sends one track as several independent RTP streams ("layers", one
SSRC each, the ``a=ssrc-group:SIM`` order: lowest resolution first), each with its own
sequence numbers, timestamps and, for VP8, its own PictureID and TL0PICIDX (RFC 7741 §4.2).
A subscriber must see one stream. Per consumer:

* `LayerSwitch` decides packet by packet what to forward: only the current spatial layer;
  a switch to the target layer happens at the first packet of a keyframe of the target
  (the caller asks the publisher for one), so the decoder never sees a frame it cannot
  decode. Seq/timestamp continuity across the switch is `rewrite.RtpRewriter.switch_source`;
  `ts_step` estimates the timestamp step.
* `Vp8Rewriter` makes the VP8 numbering continuous: PictureID and TL0PICIDX shifted by
  offsets recomputed at each switch, and frames of temporal layers above `max_temporal`
  dropped (their sequence numbers are compacted by `RtpRewriter.skip`). A lower temporal
  limit takes effect at once; a higher one at the next base-layer frame start.

Keyframe sizes (`vp8_keyframe_size`) come from the VP8 frame header (RFC 6386 §9.1), so
the server knows each layer's resolution without decoding anything.
"""

from __future__ import annotations

from typing import Final

from parlour.media.rtp import Packet

__all__ = [
    "NO_LAYER",
    "LayerSwitch",
    "Vp8Descriptor",
    "Vp8Rewriter",
    "parse_vp8_descriptor",
    "payload_offset",
    "ts_step",
    "vp8_keyframe_size",
]

NO_LAYER: Final = -1
_MAX_TEMPORAL: Final = 3  # a temporal limit at or above this forwards everything


def payload_offset(pkt: Packet) -> int:
    """Where the payload of a valid RTP packet starts (after CSRCs and extensions), or
    ``len(pkt)`` when the header is truncated."""
    n = len(pkt)
    if n < 12:
        return n
    pos = 12 + ((pkt[0] & 0x0F) << 2)
    if pkt[0] & 0x10:
        if pos + 4 > n:
            return n
        pos += 4 + (((pkt[pos + 2] << 8) | pkt[pos + 3]) << 2)
    return min(pos, n)


class Vp8Descriptor:
    """Offsets and values of one VP8 payload descriptor (RFC 7741 §4.2).

    ``picture_id`` is -1 when absent (``picture_id_at`` then -1 too); ``picture_id_bits``
    is 7 or 15. ``tl0`` and ``tl0_at`` are -1 when absent, ``tid`` is 0 when absent.
    ``start`` is true on the first packet of a frame (S=1, PartID=0); ``size`` is the
    descriptor's length.
    """

    __slots__ = (
        "picture_id",
        "picture_id_at",
        "picture_id_bits",
        "size",
        "start",
        "sync",
        "tid",
        "tl0",
        "tl0_at",
    )

    def __init__(self) -> None:
        self.picture_id = -1
        self.picture_id_at = -1
        self.picture_id_bits = 0
        self.tl0 = -1
        self.tl0_at = -1
        self.tid = 0
        self.sync = False
        self.start = False
        self.size = 0


def parse_vp8_descriptor(pkt: Packet, offset: int) -> Vp8Descriptor | None:
    """The VP8 payload descriptor at ``pkt[offset:]``, or None if truncated."""
    n = len(pkt)
    if offset >= n:
        return None
    d = Vp8Descriptor()
    b0 = pkt[offset]
    d.start = (b0 & 0x17) == 0x10
    pos = offset + 1
    if b0 & 0x80:
        if pos >= n:
            return None
        x = pkt[pos]
        pos += 1
        if x & 0x80:
            if pos >= n:
                return None
            d.picture_id_at = pos
            if pkt[pos] & 0x80:
                if pos + 1 >= n:
                    return None
                d.picture_id = ((pkt[pos] & 0x7F) << 8) | pkt[pos + 1]
                d.picture_id_bits = 15
                pos += 2
            else:
                d.picture_id = pkt[pos]
                d.picture_id_bits = 7
                pos += 1
        if x & 0x40:
            if pos >= n:
                return None
            d.tl0 = pkt[pos]
            d.tl0_at = pos
            pos += 1
        if x & 0x30:
            if pos >= n:
                return None
            if x & 0x20:
                d.tid = pkt[pos] >> 6
                d.sync = bool(pkt[pos] & 0x20)
            pos += 1
    d.size = pos - offset
    return d


def vp8_keyframe_size(pkt: Packet, offset: int) -> tuple[int, int] | None:
    """(width, height) of the VP8 keyframe starting in ``pkt[offset:]`` (the RTP payload),
    or None if this is not the first packet of a keyframe (RFC 6386 §9.1: 3-byte frame tag,
    start code 9d 01 2a, then 14-bit width and height)."""
    d = parse_vp8_descriptor(pkt, offset)
    if d is None or not d.start:
        return None
    p = offset + d.size
    if p + 10 > len(pkt) or pkt[p] & 0x01:
        return None
    if pkt[p + 3] != 0x9D or pkt[p + 4] != 0x01 or pkt[p + 5] != 0x2A:
        return None
    width = (pkt[p + 6] | (pkt[p + 7] << 8)) & 0x3FFF
    height = (pkt[p + 8] | (pkt[p + 9] << 8)) & 0x3FFF
    return width, height


def ts_step(source_step: int, wall_step: int, clock_rate: int) -> int:
    """The timestamp step to use across a layer switch.

    ``source_step`` is the new layer's timestamp minus the last forwarded packet's (both
    source timestamps, signed); ``wall_step`` the time between their arrivals in clock
    ticks. Encoders that stamp every layer from one capture clock (libwebrtc does) give
    steps that agree, and the source step keeps exact frame timing; otherwise the layers'
    timestamps are unrelated and the wall clock decides. Never less than one tick.
    """
    if abs(source_step - wall_step) <= clock_rate // 10:
        return max(1, source_step)
    return max(1, wall_step)


class LayerSwitch:
    """Which spatial layer one consumer forwards, switching only at keyframes.

    ``target`` is the layer wanted (set by the allocator through `set_target`), ``current``
    the one forwarded (`NO_LAYER` until the first keyframe of the target). `accept` is
    called for every packet of the producer with its layer and whether it starts a
    keyframe; it answers whether to forward it, and reports switches in ``switched``.
    """

    __slots__ = ("current", "switched", "switches", "target")

    def __init__(self, target: int = 0) -> None:
        self.target = target
        self.current = NO_LAYER
        self.switched = False  # the last accepted packet switched layers
        self.switches = 0

    @property
    def waiting(self) -> bool:
        """The target is not being forwarded yet (a keyframe of it is needed)."""
        return self.target != self.current

    def set_target(self, layer: int) -> bool:
        """Aim for ``layer``; returns True if a keyframe of it is now needed."""
        self.target = layer
        return layer != self.current

    def restart(self) -> None:
        """Forward nothing until the next keyframe of the target (after a pause)."""
        self.current = NO_LAYER

    def accept(self, layer: int, keyframe: bool) -> bool:
        """Whether to forward a packet of ``layer`` (hot path for simulcast consumers)."""
        if layer == self.current:
            self.switched = False
            return True
        if layer == self.target and keyframe:
            self.current = layer
            self.switched = True
            self.switches += 1
            return True
        return False


class Vp8Rewriter:
    """Continuous VP8 PictureID/TL0PICIDX for one consumer, and temporal layer dropping.

    `keep` says whether a source packet passes the temporal limit; `switched` is called
    with the first packet of a new source (and the last one forwarded of the old, from
    the producer's history) to recompute the offsets; `rewrite` applies them to an outgoing
    packet. While `active` is false (no offsets, no limit) nothing needs calling but
    `switched`: the numbering passes through.
    """

    __slots__ = ("_pending_temporal", "_pic_off", "_tl0_off", "max_temporal")

    def __init__(self) -> None:
        self.max_temporal = _MAX_TEMPORAL
        self._pending_temporal = _MAX_TEMPORAL
        self._pic_off = 0
        self._tl0_off = 0

    @property
    def active(self) -> bool:
        """Whether packets need looking at (offsets set or a temporal limit)."""
        return bool(
            self._pic_off
            or self._tl0_off
            or self.max_temporal < _MAX_TEMPORAL
            or self._pending_temporal < _MAX_TEMPORAL
        )

    @property
    def filtering(self) -> bool:
        """Whether temporal layers are being dropped, or are about to be (a limit is set or
        a raised one waits for a base-layer frame): packets must go through `keep`."""
        return self.max_temporal < _MAX_TEMPORAL or self._pending_temporal < _MAX_TEMPORAL

    @property
    def offsets(self) -> tuple[int, int]:
        """(PictureID offset, TL0PICIDX offset)."""
        return self._pic_off, self._tl0_off

    def set_max_temporal(self, tid: int) -> None:
        """Forward temporal layers up to ``tid`` (0 = base layer only; 2+ = all).

        Lowering applies at once; raising waits for a base-layer frame start, where every
        layer can be decoded again."""
        # libwebrtc uses at most three temporal layers (ids 0-2): 2 and above mean all, and
        # then no packet needs looking at.
        tid = _MAX_TEMPORAL if tid >= 2 else max(0, tid)
        if tid < self.max_temporal:
            self.max_temporal = tid
        self._pending_temporal = tid

    def keep(self, pkt: Packet, offset: int) -> bool:
        """Whether a source packet passes the temporal limit (its payload at ``offset``)."""
        if self._pending_temporal == self.max_temporal == _MAX_TEMPORAL:
            return True
        d = parse_vp8_descriptor(pkt, offset)
        if d is None:
            return True
        if self._pending_temporal != self.max_temporal and d.start and d.tid == 0:
            self.max_temporal = self._pending_temporal
        return d.tid <= self.max_temporal

    def switched(
        self, first: Packet, first_offset: int, last: Packet | None, last_offset: int
    ) -> None:
        """``first`` (a source packet) starts a new source; ``last`` is the source packet
        forwarded last before it (None: not known, the offsets stay)."""
        if last is None:
            return  # the numbering goes on as it is (from the start: the source's own)
        new = parse_vp8_descriptor(first, first_offset)
        old = parse_vp8_descriptor(last, last_offset)
        if new is None or old is None:
            return
        if new.picture_id >= 0 and old.picture_id >= 0:
            mask = 0x7FFF if new.picture_id_bits == 15 else 0x7F
            last_out = (old.picture_id + self._pic_off) & mask
            self._pic_off = (last_out + 1 - new.picture_id) & mask
        if new.tl0 >= 0 and old.tl0 >= 0:
            last_out = (old.tl0 + self._tl0_off) & 0xFF
            self._tl0_off = (last_out + 1 - new.tl0) & 0xFF

    def rewrite(self, out: bytes, offset: int) -> bytes:
        """Return ``out`` (an outgoing packet, payload at ``offset``) with PictureID and
        TL0PICIDX shifted."""
        pic_off = self._pic_off
        tl0_off = self._tl0_off
        if not (pic_off or tl0_off):
            return out
        d = parse_vp8_descriptor(out, offset)
        if d is None:
            return out
        buf = bytearray(out)
        pic = d.picture_id
        if pic >= 0 and pic_off:
            at = d.picture_id_at
            if d.picture_id_bits == 15:
                pic = (pic + pic_off) & 0x7FFF
                buf[at] = 0x80 | (pic >> 8)
                buf[at + 1] = pic & 0xFF
            else:
                buf[at] = (pic + pic_off) & 0x7F
        if d.tl0 >= 0 and tl0_off:
            buf[d.tl0_at] = (d.tl0 + tl0_off) & 0xFF
        return bytes(buf)
