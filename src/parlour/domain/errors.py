"""The one error tree, with Twilio's codes.

Services raise these; the REST adapter (`parlour.api.errors`) and signaling translate them
in one place. Never build an HTTP response inside a service. Every Twilio code Parlour uses
is a member of `Code`, with Twilio's message in `MESSAGES`: no numeric literal elsewhere.
(`parlour.protocol.tokens` names the seven Access Token codes its verifier raises, and a
unit test keeps them equal to these.)

::

    TwilioError(code, status, message)
    ├── AuthenticationError        20003 / 401
    ├── ForbiddenError             20403 / 403  (a bad or expired signed media URL)
    ├── NotFoundError              20404 / 404
    ├── MethodNotAllowedError      20004 / 405
    ├── InvalidParameterError      20001 / 400  (generic validation)
    ├── RequestTooLargeError       20001 / 413  (a body over MAX_BODY, api/forms.py)
    ├── RoomError                  531xx / 400  (room create / update validation)
    ├── MediaDescriptionError      53403 / 400  (a client SDP the SFU cannot apply)
    ├── RecordingRulesError        53120 / 400
    ├── ParticipantStatusError     53209 / 400
    └── SubscribeRulesError        53215 / 400
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Final

__all__ = [
    "MESSAGES",
    "AuthenticationError",
    "Code",
    "ForbiddenError",
    "InvalidParameterError",
    "MediaDescriptionError",
    "MethodNotAllowedError",
    "NotFoundError",
    "ParticipantStatusError",
    "RecordingRulesError",
    "RequestTooLargeError",
    "RoomError",
    "SubscribeRulesError",
    "TwilioError",
    "message_for",
    "more_info_url",
]


class Code(IntEnum):
    """Every Twilio error code Parlour sends or answers with (REST, signaling, callbacks).

    Names of the 20101–53501 codes follow the twilio-video SDK's error classes
    (`lib/util/twilio-video-errors.js`).
    """

    INVALID_PARAMETER = 20001
    AUTHENTICATE = 20003
    METHOD_NOT_ALLOWED = 20004
    ACCESS_TOKEN_INVALID = 20101
    ACCESS_TOKEN_HEADER_INVALID = 20102
    ACCESS_TOKEN_ISSUER_INVALID = 20103
    ACCESS_TOKEN_EXPIRED = 20104
    ACCESS_TOKEN_NOT_YET_VALID = 20105
    ACCESS_TOKEN_GRANTS_INVALID = 20106
    ACCESS_TOKEN_SIGNATURE_INVALID = 20107
    FORBIDDEN = 20403
    NOT_FOUND = 20404
    INTERNAL_SERVER_ERROR = 20500
    SIGNALING_CONNECTION_ERROR = 53000
    SIGNALING_CONNECTION_DISCONNECTED = 53001
    SIGNALING_CONNECTION_TIMEOUT = 53002
    SIGNALING_INCOMING_MESSAGE_INVALID = 53003
    SIGNALING_OUTGOING_MESSAGE_INVALID = 53004
    SIGNALING_SERVER_BUSY = 53006
    ROOM_NAME_INVALID = 53100
    ROOM_NAME_TOO_LONG = 53101
    ROOM_NAME_CHARS_INVALID = 53102
    ROOM_CREATE_FAILED = 53103
    ROOM_CONNECT_FAILED = 53104
    ROOM_MAX_PARTICIPANTS_EXCEEDED = 53105
    ROOM_NOT_FOUND = 53106
    ROOM_MAX_PARTICIPANTS_OUT_OF_RANGE = 53107
    ROOM_TYPE_INVALID = 53108
    ROOM_TIMEOUT_OUT_OF_RANGE = 53109
    ROOM_STATUS_CALLBACK_METHOD_INVALID = 53110
    ROOM_STATUS_CALLBACK_INVALID = 53111
    ROOM_STATUS_INVALID = 53112
    ROOM_EXISTS = 53113
    ROOM_INVALID_PARAMETERS = 53114
    ROOM_MEDIA_REGION_INVALID = 53115
    ROOM_MEDIA_REGION_UNAVAILABLE = 53116
    ROOM_SUBSCRIPTION_OPERATION_NOT_SUPPORTED = 53117
    ROOM_COMPLETED = 53118
    ROOM_RECORDING_RULES_INVALID = 53120
    ROOM_AUDIO_ONLY_FLAG_NOT_SUPPORTED = 53124
    ROOM_TRACK_KIND_NOT_SUPPORTED = 53125
    PARTICIPANT_IDENTITY_INVALID = 53200
    PARTICIPANT_IDENTITY_TOO_LONG = 53201
    PARTICIPANT_IDENTITY_CHARS_INVALID = 53202
    PARTICIPANT_MAX_TRACKS_EXCEEDED = 53203
    PARTICIPANT_NOT_FOUND = 53204
    PARTICIPANT_DUPLICATE_IDENTITY = 53205
    PARTICIPANT_STATUS_INVALID = 53209
    PARTICIPANT_SUBSCRIBE_RULES_INVALID = 53215
    TRACK_INVALID = 53300
    TRACK_NAME_INVALID = 53301
    TRACK_NAME_TOO_LONG = 53302
    TRACK_NAME_CHARS_INVALID = 53303
    TRACK_NAME_IS_DUPLICATED = 53304
    TRACK_SERVER_TRACK_CAPACITY_REACHED = 53305
    MEDIA_CLIENT_LOCAL_DESC_FAILED = 53400
    MEDIA_SERVER_LOCAL_DESC_FAILED = 53401
    MEDIA_CLIENT_REMOTE_DESC_FAILED = 53402
    MEDIA_SERVER_REMOTE_DESC_FAILED = 53403
    MEDIA_NO_SUPPORTED_CODEC = 53404
    MEDIA_CONNECTION_ERROR = 53405
    MEDIA_DTLS_TRANSPORT_FAILED = 53407
    CONFIGURATION_ACQUIRE_FAILED = 53500
    CONFIGURATION_ACQUIRE_TURN_FAILED = 53501
    INVALID_AWS_CREDENTIALS = 70106


MESSAGES: Final[Mapping[int, str]] = {
    Code.INVALID_PARAMETER: "Invalid parameter",
    Code.AUTHENTICATE: "Authenticate",
    Code.METHOD_NOT_ALLOWED: "Method not allowed",
    Code.ACCESS_TOKEN_INVALID: "Invalid Access Token",
    Code.ACCESS_TOKEN_HEADER_INVALID: "Invalid Access Token header",
    Code.ACCESS_TOKEN_ISSUER_INVALID: "Invalid Access Token issuer/subject",
    Code.ACCESS_TOKEN_EXPIRED: "Access Token expired or expiration date invalid",
    Code.ACCESS_TOKEN_NOT_YET_VALID: "Access Token not yet valid",
    Code.ACCESS_TOKEN_GRANTS_INVALID: "Invalid Access Token grants",
    Code.ACCESS_TOKEN_SIGNATURE_INVALID: "Invalid Access Token signature",
    Code.FORBIDDEN: "Forbidden",
    Code.NOT_FOUND: "The requested resource was not found",
    Code.INTERNAL_SERVER_ERROR: "Internal Server Error",
    Code.SIGNALING_CONNECTION_ERROR: "Signaling connection error",
    Code.SIGNALING_CONNECTION_DISCONNECTED: "Signaling connection disconnected",
    Code.SIGNALING_CONNECTION_TIMEOUT: "Signaling connection timed out",
    Code.SIGNALING_INCOMING_MESSAGE_INVALID: "Client received an invalid signaling message",
    Code.SIGNALING_OUTGOING_MESSAGE_INVALID: "Client sent an invalid signaling message",
    Code.SIGNALING_SERVER_BUSY: "Video server is busy",
    Code.ROOM_NAME_INVALID: "Room name is invalid",
    Code.ROOM_NAME_TOO_LONG: "Room name is too long",
    Code.ROOM_NAME_CHARS_INVALID: "Room name contains invalid characters",
    Code.ROOM_CREATE_FAILED: "Unable to create Room",
    Code.ROOM_CONNECT_FAILED: "Unable to connect to Room",
    Code.ROOM_MAX_PARTICIPANTS_EXCEEDED: "Room contains too many Participants",
    Code.ROOM_NOT_FOUND: "Room not found",
    Code.ROOM_MAX_PARTICIPANTS_OUT_OF_RANGE: "MaxParticipants is out of range",
    Code.ROOM_TYPE_INVALID: "RoomType is not valid",
    Code.ROOM_TIMEOUT_OUT_OF_RANGE: "Timeout is out of range",
    Code.ROOM_STATUS_CALLBACK_METHOD_INVALID: "StatusCallbackMethod is invalid",
    Code.ROOM_STATUS_CALLBACK_INVALID: "StatusCallback is invalid",
    Code.ROOM_STATUS_INVALID: "Status is invalid",
    Code.ROOM_EXISTS: "Room exists",
    Code.ROOM_INVALID_PARAMETERS: "Room creation parameter(s) incompatible with the Room type",
    Code.ROOM_MEDIA_REGION_INVALID: "MediaRegion is invalid",
    Code.ROOM_MEDIA_REGION_UNAVAILABLE: ("There are no media servers available in the MediaRegion"),
    Code.ROOM_SUBSCRIPTION_OPERATION_NOT_SUPPORTED: (
        "The subscription operation requested is not supported for the Room type"
    ),
    Code.ROOM_COMPLETED: "Room completed",
    Code.ROOM_RECORDING_RULES_INVALID: "Invalid Recording Rule(s)",
    Code.ROOM_AUDIO_ONLY_FLAG_NOT_SUPPORTED: (
        "The AudioOnly flag is not supported for the Room type"
    ),
    Code.ROOM_TRACK_KIND_NOT_SUPPORTED: "The track kind is not supported by the Room",
    Code.PARTICIPANT_IDENTITY_INVALID: "Participant identity is invalid",
    Code.PARTICIPANT_IDENTITY_TOO_LONG: "Participant identity is too long",
    Code.PARTICIPANT_IDENTITY_CHARS_INVALID: "Participant identity contains invalid characters",
    Code.PARTICIPANT_MAX_TRACKS_EXCEEDED: (
        "The maximum number of published tracks allowed in the Room at the same time "
        "has been reached"
    ),
    Code.PARTICIPANT_NOT_FOUND: "Participant not found",
    Code.PARTICIPANT_DUPLICATE_IDENTITY: "Participant disconnected because of duplicate identity",
    Code.PARTICIPANT_STATUS_INVALID: "Participant status is invalid",
    Code.PARTICIPANT_SUBSCRIBE_RULES_INVALID: "Invalid Subscribe Rule(s)",
    Code.TRACK_INVALID: "Track is invalid",
    Code.TRACK_NAME_INVALID: "Track name is invalid",
    Code.TRACK_NAME_TOO_LONG: "Track name is too long",
    Code.TRACK_NAME_CHARS_INVALID: "Track name contains invalid characters",
    Code.TRACK_NAME_IS_DUPLICATED: "Track name is duplicated",
    Code.TRACK_SERVER_TRACK_CAPACITY_REACHED: (
        "The server has reached capacity and cannot fulfill this request"
    ),
    Code.MEDIA_CLIENT_LOCAL_DESC_FAILED: (
        "Client is unable to create or apply a local media description"
    ),
    Code.MEDIA_SERVER_LOCAL_DESC_FAILED: (
        "Server is unable to create or apply a local media description"
    ),
    Code.MEDIA_CLIENT_REMOTE_DESC_FAILED: "Client is unable to apply a remote media description",
    Code.MEDIA_SERVER_REMOTE_DESC_FAILED: "Server is unable to apply a remote media description",
    Code.MEDIA_NO_SUPPORTED_CODEC: "No supported codec",
    Code.MEDIA_CONNECTION_ERROR: "Media connection failed or Media activity ceased",
    Code.MEDIA_DTLS_TRANSPORT_FAILED: "Media connection failed due to DTLS handshake failure",
    Code.CONFIGURATION_ACQUIRE_FAILED: "Unable to acquire configuration",
    Code.CONFIGURATION_ACQUIRE_TURN_FAILED: "Unable to acquire TURN credentials",
    Code.INVALID_AWS_CREDENTIALS: "Invalid AWS credentials",
}
"""Twilio's message for each code (the SDK shows these to apps for codes it knows)."""


def message_for(code: int) -> str:
    """Twilio's message for a code ("Unknown error" for one it has none for)."""
    return MESSAGES.get(code, "Unknown error")


def more_info_url(code: int) -> str:
    """The Twilio documentation page for an error code."""
    return f"https://www.twilio.com/docs/errors/{code}"


class TwilioError(Exception):
    """An error with a Twilio error code and the HTTP status the REST API answers with.

    `TwilioError(code=Code.X)` takes Twilio's message for the code unless one is given.
    """

    code: int = Code.INTERNAL_SERVER_ERROR
    status: int = 500
    default_message: str = "Internal Server Error"

    def __init__(self, message: str | None = None, *, code: int | None = None) -> None:
        if code is not None:
            self.code = code
        if message is None:
            message = MESSAGES.get(code, self.default_message) if code else self.default_message
        self.message = message
        super().__init__(f"{self.code}: {self.message}")

    @property
    def more_info(self) -> str:
        return more_info_url(self.code)


class AuthenticationError(TwilioError):
    code = Code.AUTHENTICATE
    status = 401
    default_message = "Authenticate"


class ForbiddenError(TwilioError):
    code = Code.FORBIDDEN
    status = 403
    default_message = "Forbidden"


class NotFoundError(TwilioError):
    code = Code.NOT_FOUND
    status = 404
    default_message = "The requested resource was not found"

    @classmethod
    def for_path(cls, path: str) -> NotFoundError:
        """Twilio's wording: "The requested resource /Rooms/RM… was not found"."""
        return cls(f"The requested resource {path} was not found")


class MethodNotAllowedError(TwilioError):
    code = Code.METHOD_NOT_ALLOWED
    status = 405
    default_message = "Method not allowed"


class InvalidParameterError(TwilioError):
    code = Code.INVALID_PARAMETER
    status = 400
    default_message = "Invalid parameter"


class RequestTooLargeError(TwilioError):
    """A request body over the server's limit (Twilio documents none; 413 as HTTP has it)."""

    code = Code.INVALID_PARAMETER
    status = 413
    default_message = "Request body too large"


class RoomError(TwilioError):
    """Room validation errors; the code says which (53100–53125)."""

    code = Code.ROOM_CREATE_FAILED
    status = 400
    default_message = "Unable to create Room"


class MediaDescriptionError(TwilioError):
    """The server cannot apply a client's session description (bad or unsupported SDP)."""

    code = Code.MEDIA_SERVER_REMOTE_DESC_FAILED
    status = 400
    default_message = "Server is unable to apply a remote media description"


class RecordingRulesError(TwilioError):
    code = Code.ROOM_RECORDING_RULES_INVALID
    status = 400
    default_message = "Invalid Recording Rule(s)"


class ParticipantStatusError(TwilioError):
    code = Code.PARTICIPANT_STATUS_INVALID
    status = 400
    default_message = "Participant status is invalid"


class SubscribeRulesError(TwilioError):
    code = Code.PARTICIPANT_SUBSCRIBE_RULES_INVALID
    status = 400
    default_message = "Invalid Subscribe Rule(s)"
