"""A lean WebRTC media endpoint for load generation: no encoding, no decoding, no jitter buffer.

One `LeanEndpoint` is one peer connection: one UDP socket on 127.0.0.1, a full ICE agent in
the controlling role (both servers under test are ICE-lite), DTLS-SRTP in whichever role the
remote description asks for (Parlour's own `DtlsSrtpTransport`), pre-encoded audio/video
senders (`bench.media_loop`) paced by the event loop, and per-SSRC receive statistics
(`StreamStats`) fed with every decrypted packet and its kernel receive timestamp. SDP offers
and answers are written here, as plain text, with only what the servers need: BUNDLE,
rtcp-mux, Opus and VP8, `a=ssrc` and `a=msid` lines, one host candidate. Keyframe requests
(PLI/FIR) from the server make the video sender jump to the loop's next keyframe, as an
encoder would produce one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aioice import stun

from bench.media_loop import AudioSender, EncodedLoop, StreamStats, VideoSender
from parlour.media import fastpath
from parlour.media import sdp as sdplib
from parlour.media.dtls import Certificate, DtlsSrtpTransport

log = logging.getLogger(__name__)

AUDIO_PT = 111
VIDEO_PT = 96
CHECK_INTERVAL = 0.05  # ICE check retransmission until the first success
CONSENT_INTERVAL = 2.0  # consent freshness (RFC 7675) once connected
RECV_BUFFER = 4 * 1024 * 1024
_TIMESPEC = struct.Struct("qq")  # struct timespec of SCM_TIMESTAMPNS


@dataclass
class SendTrack:
    kind: str  # "audio" or "video"
    track_id: str
    ssrc: int
    mid: str | None = None
    #: Simulcast: the SSRC of each layer, smallest first (``ssrc`` is the first); () if not.
    layers: tuple[int, ...] = ()


@dataclass
class RecvInfo:
    kind: str
    mid: str


@dataclass
class _Remote:
    ufrag: str
    pwd: str
    addr: tuple[str, int]
    fingerprints: list[tuple[str, str]]
    setup: str


def _rand_id(n: int = 16) -> str:
    return secrets.token_hex(n // 2)


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python does not name it
READ_BATCH = 64  # datagrams read per readiness callback


def _realtime_offset_ns() -> int:
    """CLOCK_REALTIME − CLOCK_MONOTONIC: kernel receive stamps are realtime, send stamps are
    monotonic (shared by every process); measured once per process."""
    return time.time_ns() - time.monotonic_ns()


@dataclass
class EndpointStats:
    """Receive side of one endpoint: StreamStats per SSRC and the kind of each SSRC."""

    streams: dict[int, StreamStats] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)


class LeanEndpoint:
    """One peer connection of a load-generator participant.

    Args:
        media: the pre-encoded loop (shared by every endpoint of the process).
        certificate: the DTLS certificate (shared too: generating one costs milliseconds).
        send_audio / send_video: publish these (on this connection).
        label: for log lines.
    """

    def __init__(
        self,
        media: EncodedLoop | None,
        certificate: Certificate,
        *,
        send_audio: bool = False,
        send_video: bool = False,
        simulcast: tuple[EncodedLoop, ...] = (),
        label: str = "",
    ) -> None:
        self.media = media
        #: Simulcast layers of the video track (smallest first), each its own encoding; ()
        #: sends ``media``'s video as one stream.
        self.simulcast = simulcast
        self.certificate = certificate
        self.label = label
        self.ufrag = _rand_id(8)
        self.pwd = _rand_id(24)
        self.stream_id = _rand_id(16)
        self.tracks: list[SendTrack] = []
        if send_audio:
            self.tracks.append(SendTrack("audio", _rand_id(32), random.getrandbits(32) | 1))
        if send_video:
            layers = tuple(random.getrandbits(32) | 1 for _ in simulcast)
            first = layers[0] if layers else random.getrandbits(32) | 1
            self.tracks.append(SendTrack("video", _rand_id(32), first, layers=layers))
        self.recv: dict[int, RecvInfo] = {}  # remote SSRC → what it is
        self.stats = EndpointStats()
        self.sock: socket.socket | None = None
        self.port = 0
        self.send_errors = 0
        self._rx_ns = 0
        self._rt_offset = _realtime_offset_ns()
        self.remote: _Remote | None = None
        self.dtls: DtlsSrtpTransport | None = None
        self.ice_connected = asyncio.Event()
        self.dtls_connected = asyncio.Event()
        self.failed: str | None = None
        self._tie_breaker = random.getrandbits(64)
        self._pending: dict[bytes, float] = {}
        self._check_handle: asyncio.TimerHandle | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._audio: AudioSender | None = None
        self._video: VideoSender | None = None
        self._layers: dict[int, VideoSender] = {}  # simulcast: SSRC → its layer's sender
        self._closed = False
        self._sending = False
        self.sent_packets = 0
        self._local_mids: list[tuple[str, str]] = []  # (mid, kind) in our last description
        self._next_mid = 0
        self.on_first_media: Callable[[], None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Bind the UDP socket; it is read directly (`recvmsg`) for the kernel's receive
        timestamps, so the one-way delay excludes this process's own scheduling lag."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RECV_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.port = sock.getsockname()[1]
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sending = False
        for handle in (self._check_handle, *self._timers):
            if handle is not None:
                handle.cancel()
        if self.dtls is not None:
            self.dtls.close()
        if self.sock is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        native = fastpath.native
        if native is not None:
            self._read_batch(native, sock)
            return
        recvmsg = sock.recvmsg
        offset = self._rt_offset
        for _ in range(READ_BATCH):
            try:
                data, ancillary, _flags, addr = recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("udp error: %s", exc)
                return
            if ancillary:
                sec, nsec = _TIMESPEC.unpack_from(ancillary[0][2])
                self._rx_ns = sec * 1_000_000_000 + nsec - offset
            else:
                self._rx_ns = time.monotonic_ns()
            if data:
                self._datagram(data, addr)

    def _read_batch(self, native: Any, sock: socket.socket) -> None:
        """`_readable` with the C fast path: one `recvmmsg` per batch, SRTP unprotected in C
        (so a load generator costs less CPU than the server it measures)."""
        dtls = self.dtls
        ctx = dtls.receive_context if dtls is not None else 0
        offset = self._rt_offset
        on_rtp = self._on_rtp
        for kind, data, ns, addr, _size in native.recv_batch(sock, READ_BATCH, ctx):
            self._rx_ns = ns - offset if ns else time.monotonic_ns()
            if kind == 1:
                on_rtp(data)
            elif kind == 0 and data:
                self._datagram(data, addr)
            # kind -1: SRTP that failed to unprotect, dropped as DtlsSrtpTransport does

    def _sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            sock.sendto(data, addr)
        except OSError:  # full buffer: dropped, as UDP would
            self.send_errors += 1

    # -- SDP ----------------------------------------------------------------------------------

    def _session_lines(self, mids: list[str]) -> list[str]:
        return [
            "v=0",
            f"o=- {random.getrandbits(62)} 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            f"a=group:BUNDLE {' '.join(mids)}",
            "a=msid-semantic: WMS *",
        ]

    def _transport_lines(self, setup: str) -> list[str]:
        return [
            "c=IN IP4 127.0.0.1",
            f"a=candidate:1 1 udp 2130706431 127.0.0.1 {self.port} typ host",
            "a=end-of-candidates",
            f"a=ice-ufrag:{self.ufrag}",
            f"a=ice-pwd:{self.pwd}",
            f"a=fingerprint:{self.certificate.fingerprint('sha-256')}",
            f"a=setup:{setup}",
        ]

    def _codec_lines(self, kind: str, pt: int) -> list[str]:
        if kind == "audio":
            return [
                f"a=rtpmap:{pt} opus/48000/2",
                f"a=fmtp:{pt} minptime=10;useinbandfec=1",
            ]
        return [
            f"a=rtpmap:{pt} VP8/90000",
            f"a=rtcp-fb:{pt} goog-remb",
            f"a=rtcp-fb:{pt} ccm fir",
            f"a=rtcp-fb:{pt} nack",
            f"a=rtcp-fb:{pt} nack pli",
        ]

    def _send_lines(self, track: SendTrack) -> list[str]:
        """msid and SSRC lines; a simulcast track's layers as Chrome (and twilio-video's SDP
        munging) write them: one ``a=ssrc-group:SIM`` of the layers' SSRCs, smallest first."""
        cname = self.stream_id[:16]
        lines = [f"a=msid:{self.stream_id} {track.track_id}"]
        ssrcs = track.layers or (track.ssrc,)
        if track.layers:
            lines.append(f"a=ssrc-group:SIM {' '.join(str(s) for s in track.layers)}")
        for ssrc in ssrcs:
            lines += [
                f"a=ssrc:{ssrc} cname:{cname}",
                f"a=ssrc:{ssrc} msid:{self.stream_id} {track.track_id}",
            ]
        return lines

    def offer(self, *, direction: str = "sendrecv", recv_kinds: tuple[str, ...] = ()) -> str:
        """Our first offer: one section per track we send (`direction`), plus recvonly
        sections of `recv_kinds` (a pure subscriber offers to receive audio and video)."""
        lines: list[str] = []
        sections: list[list[str]] = []
        mids: list[str] = []
        for track in self.tracks:
            mid = track.mid = str(self._next_mid)
            self._next_mid += 1
            pt = AUDIO_PT if track.kind == "audio" else VIDEO_PT
            section = [
                f"m={track.kind} 9 UDP/TLS/RTP/SAVPF {pt}",
                *self._transport_lines("actpass"),
                f"a=mid:{mid}",
                f"a={direction}",
                "a=rtcp-mux",
                *self._codec_lines(track.kind, pt),
                *self._send_lines(track),
            ]
            sections.append(section)
            mids.append(mid)
        for kind in recv_kinds:
            mid = str(self._next_mid)
            self._next_mid += 1
            pt = AUDIO_PT if kind == "audio" else VIDEO_PT
            sections.append(
                [
                    f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}",
                    *self._transport_lines("actpass"),
                    f"a=mid:{mid}",
                    "a=recvonly",
                    "a=rtcp-mux",
                    *self._codec_lines(kind, pt),
                ]
            )
            mids.append(mid)
        lines = self._session_lines(mids)
        for section in sections:
            lines.extend(section)
        return "\r\n".join(lines) + "\r\n"

    def apply_answer(self, text: str) -> None:
        """The remote answer to our offer: learn its transport and start ICE."""
        desc = sdplib.parse(text)
        self._learn_remote(desc)
        self._learn_receive(desc)

    def answer(self, text: str) -> str:
        """Answer a remote offer (a server's subscription offer): receive what it sends,
        keep sending our tracks where it receives them, reject what we cannot handle."""
        desc = sdplib.parse(text)
        self._learn_remote(desc)
        assert self.remote is not None
        by_mid = {t.mid: t for t in self.tracks if t.mid is not None}
        setup = self._answer_setup()
        mids: list[str] = []
        sections: list[list[str]] = []
        for media in desc.media:
            mid = media.mid or ""
            codec = self._pick_codec(media)
            if media.kind not in ("audio", "video") or codec is None or media.port == 0:
                sections.append(
                    [
                        f"m={media.kind} 0 {media.proto} {' '.join(media.formats)}",
                        "c=IN IP4 0.0.0.0",
                        f"a=mid:{mid}",
                    ]
                )
                continue
            remote_dir = media.effective_direction
            track = by_mid.get(mid)
            we_send = track is not None and remote_dir in ("sendrecv", "recvonly")
            we_recv = remote_dir in ("sendrecv", "sendonly")
            direction = (
                "sendrecv"
                if we_send and we_recv
                else "sendonly"
                if we_send
                else "recvonly"
                if we_recv
                else "inactive"
            )
            if we_recv:
                for ssrc in media.ssrc_ids:
                    self.recv[ssrc] = RecvInfo(media.kind, mid)
                    self.stats.kinds[ssrc] = media.kind
            section = [
                f"m={media.kind} 9 {media.proto} {codec.payload_type}",
                *self._transport_lines(setup),
                f"a=mid:{mid}",
                f"a={direction}",
                "a=rtcp-mux",
                f"a=rtpmap:{codec.rtpmap}",
            ]
            if codec.fmtp is not None:
                section.append(f"a=fmtp:{codec.fmtp}")
            section.extend(f"a=rtcp-fb:{codec.payload_type} {fb}" for fb in codec.feedback)
            if we_send and track is not None:
                section.extend(self._send_lines(track))
            sections.append(section)
            mids.append(mid)
        lines = self._session_lines(mids)
        for section in sections:
            lines.extend(section)
        return "\r\n".join(lines) + "\r\n"

    @staticmethod
    def _pick_codec(media: sdplib.MediaSection) -> sdplib.Codec | None:
        want = "opus" if media.kind == "audio" else "vp8"
        for codec in media.codecs:
            if codec.name.lower() == want:
                return codec
        return None

    def _answer_setup(self) -> str:
        if self.dtls is not None:
            return "passive" if self.dtls.is_server else "active"
        assert self.remote is not None
        return "passive" if self.remote.setup == "active" else "active"

    def _learn_receive(self, desc: sdplib.SessionDescription) -> None:
        for media in desc.media:
            if media.kind in ("audio", "video") and media.effective_direction in (
                "sendrecv",
                "sendonly",
            ):
                for ssrc in media.ssrc_ids:
                    self.recv[ssrc] = RecvInfo(media.kind, media.mid or "")
                    self.stats.kinds[ssrc] = media.kind

    def _learn_remote(self, desc: sdplib.SessionDescription) -> None:
        if self.remote is not None:
            return
        first = next((m for m in desc.media if m.port != 0), None)
        if first is None:
            raise ValueError("remote description has no accepted section")
        ufrag = first.ice_ufrag or desc.ice_ufrag
        pwd = first.ice_pwd or desc.ice_pwd
        fingerprints = first.fingerprints or desc.fingerprints
        setup = first.setup or desc.setup or "actpass"
        candidates = [
            c
            for m in desc.media
            for c in m.candidates
            if c.transport.lower() == "udp" and c.component == 1 and ":" not in c.address
        ]
        if not (ufrag and pwd and fingerprints and candidates):
            raise ValueError("remote description lacks ICE credentials, fingerprint or candidate")
        candidates.sort(key=lambda c: (c.address != "127.0.0.1", -c.priority))
        best = candidates[0]
        self.remote = _Remote(
            ufrag,
            pwd,
            (best.address, best.port),
            [(f.algorithm, f.value) for f in fingerprints],
            str(setup),
        )
        self._send_check()

    # -- ICE (controlling, full) ----------------------------------------------------------------

    def _send_check(self) -> None:
        if self._closed or self.remote is None or self.sock is None:
            return
        remote = self.remote
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{remote.ufrag}:{self.ufrag}"
        request.attributes["PRIORITY"] = 2130706431
        request.attributes["ICE-CONTROLLING"] = self._tie_breaker
        request.attributes["USE-CANDIDATE"] = None
        request.add_message_integrity(remote.pwd.encode())
        request.add_fingerprint()
        self._pending[request.transaction_id] = time.monotonic()
        if len(self._pending) > 64:
            self._pending.pop(next(iter(self._pending)))
        self._sendto(bytes(request), remote.addr)
        delay = CONSENT_INTERVAL if self.ice_connected.is_set() else CHECK_INTERVAL
        self._check_handle = asyncio.get_running_loop().call_later(delay, self._send_check)

    def _stun(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except (ValueError, struct.error):
            return
        if message.message_class == stun.Class.REQUEST:
            # Only a full remote agent checks; answer so its checks succeed too.
            response = stun.Message(
                message_method=stun.Method.BINDING,
                message_class=stun.Class.RESPONSE,
                transaction_id=message.transaction_id,
            )
            response.attributes["XOR-MAPPED-ADDRESS"] = addr
            response.add_message_integrity(self.pwd.encode())
            response.add_fingerprint()
            self._sendto(bytes(response), addr)
            return
        if self._pending.pop(message.transaction_id, None) is None:
            return
        if message.message_class == stun.Class.RESPONSE and not self.ice_connected.is_set():
            self.ice_connected.set()
            self._start_dtls()

    # -- DTLS-SRTP ------------------------------------------------------------------------------

    def _start_dtls(self) -> None:
        assert self.remote is not None
        remote = self.remote
        # Remote "active" (or our answer "passive") makes us the DTLS server.
        is_server = remote.setup == "active"
        self.dtls = DtlsSrtpTransport(
            self.certificate,
            is_server=is_server,
            remote_fingerprints=remote.fingerprints,
            send=self._send_datagram,
            on_rtp=self._on_rtp,
            on_rtcp=self._on_rtcp,
            on_data=lambda data: None,
            on_state=self._on_dtls_state,
            label=self.label,
        )
        if self.sock is not None:  # RTP goes straight from C to the socket (fast path)
            self.dtls.use_sender(self._send_datagram, (self.sock, remote.addr))
        self.dtls.start()

    def _send_datagram(self, data: bytes) -> None:
        if self.remote is not None:
            self._sendto(data, self.remote.addr)

    def _on_dtls_state(self, state: str) -> None:
        if state == "connected":
            self.dtls_connected.set()
            self._start_sending()
        elif state == "failed":
            self.failed = "dtls failed"

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        first = data[0]
        if first < 4:
            self._stun(data, addr)
        elif self.dtls is not None:
            self.dtls.datagram_received(data)

    # -- receiving --------------------------------------------------------------------------------

    def _on_rtp(self, packet: bytes) -> None:
        ssrc = int.from_bytes(packet[8:12], "big")
        stream = self.stats.streams.get(ssrc)
        if stream is None:
            kind = self.stats.kinds.get(ssrc)
            if kind is None:
                kind = self.stats.kinds[ssrc] = "audio" if packet[1] & 0x7F == AUDIO_PT else "video"
            stream = self.stats.streams[ssrc] = StreamStats(kind)  # type: ignore[arg-type]
            if self.on_first_media is not None:
                self.on_first_media()
        stream.feed(packet, self._rx_ns)

    def _on_rtcp(self, packet: bytes) -> None:
        offset = 0
        n = len(packet)
        while offset + 12 <= n:
            fmt = packet[offset] & 0x1F
            pt = packet[offset + 1]
            length = (int.from_bytes(packet[offset + 2 : offset + 4], "big") + 1) * 4
            if pt == 206 and fmt in (1, 4):
                self._keyframe_requested(packet, offset, fmt)
            offset += length

    def _keyframe_requested(self, packet: bytes, offset: int, fmt: int) -> None:
        """PLI (media SSRC in the header) or FIR (SSRC in the FCI): that layer's encoder
        makes a keyframe; the only video sender does whatever SSRC was named."""
        if self._video is not None:
            self._video.request_keyframe()
            return
        at = offset + 8 if fmt == 1 else offset + 12
        sender = self._layers.get(int.from_bytes(packet[at : at + 4], "big"))
        if sender is not None:
            sender.request_keyframe()

    # -- sending ----------------------------------------------------------------------------------

    def _start_sending(self) -> None:
        if self._sending or self.media is None or not self.tracks:
            return
        self._sending = True
        loop = asyncio.get_running_loop()
        now = loop.time()
        for track in self.tracks:
            if track.kind == "audio":
                self._audio = AudioSender(self.media, track.ssrc, AUDIO_PT)
                self._schedule(self._tick_audio, now + random.random() * 0.02, 0.02)
            elif track.layers:
                self._layers = {
                    ssrc: VideoSender(loop, ssrc, VIDEO_PT)
                    for ssrc, loop in zip(track.layers, self.simulcast, strict=True)
                }
                self._schedule(self._tick_layers, now + random.random() / 30, 1 / 30)
            else:
                self._video = VideoSender(self.media, track.ssrc, VIDEO_PT)
                self._schedule(self._tick_video, now + random.random() / 30, 1 / 30)

    def _schedule(self, tick: Callable[[], None], start: float, period: float) -> None:
        """Call `tick` every `period` seconds from `start`, drift-free (loop time)."""
        loop = asyncio.get_running_loop()
        slot = len(self._timers)
        due = start

        def run() -> None:
            nonlocal due
            if not self._sending:
                return
            tick()
            due += period
            now = loop.time()
            if due < now - 0.2:  # far behind (the process stalled): skip, do not burst
                due = now + period
            self._timers[slot] = loop.call_at(due, run)

        self._timers.append(loop.call_at(start, run))

    def _tick_audio(self) -> None:
        dtls = self.dtls
        if dtls is None or self._audio is None:
            return
        dtls.send_rtp(self._audio.next_packet(time.monotonic_ns()))
        self.sent_packets += 1

    def _tick_video(self) -> None:
        dtls = self.dtls
        if dtls is None or self._video is None:
            return
        packets = self._video.next_frame(time.monotonic_ns())
        for packet in packets:
            dtls.send_rtp(packet)
        self.sent_packets += len(packets)

    def _tick_layers(self) -> None:
        """One frame of every simulcast layer (captured at the same instant)."""
        dtls = self.dtls
        if dtls is None:
            return
        now = time.monotonic_ns()
        for sender in self._layers.values():
            packets = sender.next_frame(now)
            for packet in packets:
                dtls.send_rtp(packet)
            self.sent_packets += len(packets)


def set_process_name(name: str) -> None:
    """Best effort: name this process (shown by ps/top) for readable CPU accounting."""
    try:
        with open(f"/proc/{os.getpid()}/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass
