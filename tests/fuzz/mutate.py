"""Input mutation for the fuzz targets: byte-level, line-level and JSON-aware.

Every mutation is a pure function of a seed input, the corpus (for splicing) and a
`random.Random`, so an input is reproduced from (target, seed index, rng seed) alone: the
hypothesis tests draw those three, and `tests.fuzz.campaign` prints them for a failure.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["INTERESTING_TEXT", "mutate", "mutate_json", "random_json"]

_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xBE, 0xDE, 0xFF, 0x20, 0x0D, 0x0A)
_INTERESTING_INTS = (0, 1, 2, 3, 4, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0xFFFFFFFF)
INTERESTING_TEXT = (
    "", "0", "-1", "1e999", "NaN", "9" * 40, "\x00", "\r\n", "\n", " ", ":", "=", "/", ".", ",",
    "é", "\ud800", "٣", "𝟘", "true", "null", "[]", "{}", "[" * 3000, "{\"a\":" * 3000,
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "2020-02-30", "SK" + "0" * 32,
    "a=mid:0", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=rtpmap:96 VP8/90000", "a=ssrc:1 cname:x",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid", "a=setup:active", "a=fingerprint:x y",
)  # fmt: skip

Mutator = Callable[[bytes, random.Random, Sequence[bytes]], bytes]


def _pos(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data) + 1)


def _flip_bit(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]


def _set_byte(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    if not data:
        return bytes([rng.choice(_INTERESTING_BYTES)])
    i = rng.randrange(len(data))
    value = rng.choice(_INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
    return data[:i] + bytes([value]) + data[i + 1 :]


def _set_int(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    width, fmt = rng.choice(((1, "!B"), (2, "!H"), (4, "!I")))
    if len(data) < width:
        return data
    i = rng.randrange(len(data) - width + 1)
    value = rng.choice(_INTERESTING_INTS) & ((1 << (8 * width)) - 1)
    return data[:i] + struct.pack(fmt, value) + data[i + width :]


def _truncate(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    return data[: _pos(data, rng)]


def _delete(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    i = _pos(data, rng)
    return data[:i] + data[i + rng.randrange(1, 64) :]


def _insert(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    i = _pos(data, rng)
    if rng.random() < 0.5:
        chunk = rng.choice(INTERESTING_TEXT).encode("utf-8", "surrogatepass")
    else:
        chunk = rng.randbytes(rng.randrange(1, 16))
    return data[:i] + chunk + data[i:]


def _duplicate(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    i = _pos(data, rng)
    j = min(len(data), i + rng.randrange(1, 256))
    return data[:j] + data[i:j] * rng.randrange(1, 4) + data[j:]


def _splice(data: bytes, rng: random.Random, corpus: Sequence[bytes]) -> bytes:
    other = rng.choice(corpus) if corpus else b""
    return data[: _pos(data, rng)] + other[_pos(other, rng) :]


def _lines(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    """Drop, duplicate, swap, cut or re-value a line (SDP; form bodies split on `&`)."""
    sep = b"&" if b"&" in data and b"\n" not in data else b"\n"
    lines = data.split(sep)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    action = rng.randrange(5)
    if action == 4:  # a new value for a `key=value` line or form field
        key = lines[i].partition(b"=")[0] or b"x"
        lines[i] = key + b"=" + rng.choice(INTERESTING_TEXT).encode("utf-8", "surrogatepass")
    elif action == 0 and len(lines) > 1:
        del lines[i]
    elif action == 1:
        lines.insert(j, lines[i])
    elif action == 2:
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = lines[i][: _pos(lines[i], rng)]
    return sep.join(lines)


_MUTATORS: tuple[Mutator, ...] = (
    _flip_bit, _set_byte, _set_int, _truncate, _delete, _insert, _duplicate, _splice, _lines,
)  # fmt: skip


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A small random JSON value, biased towards the shapes parsers trip on."""
    roll = rng.randrange(12 if depth < 3 else 8)
    if roll == 0:
        return None
    if roll == 1:
        return rng.random() < 0.5
    if roll == 2:
        return rng.choice((0, -1, 1, 2**31, 2**63, -(2**53), 10**30))
    if roll == 3:
        return rng.choice((0.5, -0.0, 1e308, 1e-308))
    if roll in (4, 5, 6, 7):
        return rng.choice(INTERESTING_TEXT)
    if roll in (8, 9):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(INTERESTING_TEXT): random_json(rng, depth + 1) for _ in range(3)}


def _containers(value: Any) -> list[Any]:
    out: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict | list):
            out.append(item)
            stack.extend(item.values() if isinstance(item, dict) else item)
    return out


def mutate_json(value: Any, rng: random.Random, keys: Sequence[str] = ()) -> Any:
    """Replace, delete, retype, duplicate or deeply nest one member of a decoded JSON value."""
    containers = _containers(value)
    if not containers:
        return random_json(rng)
    parent = rng.choice(containers)
    if not parent:
        if isinstance(parent, dict):
            parent[rng.choice(keys) if keys else "x"] = random_json(rng)
        else:
            parent.append(random_json(rng))
        return value
    key = rng.choice(list(parent) if isinstance(parent, dict) else range(len(parent)))
    action = rng.randrange(6)
    if action == 0:
        del parent[key]
    elif action == 1:
        parent[key] = random_json(rng)
    elif action == 2:  # the same value as another type: "1" for 1, [x] for x, {…} for [...]
        child = parent[key]
        parent[key] = rng.choice((str(child), [child], {"0": child}, json.dumps(child)))
    elif action == 3 and isinstance(parent, dict) and keys:
        parent[rng.choice(keys)] = parent[key]
    elif action == 4:
        nested: Any = parent[key]
        for _ in range(rng.choice((2, 50, 5000))):
            nested = [nested]
        parent[key] = nested
    else:
        parent[key] = rng.choice(INTERESTING_TEXT) if rng.random() < 0.5 else 2**64
    return value


def _json_mutation(data: bytes, rng: random.Random, keys: Sequence[str]) -> bytes | None:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    value = mutate_json(value, rng, keys)
    try:
        return json.dumps(value, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    except RecursionError:
        return None


def mutate(
    seed: bytes,
    rng: random.Random,
    corpus: Sequence[bytes] = (),
    *,
    json_keys: Sequence[str] | None = None,
    max_size: int = 1 << 16,
) -> bytes:
    """One to eight stacked mutations of ``seed``; JSON-aware ones when ``json_keys`` is given."""
    data = seed
    for _ in range(1 + int(rng.expovariate(0.6)) % 8):
        if json_keys is not None and rng.random() < 0.5:
            mutated = _json_mutation(data, rng, json_keys)
            if mutated is not None:
                data = mutated
                continue
        data = rng.choice(_MUTATORS)(data, rng, corpus)
    return data[:max_size]
