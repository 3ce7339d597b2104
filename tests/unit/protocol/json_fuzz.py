"""Hypothesis strategies and checks shared by the wire-protocol fuzz tests.

Every parser of untrusted JSON (signaling, network quality, the MSP track channels) must either
parse its input, and then round-trip it, or raise its protocol error: never anything else.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _WireObject(Protocol):
    def to_json(self) -> dict[str, Any]: ...


_W = TypeVar("_W", bound=_WireObject)


def json_leaves(
    strings: Sequence[str], *, int_bits: int = 64, text_size: int = 8
) -> st.SearchStrategy[object]:
    """JSON scalars: null, booleans, huge integers, finite floats, short text, ``strings``."""
    return (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**int_bits), max_value=2**int_bits)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=text_size)
        | st.sampled_from(strings)
    )


def json_values(
    leaves: st.SearchStrategy[object],
    keys: st.SearchStrategy[str] | None = None,
    *,
    max_size: int = 4,
    max_leaves: int = 20,
) -> st.SearchStrategy[object]:
    """Nested JSON arrays and objects of ``leaves`` (object keys from ``keys``: any text)."""
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=max_size)
            | st.dictionaries(
                st.text(max_size=8) if keys is None else keys, children, max_size=max_size
            )
        ),
        max_leaves=max_leaves,
    )


def shaped(
    leaves: st.SearchStrategy[object], keys: Sequence[str], types: Sequence[str]
) -> st.SearchStrategy[object]:
    """JSON shaped like a protocol's messages: its member names and ``type`` values."""
    return json_values(
        leaves | st.sampled_from(types), st.sampled_from(keys), max_size=3, max_leaves=30
    )


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a member or item of a decoded JSON value."""
    out: list[tuple[Any, ...]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        out.append((*prefix, key))
        out.extend(json_paths(child, (*prefix, key)))
    return out


def mutated(data: st.DataObject, golden: Any, replacement: object, delete: bool) -> Any:
    """A copy of ``golden`` with one member or item (drawn) deleted or replaced."""
    value = copy.deepcopy(golden)
    path = data.draw(st.sampled_from(json_paths(value)))
    parent: Any = value
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return value


def _via_json(parsed: _WireObject) -> object:
    return json.loads(json.dumps(parsed.to_json()))


def parses_and_round_trips(
    parse: Callable[[Any], _W],
    value: object,
    error: type[Exception],
    encode: Callable[[_W], object] = _via_json,
) -> None:
    """``parse(value)`` raises ``error``, or parses what ``encode`` makes of its result alike."""
    try:
        parsed = parse(value)
    except error:
        return
    again = parse(encode(parsed))
    assert again == parsed
    assert again.to_json() == parsed.to_json()
