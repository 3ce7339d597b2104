"""Access Tokens: byte-identical to twilio-python's, and every verification failure coded."""

from __future__ import annotations

import jwt
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from parlour.protocol import tokens

ACCOUNT = "AC00000000000000000000000000000000"
KEY = "SK11111111111111111111111111111111"
SECRET = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"
VECTOR = (
    "eyJhbGciOiJIUzI1NiIsImN0eSI6InR3aWxpby1mcGE7dj0xIiwidHlwIjoiSldUIn0."
    "eyJqdGkiOiJTSzExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExLTE3MDAwMDAwMDAiLCJncmFudHMi"
    "OnsidmlkZW8iOnsicm9vbSI6IkRhaWx5U3RhbmR1cCJ9LCJpZGVudGl0eSI6ImFsaWNlIn0sImlzcyI6IlNL"
    "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTEiLCJleHAiOjE3MDAwMDM2MDAsIm5iZiI6MTcwMDAw"
    "MDAwMCwic3ViIjoiQUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCJ9."
    "gfG0LBpzsVPplyxUn0fr1qCZPLjViz383KxSwyRknNw"
)
NOW = 1700000000


def mint(**kw: object) -> str:
    args: dict[str, object] = dict(
        account_sid=ACCOUNT,
        key_sid=KEY,
        secret=SECRET,
        identity="alice",
        now=NOW,
        room="DailyStandup",
    )
    args.update(kw)
    return tokens.encode_token(**args)  # type: ignore[arg-type]


def test_matches_the_published_test_vector_byte_for_byte() -> None:
    assert mint() == VECTOR


def test_matches_twilio_python_for_other_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 1712345678.9)
    theirs = AccessToken(ACCOUNT, KEY, SECRET, identity="bob smith", ttl=600)
    theirs.add_grant(VideoGrant())
    assert mint(identity="bob smith", room=None, ttl=600, now=1712345678) == theirs.to_jwt()


def test_region_header_like_twilio_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: NOW)
    theirs = AccessToken(ACCOUNT, KEY, SECRET, identity="alice", region="ie1")
    theirs.add_grant(VideoGrant(room="DailyStandup"))
    assert mint(region="ie1") == theirs.to_jwt()


def test_verify_accepts_and_reads_claims() -> None:
    claims = tokens.verify_token(mint(), secret=SECRET, now=NOW + 10, account_sid=ACCOUNT)
    assert claims.identity == "alice"
    assert claims.video == tokens.VideoGrant(room="DailyStandup")
    assert claims.key_sid == KEY and claims.expires == NOW + 3600


def test_verify_accepts_pyjwt_reading() -> None:
    decoded = jwt.decode(mint(), SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert decoded["grants"] == {"video": {"room": "DailyStandup"}, "identity": "alice"}


@pytest.mark.parametrize(
    ("token", "kwargs", "code"),
    [
        ("not-a-token", {}, tokens.INVALID),
        ("a.b.c", {}, tokens.INVALID),
        (mint(), {"secret": "wrong"}, tokens.SIGNATURE_INVALID),
        (mint(), {"now": NOW + 3600 + 61}, tokens.EXPIRED),
        (mint(now=NOW + 1000), {"now": NOW}, tokens.NOT_YET_VALID),
        (mint(), {"account_sid": "AC" + "9" * 32}, tokens.ISSUER_INVALID),
        (mint(identity=""), {}, tokens.GRANTS_INVALID),
        (mint(ttl=86400 + 120), {}, tokens.EXPIRED),  # past Twilio's 24 h lifetime
        (mint(ttl=10**22), {}, tokens.EXPIRED),
        (mint(identity="x" * tokens.MAX_TOKEN_LENGTH), {}, tokens.INVALID),
    ],
)
def test_verify_failures_have_twilio_codes(
    token: str, kwargs: dict[str, object], code: int
) -> None:
    args: dict[str, object] = {"secret": SECRET, "now": NOW, "account_sid": ACCOUNT}
    args.update(kwargs)
    with pytest.raises(tokens.TokenError) as err:
        tokens.verify_token(token, **args)  # type: ignore[arg-type]
    assert err.value.code == code


def test_a_full_day_is_the_longest_lifetime() -> None:
    claims = tokens.verify_token(mint(ttl=86400), secret=SECRET, now=NOW, account_sid=ACCOUNT)
    assert claims.expires == NOW + 86400


def test_wrong_header_is_20102() -> None:
    other = jwt.encode({"iss": KEY}, SECRET, algorithm="HS256")
    with pytest.raises(tokens.TokenError) as err:
        tokens.verify_token(other, secret=SECRET, now=NOW, account_sid=ACCOUNT)
    assert err.value.code == tokens.HEADER_INVALID


def test_other_algorithms_are_refused() -> None:
    other = jwt.encode({"iss": KEY}, SECRET * 2, algorithm="HS512", headers={"cty": tokens.CTY})
    with pytest.raises(tokens.TokenError) as err:
        tokens.decode_unverified(other)
    assert err.value.code == tokens.HEADER_INVALID
