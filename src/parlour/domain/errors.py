"""The one error tree, with Twilio's codes.

Services raise these; the REST adapter (`parlour.api.errors`) and, later, signaling
translate them in one place. Never build an HTTP response inside a service.

::

    TwilioError(code, status, message)
    ├── AuthenticationError        20003 / 401
    ├── ForbiddenError             20403 / 403  (a bad or expired signed media URL)
    ├── NotFoundError              20404 / 404
    ├── MethodNotAllowedError      20004 / 405
    ├── InvalidParameterError      20001 / 400  (generic validation)
    ├── RoomError                  531xx / 400  (room create / update validation)
    ├── MediaDescriptionError      53403 / 400  (a client SDP the SFU cannot apply)
    ├── RecordingRulesError        53120 / 400
    ├── ParticipantStatusError     53209 / 400
    └── SubscribeRulesError        53215 / 400
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ForbiddenError",
    "InvalidParameterError",
    "MediaDescriptionError",
    "MethodNotAllowedError",
    "NotFoundError",
    "ParticipantStatusError",
    "RecordingRulesError",
    "RoomError",
    "SubscribeRulesError",
    "TwilioError",
    "more_info_url",
]


def more_info_url(code: int) -> str:
    """The Twilio documentation page for an error code."""
    return f"https://www.twilio.com/docs/errors/{code}"


class TwilioError(Exception):
    """An error with a Twilio error code and the HTTP status the REST API answers with."""

    code: int = 20500
    status: int = 500
    default_message: str = "Internal Server Error"

    def __init__(self, message: str | None = None, *, code: int | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message if message is not None else self.default_message
        super().__init__(f"{self.code}: {self.message}")

    @property
    def more_info(self) -> str:
        return more_info_url(self.code)


class AuthenticationError(TwilioError):
    code = 20003
    status = 401
    default_message = "Authenticate"


class ForbiddenError(TwilioError):
    code = 20403
    status = 403
    default_message = "Forbidden"


class NotFoundError(TwilioError):
    code = 20404
    status = 404
    default_message = "The requested resource was not found"

    @classmethod
    def for_path(cls, path: str) -> NotFoundError:
        """Twilio's wording: "The requested resource /Rooms/RM… was not found"."""
        return cls(f"The requested resource {path} was not found")


class MethodNotAllowedError(TwilioError):
    code = 20004
    status = 405
    default_message = "Method not allowed"


class InvalidParameterError(TwilioError):
    code = 20001
    status = 400
    default_message = "Invalid parameter"


class RoomError(TwilioError):
    """Room validation errors; the code says which (53100–53119)."""

    code = 53103
    status = 400
    default_message = "Unable to create Room"


ROOM_NAME_INVALID = 53100
ROOM_NAME_TOO_LONG = 53101
ROOM_NAME_INVALID_CHARS = 53102
ROOM_CREATE_FAILED = 53103
ROOM_NOT_FOUND = 53106
MAX_PARTICIPANTS_OUT_OF_RANGE = 53107
ROOM_TYPE_INVALID = 53108
TIMEOUT_OUT_OF_RANGE = 53109
STATUS_CALLBACK_METHOD_INVALID = 53110
STATUS_CALLBACK_INVALID = 53111
ROOM_STATUS_INVALID = 53112
ROOM_EXISTS = 53113
ROOM_COMPLETED = 53118


class MediaDescriptionError(TwilioError):
    """The server cannot apply a client's session description (bad or unsupported SDP)."""

    code = 53403
    status = 400
    default_message = "Server is unable to apply a remote media description"


class RecordingRulesError(TwilioError):
    code = 53120
    status = 400
    default_message = "Invalid Recording Rule(s)"


class ParticipantStatusError(TwilioError):
    code = 53209
    status = 400
    default_message = "Participant status is invalid"


class SubscribeRulesError(TwilioError):
    code = 53215
    status = 400
    default_message = "Invalid Subscribe Rule(s)"
