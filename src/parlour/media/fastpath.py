"""The forwarding hot path below the interpreter: `parlour.media._fastpath`, if built.

The C extension (`_fastpath.c`, built from source by `make setup`) rewrites, protects and
sends a producer's packets to all its consumers in one call (`FanOut.forward`), with
`sendmmsg`; of a simulcast producer, each layer's steady forwarders in one call, VP8
PictureID/TL0PICIDX shifted. Python keeps deciding what is forwarded: `router.Producer` lists
the lanes of its consumers (per layer); everything rarer (layer switches, VP8 temporal-layer
dropping, NACK repairs, Sender Reports) stays on the Python path, which is the reference
implementation. On the receive side, `recv_batch` reads a connected path with `recvmmsg`
and unprotects SRTP; the packets of a plain video producer's SSRC (`Route`, in the
transport's `Ingress`) go from there through the receive statistics, the recording tap, the
history and the producer's `FanOut` without returning to Python (`Peer._on_rtp` and
`Producer.forward` are the reference).

`native` is the extension module, configured with libsrtp's `srtp_protect` from pylibsrtp's
own cffi binding (one libsrtp in the process), or None: not built, failed to load, or
turned off with ``PARLOUR_MEDIA_FASTPATH=0`` (read once, at import).

May import: the standard library, pylibsrtp's binding, `parlour.media.rtp`.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any

from parlour.media.rtp import RtpError

__all__ = ["ENV", "native", "srtp_context"]

log = logging.getLogger(__name__)

ENV = "PARLOUR_MEDIA_FASTPATH"
"""Set to 0 to run the pure-Python path even when the extension is built."""


def _load() -> ModuleType | None:
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        from pylibsrtp._binding import ffi, lib  # type: ignore[import-not-found]

        from parlour.media import _fastpath

        def address(name: str) -> int:
            return int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))

        _fastpath.configure(address("srtp_protect"), RtpError, address("srtp_unprotect"))
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        log.info("media fast path unavailable (%s): forwarding in Python", exc)
        return None
    return _fastpath


native: Any = _load()


def srtp_context(session: Any) -> int:
    """The address of an `srtp.SrtpSession`'s libsrtp context (for `Egress.set_srtp`)."""
    from pylibsrtp._binding import ffi

    return int(ffi.cast("uintptr_t", session._ctx))
