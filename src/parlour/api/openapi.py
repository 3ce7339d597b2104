"""What `/openapi.json` says about each operation: parameters, form bodies, answers.

Names and types follow Twilio's own `twilio_video_v1` description (PascalCase parameters,
`application/x-www-form-urlencoded` bodies, Twilio's operation IDs); the response codes are
the ones this server really answers with. `tests/integration/test_schemathesis.py` fuzzes the
server against this document, so what it declares is checked on every run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.routing import Route

from parlour.api.forms import MAX_BODY
from parlour.api.pagination import MAX_PAGE

__all__ = ["OPERATIONS", "PATH_PARAMETERS", "Operation", "openapi_paths"]

Schema = dict[str, Any]

#: Starlette's `{name}` path parameters and the names Twilio's description gives them.
PATH_PARAMETERS = {
    "sid": "Sid",
    "room": "RoomSid",
    "participant": "ParticipantSid",
    "ttid": "Ttid",
    "account": "AccountSid",
    "name": "FileName",
}

_STRING: Schema = {"type": "string"}
_INTEGER: Schema = {"type": "integer"}
_BOOLEAN: Schema = {"type": "boolean"}
_DATE_TIME: Schema = {"type": "string", "format": "date-time"}
_JSON_TEXT: Schema = {
    "type": "string",
    "description": "A JSON document, as Twilio's libraries send it",
}
_SUBSCRIBE_RULES: Schema = {
    **_JSON_TEXT,
    "example": '[{"type": "include", "all": true}, {"type": "exclude", "kind": "video"}]',
}
_RECORDING_RULES: Schema = {
    **_JSON_TEXT,
    "example": '{"rules": [{"type": "include", "kind": "audio"}]}',
}
_HTTP_METHOD: Schema = {"type": "string", "enum": ["HEAD", "GET", "POST", "PATCH", "PUT", "DELETE"]}
_SID: Schema = {"type": "string", "pattern": "^[A-Z]{2}[0-9a-fA-F]{32}$"}


def _paging(max_size: int = 1000) -> dict[str, Schema]:
    return {
        "PageSize": {"type": "integer", "minimum": 1, "maximum": max_size},
        "Page": {"type": "integer", "minimum": 0, "maximum": MAX_PAGE},
        "PageToken": _STRING,
    }


#: The creation-date range every list endpoint filters on.
_CREATED_FILTERS: dict[str, Schema] = {
    "DateCreatedAfter": _DATE_TIME,
    "DateCreatedBefore": _DATE_TIME,
}
_ROOM_FILTERS: dict[str, Schema] = {
    "Status": {"type": "string", "enum": ["in-progress", "completed", "failed"]},
    "UniqueName": _STRING,
    **_CREATED_FILTERS,
}
_PARTICIPANT_FILTERS: dict[str, Schema] = {
    "Status": {"type": "string", "enum": ["connected", "disconnected", "reconnecting"]},
    "Identity": _STRING,
    **_CREATED_FILTERS,
}
_RECORDING_STATUS: Schema = {
    "type": "string",
    "enum": ["processing", "completed", "deleted", "failed"],
}
_ROOM_RECORDING_FILTERS: dict[str, Schema] = {
    "Status": _RECORDING_STATUS,
    "SourceSid": _SID,
    **_CREATED_FILTERS,
}
_RECORDING_FILTERS: dict[str, Schema] = {
    **_ROOM_RECORDING_FILTERS,
    "GroupingSid": {"type": "array", "items": _SID},
    "MediaType": {"type": "string", "enum": ["audio", "video", "data"]},
}
_MEDIA_QUERY: dict[str, Schema] = {
    "Ttl": {"type": "integer", "minimum": 1, "maximum": 3600},
    "ContentDisposition": _STRING,
}
_CREATE_ROOM: dict[str, Schema] = {
    "EnableTurn": _BOOLEAN,
    "Type": {"type": "string", "enum": ["go", "peer-to-peer", "group", "group-small"]},
    "UniqueName": _STRING,
    "StatusCallback": {"type": "string", "format": "uri"},
    "StatusCallbackMethod": _HTTP_METHOD,
    "MaxParticipants": _INTEGER,
    "RecordParticipantsOnConnect": _BOOLEAN,
    "TranscribeParticipantsOnConnect": _BOOLEAN,
    "VideoCodecs": {"type": "array", "items": {"type": "string", "enum": ["VP8", "H264"]}},
    "MediaRegion": _STRING,
    "RecordingRules": _RECORDING_RULES,
    "TranscriptionsConfiguration": _JSON_TEXT,
    "AudioOnly": _BOOLEAN,
    "MaxParticipantDuration": _INTEGER,
    "EmptyRoomTimeout": _INTEGER,
    "UnusedRoomTimeout": _INTEGER,
    "LargeRoom": _BOOLEAN,
}

_ERROR: Schema = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string"},
        "status": {"type": "integer"},
    },
}


def _page_schema(key: str) -> Schema:
    return {
        "type": "object",
        "required": [key, "meta"],
        "properties": {
            key: {"type": "array", "items": {"type": "object"}},
            "meta": {
                "type": "object",
                "required": ["page", "page_size", "first_page_url", "url", "key"],
            },
        },
    }


def _resource_schema(*required: str) -> Schema:
    return {"type": "object", "required": list(required)}


_DESCRIPTIONS = {
    "200": "OK",
    "201": "Created",
    "202": "Accepted",
    "204": "No Content: done",
    "206": "Partial Content: the requested byte range",
    "302": "Found: `Location` (and `redirect_to`) is a temporary URL of the media",
    "400": "Invalid parameter (Twilio error body)",
    "401": "Missing or wrong credentials (20003)",
    "403": "The media URL is invalid or has expired (20403)",
    "404": "Not found (20404)",
    "405": "Method not allowed (20004)",
    "413": f"Request body over {MAX_BODY} bytes (20001)",
    "416": "Range Not Satisfiable",
}


class Operation:
    """One documented operation: its Twilio operation ID, inputs and answers.

    `ok` is the answer to a request that succeeds; `errors` the other codes it gives;
    `schema` the JSON body of `ok`.
    """

    def __init__(
        self,
        operation_id: str,
        *,
        ok: str = "200",
        schema: Schema | None = None,
        body: dict[str, Schema] | None = None,
        required: Sequence[str] = (),
        query: dict[str, Schema] | None = None,
        headers: dict[str, Schema] | None = None,
        errors: Sequence[str] = ("400", "401", "404"),
        authenticated: bool = True,
        media_types: Sequence[str] = ("application/json",),
    ) -> None:
        self.operation_id = operation_id
        self.ok = ok
        self.schema = schema if schema is not None else {"type": "object"}
        self.body = body
        self.required = tuple(required)
        self.query = query or {}
        self.headers = headers or {}
        self.errors = tuple(errors)
        self.authenticated = authenticated
        self.media_types = tuple(media_types)

    def parameters(self, path_names: Sequence[str]) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": _STRING} for name in path_names
        ]
        for name, schema in self.query.items():
            param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
            if schema.get("type") == "array":
                param |= {"style": "form", "explode": True}
            params.append(param)
        for name, schema in self.headers.items():
            params.append({"name": name, "in": "header", "schema": schema})
        return params

    def request_body(self) -> dict[str, Any] | None:
        if self.body is None:
            return None
        schema: Schema = {"type": "object", "properties": self.body}
        if self.required:
            schema["required"] = list(self.required)
        encoding = {
            name: {"style": "form", "explode": True}
            for name, prop in self.body.items()
            if prop.get("type") == "array"
        }
        media: dict[str, Any] = {"schema": schema}
        if encoding:
            media["encoding"] = encoding
        return {
            "required": bool(self.required),
            "content": {"application/x-www-form-urlencoded": media},
        }

    def responses(self) -> dict[str, Any]:
        codes = [self.ok, *self.errors]
        if self.body is not None:
            codes.append("413")
        out: dict[str, Any] = {}
        for code in codes:
            entry: dict[str, Any] = {"description": _DESCRIPTIONS[code]}
            if code == self.ok and code != "204":
                entry["content"] = {m: {"schema": self.schema} for m in self.media_types}
            elif code in ("206", "416"):
                entry["content"] = {m: {} for m in self.media_types}
            elif code != "204":
                entry["content"] = {"application/json": {"schema": _ERROR}}
            if code == "302":
                entry["headers"] = {"Location": {"required": True, "schema": _STRING}}
            if code == "401":
                entry["headers"] = {"WWW-Authenticate": {"required": True, "schema": _STRING}}
            out[code] = entry
        return out

    def describe(self, path_names: Sequence[str], summary: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "operationId": self.operation_id,
            "summary": summary,
            "parameters": self.parameters(path_names),
            "security": [{"basic": []}] if self.authenticated else [],
            "responses": self.responses(),
        }
        body = self.request_body()
        if body is not None:
            doc["requestBody"] = body
        return doc


_op = Operation


def _list_op(
    name: str, key: str, filters: dict[str, Schema] | None = None, max_size: int = 1000
) -> Operation:
    """A top-level list (`List{name}`, items under `key`): filters and paging in the query;
    nothing to be missing, so no 404."""
    return _op(
        f"List{name}",
        query={**(filters or {}), **_paging(max_size)},
        errors=("400", "401"),
        schema=_page_schema(key),
    )


_ROOMS = "/v1/Rooms"
_ROOM = "/v1/Rooms/{sid}"
_PARTS = "/v1/Rooms/{room}/Participants"
_PART = "/v1/Rooms/{room}/Participants/{sid}"
_PUB = "/v1/Rooms/{room}/Participants/{participant}/PublishedTracks"
_SUB = "/v1/Rooms/{room}/Participants/{participant}/SubscribedTracks"
_SUB_RULES = "/v1/Rooms/{room}/Participants/{participant}/SubscribeRules"
_REC_RULES = "/v1/Rooms/{room}/RecordingRules"
_TRANS = "/v1/Rooms/{room}/Transcriptions"
_ROOM_RECS = "/v1/Rooms/{room}/Recordings"
_RECS = "/v1/Recordings"
_RETENTION = "/v1/Parlour/Retention"
_ACCOUNT_RETENTION = "/v1/Parlour/Accounts/{account}/Retention"

_ROOM_JSON = _resource_schema("sid", "status", "account_sid", "url", "links")
_PART_JSON = _resource_schema("sid", "room_sid", "identity", "status", "url")
_TRACK_JSON = _resource_schema("sid", "participant_sid", "room_sid", "kind", "url")
_RULES_JSON = _resource_schema("room_sid", "rules")
_TRANSCRIPTION_JSON = _resource_schema("ttid", "room_sid", "status", "configuration", "url")
_RECORDING_JSON = _resource_schema("sid", "status", "type", "url", "links")
_REDIRECT_JSON = _resource_schema("redirect_to")
_NOT_FOUND_ONLY = ("401", "404")
_DAYS: Schema = {
    "type": "string",
    "pattern": "^([0-9]+|never)$",
    "description": "Whole days from 1 to 36500, or `never` (Parlour extension)",
}
_RETENTION_BODY = {"IdentityDays": _DAYS, "RecordingDays": _DAYS, "CallbackDays": _DAYS}
_RETENTION_JSON = _resource_schema(
    "account_sid", "identity_days", "recording_days", "callback_days", "default", "url"
)


_CR_SID: Schema = {"type": "string", "pattern": "^CR[0-9a-fA-F]{32}$"}
_SETTINGS_BODY: dict[str, Schema] = {
    "FriendlyName": _STRING,
    "AwsCredentialsSid": _CR_SID,
    "EncryptionKeySid": _CR_SID,
    "AwsS3Url": {"type": "string", "format": "uri"},
    "AwsStorageEnabled": _BOOLEAN,
    "EncryptionEnabled": _BOOLEAN,
}
_SETTINGS_JSON = _resource_schema("account_sid", "aws_storage_enabled", "encryption_enabled", "url")
_CREDENTIAL_JSON = _resource_schema("sid", "account_sid", "url")


def _settings_ops(path: str, name: str) -> dict[tuple[str, str], Operation]:
    """Fetch and Create of a `*Settings/Default` singleton."""
    return {
        ("GET", path): _op(f"Fetch{name}", errors=("401",), schema=_SETTINGS_JSON),
        ("POST", path): _op(
            f"Create{name}",
            body=_SETTINGS_BODY,
            required=("FriendlyName",),
            errors=("400", "401"),
            schema=_SETTINGS_JSON,
        ),
    }


def _credential_ops(
    path: str, name: str, secret: dict[str, Schema]
) -> dict[tuple[str, str], Operation]:
    """The Accounts API's create/list/fetch/update/delete of one kind of credential."""
    create_body = {**secret, "FriendlyName": _STRING, "AccountSid": _SID}
    return {
        ("POST", path): _op(
            f"Create{name}",
            ok="201",
            body=create_body,
            required=tuple(secret),
            errors=("400", "401"),
            schema=_CREDENTIAL_JSON,
        ),
        ("GET", path): _list_op(name, "credentials"),
        ("GET", path + "/{sid}"): _op(
            f"Fetch{name}", errors=_NOT_FOUND_ONLY, schema=_CREDENTIAL_JSON
        ),
        ("POST", path + "/{sid}"): _op(
            f"Update{name}", body={"FriendlyName": _STRING}, schema=_CREDENTIAL_JSON
        ),
        ("DELETE", path + "/{sid}"): _op(f"Delete{name}", ok="204", errors=_NOT_FOUND_ONLY),
    }


def _track_ops(path: str, name: str, key: str) -> dict[tuple[str, str], Operation]:
    """List and Fetch of one participant's tracks (`name`, e.g. RoomParticipantPublishedTrack)."""
    return {
        ("GET", path): _op(f"List{name}", query=_paging(), schema=_page_schema(key)),
        ("GET", path + "/{sid}"): _op(f"Fetch{name}", errors=_NOT_FOUND_ONLY, schema=_TRACK_JSON),
    }


def _recording_ops(path: str, name: str) -> dict[tuple[str, str], Operation]:
    """Fetch, Delete and Fetch…Media of the recording at `path` (Recording, RoomRecording)."""
    return {
        ("GET", path): _op(f"Fetch{name}", errors=_NOT_FOUND_ONLY, schema=_RECORDING_JSON),
        ("DELETE", path): _op(f"Delete{name}", ok="204"),
        ("GET", path + "/Media"): _op(
            f"Fetch{name}Media", ok="302", query=_MEDIA_QUERY, schema=_REDIRECT_JSON
        ),
    }


#: (method, Starlette path) → its description.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", _ROOMS): _list_op("Room", "rooms", _ROOM_FILTERS),
    ("POST", _ROOMS): _op(
        "CreateRoom", ok="201", body=_CREATE_ROOM, errors=("400", "401"), schema=_ROOM_JSON
    ),
    ("GET", _ROOM): _op("FetchRoom", errors=_NOT_FOUND_ONLY, schema=_ROOM_JSON),
    ("POST", _ROOM): _op(
        "UpdateRoom",
        ok="202",
        body={"Status": {"type": "string", "enum": ["completed"]}},
        required=("Status",),
        schema=_ROOM_JSON,
    ),
    ("GET", _PARTS): _op(
        "ListRoomParticipant",
        query={**_PARTICIPANT_FILTERS, **_paging()},
        schema=_page_schema("participants"),
    ),
    ("GET", _PART): _op("FetchRoomParticipant", errors=_NOT_FOUND_ONLY, schema=_PART_JSON),
    ("POST", _PART): _op(
        "UpdateRoomParticipant",
        ok="202",
        body={"Status": {"type": "string", "enum": ["connected", "disconnected"]}},
        schema=_PART_JSON,
    ),
    ("POST", _PART + "/Anonymize"): _op(
        "UpdateRoomParticipantAnonymize", body={}, errors=_NOT_FOUND_ONLY, schema=_PART_JSON
    ),
    **_track_ops(_PUB, "RoomParticipantPublishedTrack", "published_tracks"),
    **_track_ops(_SUB, "RoomParticipantSubscribedTrack", "subscribed_tracks"),
    ("GET", _SUB_RULES): _op(
        "FetchRoomParticipantSubscribeRule",
        errors=_NOT_FOUND_ONLY,
        schema=_resource_schema("participant_sid", "room_sid", "rules"),
    ),
    ("POST", _SUB_RULES): _op(
        "UpdateRoomParticipantSubscribeRule",
        body={"Rules": _SUBSCRIBE_RULES},
        schema=_resource_schema("participant_sid", "room_sid", "rules"),
    ),
    ("GET", _REC_RULES): _op("FetchRoomRecordingRule", errors=_NOT_FOUND_ONLY, schema=_RULES_JSON),
    ("POST", _REC_RULES): _op(
        "UpdateRoomRecordingRule", body={"Rules": _RECORDING_RULES}, schema=_RULES_JSON
    ),
    ("GET", _TRANS): _op(
        "ListRoomTranscriptions", query=_paging(), schema=_page_schema("transcriptions")
    ),
    ("POST", _TRANS): _op(
        "CreateRoomTranscriptions",
        ok="202",
        body={"Configuration": _JSON_TEXT},
        schema=_TRANSCRIPTION_JSON,
    ),
    ("GET", _TRANS + "/{ttid}"): _op("FetchRoomTranscriptions", schema=_TRANSCRIPTION_JSON),
    ("POST", _TRANS + "/{ttid}"): _op(
        "UpdateRoomTranscriptions",
        ok="202",
        body={"Status": _STRING, "Configuration": _JSON_TEXT},
        schema=_TRANSCRIPTION_JSON,
    ),
    ("GET", _ROOM_RECS): _op(
        "ListRoomRecording",
        query={**_ROOM_RECORDING_FILTERS, **_paging()},
        schema=_page_schema("recordings"),
    ),
    **_recording_ops(_ROOM_RECS + "/{sid}", "RoomRecording"),
    ("GET", _RECS): _list_op("Recording", "recordings", _RECORDING_FILTERS, 100),
    **_recording_ops(_RECS + "/{sid}", "Recording"),
    ("GET", _RETENTION): _op("FetchParlourRetention", errors=("401",), schema=_RETENTION_JSON),
    ("POST", _RETENTION): _op(
        "UpdateParlourRetention",
        body=_RETENTION_BODY,
        errors=("400", "401"),
        schema=_RETENTION_JSON,
    ),
    ("GET", _ACCOUNT_RETENTION): _op(
        "FetchParlourAccountRetention", errors=_NOT_FOUND_ONLY, schema=_RETENTION_JSON
    ),
    ("POST", _ACCOUNT_RETENTION): _op(
        "UpdateParlourAccountRetention", body=_RETENTION_BODY, schema=_RETENTION_JSON
    ),
    **_settings_ops("/v1/RecordingSettings/Default", "RecordingSettings"),
    **_settings_ops("/v1/CompositionSettings/Default", "CompositionSettings"),
    **_credential_ops("/v1/Credentials/AWS", "CredentialAws", {"Credentials": _STRING}),
    **_credential_ops("/v1/Credentials/PublicKeys", "CredentialPublicKey", {"PublicKey": _STRING}),
    ("GET", "/media/{account}/{name}"): _op(
        "FetchMediaFile",
        query={"Expires": _INTEGER, "ContentDisposition": _STRING, "Signature": _STRING},
        headers={
            "Range": {
                "type": "string",
                "description": "`bytes=first-last` (one range); anything else is ignored",
            }
        },
        errors=("206", "403", "404", "416"),
        authenticated=False,
        media_types=(
            "audio/x-matroska",
            "video/x-matroska",
            "video/mp4",
            "video/webm",
            "audio/mp4",
            "audio/webm",
            "application/octet-stream",
        ),
        schema={},
    ),
}

_COMPS = "/v1/Compositions"
_HOOKS = "/v1/CompositionHooks"
_COMPOSITION_JSON = _resource_schema("sid", "status", "room_sid", "format", "url", "links")
_HOOK_JSON = _resource_schema("sid", "friendly_name", "enabled", "url")
_COMPOSITION_SPEC: dict[str, Schema] = {
    "VideoLayout": _JSON_TEXT,
    "AudioSources": {"type": "array", "items": _STRING},
    "AudioSourcesExcluded": {"type": "array", "items": _STRING},
    "Resolution": _STRING,
    "Format": {"type": "string", "enum": ["mp4", "webm"]},
    "StatusCallback": {"type": "string", "format": "uri"},
    "StatusCallbackMethod": {"type": "string", "enum": ["GET", "POST"]},
    "Trim": _BOOLEAN,
}
_HOOK_BODY: dict[str, Schema] = {"FriendlyName": _STRING, "Enabled": _BOOLEAN, **_COMPOSITION_SPEC}
OPERATIONS.update(
    {
        ("GET", _COMPS): _list_op(
            "Composition",
            "compositions",
            {
                "Status": {
                    "type": "string",
                    "enum": ["enqueued", "processing", "completed", "deleted", "failed"],
                },
                "RoomSid": _SID,
                **_CREATED_FILTERS,
            },
            100,
        ),
        ("POST", _COMPS): _op(
            "CreateComposition",
            ok="201",
            body={"RoomSid": _SID, **_COMPOSITION_SPEC},
            required=("RoomSid",),
            schema=_COMPOSITION_JSON,
        ),
        ("GET", _COMPS + "/{sid}"): _op(
            "FetchComposition", errors=_NOT_FOUND_ONLY, schema=_COMPOSITION_JSON
        ),
        ("DELETE", _COMPS + "/{sid}"): _op("DeleteComposition", ok="204"),
        ("GET", _COMPS + "/{sid}/Media"): _op(
            "FetchCompositionMedia", ok="302", query=_MEDIA_QUERY, schema=_REDIRECT_JSON
        ),
        ("GET", _HOOKS): _list_op(
            "CompositionHook",
            "composition_hooks",
            {"Enabled": _BOOLEAN, "FriendlyName": _STRING, **_CREATED_FILTERS},
        ),
        ("POST", _HOOKS): _op(
            "CreateCompositionHook",
            ok="201",
            body=_HOOK_BODY,
            required=("FriendlyName",),
            errors=("400", "401"),
            schema=_HOOK_JSON,
        ),
        ("GET", _HOOKS + "/{sid}"): _op(
            "FetchCompositionHook", errors=_NOT_FOUND_ONLY, schema=_HOOK_JSON
        ),
        ("POST", _HOOKS + "/{sid}"): _op(
            "UpdateCompositionHook",
            body=_HOOK_BODY,
            required=("FriendlyName",),
            schema=_HOOK_JSON,
        ),
        ("DELETE", _HOOKS + "/{sid}"): _op(
            "DeleteCompositionHook", ok="204", errors=("401", "404")
        ),
    }
)


def openapi_paths(routes: Sequence[Route]) -> dict[str, dict[str, Any]]:
    """The `paths` of the document: every method of every route, with its description.

    Raises:
        KeyError: a route has no entry in `OPERATIONS` (kept complete by a unit test).
    """
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = route.path
        for name, public in PATH_PARAMETERS.items():
            path = path.replace("{" + name + "}", "{" + public + "}")
        names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            op = OPERATIONS[(method, route.path)]
            words = re.sub(r"(?<!^)([A-Z])", r" \1", op.operation_id).capitalize()
            summary = (route.endpoint.__doc__ or words).strip().splitlines()[0]
            paths.setdefault(path, {})[method.lower()] = op.describe(names, summary)
    return paths
