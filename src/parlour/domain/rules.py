"""Subscribe Rules and Recording Rules: parsing, validation and evaluation.

Both are lists of ``{"type": "include"|"exclude", <filters>}`` applied in order to the
empty set: `include` adds the matching tracks, `exclude` removes them. Filters in one rule
are ANDed. Rules are stateless (each update replaces them all) and declarative (they are
re-evaluated whenever tracks change). See https://www.twilio.com/docs/video/api/track-subscriptions
and https://www.twilio.com/docs/video/api/recording-rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from parlour.domain import errors

__all__ = [
    "DEFAULT_SUBSCRIBE_RULES",
    "Rule",
    "RuleKind",
    "TrackRef",
    "evaluate",
    "parse_rules",
    "rules_to_json",
]

RuleKind = Literal["subscribe", "recording"]

MAX_RULES = 20
#: Limits checked before the JSON is parsed: a valid `Rules` is a few kB and nests 3 deep.
MAX_RULES_JSON = 65536
MAX_RULES_DEPTH = 8
_FILTERS = ("all", "kind", "publisher", "track")
_TRACK_KINDS = {"subscribe": ("audio", "video", "data"), "recording": ("audio", "video")}
_PRIORITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class Rule:
    type: str
    all: bool = False
    kind: str | None = None
    publisher: str | None = None
    track: str | None = None
    priority: str | None = None


@dataclass(frozen=True)
class TrackRef:
    """What a rule can match a track on."""

    sid: str
    name: str
    kind: str
    publisher_sid: str
    publisher_identity: str


DEFAULT_SUBSCRIBE_RULES: tuple[Rule, ...] = (Rule(type="include", all=True),)


def _error(kind: RuleKind, detail: str) -> errors.TwilioError:
    cls = errors.SubscribeRulesError if kind == "subscribe" else errors.RecordingRulesError
    return cls(f"{cls.default_message}: {detail}")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _parse_rule(raw: object, kind: RuleKind) -> Rule:
    if not isinstance(raw, dict):
        raise _error(kind, "each rule must be an object")
    allowed = set(_FILTERS) | {"type"} | ({"priority"} if kind == "subscribe" else set())
    unknown = set(raw) - allowed
    if unknown:
        raise _error(kind, f"unknown field {sorted(unknown)[0]!r}")
    rule_type = raw.get("type")
    if rule_type not in ("include", "exclude"):
        raise _error(kind, "type must be 'include' or 'exclude'")
    present = {k: v for k, v in raw.items() if k in _FILTERS and v is not None}
    if not present:
        raise _error(kind, "a rule needs at least one filter")
    if "all" in present:
        if present["all"] is not True:
            raise _error(kind, "'all' can only be true")
        if len(present) > 1:
            raise _error(kind, "'all' must stand alone")
    track_kind = present.get("kind")
    if track_kind is not None and track_kind not in _TRACK_KINDS[kind]:
        raise _error(kind, f"invalid kind {track_kind!r}")
    for name in ("publisher", "track"):
        value = present.get(name)
        if value is not None and (not isinstance(value, str) or value == ""):
            raise _error(kind, f"'{name}' must be a non-empty string")
    priority = raw.get("priority")
    if priority is not None and priority not in _PRIORITIES:
        raise _error(kind, f"invalid priority {priority!r}")
    return Rule(
        type=rule_type,
        all=present.get("all") is True,
        kind=track_kind,
        publisher=present.get("publisher"),
        track=present.get("track"),
        priority=priority,
    )


def parse_rules(text: str, *, kind: RuleKind) -> tuple[Rule, ...]:
    """Parse the `Rules` form field: a JSON array, or ``{"rules": [...]}`` as Java/C# send.

    Raises:
        SubscribeRulesError or RecordingRulesError (53215 / 53120).
    """
    if len(text) > MAX_RULES_JSON:
        raise _error(kind, f"the rules are longer than {MAX_RULES_JSON} characters")
    if _nesting(text) > MAX_RULES_DEPTH:
        raise _error(kind, f"JSON nested deeper than {MAX_RULES_DEPTH} levels")
    try:
        loaded = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise _error(kind, f"not valid JSON ({exc})") from None
    if isinstance(loaded, dict) and set(loaded) == {"rules"}:
        loaded = loaded["rules"]
    if not isinstance(loaded, list):
        raise _error(kind, "rules must be a JSON array")
    if not 1 <= len(loaded) <= MAX_RULES:
        raise _error(kind, f"between 1 and {MAX_RULES} rules are required")
    return tuple(_parse_rule(item, kind) for item in loaded)


def _nesting(text: str) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped), without parsing
    it: the parser would recurse that deep."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def rules_to_json(rules: Iterable[Rule], *, kind: RuleKind) -> list[dict[str, Any]]:
    """Rules as Twilio echoes them.

    Subscribe rules carry every field (unset ones as null); recording rules leave unset
    filters out, as in Twilio's examples.
    """
    out: list[dict[str, Any]] = []
    for rule in rules:
        item: dict[str, Any] = {"type": rule.type}
        if kind == "subscribe":
            item.update(
                all=True if rule.all else None,
                publisher=rule.publisher,
                track=rule.track,
                kind=rule.kind,
                priority=rule.priority,
            )
        else:
            if rule.all:
                item["all"] = True
            for name in ("publisher", "kind", "track"):
                value = getattr(rule, name)
                if value is not None:
                    item[name] = value
        out.append(item)
    return out


def _matches(rule: Rule, track: TrackRef) -> bool:
    if rule.all:
        return True
    if rule.kind is not None and rule.kind != track.kind:
        return False
    if rule.publisher is not None and rule.publisher not in (
        track.publisher_identity,
        track.publisher_sid,
    ):
        return False
    return rule.track is None or rule.track in (track.name, track.sid)


def evaluate(rules: Iterable[Rule], tracks: Iterable[TrackRef]) -> set[str]:
    """The SIDs of the tracks that the rules select, applying them in order."""
    candidates = list(tracks)
    selected: set[str] = set()
    for rule in rules:
        hit = {t.sid for t in candidates if _matches(rule, t)}
        if rule.type == "include":
            selected |= hit
        else:
            selected -= hit
    return selected
