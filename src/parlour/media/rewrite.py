"""Per-consumer RTP header rewriting, pure (the SFU's hot path).

* `ExtensionRewriter` maps one publisher's negotiated header-extension ids to one
  subscriber's, drops what the subscriber did not negotiate, and writes the subscriber
  transceiver's MID (Chrome demuxes BUNDLEd streams by MID, RFC 8843 §15); its per-pair id
  table is built once, and compiled into a plan per extension-block shape.
* `RtpRewriter`: one per consumer (subscriber stream). New SSRC/PT, sequence number and
  timestamp shifted by per-consumer offsets, extensions rewritten; keeps seq/ts continuous
  when the source changes (`RtpRewriter.switch_source`) and translates the source's Sender
  Reports (`translate_sr`) so lip sync survives forwarding.

What is deliberately *not* rewritten here: the codec payload. A consumer of a single
stream passes VP8's PictureID and TL0PICIDX (RFC 7741 §4.2) through untouched: the receiver
sees one encoder's numbering. A consumer of a simulcast producer, which switches between
encoders and may drop temporal layers, also runs `simulcast.Vp8Rewriter` on its output, and
compacts the sequence numbers of dropped packets with `RtpRewriter.skip`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

from parlour.media.rtcp import SenderReport
from parlour.media.rtp import (
    _TWO_BYTE,
    _ZEROS,
    MID_URI,
    Packet,
    RtpError,
    _extension_elements,
    pack_extensions,
)

__all__ = [
    "ExtensionRewriter",
    "RtpRewriter",
    "TransportCc",
]

_MASK16: Final = 0xFFFF
_MASK32: Final = 0xFFFFFFFF
_HDR = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, seq, timestamp, SSRC
_SEQ_TS_SSRC = struct.Struct("!HII")  # at offset 2
_pack_hdr = _HDR.pack
_unpack_seq_ts_ssrc = _SEQ_TS_SSRC.unpack_from
_U16 = struct.Struct("!H")
_ONE_BYTE: Final = 0xBEDE


# (block length, shape mask, shape, keep mask, shift, const, output length): see _make_plan
_Plan: TypeAlias = tuple[int, int, int, int, int, int, int]


def _from_be(data: bytes | bytearray) -> int:
    return int.from_bytes(data, "big")


class ExtensionRewriter:
    """Header extension translation for one (publisher stream → subscriber stream) pair.

    Built once per pair from the two negotiated ``{uri: id}`` maps. Elements whose URI both
    sides negotiated get the subscriber's id; others are dropped (overwritten with padding
    bytes, or cut off when they are last). The publisher's MID is always dropped; when the
    subscriber negotiated MID and ``mid`` is given, the subscriber transceiver's MID is
    written instead (in place when the lengths match, appended otherwise, or in a new block
    when the packet had none).

    The common case (one-byte input, subscriber ids ≤ 14, MID ≤ 16 bytes) is compiled, per
    block shape, into a few big-int operations (see `_make_plan`); a stream's blocks have
    one or two shapes, so the per-element walk runs only when the shape changes. Anything
    else (two-byte input, or output that needs the two-byte form) takes a slower general
    path that parses and re-packs the elements.

    Args:
        publisher: the publisher's negotiated extensions ``{uri: id}``.
        subscriber: the subscriber's negotiated extensions ``{uri: id}``.
        mid: the subscriber transceiver's MID, or None to write no MID.
    """

    __slots__ = (
        "_general",
        "_ids",
        "_mid_element",
        "_mid_out",
        "_mid_value",
        "_plan",
        "_table",
        "identity",
        "insert_block",
        "mid",
    )

    def __init__(
        self,
        publisher: Mapping[str, int],
        subscriber: Mapping[str, int],
        *,
        mid: str | None = None,
    ) -> None:
        for side in (publisher, subscriber):
            for uri, ext_id in side.items():
                if not 0 < ext_id < 256:
                    raise RtpError(f"extension id {ext_id} for {uri} is outside 1-255")
        self.mid = mid if MID_URI in subscriber else None
        self._mid_out = subscriber.get(MID_URI, 0) if self.mid is not None else 0
        self._mid_value = self.mid.encode() if self.mid is not None else b""
        if self.mid is not None and not 0 < len(self._mid_value) <= 255:
            raise RtpError("MID must be 1-255 bytes")
        self._ids: dict[int, int] = {
            in_id: subscriber[uri]
            for uri, in_id in publisher.items()
            if uri in subscriber and uri != MID_URI
        }
        #: True when packets can keep their extension block byte for byte.
        self.identity = dict(publisher) == dict(subscriber) and MID_URI not in subscriber
        mid_one_byte = self._mid_out == 0 or (self._mid_out < 15 and len(self._mid_value) <= 16)
        self._general = not mid_one_byte or any(out > 14 for out in self._ids.values())
        self._mid_element = (
            bytes(((self._mid_out << 4) | (len(self._mid_value) - 1),)) + self._mid_value
            if self._mid_out and mid_one_byte
            else b""
        )
        #: The block to add to packets without one (b"" when there is nothing to add).
        self.insert_block = (
            pack_extensions([(self._mid_out, self._mid_value)]) if self._mid_out else b""
        )
        # header byte (id << 4 | len-1) -> output header byte; 0 = drop; 1 = write our MID.
        table = [0] * 256
        pub_mid = publisher.get(MID_URI, 0)
        for h in range(0x10, 0xF0):
            in_id, length = h >> 4, (h & 0x0F) + 1
            out = self._ids.get(in_id, 0)
            if 0 < out < 15:
                table[h] = (out << 4) | (h & 0x0F)
            elif in_id == pub_mid and self._mid_element and length == len(self._mid_value):
                table[h] = 1
        self._table = bytes(table)
        self._plan: _Plan | None = None

    def rewrite_block(self, pkt: Packet, start: int) -> bytes | bytearray:
        """Return the rewritten extension block that starts at ``pkt[start]`` (its profile).

        The result includes the 4-byte profile/length header; ``b""`` means the output packet
        carries no extension block (clear the X bit).

        Raises:
            RtpError: the block is truncated or malformed.
        """
        if start + 4 > len(pkt):
            raise RtpError("RTP header extension is truncated")
        end = start + 4 + (((pkt[start + 2] << 8) | pkt[start + 3]) << 2)
        if end > len(pkt):
            raise RtpError("RTP header extension is truncated")
        return self._rewrite(pkt, start, end)

    def _rewrite(self, pkt: Packet, start: int, end: int) -> bytes | bytearray:
        if self.identity:
            return pkt[start:end]
        if self._general or pkt[start] != 0xBE or pkt[start + 1] != 0xDE:
            return self._rewrite_general(pkt, start, end, (pkt[start] << 8) | pkt[start + 1])
        # One-byte block: apply the plan of the last block with the same shape, as big-int
        # arithmetic (a few C calls instead of a Python loop over the elements).
        plan = self._plan
        if plan is None or plan[0] != end - start:
            plan = self._plan = self._make_plan(pkt, start, end)
        x = int.from_bytes(pkt[start:end], "big")
        _, shape_mask, shape, keep, shift, const, size = plan
        if x & shape_mask != shape:
            plan = self._plan = self._make_plan(pkt, start, end)
            _, shape_mask, shape, keep, shift, const, size = plan
        if not size:
            return b""
        x &= keep
        x = x << shift if shift >= 0 else x >> -shift
        return (x | const).to_bytes(size, "big")

    def _make_plan(self, pkt: Packet, start: int, end: int) -> _Plan:
        """Walk a one-byte block and derive how to rewrite every block of the same shape.

        The shape is every byte that is not an element value (block header, element
        headers, padding); blocks with the same length and shape parse identically. The
        output is ``((input & keep) shifted) | const`` where ``const`` holds the output
        block header, the new element headers, our MID and the padding.

        Raises:
            RtpError: an element is truncated.
        """
        n = end - start
        shape = bytearray(pkt[start:end])
        shape_mask = bytearray(n)
        keep = bytearray(n)
        const = bytearray(n)
        shape_mask[0:4] = b"\xff\xff\xff\xff"
        const[0:2] = b"\xbe\xde"
        table = self._table
        i = 4
        last = 4  # end of the last element kept
        mid_done = False
        while i < n:
            h = shape[i]
            shape_mask[i] = 0xFF
            if h < 0x10:  # padding (id 0)
                i += 1
                continue
            if h >= 0xF0:  # id 15: stop; the rest is cut off
                break
            size = (h & 0x0F) + 2
            if i + size > n:
                raise RtpError("one-byte header extension is truncated")
            out = table[h]
            if out > 1:
                const[i] = out
                keep[i + 1 : i + size] = b"\xff" * (size - 1)
                last = i + size
            elif out == 1:
                const[i : i + size] = self._mid_element
                mid_done = True
                last = i + size
            i += size
        tail = self._mid_element if not mid_done else b""
        body = last + len(tail)
        if body == 4:
            return (n, _from_be(shape_mask), _from_be(shape) & _from_be(shape_mask), 0, 0, 0, 0)
        size = body + (-body & 3)
        out_const = const[:last] + tail + _ZEROS[size - body]
        _U16.pack_into(out_const, 2, (size - 4) >> 2)
        mask = _from_be(shape_mask)
        return (
            n,
            mask,
            _from_be(shape) & mask,
            _from_be(keep),
            8 * (size - n),
            _from_be(out_const),
            size,
        )

    def byte_plan(
        self, pkt: Packet, start: int, end: int
    ) -> tuple[int, bytes, bytes, bytes, bytes, int] | None:
        """The plan for blocks shaped like ``pkt[start:end]``, as bytes (for the C fast path).

        Returns ``(n, mask, shape, keep, const, size)``: a block of ``n`` bytes with
        ``block & mask == shape`` (bytewise) becomes the ``size`` bytes
        ``(block[i] & keep[i] if i < n else 0) | const[i]``; that is ``_rewrite``'s big-int
        arithmetic done a byte at a time. None: blocks like this one take the general path
        (``_rewrite`` itself).

        Raises:
            RtpError: an element is truncated.
        """
        if self.identity or self._general or pkt[start] != 0xBE or pkt[start + 1] != 0xDE:
            return None
        n, mask, shape, keep, _shift, const, size = self._make_plan(pkt, start, end)
        return (
            n,
            mask.to_bytes(n, "big"),
            shape.to_bytes(n, "big"),
            keep.to_bytes(n, "big"),
            const.to_bytes(size, "big"),
            size,
        )

    def _rewrite_general(self, pkt: Packet, start: int, end: int, profile: int) -> bytes:
        if profile != _ONE_BYTE and (profile & 0xFFF0) != _TWO_BYTE:
            return b""  # unknown profile: nothing the subscriber negotiated
        ids = self._ids
        elements = [
            (ids[ext_id], value)
            for ext_id, value in _extension_elements(pkt, start + 4, end, profile)
            if ext_id in ids
        ]
        if self._mid_out:
            elements.append((self._mid_out, self._mid_value))
        return pack_extensions(elements)


# ---------------------------------------------------------------------------------------------
# Rewriting


def _prefix(pkt: Packet, ext: ExtensionRewriter | None) -> tuple[int, bytes | bytearray, int, int]:
    """Validate any RTP packet and rewrite the CSRCs and extension block.

    Returns:
        The output's first byte (X bit adjusted), what goes between the 12-byte fixed header
        and ``pkt[payload_start:]`` (CSRCs and the rewritten extension block), the payload
        start, and the payload octet count (without padding).
    """
    n = len(pkt)
    if n < 12 or (pkt[0] & 0xC0) != 0x80:
        raise RtpError("not an RTP v2 packet")
    b0 = pkt[0]
    pos = 12 + ((b0 & 0x0F) << 2)
    if pos > n:
        raise RtpError("RTP CSRC list is truncated")
    block: bytes | bytearray = b""
    ext_start = pos
    if b0 & 0x10:
        if pos + 4 > n:
            raise RtpError("RTP header extension is truncated")
        pos += 4 + (((pkt[pos + 2] << 8) | pkt[pos + 3]) << 2)
        if pos > n:
            raise RtpError("RTP header extension is truncated")
        block = pkt[ext_start:pos] if ext is None else ext._rewrite(pkt, ext_start, pos)
    elif ext is not None:
        block = ext.insert_block
    octets = n - pos
    if b0 & 0x20:
        pad = pkt[-1]
        if pad == 0 or pad > octets:
            raise RtpError("RTP padding length is invalid")
        octets -= pad
    b0 = (b0 & 0xEF) | (0x10 if block else 0)
    return b0, (pkt[12:ext_start] + block if ext_start > 12 else block), pos, octets


class TransportCc:
    """Transport-wide sequence numbers of one subscriber transport (transport-wide CC).

    Shared by the rewriters of every consumer of that subscriber (`RtpRewriter.transport_cc`):
    each packet they rewrite gets a one-byte extension element ``ext_id`` with the next
    number, appended to its extension block (one 32-bit word: id/length, the number, a
    padding byte; RFC 8285 allows padding between elements) or in a new block, and is
    recorded with ``record(seq, clock(), size, cluster)``. Stamping while the packet is built
    costs a few bytes of copying, not another copy of the packet. A packet with a two-byte
    extension block is not stamped.

    Args:
        ext_id: the negotiated id (1-14).
        record: where sends are noted (`bwe.SendHistory.sent`).
        clock: monotonic seconds.
    """

    __slots__ = ("_cluster", "_hdr", "_pending", "_seq", "clock", "ext_id", "record", "state")

    def __init__(
        self,
        ext_id: int,
        record: Callable[[int, float, int, int], None],
        clock: Callable[[], float],
        state: Any = None,
    ) -> None:
        if not 0 < ext_id < 15:
            raise RtpError(f"transport-wide-cc id {ext_id} needs the two-byte form")
        self.ext_id = ext_id
        self._hdr = (ext_id << 4) | 1
        self.record = record
        self.clock = clock
        #: The C fast path's numbering (`_fastpath.Tcc`), shared with the lanes that stamp
        #: from C; None: numbered here only. With it, `seq` and `cluster` live there and
        #: what lanes sent is recorded on `drain()`.
        self.state = state
        self._seq = 0
        self._cluster = 0
        self._pending = -1

    @property
    def seq(self) -> int:
        """The next transport-wide sequence number."""
        state = self.state
        return int(state.seq) if state is not None else self._seq

    @seq.setter
    def seq(self, value: int) -> None:
        if self.state is not None:
            self.state.seq = value
        else:
            self._seq = value

    @property
    def cluster(self) -> int:
        """The probe cluster packets sent now belong to (0: none)."""
        state = self.state
        return int(state.cluster) if state is not None else self._cluster

    @cluster.setter
    def cluster(self, value: int) -> None:
        if self.state is not None:
            self.state.cluster = value
        else:
            self._cluster = value

    def drain(self) -> None:
        """Record what lanes stamped in C since the last call (before reading the record)."""
        state = self.state
        if state is not None:
            record = self.record
            for seq, when, size, cluster in state.drain():
                record(seq, when, size, cluster)

    def extend(self, b0: int, prefix: bytes | bytearray) -> tuple[int, bytes | bytearray]:
        """(first byte, CSRCs + extension block) with the next number's element added."""
        seq = self.seq
        element = bytes((self._hdr, seq >> 8, seq & 0xFF, 0))
        cc4 = (b0 & 0x0F) << 2
        if len(prefix) == cc4:
            self._pending = seq
            return b0 | 0x10, prefix + b"\xbe\xde\x00\x01" + element
        if prefix[cc4] != 0xBE or prefix[cc4 + 1] != 0xDE:
            self._pending = -1
            return b0, prefix
        words = ((prefix[cc4 + 2] << 8) | prefix[cc4 + 3]) + 1
        self._pending = seq
        return b0, prefix[: cc4 + 2] + _U16.pack(words) + prefix[cc4 + 4 :] + element

    def commit(self, size: int) -> None:
        """The packet stamped by the last `extend` is ``size`` bytes and goes out now."""
        seq = self._pending
        if seq >= 0:
            self._pending = -1
            self.seq = (seq + 1) & 0xFFFF
            self.record(seq, self.clock(), size, self.cluster)


class RtpRewriter:
    """Rewrites one source's packets for one consumer (a subscriber's stream).

    Output sequence number = input + seq offset (mod 2^16), timestamp = input + ts offset
    (mod 2^32), SSRC and payload type replaced, header extensions rewritten by
    ``extensions``. The offsets start at ``seq_offset``/``ts_offset``; they are recomputed
    when the source's SSRC changes (publisher restart, republish, another producer) or after
    `switch_source`, so that the output continues at ``last_seq + 1`` and the timestamp
    advances by a plausible step. The caller should request a keyframe after a switch.

    The rewriter also counts what it sent (``packets``, ``octets``) for Sender Reports, and
    `translate_sr` maps the source's SR onto the output timeline for lip sync.

    Feed it only the current source: a late packet of an old SSRC counts as a switch. When
    the new source is another publisher (other extension ids), call `set_extensions` too.

    Args:
        ssrc: the consumer's outgoing SSRC (from its SDP ``a=ssrc``).
        payload_type: the consumer's negotiated payload type for this codec.
        extensions: header extension translation for this pair; None copies blocks as is.
        clock_rate: RTP clock rate of the codec (for the default switch step).
        seq_offset: initial sequence number offset.
        ts_offset: initial timestamp offset.
        switch_step: timestamp step across a switch when the caller gives none; defaults
            to 20 ms of clock.
    """

    __slots__ = (
        "_b0",
        "_cur",
        "_hi_seq",
        "_hi_ts",
        "_insert",
        "_next_delta",
        "_seq_off",
        "_src",
        "_started",
        "_step",
        "_ts_off",
        "_ext",
        "clock_rate",
        "octets",
        "packets",
        "payload_type",
        "ssrc",
        "transport_cc",
    )

    def __init__(
        self,
        ssrc: int,
        payload_type: int,
        *,
        extensions: ExtensionRewriter | None = None,
        clock_rate: int = 90000,
        seq_offset: int = 0,
        ts_offset: int = 0,
        switch_step: int | None = None,
    ) -> None:
        if not 0 <= payload_type < 128:
            raise RtpError(f"payload type {payload_type} is outside 0-127")
        self.ssrc = ssrc & _MASK32
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.packets = 0
        self.octets = 0
        self._seq_off = seq_offset & _MASK16
        self._ts_off = ts_offset & _MASK32
        self._step = switch_step if switch_step is not None else max(1, clock_rate // 50)
        self._ext = extensions
        self._insert = b""
        self._b0 = 0x80
        self.set_extensions(extensions)
        self._src = -1  # source SSRC to expect; -1 = (re)synchronise on the next packet
        self._cur = -1  # source SSRC of the packets sent so far
        self._started = False
        self._hi_seq = 0  # highest input seq / its timestamp, of the current source
        self._hi_ts = 0
        self._next_delta: int | None = None
        #: Stamp transport-wide sequence numbers (None: the subscriber did not negotiate them).
        self.transport_cc: TransportCc | None = None

    @property
    def extensions(self) -> ExtensionRewriter | None:
        """The header extension translation in use."""
        return self._ext

    def set_extensions(self, extensions: ExtensionRewriter | None) -> None:
        """Use another header extension translation (e.g. the new source's publisher map)."""
        self._ext = extensions
        self._insert = extensions.insert_block if extensions is not None else b""
        self._b0 = 0x90 if self._insert else 0x80  # first byte of packets without a block

    @property
    def source_ssrc(self) -> int | None:
        """The SSRC of the source being forwarded, or None until (re)synchronised."""
        return self._src if self._src >= 0 else None

    @property
    def seq_offset(self) -> int:
        """The current sequence number offset."""
        return self._seq_off

    @property
    def ts_offset(self) -> int:
        """The current timestamp offset (add to source timestamps, mod 2^32)."""
        return self._ts_off

    @property
    def last_seq(self) -> int | None:
        """The highest sequence number sent so far, or None before the first packet."""
        return (self._hi_seq + self._seq_off) & _MASK16 if self._started else None

    @property
    def last_timestamp(self) -> int | None:
        """The timestamp of the packet with `last_seq`, or None before the first packet."""
        return (self._hi_ts + self._ts_off) & _MASK32 if self._started else None

    def _dump(
        self,
    ) -> tuple[int, int, int, int, int, int, int | None, bool, int, int, int, int, int]:
        """The state a C `Lane` takes over (`_fastpath.Lane.load`) and hands back (`_load`)."""
        return (
            self.ssrc,
            self.payload_type,
            self._seq_off,
            self._ts_off,
            self._src,
            self._cur,
            self._next_delta,
            self._started,
            self._hi_seq,
            self._hi_ts,
            self.packets,
            self.octets,
            self._step,
        )

    def _load(
        self, state: tuple[int, int, int, int, int, int, int | None, bool, int, int, int, int, int]
    ) -> None:
        """Take back the state `_dump` gave (from a `Lane`, which rewrote meanwhile)."""
        (
            self.ssrc,
            self.payload_type,
            self._seq_off,
            self._ts_off,
            self._src,
            self._cur,
            self._next_delta,
            started,
            self._hi_seq,
            self._hi_ts,
            self.packets,
            self.octets,
            self._step,
        ) = state
        self._started = bool(started)

    def switch_source(self, ts_delta: int | None = None) -> None:
        """Resynchronise on the next packet: output seq continues at ``last_seq + 1``.

        Call it when the consumer moves to another source, or resumes after a pause, even if
        the SSRC stays the same (an SSRC change is detected automatically).

        Args:
            ts_delta: timestamp step between the last packet sent and the next one, typically
                the elapsed wall time times the clock rate. None: keep the timestamp offset
                when the SSRC did not change (its timestamps are continuous), otherwise use
                the default step.
        """
        self._next_delta = ts_delta
        self._src = -1

    def _resync(self, in_seq: int, in_ts: int, src: int) -> None:
        if self._started:
            last_seq = (self._hi_seq + self._seq_off) & _MASK16
            last_ts = (self._hi_ts + self._ts_off) & _MASK32
            self._seq_off = (last_seq + 1 - in_seq) & _MASK16
            delta = self._next_delta
            if delta is None and src != self._cur:
                delta = self._step
            if delta is not None:
                self._ts_off = (last_ts + delta - in_ts) & _MASK32
        self._started = True
        self._next_delta = None
        self._src = self._cur = src
        self._hi_seq = in_seq
        self._hi_ts = in_ts

    def skip(self, pkt: Packet) -> None:
        """Drop a packet of the current source without a hole in the output numbering.

        The next packets' sequence numbers close up (a subscriber must not NACK what was
        dropped on purpose, e.g. a VP8 temporal layer above the limit). Only an in-order
        packet (the next after the highest seen) can be compacted; others are ignored.
        """
        if len(pkt) < 12:
            return
        in_seq, in_ts, src = _unpack_seq_ts_ssrc(pkt, 2)
        if src != self._src or ((in_seq - self._hi_seq) & 0xFFFF) != 1:
            return
        self._hi_seq = in_seq
        self._hi_ts = in_ts
        self._seq_off = (self._seq_off - 1) & _MASK16

    def rewrite(self, pkt: Packet) -> bytes:
        """Return the outgoing packet for this consumer.

        Raises:
            RtpError: malformed packet.
        """
        try:
            in_seq, in_ts, src = _unpack_seq_ts_ssrc(pkt, 2)
        except struct.error:
            raise RtpError("RTP packet is shorter than 12 bytes") from None
        # Validate and build everything but the fixed header before touching any state.
        b0 = pkt[0]
        prefix: bytes | bytearray  # goes between the fixed header and pkt[start:]
        if b0 == 0x80:  # no padding, extension or CSRC (video once Chrome stops sending MID)
            b0 = self._b0
            prefix = self._insert
            start = 12
            octets = len(pkt) - 12
        else:
            ext = self._ext
            n = len(pkt)
            start = 16 + (((pkt[14] << 8) | pkt[15]) << 2) if n >= 16 else n + 1
            if b0 == 0x90 and ext is not None and start <= n:  # one extension block only
                prefix = ext._rewrite(pkt, 12, start)
                b0 = 0x90 if prefix else 0x80
                octets = n - start
            else:
                b0, prefix, start, octets = _prefix(pkt, ext)
        if src != self._src:
            self._resync(in_seq, in_ts, src)
        if 0 < ((in_seq - self._hi_seq) & 0xFFFF) < 0x8000:
            self._hi_seq = in_seq
            self._hi_ts = in_ts
        self.packets += 1
        self.octets += octets
        tcc = self.transport_cc
        if tcc is not None:
            b0, prefix = tcc.extend(b0, prefix)
        # literals instead of _MASK16/_MASK32: global lookups cost on this path
        out = (
            _pack_hdr(
                b0,
                (pkt[1] & 0x80) | self.payload_type,
                (in_seq + self._seq_off) & 0xFFFF,
                (in_ts + self._ts_off) & 0xFFFFFFFF,
                self.ssrc,
            )
            + prefix  # small: concatenating it first copies the payload only twice
            + pkt[start:]
        )
        if tcc is not None:
            tcc.commit(len(out))
        return out

    def translate_sr(self, sr: SenderReport) -> SenderReport | None:
        """Map the source's Sender Report onto this consumer's stream.

        The NTP time is kept and the RTP timestamp shifted by the timestamp offset, so the
        subscriber can align this stream with others of the same publisher (lip sync). The
        packet/octet counts are this consumer's own.

        Returns:
            The SR to send (no report blocks), or None when ``sr`` is not from the current
            source (its timestamps would map wrongly).
        """
        if not self._started or sr.ssrc != self._cur:
            return None
        return SenderReport(
            ssrc=self.ssrc,
            ntp=sr.ntp,
            rtp_timestamp=(sr.rtp_timestamp + self._ts_off) & _MASK32,
            packet_count=self.packets & _MASK32,
            octet_count=self.octets & _MASK32,
        )
