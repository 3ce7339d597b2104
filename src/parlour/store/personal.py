"""What both stores share for data-subject requests: which callbacks name a person, and
when an erasure must wait (`Store.erase_personal_data`)."""

from __future__ import annotations

from collections.abc import Collection

from parlour.domain.compositions import CompositionStatus
from parlour.domain.events import CallbackDelivery, DeliveryStatus
from parlour.domain.participants import ParticipantStatus
from parlour.domain.ports import ErasureBlocked, PersonalData
from parlour.domain.recordings import RecordingStatus

__all__ = ["check_erasable", "mentions"]


def mentions(delivery: CallbackDelivery, values: Collection[str]) -> bool:
    """Whether a callback's parameters carry one of `values` (an identity or a SID)."""
    return any(v in values for v in delivery.params.values())


def check_erasable(data: PersonalData, *, whole_account: bool) -> None:
    """Raise `ErasureBlocked` if the running server still uses part of `data`."""
    if whole_account:
        live = [r.sid for r in data.rooms if r.in_progress]
        if live:
            raise ErasureBlocked(
                f"room {live[0]} is in progress ({len(live)} in all); complete it first "
                "(POST /v1/Rooms/{Sid} Status=completed)"
            )
    active = [p.sid for p in data.participants if p.status is not ParticipantStatus.DISCONNECTED]
    if active:
        raise ErasureBlocked(
            f"participant {active[0]} is connected; disconnect it first "
            "(POST /v1/Rooms/{RoomSid}/Participants/{Sid} Status=disconnected)"
        )
    busy = [r.sid for r in data.recordings if r.status is RecordingStatus.PROCESSING]
    if busy:
        raise ErasureBlocked(f"recording {busy[0]} is still processing; try again shortly")
    composing = [c.sid for c in data.compositions if c.status is CompositionStatus.PROCESSING]
    if composing:
        raise ErasureBlocked(f"composition {composing[0]} is being composed; try again shortly")
    pending = [d for d in data.callback_deliveries if d.status is DeliveryStatus.PENDING]
    if pending:
        raise ErasureBlocked(
            f"{len(pending)} status callback(s) still pending; try again once they are "
            "delivered or have failed"
        )
