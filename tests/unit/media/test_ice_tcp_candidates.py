"""The SFU's passive TCP candidate (ICE-TCP, RFC 6544) in its answers."""

from __future__ import annotations

import random

import pytest

from parlour.media import sdp
from parlour.media.negotiation import LocalTransport, NegotiationError, PeerNegotiator
from tests.unit.media.test_negotiation import AUDIO_ID, CHROME_OFFER, FINGERPRINT, VIDEO_ID

TCP_LINE = "a=candidate:2 1 tcp 2124414975 192.0.2.1 40000 typ host tcptype passive\r\n"
UDP_LINE = "a=candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host\r\n"


def local(tcp_port: int | None) -> LocalTransport:
    return LocalTransport.generate(
        FINGERPRINT, "192.0.2.1", 40000, rng=random.Random(3), tcp_port=tcp_port
    )


def test_the_tcp_candidate_follows_the_udp_one_with_a_lower_priority() -> None:
    udp, tcp = local(40000).candidates
    assert (tcp.transport, tcp.type, tcp.extensions) == ("tcp", "host", (("tcptype", "passive"),))
    assert tcp.priority < udp.priority
    assert local(None).candidates == (udp,)


def test_answers_carry_both_candidates_in_every_live_section() -> None:
    rng = random.Random(7)
    neg = PeerNegotiator(local(40000), rng=rng)
    answer = neg.apply_client_offer(CHROME_OFFER, revision=1, track_ids=[AUDIO_ID, VIDEO_ID])
    assert answer is not None
    assert answer.sdp.count(UDP_LINE) == answer.sdp.count(TCP_LINE) == 3
    parsed = sdp.parse(answer.sdp)
    assert all(len(m.candidates) == 2 for m in parsed.media)


def test_an_ice_restart_keeps_the_tcp_port() -> None:
    neg = PeerNegotiator(local(40000), rng=random.Random(7))
    neg.apply_client_offer(CHROME_OFFER, revision=1, track_ids=[AUDIO_ID, VIDEO_ID])
    old = neg.local
    restarted = CHROME_OFFER.replace(f"a=ice-pwd:{_pwd(CHROME_OFFER)}", "a=ice-pwd:" + "x" * 24)
    answer = neg.apply_client_offer(restarted, revision=2, track_ids=[AUDIO_ID, VIDEO_ID])
    assert answer is not None
    assert neg.local.ice_ufrag != old.ice_ufrag and neg.local.tcp_port == 40000
    assert "tcptype passive" in answer.sdp


def _pwd(offer: str) -> str:
    return next(line for line in offer.splitlines() if line.startswith("a=ice-pwd:"))[10:]


@pytest.mark.parametrize("port", [0, 65536])
def test_a_tcp_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(NegotiationError, match="tcp_port"):
        local(port)
