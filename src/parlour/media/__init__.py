"""Outbound adapter: the SFU media plane (ICE-lite, DTLS-SRTP, RTP/RTCP forwarding, SCTP).

See `docs/media-plane.md`. Pure submodules (`sdp`, `codecs`, `negotiation`, `rtp`, `rtcp`,
`rewrite`, `stats`) import only the standard library. May import: `parlour.domain`,
`parlour.protocol`, aioice/pyOpenSSL/pylibsrtp and aiortc's SCTP/data-channel modules. Must never
import: `parlour.services`, `parlour.api`, `parlour.signaling`, `parlour.store`.
"""
