"""The real twilio-video 2.36.0 offer from Chromium 156 (audio, video, data) and its track ids."""

from __future__ import annotations

from pathlib import Path

OFFER = (
    (Path(__file__).parent / "data" / "chromium156-twilio-video-2.36.0-offer.sdp")
    .read_text()
    .replace("\n", "\r\n")
)
AUDIO_ID = "1a507dcb-d7a0-4e1f-89bd-0e5c8ab32426"
VIDEO_ID = "cb77128e-4663-4079-871f-b010eb87d9f2"
DATA_ID = "1fb67338-af82-4e68-a20e-4e5f9a59c91d"
