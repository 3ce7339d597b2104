"""DataChannels on both ends of an in-memory DtlsSrtpTransport pair (no sockets)."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from collections import defaultdict
from collections.abc import Callable

import google_crc32c
import pytest
from aiortc.rtcsctptransport import RTCSctpTransport

from parlour.media.dtls import Certificate, DtlsSrtpTransport, parse_fingerprint
from parlour.media.sctp import ChannelInfo, DataChannels, Message, _DtlsAdapter
from tests.helpers import wait_for


class End:
    """One side: a DTLS transport, its DataChannels and what the callbacks saw."""

    def __init__(self, certificate: Certificate, *, is_server: bool, **options: int) -> None:
        self.certificate = certificate
        self.is_server = is_server
        self.peer: End | None = None
        self.auto_start = True
        self.channels: dict[str, ChannelInfo] = {}
        self.messages: defaultdict[str, list[Message]] = defaultdict(list)
        self.closed: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.wire = True  # deliver datagrams to the peer
        self.options = options
        self._dtls: DtlsSrtpTransport | None = None
        self._dc: DataChannels | None = None

    def setup(self, remote: Certificate) -> None:
        self._dtls = DtlsSrtpTransport(
            self.certificate,
            is_server=self.is_server,
            remote_fingerprints=[parse_fingerprint(remote.fingerprint())],
            send=self._send,
            on_rtp=lambda p: None,
            on_rtcp=lambda p: None,
            on_data=lambda d: self.dc.data_received(d),
            on_state=self._state,
        )
        self._dc = DataChannels(
            self._dtls,
            on_channel=self._on_channel,
            on_message=lambda label, m: self.messages[label].append(m),
            on_closed=self._on_closed,
            label="server" if self.is_server else "client",
            **self.options,
        )

    @property
    def dtls(self) -> DtlsSrtpTransport:
        assert self._dtls is not None
        return self._dtls

    @property
    def dc(self) -> DataChannels:
        assert self._dc is not None
        return self._dc

    def _on_channel(self, label: str, info: ChannelInfo) -> None:
        self.channels[label] = info
        self.events.append(("channel", label))

    def _on_closed(self, label: str) -> None:
        self.closed.append(label)
        self.events.append(("closed", label))

    def _state(self, state: str) -> None:
        if state == "connected" and self.auto_start:
            self.dc.start()

    def _send(self, datagram: bytes) -> None:
        peer = self.peer
        if peer is not None and self.wire:
            asyncio.get_running_loop().call_soon(peer.dtls.datagram_received, datagram)


def make_pair(**options: int) -> tuple[End, End]:
    server = End(Certificate.generate(), is_server=True, **options)
    client = End(Certificate.generate(), is_server=False, **options)
    server.peer, client.peer = client, server
    server.setup(client.certificate)
    client.setup(server.certificate)
    return server, client


def start(*ends: End) -> None:
    for end in ends:
        end.dtls.start()


def connected(*ends: End) -> Callable[[], str | None]:
    def check() -> str | None:
        states = [e.dc.state for e in ends]
        return None if all(s == "connected" for s in states) else f"SCTP {states}"

    return check


def got(end: End, label: str, count: int) -> Callable[[], str | None]:
    def check() -> str | None:
        n = len(end.messages[label])
        return None if n >= count else f"{n}/{count} messages on {label!r}"

    return check


async def close(*ends: End) -> None:
    for end in ends:
        await end.dc.close()
        end.dtls.close()
    # aiortc's fire-and-forget tasks finish within a few loop iterations.
    current = asyncio.current_task()
    await wait_for(
        lambda: None if all(t is current or t.done() for t in asyncio.all_tasks()) else "tasks left"
    )


def stream_id(end: End, label: str) -> int | None:
    rtc = end.dc._channels[label].rtc
    assert rtc is not None
    return rtc.id


def sctp_packet(chunks: bytes, tag: int = 0) -> bytes:
    header = struct.pack("!HHL", 5000, 5000, tag)
    crc = google_crc32c.value(header + b"\x00" * 4 + chunks)
    return header + struct.pack("<L", crc) + chunks


# -- the adapter contract (aiortc 1.16.0 privates) ----------------------------------------------


@pytest.mark.parametrize("is_server", [True, False])
async def test_adapter_gives_aiortc_the_dtls_role(is_server: bool) -> None:
    server, client = make_pair()
    end = server if is_server else client
    adapter = _DtlsAdapter(end.dtls)
    sctp = RTCSctpTransport(adapter, port=5000)  # type: ignore[arg-type]
    assert sctp.is_server is is_server
    assert adapter.transport.role == "controlled"
    assert adapter.state == "new"
    # Not connected: the packet is dropped and counted, never raised.
    await adapter._send_data(b"\x13\x88\x13\x88" + b"\x00" * 12)
    assert end.dtls.send_dropped == 1
    adapter._register_data_receiver(sctp)
    adapter._unregister_data_receiver(RTCSctpTransport(adapter))  # type: ignore[arg-type]
    assert adapter.receiver is sctp
    adapter._unregister_data_receiver(sctp)
    assert adapter.receiver is None


# -- channels both ways -------------------------------------------------------------------------


async def test_channels_both_ways_with_parity_and_queueing() -> None:
    server, client = make_pair()
    try:
        # Opened and written to before anything is connected: queued, not lost.
        assert server.dc.state == "new"
        assert server.dc.open_channel("MTabc", ordered=False, max_packet_life_time=500)
        for i in range(5):
            assert server.dc.send("MTabc", f"early {i}")
        assert server.dc.send("MTabc", b"\x00early-binary")
        assert server.dc.buffered_amount("MTabc") > 0
        assert not server.dc.is_open("MTabc")
        client.dc.open_channel("track-123", protocol="parlour")
        client.dc.send("track-123", "")
        client.dc.send("track-123", b"")
        start(server, client)
        await wait_for(connected(server, client))

        await wait_for(got(client, "MTabc", 6))
        assert client.channels["MTabc"] == ChannelInfo(ordered=False, max_packet_life_time=500)
        assert sorted(map(str, client.messages["MTabc"])) == sorted(
            [f"early {i}" for i in range(5)] + [str(b"\x00early-binary")]
        )
        await wait_for(got(server, "track-123", 2))
        assert server.channels["track-123"] == ChannelInfo(protocol="parlour")
        assert server.messages["track-123"] == ["", b""]

        # RFC 8832 §6: the DTLS server uses odd stream ids, the DTLS client even ones.
        assert stream_id(server, "MTabc") == 1
        assert stream_id(client, "track-123") == 0
        assert server.dc.is_open("MTabc") and server.dc.is_open("track-123")
        assert server.dc.channels == {
            "MTabc": ChannelInfo(ordered=False, max_packet_life_time=500),
            "track-123": ChannelInfo(protocol="parlour"),
        }

        # Ordered traffic after open, both ways, including a message that needs fragments.
        big = bytes(range(256)) * 100
        sent: list[Message] = [f"m{i}" if i % 2 else i.to_bytes(2, "big") for i in range(200)]
        sent.append(big)
        for message in sent:
            assert client.dc.send("track-123", message)
            assert server.dc.send("track-123", message)  # a peer's channel carries ours too
        await wait_for(got(server, "track-123", 2 + len(sent)))
        await wait_for(got(client, "track-123", len(sent)))
        assert server.messages["track-123"][2:] == sent
        assert client.messages["track-123"] == sent
        assert server.dc.dropped == client.dc.dropped == 0
        assert server.dc.errors == client.dc.errors == 0
    finally:
        await close(server, client)


async def test_mirrored_settings_relay() -> None:
    server, client = make_pair()
    try:
        start(server, client)
        await wait_for(connected(server, client))
        client.dc.open_channel("a", ordered=False, max_retransmits=0)
        await wait_for(lambda: None if "a" in server.channels else "no channel a")
        info = server.channels["a"]
        assert info == ChannelInfo(ordered=False, max_retransmits=0)
        server.dc.open_channel("mirror", **dataclasses.asdict(info))
        await wait_for(lambda: None if "mirror" in client.channels else "no mirror")
        assert client.channels["mirror"] == info
    finally:
        await close(server, client)


async def test_packets_before_start_are_kept() -> None:
    server, client = make_pair()
    server.auto_start = False
    try:
        client.dc.open_channel("x")
        client.dc.send("x", "hello")
        start(server, client)
        # The client's INIT reaches the server's DataChannels before it is started.
        await wait_for(lambda: None if server.dc._inbound else "no early packet")
        assert server.dc.state == "new"
        server.dc.start()
        server.dc.start()  # idempotent
        await wait_for(got(server, "x", 1))
        assert server.messages["x"] == ["hello"]
    finally:
        await close(server, client)


# -- labels -------------------------------------------------------------------------------------


async def test_peer_reopening_a_label_replaces_it_and_ours_are_refused() -> None:
    server, client = make_pair()
    try:
        start(server, client)
        await wait_for(connected(server, client))
        server.dc.open_channel("ours")
        client.dc.open_channel("track")
        await wait_for(lambda: None if "track" in server.channels else "no track")
        client.dc.send("track", "old")
        await wait_for(got(server, "track", 1))

        # The client loses track of its channel and opens the label again (bypassing the
        # DataChannels bookkeeping, as a browser with two channels of one label would).
        old = client.dc._channels.pop("track")
        client.dc.open_channel("track", ordered=False)
        client.dc.send("track", "new")
        await wait_for(got(server, "track", 2))
        assert server.events[-2:] == [("closed", "track"), ("channel", "track")]
        assert server.channels["track"] == ChannelInfo(ordered=False)
        assert server.dc.channels["track"] == ChannelInfo(ordered=False)
        assert old.rtc is not None
        await wait_for(lambda: None if old.rtc.readyState == "closed" else old.rtc.readyState)

        # A peer channel named like one of ours is refused and closed.
        client.dc._channels.pop("ours")
        client.dc.open_channel("ours")
        await wait_for(lambda: None if server.dc.refused == 1 else "not refused")
        await wait_for(lambda: None if "ours" in client.closed else f"client {client.closed}")
        assert server.dc.channels["ours"] == ChannelInfo()
        assert "ours" not in server.channels
        with pytest.raises(ValueError, match="in use"):
            server.dc.open_channel("ours")
    finally:
        await close(server, client)


async def test_close_channel_sends_pending_first_and_peer_sees_close() -> None:
    server, client = make_pair()
    try:
        start(server, client)
        await wait_for(connected(server, client))
        # Closed before the peer acknowledged it: what was queued still goes first.
        server.dc.open_channel("sub")
        server.dc.send("sub", "one")
        server.dc.send("sub", "two")
        server.dc.close_channel("sub")
        assert server.dc.channels == {}
        assert not server.dc.send("sub", "three")  # closing: refused
        await wait_for(got(client, "sub", 2))
        assert client.messages["sub"] == ["one", "two"]
        await wait_for(lambda: None if client.closed == ["sub"] else f"closed {client.closed}")
        assert server.closed == []  # not for our own close_channel()

        # The peer closes a channel: on_closed, and the label is free again.
        client.dc.open_channel("pub")
        await wait_for(lambda: None if "pub" in server.channels else "no pub")
        client.dc.close_channel("pub")
        await wait_for(lambda: None if server.closed == ["pub"] else f"closed {server.closed}")
        assert "pub" not in server.dc.channels
        server.dc.close_channel("pub")  # unknown now: ignored
        assert server.dc.open_channel("pub")

    finally:
        await close(server, client)


async def test_close_channel_before_start_discards_it() -> None:
    server, client = make_pair()
    try:
        server.dc.open_channel("never")
        server.dc.send("never", "lost")
        server.dc.close_channel("never")
        server.dc.open_channel("kept")
        start(server, client)
        await wait_for(lambda: None if "kept" in client.channels else "no channel")
        assert list(client.channels) == ["kept"]
        assert client.messages == {}
    finally:
        await close(server, client)


# -- limits and errors --------------------------------------------------------------------------


async def test_send_limits_drop_instead_of_raising() -> None:
    server, client = make_pair(remote_max_message_size=1000, max_buffered=2500)
    try:
        assert not server.dc.send("nope", "x")
        server.dc.open_channel("c")
        assert not server.dc.send("c", b"x" * 1001)  # over the peer's limit
        assert not server.dc.send("c", "é" * 501)  # 1002 bytes of UTF-8
        assert server.dc.send("c", b"x" * 1000)
        assert server.dc.send("c", b"x" * 1000)
        assert not server.dc.send("c", b"x" * 1000)  # 3000 > max_buffered
        assert server.dc.buffered_amount("c") == 2000
        assert server.dc.buffered_amount("nope") == 0
        assert server.dc.dropped == 4
        with pytest.raises(TypeError):
            server.dc.send("c", bytearray(b"x"))  # type: ignore[arg-type]
        start(server, client)
        await wait_for(got(client, "c", 2))
        await wait_for(lambda: None if server.dc.buffered_amount("c") == 0 else "buffered")
    finally:
        await close(server, client)


def test_open_channel_validation() -> None:
    server, _ = make_pair()
    with pytest.raises(ValueError, match="exclusive"):
        server.dc.open_channel("a", max_retransmits=1, max_packet_life_time=1)
    with pytest.raises(ValueError, match="outside"):
        server.dc.open_channel("a", max_retransmits=70000)
    with pytest.raises(ValueError, match="outside"):
        server.dc.open_channel("a", max_packet_life_time=-1)
    with pytest.raises(ValueError, match="too long"):
        server.dc.open_channel("a" * 65536)
    with pytest.raises(ValueError, match="negative"):
        DataChannels(
            server.dtls,
            on_channel=lambda label, info: None,
            on_message=lambda label, m: None,
            on_closed=lambda label: None,
            max_buffered=-1,
        )
    assert server.dc.open_channel("a")
    with pytest.raises(ValueError, match="in use"):
        server.dc.open_channel("a")


async def test_malformed_packets_and_protocol_violations_are_counted() -> None:
    server, client = make_pair()
    try:
        start(server, client)
        await wait_for(connected(server, client))
        client.dc.open_channel("c")
        await wait_for(lambda: None if "c" in server.channels else "no channel")
        for junk in (
            b"",
            b"\x00" * 3,
            b"\xff" * 64,  # bad checksum
            sctp_packet(b""),  # no chunk
            sctp_packet(struct.pack("!BBH", 0, 3, 8) + b"\x00" * 4),  # DATA chunk too short
            sctp_packet(struct.pack("!BBH", 1, 0, 200)),  # chunk longer than the packet
            sctp_packet(struct.pack("!BBH", 99, 0, 4)),  # unknown chunk, wrong tag
        ):
            server.dc.data_received(junk)
        await wait_for(lambda: None if not server.dc._inbound else "not processed")
        assert server.dc.errors == 1  # only the short DATA chunk gets past parse_packet

        # A DCEP OPEN on a stream already in use (aiortc asserts) over the real association.
        sctp = client.dc._sctp
        assert sctp is not None
        open_msg = struct.pack("!BBHLHH", 3, 0, 0, 0, 1, 0) + b"c"
        await sctp._send(stream_id(client, "c") or 0, 50, open_msg)
        await wait_for(lambda: None if server.dc.errors == 2 else f"errors {server.dc.errors}")

        client.dc.send("c", "still fine")
        await wait_for(got(server, "c", 1))
        assert server.messages["c"] == ["still fine"]
    finally:
        await close(server, client)


async def test_callback_errors_are_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    server, client = make_pair()

    def boom(label: str, message: Message) -> None:
        raise RuntimeError("bug in the relay")

    server.dc._on_message = boom
    try:
        start(server, client)
        await wait_for(connected(server, client))
        client.dc.open_channel("c")
        client.dc.send("c", "a")
        client.dc.send("c", "b")
        await wait_for(lambda: None if server.dc.callback_errors == 2 else "no errors yet")
        assert "callback failed" in caplog.text
        assert server.dc.errors == 0
    finally:
        await close(server, client)


# -- closing ------------------------------------------------------------------------------------


async def test_close_aborts_association_and_is_idempotent() -> None:
    server, client = make_pair()
    try:
        start(server, client)
        await wait_for(connected(server, client))
        client.dc.open_channel("pub")
        server.dc.open_channel("sub")
        await wait_for(lambda: None if "pub" in server.channels else "no pub")
        await wait_for(lambda: None if "sub" in client.channels else "no sub")

        await server.dc.close()
        await server.dc.close()
        assert server.dc.state == "closed"
        assert server.closed == []  # no callbacks after close()
        assert not server.dc.send("sub", "x")
        assert not server.dc.open_channel("later")
        server.dc.data_received(b"late")
        assert server.dc.recv_dropped == 1

        # The client gets our ABORT: its association and channels close.
        await wait_for(lambda: None if client.dc.state == "closed" else client.dc.state)
        assert sorted(client.closed) == ["pub", "sub"]
        assert client.dc.channels == {}
        assert not client.dc.open_channel("after")
    finally:
        await close(server, client)


async def test_start_after_dtls_closed_and_close_before_start() -> None:
    server, client = make_pair()
    server.dtls.close()
    server.dc.start()
    assert server.dc.state == "closed"
    await server.dc.close()
    await client.dc.close()
    assert client.dc.state == "closed"
    client.dc.start()  # closed: nothing happens
    assert client.dc._sctp is None
