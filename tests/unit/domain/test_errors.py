"""One table of Twilio codes: the wire's copies (for the SDK, which imports no domain) agree."""

from __future__ import annotations

import pytest

from parlour.domain import errors
from parlour.domain.errors import MESSAGES, Code
from parlour.protocol import signaling, tokens


@pytest.mark.parametrize("member", list(signaling.ErrorCode), ids=lambda m: m.name)
def test_every_signaling_code_is_the_domain_code_of_that_name(
    member: signaling.ErrorCode,
) -> None:
    assert Code[member.name] == member.value


def test_signaling_messages_are_twilios() -> None:
    assert set(signaling.ERROR_MESSAGES) <= {int(code) for code in Code}
    for code, message in signaling.ERROR_MESSAGES.items():
        assert MESSAGES[code] == message, code
    for member in signaling.ErrorCode:
        assert signaling.ERROR_MESSAGES.get(member) == MESSAGES[member], member.name


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
