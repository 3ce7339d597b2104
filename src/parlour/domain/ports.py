"""The ports that services call: storage, live sessions, events.

Adapters implement these (`parlour.store.sql.SqlStore`, the signaling layer, the webhook
sender); services only know the Protocols.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from parlour.domain.accounts import Account, ApiKey
from parlour.domain.bandwidth import SimulcastLayer
from parlour.domain.compositions import (
    Composition,
    CompositionFormat,
    CompositionHook,
    CompositionStatus,
)
from parlour.domain.events import CallbackDelivery, Event
from parlour.domain.layouts import CompositionPlan
from parlour.domain.media_settings import Credential, CredentialType, MediaKind, MediaSettings
from parlour.domain.paging import Page, PageRequest
from parlour.domain.participants import Participant, ParticipantStatus
from parlour.domain.recordings import Recording, RecordingResult, RecordingStatus, RecordingType
from parlour.domain.rooms import Room, RoomStatus
from parlour.domain.rules import Rule
from parlour.domain.sids import AccountSid, ParticipantSid, RoomSid, TrackSid
from parlour.domain.tracks import PublishedTrack, SubscribedTrack
from parlour.domain.transcriptions import Transcription, TranscriptionStatus, Utterance

__all__ = [
    "Composer",
    "CompositionJob",
    "CompositionOutput",
    "CompositionFilter",
    "CompositionHookFilter",
    "ErasureBlocked",
    "EventSink",
    "FanOutEventSink",
    "LinkReport",
    "LiveRoomRegistry",
    "MediaListener",
    "MediaPlane",
    "MediaSession",
    "MediaStorage",
    "NodeInfo",
    "PersonalData",
    "RetentionPolicy",
    "RetentionSettings",
    "TrackDescriptor",
    "ParticipantFilter",
    "Recorder",
    "RecordingFilter",
    "RecordingMedia",
    "RoomFilter",
    "SessionControl",
    "StatusCallbackPolicy",
    "Store",
    "TrackTap",
    "TrackWriter",
]


@dataclass(frozen=True)
class RoomFilter:
    status: RoomStatus | None = None
    unique_name: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


@dataclass(frozen=True)
class ParticipantFilter:
    statuses: Sequence[ParticipantStatus] | None = None
    identity: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


@dataclass(frozen=True)
class RecordingFilter:
    """`GroupingSid`s must all match (each is the recording's room or participant SID)."""

    room_sid: RoomSid | None = None
    status: RecordingStatus | None = None
    source_sid: str | None = None
    grouping_sids: tuple[str, ...] = ()
    media_type: RecordingType | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


@dataclass(frozen=True)
class CompositionFilter:
    room_sid: RoomSid | None = None
    status: CompositionStatus | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


@dataclass(frozen=True)
class CompositionHookFilter:
    """`friendly_name`: case-insensitive, `*` matches any run of characters."""

    enabled: bool | None = None
    friendly_name: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


@dataclass(frozen=True)
class RetentionPolicy:
    """How many days an account's personal data is kept; None keeps it until deleted.

    `identity_days`: participants of rooms that ended that long ago are anonymised (their
    identity becomes their SID, as `Anonymize` does). `recording_days`: recordings are
    deleted (the media bytes; the `deleted` resource stays, as on Twilio). `callback_days`:
    delivered or failed status callbacks (their bodies, URL and errors) are removed.
    """

    identity_days: int | None = 30
    recording_days: int | None = 30
    callback_days: int | None = 7


@dataclass(frozen=True)
class RetentionSettings:
    """An account's stored retention policy."""

    account_sid: AccountSid
    policy: RetentionPolicy
    date_created: dt.datetime
    date_updated: dt.datetime


@dataclass(frozen=True)
class PersonalData:
    """Every record held for an account, or for one identity of it across its rooms.

    For an identity: its participants, their published tracks, every subscription by them
    or to their tracks, their recordings, the callbacks that name any of these, and the
    rooms they were in (the rooms are exported, never erased for one identity).
    """

    rooms: list[Room]
    participants: list[Participant]
    published_tracks: list[PublishedTrack]
    subscribed_tracks: list[SubscribedTrack]
    recordings: list[Recording]
    callback_deliveries: list[CallbackDelivery]
    #: The Transcriptions resources of `rooms` (no transcript text is ever stored).
    transcriptions: list[Transcription] = field(default_factory=list)
    #: Compositions of the rooms (whole account; for an identity, of its rooms: a
    #: composition shows everyone in the room, so erasing an identity erases them).
    compositions: list[Composition] = field(default_factory=list)


class ErasureBlocked(Exception):
    """Erasure refused because the server is still using the data (nothing was erased):
    a room in progress, a connected participant, a recording being written or a status
    callback still pending."""


class Store(Protocol):
    """Persistent records. Every method is scoped by the caller (account or room SID)."""

    async def close(self) -> None: ...

    async def get_instance_value(self, key: str) -> str | None: ...
    async def set_instance_value_once(self, key: str, value: str) -> str: ...

    async def insert_account(self, account: Account) -> None: ...
    async def delete_account(self, sid: AccountSid) -> None: ...
    async def get_account(self, sid: str) -> Account | None: ...
    async def insert_api_key(self, key: ApiKey) -> None: ...
    async def get_api_key(self, sid: str) -> ApiKey | None: ...
    async def list_api_keys(self, account_sid: AccountSid) -> list[ApiKey]: ...
    async def delete_api_key(self, account_sid: AccountSid, sid: str) -> bool: ...

    async def insert_room(self, room: Room) -> None:
        """Raises RoomError 53113 when an in-progress room of the account has its name."""
        ...

    async def get_room(self, account_sid: AccountSid, sid_or_name: str) -> Room | None: ...
    async def list_rooms(
        self, account_sid: AccountSid, flt: RoomFilter, req: PageRequest
    ) -> Page[Room]: ...
    async def idle_rooms(self) -> list[Room]:
        """In-progress rooms whose empty or unused timeout may have started."""
        ...

    # Room transitions: each is one conditional write, safe against any concurrent caller.
    async def complete_room(self, sid: RoomSid, now: dt.datetime) -> Room | None:
        """`in-progress` → `completed` at `now` (end time, duration, `empty_since` cleared).

        Returns the completed room, or None if it was not in progress: of any number of
        concurrent callers exactly one gets the room (and sends `room-ended`).
        """
        ...

    async def set_room_occupied(self, sid: RoomSid, now: dt.datetime) -> None:
        """Someone joined: `empty_since` cleared and `ever_joined` set (in-progress only)."""
        ...

    async def set_room_empty_if_vacant(self, sid: RoomSid, now: dt.datetime) -> bool:
        """Start the empty-room timeout at `now` if the room is in progress, has no active
        participant (checked in the same write) and has no `empty_since` yet."""
        ...

    async def set_recording_rules(
        self, sid: RoomSid, rules: tuple[Rule, ...], now: dt.datetime
    ) -> Room | None:
        """Replace the rules while the room is in progress; None if it is not."""
        ...

    async def insert_participant(self, participant: Participant) -> None: ...
    async def get_participant(
        self, room_sid: RoomSid, sid_or_identity: str
    ) -> Participant | None: ...
    async def list_participants(
        self, room_sid: RoomSid, flt: ParticipantFilter, req: PageRequest
    ) -> Page[Participant]: ...
    async def active_participants(self, room_sid: RoomSid) -> list[Participant]: ...

    # Participant transitions, each one conditional write (or one transaction).
    async def disconnect_participant(
        self, sid: ParticipantSid, now: dt.datetime
    ) -> tuple[Participant, list[PublishedTrack]] | None:
        """Active → `disconnected` at `now`, with its duration; its live published tracks
        end (`ended_at`), with every subscription to them and every subscription it had.

        Returns the disconnected participant and the tracks that ended with it, or None if
        it was disconnected already: exactly one concurrent caller gets it.
        """
        ...

    async def set_participant_status(
        self, sid: ParticipantSid, status: ParticipantStatus, now: dt.datetime
    ) -> Participant | None:
        """`connected` ↔ `reconnecting` while active; None if disconnected (or unknown)."""
        ...

    async def anonymize_participant(
        self, sid: ParticipantSid, now: dt.datetime
    ) -> Participant | None:
        """Replace the identity with the SID, for good; None if unknown."""
        ...

    async def set_subscribe_rules(
        self, sid: ParticipantSid, rules: tuple[Rule, ...], now: dt.datetime
    ) -> Participant | None:
        """Replace the Subscribe Rules (sets `subscribe_rules_created` once, `…_updated`
        every time); None if unknown."""
        ...

    async def insert_published_track(self, track: PublishedTrack) -> bool:
        """Record a new track of a participant still in the room; False (nothing written)
        once the participant has disconnected: a publish racing the participant's
        departure must not leave a track that nothing will ever end."""
        ...

    async def end_published_track(self, sid: TrackSid, now: dt.datetime) -> PublishedTrack | None:
        """A live track ends at `now`, with every subscription to it; None if it had ended."""
        ...

    async def set_track_enabled(
        self, sid: TrackSid, enabled: bool, now: dt.datetime
    ) -> PublishedTrack | None:
        """Enable or disable a live track; None if it has ended or already was so."""
        ...

    async def get_published_track(
        self, participant_sid: ParticipantSid, sid_or_name: str
    ) -> PublishedTrack | None: ...
    async def list_published_tracks(
        self, participant_sid: ParticipantSid, req: PageRequest
    ) -> Page[PublishedTrack]: ...
    async def active_published_tracks(
        self, participant_sid: ParticipantSid
    ) -> list[PublishedTrack]: ...
    async def insert_subscribed_track(self, track: SubscribedTrack) -> bool:
        """Record a subscription if the subscriber is active and the track live (and it is
        not recorded yet); False otherwise, and nothing is written."""
        ...

    async def end_subscribed_track(
        self, participant_sid: ParticipantSid, sid: TrackSid, now: dt.datetime
    ) -> None: ...
    async def get_subscribed_track(
        self, participant_sid: ParticipantSid, sid: str
    ) -> SubscribedTrack | None: ...
    async def list_subscribed_tracks(
        self, participant_sid: ParticipantSid, req: PageRequest
    ) -> Page[SubscribedTrack]: ...

    # Nodes: each server process is a node, alive while it heartbeats; participants belong
    # to the node that holds their signaling session (`Participant.node_id`).
    async def heartbeat_node(self, node_id: str, now: dt.datetime) -> None:
        """Record that `node_id` is alive at `now` (created on its first heartbeat)."""
        ...

    async def stale_nodes(self, before: dt.datetime) -> list[str]:
        """Nodes whose last heartbeat is older than `before` (their process is gone)."""
        ...

    async def active_participants_of_node(self, node_id: str) -> list[Participant]:
        """Participants (any room, any account) that `node_id` holds and that are active."""
        ...

    async def delete_node(self, node_id: str) -> None: ...

    async def insert_callback_delivery(self, delivery: CallbackDelivery) -> CallbackDelivery:
        """Store a new pending callback; returns it with its `id` and the next
        `sequence_number` of its resource (0 for the first)."""
        ...

    async def update_callback_delivery(self, delivery: CallbackDelivery) -> None: ...
    async def adopt_callback_deliveries(
        self, node_id: str, *, alive_since: dt.datetime | None = None
    ) -> list[CallbackDelivery]:
        """Make `node_id` deliver other nodes' pending callbacks, each taken by one caller:
        all of them (`alive_since` None: a single server restarted), or those of nodes not
        beating since `alive_since` (gone, or forgotten) and of no node. In sequence order."""
        ...

    async def pending_callback_deliveries(self) -> list[CallbackDelivery]:
        """Every pending callback, by resource and then sequence number."""
        ...

    async def list_callback_deliveries(self, resource_sid: str) -> list[CallbackDelivery]: ...

    async def insert_recording(self, recording: Recording) -> None: ...
    async def update_recording(self, recording: Recording, *, expected: RecordingStatus) -> bool:
        """Write `recording` over the stored one if that is still in the `expected` status
        (one conditional write); False, and nothing written, if it is not."""
        ...

    async def get_recording(self, account_sid: AccountSid, sid: str) -> Recording | None: ...
    async def list_recordings(
        self, account_sid: AccountSid, flt: RecordingFilter, req: PageRequest
    ) -> Page[Recording]:
        """Newest first."""
        ...

    async def recordings_with_status(self, status: RecordingStatus) -> list[Recording]:
        """Every recording (any account) in this status, oldest first (startup recovery)."""
        ...

    # Compositions and composition hooks.
    async def insert_composition(self, composition: Composition) -> None: ...
    async def update_composition(
        self, composition: Composition, *, expected: CompositionStatus
    ) -> bool:
        """Write `composition` over the stored one if that is still in the `expected`
        status (one conditional write); False, and nothing written, if it is not."""
        ...

    async def get_composition(self, account_sid: AccountSid, sid: str) -> Composition | None: ...
    async def list_compositions(
        self, account_sid: AccountSid, flt: CompositionFilter, req: PageRequest
    ) -> Page[Composition]:
        """Newest first."""
        ...

    async def compositions_with_status(self, status: CompositionStatus) -> list[Composition]:
        """Every composition (any account) in this status, oldest first."""
        ...

    async def expired_compositions(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[Composition]:
        """Completed compositions of the account created before `before`."""
        ...

    async def insert_composition_hook(self, hook: CompositionHook) -> bool:
        """False (nothing written) if the account has a hook of that friendly name."""
        ...

    async def update_composition_hook(self, hook: CompositionHook) -> bool:
        """Replace the stored hook; False if it is gone or the new friendly name is taken."""
        ...

    async def get_composition_hook(
        self, account_sid: AccountSid, sid: str
    ) -> CompositionHook | None: ...
    async def list_composition_hooks(
        self, account_sid: AccountSid, flt: CompositionHookFilter, req: PageRequest
    ) -> Page[CompositionHook]:
        """Newest first."""
        ...

    async def delete_composition_hook(self, account_sid: AccountSid, sid: str) -> bool: ...

    # Media settings: Accounts API credentials (`CR…`) and Recording/CompositionSettings.
    async def insert_credential(self, credential: Credential) -> None: ...
    async def get_credential(self, account_sid: AccountSid, sid: str) -> Credential | None: ...
    async def list_credentials(
        self, account_sid: AccountSid, type: CredentialType, req: PageRequest
    ) -> Page[Credential]:
        """Oldest first."""
        ...

    async def rename_credential(
        self, account_sid: AccountSid, sid: str, friendly_name: str | None, now: dt.datetime
    ) -> Credential | None:
        """Set the FriendlyName; the updated credential, or None if there is none."""
        ...

    async def delete_credential(self, account_sid: AccountSid, sid: str) -> bool: ...
    async def get_media_settings(
        self, account_sid: AccountSid, kind: MediaKind
    ) -> MediaSettings | None: ...
    async def put_media_settings(self, settings: MediaSettings) -> None:
        """Insert or replace the account's settings of that kind."""
        ...

    # Privacy: data-subject requests (export, erasure) and retention.
    async def insert_transcription(self, transcription: Transcription) -> None: ...
    async def update_transcription(
        self, transcription: Transcription, *, expected: TranscriptionStatus
    ) -> bool:
        """Replace the resource if its status is still `expected` (one writer wins)."""
        ...

    async def get_transcription(
        self, account_sid: AccountSid, room_sid: RoomSid, ttid: str
    ) -> Transcription | None: ...
    async def list_transcriptions(
        self, account_sid: AccountSid, room_sid: RoomSid, req: PageRequest
    ) -> Page[Transcription]: ...
    async def room_transcriptions(self, room_sid: RoomSid) -> list[Transcription]:
        """Every transcriptions resource of a room, oldest first."""
        ...

    async def personal_data(self, account_sid: AccountSid, identity: str | None) -> PersonalData:
        """Everything held for the account, or for one identity of it (see `PersonalData`)."""
        ...

    async def erase_personal_data(
        self, account_sid: AccountSid, identity: str | None
    ) -> PersonalData:
        """Delete, in one transaction, every row `personal_data` returns (for an identity:
        all but its rooms; for the account: everything but the account, its API keys and
        its retention policy); returns what was deleted.

        Raises:
            ErasureBlocked: something is still live (an account's room in progress; for an
                identity, one of its participants not disconnected; a recording still
                processing; a status callback still pending). Nothing is deleted then.
        """
        ...

    async def reclaim_space(self) -> None:
        """Make deleted bytes go from the database files where the database allows it
        (SQLite: checkpoint and truncate the WAL, VACUUM; PostgreSQL: VACUUM)."""
        ...

    async def get_retention(self, account_sid: AccountSid) -> RetentionSettings | None: ...
    async def set_retention(
        self, account_sid: AccountSid, policy: RetentionPolicy, now: dt.datetime
    ) -> RetentionSettings:
        """Insert or replace the account's policy."""
        ...

    async def account_sids(self) -> list[AccountSid]:
        """Every account, oldest first."""
        ...

    async def participants_to_anonymize(
        self, account_sid: AccountSid, ended_before: dt.datetime, limit: int
    ) -> list[Participant]:
        """Participants of the account's rooms that ended before `ended_before` whose
        identity is not anonymised yet (not their SID)."""
        ...

    async def expired_recordings(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[Recording]:
        """Completed or failed recordings of the account created before `before`."""
        ...

    async def purge_callback_deliveries(
        self, account_sid: AccountSid, before: dt.datetime, limit: int
    ) -> list[int]:
        """Delete delivered or failed callbacks of the account last updated before
        `before`, except those of rooms still in progress (their sequence numbers count
        on); returns the deleted ids."""
        ...


class SessionControl(Protocol):
    """Live connections: lets REST actions reach connected clients (signaling implements it)."""

    async def disconnect_participant(self, participant_sid: ParticipantSid, code: int) -> None:
        """Close one participant's session with a Twilio error code."""
        ...

    async def end_room(self, room_sid: RoomSid, code: int) -> None:
        """Close every session in a room that ended."""
        ...

    async def subscribe_rules_changed(self, participant_sid: ParticipantSid) -> None:
        """Re-evaluate a participant's subscriptions."""
        ...


@dataclass(frozen=True)
class NodeInfo:
    """One live server node of a cluster, as its last heartbeat described it.

    `url` is where the other nodes reach it (its internal HTTP base URL); `load` the
    signaling sessions it holds; `rooms` the live rooms it hosts.
    """

    node_id: str
    url: str
    load: int = 0
    rooms: int = 0


class LiveRoomRegistry(Protocol):
    """The live-room registry that the nodes of a cluster share (`cluster.RedisRegistry`):
    node heartbeats, which node hosts which room, and a message channel per node.

    Every change is atomic on the registry's side, so that two nodes racing for a room, or
    for the recovery of a gone node, end with one winner.
    """

    async def beat(self, node: NodeInfo, ttl: float) -> None:
        """`node` is alive for `ttl` seconds more (registers it on its first beat)."""
        ...

    async def live_nodes(self) -> list[NodeInfo]:
        """Every node whose heartbeat has not run out."""
        ...

    async def gone_nodes(self) -> list[str]:
        """Registered nodes whose heartbeat ran out (not yet forgotten)."""
        ...

    async def room_host(self, room_sid: RoomSid) -> str | None:
        """The node id that hosts the room, if any claims it."""
        ...

    async def claim_room(self, room_sid: RoomSid, node_id: str, expected: str | None) -> str | None:
        """Make `node_id` the room's host if its host is still `expected` (None: unclaimed).

        Returns the room's host after the attempt (the winner of a race).
        """
        ...

    async def release_room(self, room_sid: RoomSid) -> None:
        """The room ended: no node hosts it."""
        ...

    async def claim_recovery(self, node_id: str, by: str, ttl: float) -> bool:
        """True for exactly one caller per gone node (until `ttl` runs out)."""
        ...

    async def forget_node(self, node_id: str) -> list[RoomSid]:
        """Release every room the node hosts and unregister it; returns those rooms."""
        ...

    async def publish(self, node_id: str, message: str) -> None:
        """Send a message to a node (at most once: a gone node misses it)."""
        ...

    def messages(
        self, node_id: str, subscribed: Callable[[], None] | None = None
    ) -> AsyncIterator[str]:
        """The messages sent to `node_id`, until cancelled; `subscribed` is called once
        nothing sent from then on can be missed."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class TrackDescriptor:
    """A published track the media plane can forward to subscribers."""

    sid: TrackSid
    id: str  # the publisher's on-the-wire track id (msid appdata / data channel label)
    kind: str
    publisher_sid: ParticipantSid


@dataclass(frozen=True)
class LinkReport:
    """What the media plane last measured of one kind and direction of a participant's
    media: `send` is what it publishes, as the SFU receives it (the SFU's own receiver
    reports); `recv` what it receives from the SFU, as its RTCP receiver reports say.

    Attributes:
        fraction_lost: the RFC 3550 fraction lost of the last report interval (0–1).
        jitter: interarrival jitter, seconds.
        at: when it was measured (monotonic seconds).
    """

    kind: str
    direction: str
    fraction_lost: float
    jitter: float
    at: float


class MediaListener(Protocol):
    """How a media session talks back to its participant's signaling session."""

    def send_offer(self, pc_id: str, revision: int, sdp: str) -> None:
        """Send a server-initiated offer (renegotiation)."""
        ...

    def subscriptions_changed(self, subscribed: Sequence[tuple[TrackSid, str]]) -> None:
        """The tracks now delivered to this participant, as (track SID, on-the-wire id)."""
        ...

    def dominant_speaker_changed(self, participant_sid: ParticipantSid | None) -> None:
        """The room's dominant speaker changed (None: nobody speaks any more)."""
        ...

    def signaling_message(self, label: str, message: str) -> None:
        """A message from the client on one of the media-signaling channels the session
        opened (`MediaSession.open_signaling_channel`)."""
        ...

    def media_failed(self, reason: str) -> None:
        """The media transport is lost for good: it did not come up within the connect
        timeout after the first offer, or ICE consent expired (no connectivity check from
        the client within the consent timeout, RFC 7675). Called at most once."""
        ...


class MediaSession(Protocol):
    """One participant's peer connection on the media plane (the SFU)."""

    async def client_description(
        self, pc_id: str, kind: str, revision: int, sdp: str, track_ids: Sequence[str]
    ) -> str | None:
        """Apply a client offer or answer; returns the SDP answer to an offer, if any.

        Raises:
            MediaDescriptionError: 53403 when the description cannot be applied.
        """
        ...

    def set_subscriptions(self, tracks: Sequence[TrackDescriptor]) -> None:
        """The tracks this participant should receive (the rules already applied)."""
        ...

    def published_codec(self, track_id: str) -> tuple[str, tuple[int, ...]] | None:
        """The negotiated codec name and RTP payload types (RTX excluded) of an audio/video
        track this participant publishes, or None while its media is not negotiated."""
        ...

    def attach_tap(self, track_id: str, tap: TrackTap) -> None:
        """Feed every packet of one of this participant's published tracks to `tap`."""
        ...

    def request_keyframe(self, track_id: str) -> None:
        """Ask the publisher for a keyframe of one of its video tracks."""
        ...

    def published_bitrate(self, track_id: str) -> int:
        """The bitrate (bps) at which this participant's track arrives, over the last
        second or so; 0 if unknown."""
        ...

    def dominant_speaker(self) -> ParticipantSid | None:
        """The room's dominant speaker now (None: nobody yet), for a participant whose
        active-speaker channel has just opened: it missed the changes before."""
        ...

    def published_layers(self, track_id: str) -> Sequence[SimulcastLayer]:
        """The simulcast layers of a video track this participant publishes, lowest first
        (empty: not simulcast)."""
        ...

    def select_layers(self, layers: Mapping[str, tuple[int | None, int]]) -> None:
        """For received simulcast tracks (by the publisher's wire id): the spatial layer to
        forward (None: the best arriving) and the highest VP8 temporal layer. Tracks not
        named get the best layer, all temporal layers."""
        ...

    def downlink_estimate(self) -> tuple[int | None, bool]:
        """``(bps, congested)``: the estimated bandwidth towards this participant when it
        should limit what it is sent (None: no limit known), and whether congestion is being
        seen now (``trackSwitchOffMode: "detected"``)."""
        ...

    def switch_off(self, track_ids: Collection[str]) -> None:
        """Stop forwarding these received video tracks (by the publisher's wire id) and
        forward every other again (from a keyframe): track switch-off."""
        ...

    def link_reports(self) -> Sequence[LinkReport]:
        """The latest loss and jitter measured per kind and direction (worst stream of each)."""
        ...

    def open_signaling_channel(self, label: str) -> None:
        """Open a reliable, ordered data channel `label` to the client for media signaling
        (twilio-video's MSP: dominant speaker, network quality …), as soon as the SCTP
        association is up (negotiating one if the client has none yet)."""
        ...

    def send_signaling(self, label: str, message: str) -> None:
        """Send one message on a media-signaling channel; queued until it is open, dropped
        if the channel is gone."""
        ...

    def close(self) -> None: ...


class MediaPlane(Protocol):
    """The SFU, behind one port so it can run in this process or in workers."""

    def open_session(
        self,
        room_sid: RoomSid,
        participant_sid: ParticipantSid,
        listener: MediaListener,
        video_codecs: Sequence[str],
    ) -> MediaSession:
        """A peer connection for a participant; `video_codecs` is the room's setting."""
        ...


class EventSink(Protocol):
    """Where domain events go (logs and status callbacks; recordings later)."""

    async def emit(self, event: Event) -> None: ...


class FanOutEventSink:
    """Hands every event to several sinks, in the order given (logs first, then webhooks)."""

    def __init__(self, *sinks: EventSink) -> None:
        self._sinks = list(sinks)

    def add(self, sink: EventSink) -> None:
        """One more sink, after the others (one built after the emitters that feed it)."""
        self._sinks.append(sink)

    async def emit(self, event: Event) -> None:
        for sink in self._sinks:
            await sink.emit(event)


class StatusCallbackPolicy(Protocol):
    """Which StatusCallback URLs a room may be created with (the webhook sender knows)."""

    def check(self, url: str) -> None:
        """Refuse a URL that can be refused without network access (IP literals, this server).

        Raises:
            RoomError: 53111 StatusCallback is invalid.
        """
        ...


class MediaStorage(Protocol):
    """Where finished media files live, by key (`recordings/RT….mka`); no paths leak out.

    `LocalStorage` (files under `DATA_DIR/media/`) implements it; an S3-compatible object
    store can replace it.
    """

    async def put(
        self, key: str, source: Path, *, metadata: Mapping[str, str] | None = None
    ) -> int:
        """Take a finished local file under `key` (moved or uploaded, then gone from
        `source`); returns the stored size in bytes. `metadata` is object metadata for
        stores that keep it (S3 user metadata, served as `x-amz-meta-*`); others ignore
        it."""
        ...

    async def size(self, key: str) -> int | None:
        """Bytes stored under `key`, or None if there is nothing."""
        ...

    def open(self, key: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes `start … start+length-1` (to the end if `length` is None), in chunks.

        Raises (on first iteration):
            FileNotFoundError: nothing stored under `key`.
        """
        ...

    async def delete(self, key: str) -> bool:
        """Remove the object for good; False if there was none."""
        ...


class TrackWriter(Protocol):
    """One recording being written (the recording adapter's per-track writer)."""

    def feed(self, packet: bytes, arrival: float) -> None:
        """One RTP packet of the track, as forwarded, and when it arrived (monotonic
        seconds). Synchronous and cheap: never blocks, never raises."""
        ...

    async def close(self) -> RecordingResult:
        """Finish the file and store it; never raises (failures are in the result)."""
        ...


class RecordingMedia(Protocol):
    """The recording adapter: writers for new recordings, recovery after a crash."""

    def open_writer(
        self,
        recording: Recording,
        *,
        payload_types: Collection[int] = (),
        on_keyframe_needed: Callable[[], None] | None = None,
        storage: MediaStorage | None = None,
    ) -> TrackWriter:
        """Start writing `recording` (only packets of `payload_types`, if given); the
        finished file goes to `storage` (default: the adapter's own).

        `on_keyframe_needed` may be called from any thread while a video recording waits
        for a keyframe (at its start, and after packet loss).

        Raises:
            OSError: the file cannot be created.
        """
        ...

    async def recover(
        self, recording: Recording, *, storage: MediaStorage | None = None
    ) -> RecordingResult:
        """Finish the file of a recording a killed server left `processing`: finalize and
        store what is playable (in `storage`, default the adapter's own); `error` says why
        there is nothing to keep."""
        ...


class TrackTap(Protocol):
    """What the SFU feeds a published track's packets into, for recording.

    `feed` is synchronous and cheap (a few attribute reads when the track is not being
    recorded); it never blocks or raises. `close` says the track ended. `active` says
    whether `feed` uses the packets now (a recording or a transcription of the track runs):
    a media plane in another process sends them over only while it does.
    """

    def feed(self, packet: bytes) -> None: ...
    def close(self) -> None: ...
    @property
    def active(self) -> bool: ...


class Recorder(Protocol):
    """The recording use cases the media plane and the room service call."""

    async def track_published(
        self,
        room: Room,
        participant: Participant,
        track: PublishedTrack,
        codec: str,
        *,
        payload_types: Collection[int] = (),
        request_keyframe: Callable[[], None] | None = None,
    ) -> TrackTap | None:
        """A track was published with `codec` (`opus`, `VP8`, `H264`): its tap, recording
        now or later as the room's recording rules say; None if it can never be recorded
        (data tracks, other codecs). `payload_types` are the codec's RTP payload types;
        `request_keyframe` asks the publisher for one (a video recording starts at one)."""
        ...

    async def track_unpublished(self, track_sid: TrackSid) -> None:
        """The track ended: its recording (if any) completes."""
        ...

    async def recording_rules_changed(self, room: Room) -> None:
        """Start and stop recordings of the room's live tracks to match its new rules."""
        ...

    def is_recording(self, room_sid: RoomSid) -> bool:
        """Whether any track of the room is being recorded right now."""
        ...


class TranscriptStream(Protocol):
    """One audio track being transcribed: the SFU's forwarded RTP (Opus) goes in.

    `feed` is synchronous and cheap (it queues the payload for a worker process); `close`
    ends the stream (an utterance in progress is finished and reported)."""

    def feed(self, packet: bytes) -> None: ...
    def close(self) -> None: ...


class Transcriber(Protocol):
    """The speech recogniser (`parlour.transcription.TranscriberPool`): worker processes
    that decode, resample, detect voice and recognise, never on the event loop."""

    def open_stream(
        self,
        *,
        language: str,
        partial_results: bool,
        payload_types: Collection[int],
        on_result: Callable[[Utterance], None],
        on_error: Callable[[str], None] | None = None,
    ) -> TranscriptStream:
        """Start transcribing one track; `on_result` (and `on_error`, if the engine
        fails) are called on the event loop."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class CompositionJob:
    """One composition to encode: the plan, where each recording's media is, the output."""

    composition_sid: str
    plan: CompositionPlan
    media_keys: dict[str, str]  # recording SID → its MediaStorage key
    format: CompositionFormat
    output_key: str
    #: recording SID → the storage holding it, when not the composer's own (an S3 bucket)
    storages: dict[str, MediaStorage] = field(default_factory=dict)
    #: where the output is put, when not the composer's own storage (the account's bucket,
    #: an encrypting storage: CompositionSettings)
    output_storage: MediaStorage | None = None


@dataclass(frozen=True)
class CompositionOutput:
    duration_ms: int
    size: int
    bitrate: int  # kbps


class Composer(Protocol):
    """The composition media pipeline (`recording.composer.PoolComposer`)."""

    async def compose(
        self, job: CompositionJob, progress: Callable[[int, float], None]
    ) -> CompositionOutput:
        """Encode and store the composition under `job.output_key`; `progress(percent,
        seconds_remaining)` about every 10 %.

        Raises:
            Exception: it could not be composed (the message says why).
        """
        ...

    async def close(self) -> None: ...
