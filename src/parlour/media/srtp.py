"""SRTP/SRTCP sessions with a per-packet cost close to libsrtp's own.

`pylibsrtp.Session` allocates a length cell and copies every packet twice through Python
slices on each call, and raises on failure; at tens of thousands of packets per second that
overhead is as large as the AES-GCM itself. `SrtpSession` keeps one pylibsrtp session (which
owns the libsrtp context and frees it) but calls libsrtp through the same cffi binding with
a buffer and a length cell allocated once, and reports failure as None instead of raising.

May import: the standard library and pylibsrtp (its cffi binding module, pinned by version
range in pyproject). Nothing else in `parlour`.
"""

from __future__ import annotations

from typing import Any, Final

import pylibsrtp
from pylibsrtp._binding import ffi, lib  # type: ignore[import-not-found]

__all__ = ["MAX_PACKET", "SrtpSession"]

MAX_PACKET: Final = 1500
"""The largest packet protected or unprotected (larger ones fail: never on a UDP path)."""

_BUFFER: Final = MAX_PACKET + 160  # room for the SRTCP trailer and tag (libsrtp's maxima)
_memmove = ffi.memmove
_unpack = ffi.unpack
_protect = lib.srtp_protect
_protect_rtcp = lib.srtp_protect_rtcp
_unprotect = lib.srtp_unprotect
_unprotect_rtcp = lib.srtp_unprotect_rtcp


class SrtpSession:
    """One direction of an SRTP session (RFC 3711), for RTP and RTCP.

    Every method returns the transformed packet as new `bytes`, or None if libsrtp refused
    it (authentication or replay failure on receive, a packet over `MAX_PACKET` bytes).
    Not thread-safe: one shared buffer per session.
    """

    __slots__ = ("_buf", "_ctx", "_len", "_session")

    def __init__(self, policy: pylibsrtp.Policy) -> None:
        self._session = pylibsrtp.Session(policy)  # owns and frees the libsrtp context
        self._ctx: Any = self._session._srtp[0]
        self._buf: Any = ffi.new("char[]", _BUFFER)
        self._len: Any = ffi.new("int *")

    def protect(self, packet: bytes) -> bytes | None:
        """SRTP-protect one RTP packet (the per-egress-packet call: `_transform` inlined)."""
        n = len(packet)
        if n > MAX_PACKET:
            return None
        buf = self._buf
        length = self._len
        _memmove(buf, packet, n)
        length[0] = n
        if _protect(self._ctx, buf, length):
            return None
        return _unpack(buf, length[0])  # type: ignore[no-any-return]

    def protect_rtcp(self, packet: bytes) -> bytes | None:
        """SRTCP-protect one (compound) RTCP packet."""
        return self._transform(_protect_rtcp, packet)

    def unprotect(self, packet: bytes) -> bytes | None:
        """Verify and decrypt one SRTP packet."""
        return self._transform(_unprotect, packet)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        """Verify and decrypt one SRTCP packet."""
        return self._transform(_unprotect_rtcp, packet)

    def _transform(self, function: Any, packet: bytes) -> bytes | None:
        n = len(packet)
        if n > MAX_PACKET:
            return None
        buf = self._buf
        length = self._len
        _memmove(buf, packet, n)
        length[0] = n
        if function(self._ctx, buf, length):
            return None
        return _unpack(buf, length[0])  # type: ignore[no-any-return]
