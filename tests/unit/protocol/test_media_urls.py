"""Signed media URLs (pure)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from parlour.protocol.media_urls import (
    media_url_key,
    sign_media_path,
    signed_media_url,
    verify_media_path,
)

KEY = media_url_key(b"server secret")
PATH = "/media/AC1/RT1.mka"
DISPOSITION = 'attachment; filename="RT1.mka"'


def test_round_trip_and_expiry() -> None:
    url = signed_media_url(KEY, PATH, 1000, DISPOSITION)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert parts.path == PATH
    assert query["Expires"] == "1000" and query["ContentDisposition"] == DISPOSITION
    assert verify_media_path(KEY, PATH, 1000, DISPOSITION, query["Signature"], now=999)
    assert not verify_media_path(KEY, PATH, 1000, DISPOSITION, query["Signature"], now=1000)


def test_nothing_can_be_altered() -> None:
    signature = sign_media_path(KEY, PATH, 1000, DISPOSITION)
    assert not verify_media_path(KEY, "/media/AC1/RT2.mka", 1000, DISPOSITION, signature, now=0)
    assert not verify_media_path(KEY, PATH, 2000, DISPOSITION, signature, now=0)
    assert not verify_media_path(KEY, PATH, 1000, "inline", signature, now=0)
    assert not verify_media_path(media_url_key(b"other"), PATH, 1000, DISPOSITION, signature, now=0)
    assert not verify_media_path(KEY, PATH, 1000, DISPOSITION, "é" + signature[1:], now=0)
    assert media_url_key(b"server secret") != b"server secret"
