"""Router lifecycle: the router owns its maps; closing producers, consumers and peers in any
order leaves nothing behind, and a consumer's owner hears when its producer closes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence

import pytest

from parlour.domain.ports import TrackDescriptor
from parlour.domain.sids import ParticipantSid, TrackSid
from parlour.media.dtls import Certificate
from parlour.media.negotiation import PublishedTrackInfo, SentTrackInfo, ServerCapabilities
from parlour.media.peer import Peer
from parlour.media.router import Consumer, DataConsumer, Producer, Router
from parlour.media.sdp import Codec
from parlour.media.udp import MediaSocket
from tests.unit.media.chrome_offer import AUDIO_ID, DATA_ID, OFFER, VIDEO_ID
from tests.unit.media.test_negotiation import client_answer_to

VP8 = Codec(96, "VP8", 90000)
ROOM = "RM" + "0" * 32


class Sink:
    def send_rtp(self, packet: bytes) -> None:
        pass

    def send_rtcp(self, packet: bytes) -> None:
        pass


class Tap:
    def __init__(self) -> None:
        self.fed = 0
        self.closed = 0

    def feed(self, packet: bytes) -> None:
        self.fed += 1

    def close(self) -> None:
        self.closed += 1


class Changes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def info(track: str) -> PublishedTrackInfo:
    return PublishedTrackInfo("1", track, "s", "video", (VP8,), (0x1111,), (), ())


def sent(track: str, ssrc: int) -> SentTrackInfo:
    return SentTrackInfo("0", track, "s", "video", ssrc, None, VP8, None, ())


def test_produce_consume_close_in_every_order_leaves_the_router_empty() -> None:
    steps = ("producer a", "producer b", "consumer a1", "consumer b1", "data", "data consumer")
    for order in itertools.permutations(steps):
        router = Router(ROOM)
        changes = Changes()
        router.observe(changes)
        lost: list[Consumer | DataConsumer] = []
        a = router.produce("PA", info("a"), lambda ssrc: None)
        b = router.produce("PB", info("b"), lambda ssrc: None)
        a1 = router.consume(a, sent("a", 1), Sink(), lost.append)
        b1 = router.consume(b, sent("b", 2), Sink(), lost.append)
        data = router.produce_data("PA", "chat")
        got: list[str | bytes] = []
        d1 = router.consume_data(data, "PB", got.append, lost.append)
        data.forward("hi")
        assert got == ["hi"] and changes.count == 3
        closers = {
            "producer a": a.close,
            "producer b": b.close,
            "consumer a1": a1.close,
            "consumer b1": b1.close,
            "data": data.close,
            "data consumer": d1.close,
        }
        for step in order:
            closers[step]()

        def before(x: str, y: str, order: tuple[str, ...] = order) -> bool:
            return order.index(x) < order.index(y)

        assert router.producers == {} and router.data_producers == {}
        assert a.consumers == [] and b.consumers == [] and data.consumers == []
        assert all(x.closed for x in (a, b, a1, b1, data, d1))
        # An owner hears of its consumer only when the producer went first.
        pairs = ((a1, "producer a", "consumer a1"), (b1, "producer b", "consumer b1"))
        expected = [c for c, p, own in (*pairs, (d1, "data", "data consumer")) if before(p, own)]
        assert sorted(map(id, lost)) == sorted(map(id, expected)), order
        router.unobserve(Changes())  # not registered: no error
        assert router.observers == 1
        assert changes.count == 6


def test_closing_a_producer_closes_its_consumers_and_its_tap() -> None:
    router = Router(ROOM)
    producer = router.produce("PA", info("a"), lambda ssrc: None)
    tap = Tap()
    producer.set_tap(tap)
    lost: list[Consumer] = []
    consumer = router.consume(producer, sent("a", 1), Sink(), lost.append)
    producer.forward(bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0x11, 0x11]) + b"x")
    assert tap.fed == 1
    producer.close()
    producer.close()
    assert lost == [consumer] and consumer.closed and tap.closed == 1
    assert producer.tap is None and producer.consumers == []
    with pytest.raises(ValueError):
        router.consume(producer, sent("a", 2), Sink())


def test_a_detached_tap_survives_its_producer() -> None:
    router = Router(ROOM)
    old = router.produce("PA", info("a"), lambda ssrc: None)
    tap = Tap()
    old.set_tap(tap)
    old.set_tap(None)
    new = router.produce("PA", info("a"), lambda ssrc: None)  # replaces (closes) the old one
    assert old.closed and not new.closed and tap.closed == 0
    assert router.producers == {("PA", "a"): new}


def test_batch_tells_observers_once() -> None:
    router = Router(ROOM)
    changes: list[int] = []
    router.observe(lambda: changes.append(1))
    with router.batch():
        p = router.produce("PA", info("a"), lambda ssrc: None)
        p.close()
        router.produce("PA", info("b"), lambda ssrc: None)
        assert changes == []
    assert changes == [1]
    with router.batch():
        pass
    assert changes == [1]


# -- peers ------------------------------------------------------------------------------------


class Listener:
    def __init__(self) -> None:
        self.offers: list[tuple[int, str]] = []
        self.subscribed: list[list[str]] = []
        self.failed: list[str] = []

    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        self.offers.append((revision, sdp))

    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None:
        self.subscribed.append([track for _sid, track in subscribed])

    def media_failed(self, reason: str) -> None:
        self.failed.append(reason)


@pytest.fixture
async def socket() -> AsyncIterator[MediaSocket]:
    sock = await MediaSocket.bind("127.0.0.1", 0)
    yield sock
    sock.close()
    await sock.wait_closed()


async def join(router: Router, socket: MediaSocket, sid: str) -> tuple[Peer, Listener]:
    listener = Listener()
    peer = Peer(
        room_sid=ROOM,
        participant_sid=sid,
        router=router,
        socket=socket,
        certificate=Certificate.generate(),
        listener=listener,
        capabilities=ServerCapabilities.default(("VP8", "H264")),
        on_close=lambda peer: None,
    )
    await peer.client_description("pc", "offer", 1, OFFER, [AUDIO_ID, VIDEO_ID, DATA_ID])
    return peer, listener


async def subscribe(peer: Peer, listener: Listener, publisher: str) -> None:
    tracks = [
        TrackDescriptor(TrackSid(f"MT{n:032d}"), track, kind, ParticipantSid(publisher))
        for n, (track, kind) in enumerate(((AUDIO_ID, "audio"), (VIDEO_ID, "video")))
    ]
    peer.set_subscriptions(tracks)
    await asyncio.sleep(0)  # the offer goes out on the next loop iteration
    revision, offer = listener.offers[-1]
    await peer.client_description("pc", "answer", revision, client_answer_to(offer), [])


@pytest.mark.parametrize("order", ["publisher first", "subscriber first"])
async def test_peers_closing_in_any_order_leave_the_router_empty(
    socket: MediaSocket, order: str
) -> None:
    router = Router(ROOM)
    alice, _ = await join(router, socket, "PA" + "1" * 32)
    bob, bob_hears = await join(router, socket, "PA" + "2" * 32)
    await subscribe(bob, bob_hears, alice.participant_sid)
    await subscribe(alice, _, bob.participant_sid)
    producers: list[Producer] = list(router.producers.values())
    assert len(producers) == 4
    consumers = [c for p in producers for c in p.consumers]
    assert len(consumers) == 4 and bob_hears.subscribed[-1] == [AUDIO_ID, VIDEO_ID]
    first, second = (alice, bob) if order == "publisher first" else (bob, alice)
    first.close()
    assert len(router.producers) == 2 and router.observers == 1
    await asyncio.sleep(0.01)
    second.close()
    assert router.is_empty()
    assert all(p.closed and p.consumers == [] for p in producers)
    assert all(c.closed for c in consumers)
    assert not second._consumers and not second._consumer_by_ssrc  # dropped when the source went
    await asyncio.sleep(0.01)  # the DTLS shutdown tasks


async def test_a_republished_track_moves_its_subscribers_to_the_new_producer(
    socket: MediaSocket,
) -> None:
    router = Router(ROOM)
    alice, _ = await join(router, socket, "PA" + "1" * 32)
    bob, bob_hears = await join(router, socket, "PA" + "2" * 32)
    await subscribe(bob, bob_hears, alice.participant_sid)
    old = alice.producers[VIDEO_ID]
    tap = Tap()
    alice.attach_tap(VIDEO_ID, tap)
    with router.batch():
        alice._remove_producer(VIDEO_ID, ended=False)
        alice._add_producer(old.info)
    new = alice.producers[VIDEO_ID]
    assert new is not old and old.closed and new.tap is tap and tap.closed == 0
    await asyncio.sleep(0.01)
    assert [c.producer for c in bob._consumers.values() if c.info.kind == "video"] == [new]
    alice.close()
    assert tap.closed == 1
    bob.close()
    assert router.is_empty()
    await asyncio.sleep(0.01)
