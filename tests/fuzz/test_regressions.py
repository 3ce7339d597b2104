"""Crashes the fuzzer found, as the smallest inputs that show them.

Each crash the fuzzers found, as a regression test of its fix.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from OpenSSL import crypto

from parlour.api.forms import Params
from parlour.domain import errors
from parlour.domain.rules import parse_rules
from parlour.media import rtcp
from parlour.media.dtls import Certificate, DtlsSrtpTransport, parse_fingerprint
from parlour.protocol import tokens

DEEP = "[" * 100_000


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("part", [0, 1])
def test_token_nested_deeper_than_the_stack_is_invalid(part: int) -> None:
    # Was RecursionError from json.loads: an unauthenticated WebSocket client's 500.
    segments = [_b64('{"alg":"HS256","cty":"twilio-fpa;v=1"}'), _b64("{}"), "sig"]
    segments[part] = _b64(DEEP)
    with pytest.raises(tokens.TokenError) as caught:
        tokens.decode_unverified(".".join(segments))
    assert caught.value.code == tokens.INVALID


def test_rtcp_nack_without_fci_is_skipped() -> None:
    # Was Nack(seqs=()), which bytes() could not encode (rtcp.nack needs a sequence number).
    empty_nack = bytes([0x81, 205, 0, 2]) + bytes(8)
    assert rtcp.parse_rtcp(empty_nack + rtcp.pli(1, 2)) == [rtcp.Pli(1, 2)]


@pytest.mark.parametrize("kind", ["subscribe", "recording"])
def test_rules_nested_deeper_than_the_stack_are_a_rules_error(kind: str) -> None:
    # Was RecursionError out of json.loads: a 500, not 53215. The nesting is now measured
    # (and limited) before the JSON is parsed.
    with pytest.raises((errors.SubscribeRulesError, errors.RecordingRulesError)):
        parse_rules('[{"type": ' + DEEP, kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"])
def test_date_filter_out_of_range_is_an_invalid_parameter(value: str) -> None:
    # Was OverflowError out of parse_date_filter's astimezone(UTC): a 500 on
    # GET /v1/Recordings?DateCreatedAfter=9999-12-31T23:59:59-23:59.
    with pytest.raises(errors.InvalidParameterError):
        Params([("DateCreatedAfter", value)]).date("DateCreatedAfter")


def test_dtls_peer_certificate_with_a_negative_serial_is_matched_without_parsing() -> None:
    # Was `to_cryptography()` in the verify callback: a CryptographyDeprecationWarning (an
    # error under pytest, and an exception in a future cryptography) out of the handshake.
    ours, theirs = Certificate.generate(), Certificate.generate()
    der = bytearray(
        crypto.dump_certificate(crypto.FILETYPE_ASN1, crypto.X509.from_cryptography(theirs.x509))
    )
    serial = der.index(bytes.fromhex("a003020102")) + 7  # version [0], then INTEGER tag, length
    der[serial] |= 0x80
    peer = crypto.load_certificate(crypto.FILETYPE_ASN1, bytes(der))
    digest = hashlib.sha256(der).digest().hex(":").upper()
    for fingerprint, expected in (
        (("sha-256", digest), True),
        (parse_fingerprint(theirs.fingerprint()), False),
    ):
        transport = DtlsSrtpTransport(
            ours, is_server=True, remote_fingerprints=[fingerprint], send=print,
            on_rtp=print, on_rtcp=print, on_data=print, on_state=print,
        )  # fmt: skip
        assert transport._verify(None, peer, 0, 0, 1) is expected  # type: ignore[arg-type]
