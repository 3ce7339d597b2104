"""Reading and writing the JSON of Parlour's wire protocols: the machinery they share.

`parlour.protocol.signaling` (TCMP and RSP) and the Media Signaling Protocol channels
(`parlour.protocol.msp_network_quality`, `parlour.protocol.msp_tracks`) all model their
messages the same way: a frozen dataclass per JSON object, built by ``parse(obj)`` from
untrusted decoded JSON and written back by ``to_json()``, with the members not modelled kept
in ``extra``. This module holds what they have in common:

- `Reader`: typed, path-aware reads of one untrusted JSON object. Each protocol subclasses it
  to name the one exception its parsers raise (``error``) and to add its own readers.
- `Wire`: the base of the dataclasses, generic in the protocol's `Reader`.
- `emit`, `extra_field`, `loads`: small helpers for ``to_json``, ``extra`` and JSON text.

Pure: stdlib only, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import field
from enum import StrEnum
from typing import Any, ClassVar, Final, Generic, Self, TypeAlias, TypeVar, cast

__all__ = [
    "MISSING",
    "JsonObject",
    "Reader",
    "Wire",
    "describe",
    "emit",
    "extra_field",
    "is_finite_number",
    "loads",
]

JsonObject: TypeAlias = dict[str, Any]
"""A decoded JSON object."""

MISSING: Final = object()
"""What `Reader.get` returns for an absent member."""

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")
_R = TypeVar("_R", bound="Reader")


def describe(value: object) -> str:
    """A short description of a JSON value's type (or of `MISSING`), for error messages."""
    if value is MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is a JSON number (not a boolean) and finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    # math.isfinite() raises OverflowError on ints too big for a float; ints are finite.
    return isinstance(value, int) or math.isfinite(value)


class Reader:
    """Typed, path-aware access to the members of one untrusted JSON object.

    Remembers which members were read, so that the rest become the object's ``extra``.
    Every failure is an ``error`` (the protocol's exception class) whose message names the
    member by path, e.g. ``connect.participant.tracks[1].kind: expected one of …``.
    """

    __slots__ = ("_obj", "_seen", "where")

    error: ClassVar[type[ValueError]] = ValueError
    """The exception raised for bad input; each protocol names its own."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise self.error(f"{where}: expected an object, got {describe(value)}")
        self._obj = cast(JsonObject, value)
        self._seen: set[str] = set()
        self.where = where

    def child(self, value: object, where: str) -> Self:
        """A reader of the same protocol for a nested object."""
        return type(self)(value, where)

    def path(self, key: str) -> str:
        """The path of member ``key``, for error messages."""
        return f"{self.where}.{key}"

    def fail(self, key: str, expected: str, value: object) -> ValueError:
        """The error for member ``key`` holding ``value`` instead of ``expected``."""
        return self.error(f"{self.path(key)}: expected {expected}, got {describe(value)}")

    def get(self, key: str) -> object:
        """The member as decoded (`MISSING` if absent), now counted as read."""
        self._seen.add(key)
        return self._obj.get(key, MISSING)

    def has(self, key: str) -> bool:
        """Whether the member is present and not null."""
        return self._obj.get(key) is not None

    def extra(self) -> JsonObject:
        """The members that were not read."""
        return {k: v for k, v in self._obj.items() if k not in self._seen}

    def _opt(self, key: str, read: Callable[[str], _T], *, null: bool = True) -> _T | None:
        """None if the member is absent (or null, unless ``null`` is False), else ``read`` it."""
        if key not in self._obj or (null and self._obj[key] is None):
            self.get(key)
            return None
        return read(key)

    def req_str(self, key: str, *, nonempty: bool = False) -> str:
        value = self.get(key)
        if not isinstance(value, str) or (nonempty and not value):
            raise self.fail(key, "a non-empty string" if nonempty else "a string", value)
        return value

    def opt_str(self, key: str) -> str | None:
        return self._opt(key, self.req_str)

    def req_int(self, key: str, *, minimum: int | None = None) -> int:
        value = self.get(key)
        too_small = minimum is not None and isinstance(value, int) and value < minimum
        if isinstance(value, bool) or not isinstance(value, int) or too_small:
            expected = "an integer" if minimum is None else f"an integer >= {minimum}"
            raise self.fail(key, expected, value)
        return value

    def opt_int(self, key: str) -> int | None:
        return self._opt(key, self.req_int)

    def req_number(self, key: str, *, finite: bool = False) -> float:
        """A number; with ``finite``, not an infinity or NaN either."""
        value = self.get(key)
        if finite and not is_finite_number(value):
            raise self.fail(key, "a finite number", value)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(key, "a number", value)
        return value

    def opt_number(self, key: str) -> float | None:
        """A finite number, or None if absent or null (JavaScript's undefined and NaN)."""
        return self._opt(key, lambda k: self.req_number(k, finite=True))

    def req_bool(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise self.fail(key, "a boolean", value)
        return value

    def opt_bool(self, key: str, *, null: bool = True) -> bool | None:
        """A boolean or None if absent; null too reads as None unless ``null`` is False."""
        return self._opt(key, self.req_bool, null=null)

    def req_enum(self, key: str, enum: type[_E]) -> _E:
        value = self.get(key)
        if isinstance(value, str):
            try:
                return enum(value)
            except ValueError:
                pass
        choices = ", ".join(repr(member.value) for member in enum)
        raise self.fail(key, f"one of {choices}", value) from None

    def opt_enum(self, key: str, enum: type[_E]) -> _E | None:
        return self._opt(key, lambda k: self.req_enum(k, enum))

    def req_obj(self, key: str) -> Self:
        value = self.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, "an object", value)
        return self.child(value, self.path(key))

    def opt_obj(self, key: str) -> Self | None:
        return self._opt(key, self.req_obj)

    def opt_parsed(self, key: str, parse: Callable[[Self], _T]) -> _T | None:
        """An optional object, parsed with ``parse``."""
        fields = self.opt_obj(key)
        return None if fields is None else parse(fields)

    def opt_raw_obj(self, key: str) -> JsonObject | None:
        """An object kept as decoded JSON (for parts passed through without modelling)."""
        fields = self.opt_obj(key)
        return None if fields is None else fields._obj

    def req_list(self, key: str) -> Iterator[tuple[object, str]]:
        """The items of an array member, each with its path."""
        value = self.get(key)
        if not isinstance(value, list):
            raise self.fail(key, "an array", value)
        path = self.path(key)
        return ((item, f"{path}[{i}]") for i, item in enumerate(value))

    def req_objs(self, key: str, parse: Callable[[Self], _T]) -> tuple[_T, ...]:
        """An array of objects, each parsed with ``parse``."""
        return tuple(parse(self.child(item, path)) for item, path in self.req_list(key))

    def opt_objs(self, key: str, parse: Callable[[Self], _T]) -> tuple[_T, ...] | None:
        return self._opt(key, lambda k: self.req_objs(k, parse))

    def req_strs(self, key: str, *, nonempty: bool = False) -> tuple[str, ...]:
        expected = "a non-empty string" if nonempty else "a string"
        out: list[str] = []
        for item, path in self.req_list(key):
            if not isinstance(item, str) or (nonempty and not item):
                raise self.error(f"{path}: expected {expected}, got {describe(item)}")
            out.append(item)
        return tuple(out)

    def opt_strs(self, key: str, *, nonempty: bool = False) -> tuple[str, ...] | None:
        return self._opt(key, lambda k: self.req_strs(k, nonempty=nonempty))

    def opt_obj_map(self, key: str, parse: Callable[[Self], _T]) -> dict[str, _T] | None:
        """An object whose every member is an object parsed with ``parse``."""
        fields = self.opt_obj(key)
        if fields is None:
            return None
        return {k: parse(self.child(v, fields.path(k))) for k, v in fields._obj.items()}

    def expect_type(self, wire_type: str) -> None:
        """Check the ``type`` member."""
        value = self.get("type")
        if value != wire_type:
            raise self.fail("type", repr(wire_type), value)


def emit(out: JsonObject, key: str, value: object) -> None:
    """Set ``out[key]`` unless the value is None (an omitted optional member).

    A `Wire` value is written as its ``to_json()``.
    """
    if value is not None:
        out[key] = value.to_json() if isinstance(value, Wire) else value


def extra_field() -> Any:
    """The ``extra`` dataclass field: the members not modelled, kept out of the hash."""
    return field(default_factory=dict, hash=False)


class Wire(Generic[_R]):
    """Base of every wire object: ``parse`` from decoded JSON, ``to_json`` back.

    A protocol binds its `Reader` subclass in ``_READER``. A message (a class with a
    non-empty ``TYPE``) also checks and writes a ``type`` member, first.
    """

    __slots__ = ()

    _READER: ClassVar[type[Reader]] = Reader
    _WHERE: ClassVar[str] = ""
    TYPE: ClassVar[str] = ""

    @classmethod
    def parse(cls, obj: object) -> Self:
        """Build the object from decoded JSON, validating it (``type`` included, if any).

        Args:
            obj: The decoded JSON value (normally a dict).

        Returns:
            The parsed object; unknown members are kept in its ``extra``.

        Raises:
            ValueError: The protocol's error (``_READER.error``) if ``obj`` does not have
                the required shape.
        """
        f = cast(_R, cls._READER(obj, cls.TYPE or cls._WHERE or cls.__name__))
        if cls.TYPE:
            cls._expect_type(f)
        return cls._parse(f)

    @classmethod
    def _expect_type(cls, f: _R) -> None:
        f.expect_type(cls.TYPE)

    @classmethod
    def _parse(cls, f: _R) -> Self:
        """Build the object from its reader; by default one with no modelled members."""
        return cls(**{"extra": f.extra()})  # noqa: PIE804 - the field is a subclass's

    def _members(self) -> JsonObject:
        """The modelled members, as JSON; by default none."""
        return {}

    def to_json(self) -> JsonObject:
        """The JSON object for this value, ready for `json.dumps`.

        Returns:
            A new dict: ``type`` first for a message, then the ``extra`` members, then the
            modelled ones (which win).
        """
        extra: Mapping[str, Any] = getattr(self, "extra", {})
        members = {**extra, **self._members()}
        if not self.TYPE:
            return members
        members.pop("type", None)
        return {"type": self.TYPE, **members}


def loads(raw: str | bytes, error: type[ValueError], where: str) -> object:
    """Decode one untrusted JSON text (bytes must be UTF-8), raising only ``error``.

    ``NaN``, ``Infinity`` and numbers out of a float's range are refused, so that every
    number parsed is finite.
    """

    def reject_constant(name: str) -> float:
        raise error(f"{where}: {name} is not valid JSON")

    def finite_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise error(f"{where}: number {text[:20]!r} is out of range")
        return value

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        return json.loads(text, parse_constant=reject_constant, parse_float=finite_float)
    except error:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, …
        raise error(f"{where}: not a UTF-8 JSON text: {exc}") from None
