"""What handlers reach: the services and the public base URL."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from parlour.domain import errors
from parlour.services.accounts import AccountService
from parlour.services.compositions import CompositionService
from parlour.services.media_settings import CredentialService, MediaSettingsService
from parlour.services.media_storage import MediaStorageResolver
from parlour.services.participants import ParticipantService
from parlour.services.recordings import RecordingService
from parlour.services.rooms import RoomService
from parlour.services.transcriptions import TranscriptionService

__all__ = ["ApiContext", "context"]


@dataclass(frozen=True)
class ApiContext:
    accounts: AccountService
    rooms: RoomService
    participants: ParticipantService
    public_url: str
    recordings: RecordingService | None = None
    transcriptions: TranscriptionService | None = None
    compositions: CompositionService | None = None
    credentials: CredentialService | None = None
    media_settings: MediaSettingsService | None = None
    media_storage: MediaStorageResolver | None = None

    def url(self, path: str) -> str:
        """Absolute URL of a path on our own public base URL."""
        return f"{self.public_url}{path}"

    @property
    def recording_service(self) -> RecordingService:
        """The recording service; a server wired without one has no recordings (404)."""
        if self.recordings is None:
            raise errors.NotFoundError("Recordings are not available on this server")
        return self.recordings

    @property
    def credential_service(self) -> CredentialService:
        if self.credentials is None:
            raise errors.NotFoundError("Credentials are not available on this server")
        return self.credentials

    @property
    def media_settings_service(self) -> MediaSettingsService:
        if self.media_settings is None:
            raise errors.NotFoundError("Media settings are not available on this server")
        return self.media_settings


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.api
    return ctx
