"""Outbound adapter: per-track recordings, RTP → Matroska (`.mka` Opus, `.mkv` VP8/H.264).

`MatroskaRecorder` implements the `RecordingMedia` port (writers, crash recovery) and
`LocalStorage` the `MediaStorage` port; `s3.S3Storage` (an S3 bucket) and
`encryption.EncryptingStorage` (Twilio's encrypted-media format) do too, for any media
(compositions included). `depacketize` and `bitstream` are pure (stdlib only).

May import: `parlour.domain`, `parlour.protocol`, PyAV (`av`), boto3 (`s3` only, imported
from its module so that the CLI does not load it), `cryptography`, the standard library.
Must never import: `parlour.services`, `parlour.api`, `parlour.signaling`, `parlour.media`
(recording is independent of the SFU: the SFU feeds it through the `TrackTap` port),
`parlour.store`, `parlour.webhooks`.
"""

from parlour.recording.recorder import MatroskaRecorder
from parlour.recording.storage import LocalStorage
from parlour.recording.writer import TrackRecorder

__all__ = ["LocalStorage", "MatroskaRecorder", "TrackRecorder"]
