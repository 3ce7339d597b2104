"""`SrtpSession`: libsrtp through a preallocated buffer, failures as None."""

from __future__ import annotations

import os

import pylibsrtp
import pytest

from parlour.media.srtp import MAX_PACKET, SrtpSession

PROFILES = [
    pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
]


def pair(profile: int) -> tuple[SrtpSession, SrtpSession]:
    key = os.urandom(28 if profile == pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM else 30)
    out, into = pylibsrtp.Policy.SSRC_ANY_OUTBOUND, pylibsrtp.Policy.SSRC_ANY_INBOUND
    tx = pylibsrtp.Policy(key=key, ssrc_type=out, srtp_profile=profile)
    rx = pylibsrtp.Policy(key=key, ssrc_type=into, srtp_profile=profile)
    return SrtpSession(tx), SrtpSession(rx)


def rtp(seq: int, size: int = 1000) -> bytes:
    return bytes([0x80, 96]) + seq.to_bytes(2, "big") + bytes(8) + os.urandom(size)


@pytest.mark.parametrize("profile", PROFILES)
def test_rtp_round_trip_many_packets(profile: int) -> None:
    tx, rx = pair(profile)
    for seq in range(1, 300):
        packet = rtp(seq, 50 + seq)
        protected = tx.protect(packet)
        assert protected is not None and protected != packet
        assert len(protected) > len(packet)
        assert rx.unprotect(protected) == packet


@pytest.mark.parametrize("profile", PROFILES)
def test_rtcp_round_trip(profile: int) -> None:
    tx, rx = pair(profile)
    report = bytes([0x80, 201, 0, 1]) + os.urandom(4)
    protected = tx.protect_rtcp(report)
    assert protected is not None
    assert rx.unprotect_rtcp(protected) == report


def test_tampered_replayed_and_oversized_packets_are_refused_without_raising() -> None:
    tx, rx = pair(PROFILES[0])
    protected = tx.protect(rtp(7))
    assert protected is not None
    tampered = protected[:-1] + bytes([protected[-1] ^ 1])
    assert rx.unprotect(tampered) is None
    assert rx.unprotect(protected) is not None
    assert rx.unprotect(protected) is None  # replay
    assert rx.unprotect_rtcp(b"\x80\xc9\x00\x01" + bytes(20)) is None
    assert tx.protect(rtp(8, MAX_PACKET)) is None
    assert tx.protect_rtcp(bytes(MAX_PACKET + 1)) is None
    assert rx.unprotect(bytes(MAX_PACKET + 1)) is None
    assert rx.unprotect_rtcp(bytes(MAX_PACKET + 1)) is None


def test_results_are_independent_of_the_shared_buffer() -> None:
    tx, rx = pair(PROFILES[0])
    first = tx.protect(rtp(1))
    second = tx.protect(rtp(2))
    assert first is not None and second is not None
    assert rx.unprotect(first) is not None  # not overwritten by the second call
