"""Encrypted media, in Twilio's format ("Encrypting your Stored Media", docs/compatibility.md).

For each file a one-time 256-bit key and a 16-byte IV encrypt it with AES-256-CBC and
PKCS #7 padding (Java's `AES/CBC/PKCS5Padding`); the key is encrypted with the account's RSA
public key with PKCS #1 v1.5 padding (what `openssl rsautl -decrypt` and Java's `"RSA"`
cipher undo), so Twilio's recipes decrypt it:

    openssl rsautl -decrypt -inkey private_key.pem -in key.bin.enc -out key.bin
    openssl enc -d -aes-256-cbc -in encrypted -out decrypted -K <key hex> -iv <iv hex>

`EncryptingStorage` wraps a `MediaStorage`: `put` encrypts the finished file into a scratch
file next to it (the plain file is removed as soon as it is encrypted), stores that with the
envelope as object metadata (S3 serves it as `x-amz-meta-x-amz-key`/`-iv`), and keeps the
`Envelope` for the caller to record. The content key exists only in memory, for one file.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from parlour.domain.media_settings import Envelope
from parlour.domain.ports import MediaStorage

__all__ = ["EncryptingStorage", "encrypt_file"]

CHUNK_SIZE = 1024 * 1024


def encrypt_file(source: Path, target: Path, public_key_pem: str, key_sid: str) -> Envelope:
    """Encrypt `source` into `target` for the public key; the envelope to keep with it."""
    key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the encryption key is not an RSA public key")
    content_key = os.urandom(32)
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    padder = padding.PKCS7(128).padder()
    plain_size = 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK_SIZE):
            plain_size += len(chunk)
            dst.write(encryptor.update(padder.update(chunk)))
        dst.write(encryptor.update(padder.finalize()) + encryptor.finalize())
        dst.flush()
        os.fsync(dst.fileno())
    wrapped = key.encrypt(content_key, asym_padding.PKCS1v15())
    return Envelope(
        key_sid=key_sid,
        wrapped_key=base64.b64encode(wrapped).decode(),
        iv=base64.b64encode(iv).decode(),
        plain_size=plain_size,
    )


class EncryptingStorage:
    """A `MediaStorage` whose `put` stores the file encrypted for one public key."""

    def __init__(self, inner: MediaStorage, public_key_pem: str, key_sid: str) -> None:
        self.inner = inner
        self._pem = public_key_pem
        self._key_sid = key_sid
        self.envelope: Envelope | None = None

    async def put(
        self, key: str, source: Path, *, metadata: Mapping[str, str] | None = None
    ) -> int:
        scratch = source.with_name(source.name + ".enc")
        try:
            envelope = await asyncio.to_thread(self._encrypt, source, scratch)
            size = await self.inner.put(
                key, scratch, metadata={**(metadata or {}), **envelope.metadata()}
            )
        finally:
            await asyncio.to_thread(scratch.unlink, missing_ok=True)
        self.envelope = envelope
        return size

    def _encrypt(self, source: Path, scratch: Path) -> Envelope:
        """Encrypt, then remove the plain file at once (it must not outlive this)."""
        envelope = encrypt_file(source, scratch, self._pem, self._key_sid)
        source.unlink()
        return envelope

    async def size(self, key: str) -> int | None:
        return await self.inner.size(key)

    def open(self, key: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.inner.open(key, start, length)

    async def delete(self, key: str) -> bool:
        return await self.inner.delete(key)
