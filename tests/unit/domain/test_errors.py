"""One table of Twilio codes, with Twilio's messages; the token verifier's codes are its own."""

from __future__ import annotations

import pytest

from parlour.domain import errors
from parlour.domain.errors import MESSAGES, Code
from parlour.protocol import tokens


def test_every_code_has_a_message() -> None:
    assert set(MESSAGES) == set(Code)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (tokens.INVALID, Code.ACCESS_TOKEN_INVALID),
        (tokens.HEADER_INVALID, Code.ACCESS_TOKEN_HEADER_INVALID),
        (tokens.ISSUER_INVALID, Code.ACCESS_TOKEN_ISSUER_INVALID),
        (tokens.EXPIRED, Code.ACCESS_TOKEN_EXPIRED),
        (tokens.NOT_YET_VALID, Code.ACCESS_TOKEN_NOT_YET_VALID),
        (tokens.GRANTS_INVALID, Code.ACCESS_TOKEN_GRANTS_INVALID),
        (tokens.SIGNATURE_INVALID, Code.ACCESS_TOKEN_SIGNATURE_INVALID),
    ],
)
def test_token_codes_are_the_access_token_codes(value: int, code: Code) -> None:
    assert value == code


def test_every_access_token_code_has_a_token_constant() -> None:
    token_codes = {
        value
        for name, value in vars(tokens).items()
        if name.isupper() and isinstance(value, int) and 20100 < value < 20200
    }
    assert token_codes == {c for c in Code if c.name.startswith("ACCESS_TOKEN_")}


def test_an_error_takes_twilios_message_for_its_code() -> None:
    err = errors.RoomError(code=Code.ROOM_COMPLETED)
    assert (err.code, err.message, err.status) == (53118, "Room completed", 400)
    assert errors.RoomError("custom", code=Code.ROOM_EXISTS).message == "custom"
    assert errors.NotFoundError().message == MESSAGES[Code.NOT_FOUND]
    assert err.more_info == "https://www.twilio.com/docs/errors/53118"


def test_message_for_an_unknown_code() -> None:
    assert errors.message_for(Code.TRACK_NAME_IS_DUPLICATED) == "Track name is duplicated"
    assert errors.message_for(99999) == "Unknown error"
