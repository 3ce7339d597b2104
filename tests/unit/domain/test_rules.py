"""Subscribe/Recording rule parsing, validation and evaluation (pure)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.domain import errors
from parlour.domain.rules import Rule, RuleKind, TrackRef, evaluate, parse_rules, rules_to_json

ALICE_MIC = TrackRef("MT1", "mic", "audio", "PA1", "alice")
ALICE_CAM = TrackRef("MT2", "cam", "video", "PA1", "alice")
BOB_MIC = TrackRef("MT3", "mic", "audio", "PA2", "bob")
BOB_DATA = TrackRef("MT4", "chat", "data", "PA2", "bob")
TRACKS = [ALICE_MIC, ALICE_CAM, BOB_MIC, BOB_DATA]


def sids(rules: list[dict[str, object]]) -> set[str]:
    return evaluate(parse_rules(json.dumps(rules), kind="subscribe"), TRACKS)


def test_include_all() -> None:
    assert sids([{"type": "include", "all": True}]) == {"MT1", "MT2", "MT3", "MT4"}


def test_rules_apply_in_order() -> None:
    assert sids(
        [{"type": "include", "kind": "audio"}, {"type": "exclude", "publisher": "bob"}]
    ) == {"MT1"}
    assert sids(
        [{"type": "exclude", "publisher": "bob"}, {"type": "include", "kind": "audio"}]
    ) == {
        "MT1",
        "MT3",
    }


def test_filters_are_anded_and_match_names_or_sids() -> None:
    assert sids([{"type": "include", "publisher": "alice", "kind": "video"}]) == {"MT2"}
    assert sids([{"type": "include", "publisher": "PA2", "track": "chat"}]) == {"MT4"}
    assert sids([{"type": "include", "track": "MT3"}]) == {"MT3"}
    assert sids([{"type": "include", "track": "mic"}]) == {"MT1", "MT3"}


def test_exclude_all_empties() -> None:
    assert sids([{"type": "include", "all": True}, {"type": "exclude", "all": True}]) == set()


def test_java_object_shape_is_accepted() -> None:
    rules = parse_rules('{"rules": [{"type": "include", "all": true}]}', kind="recording")
    assert rules == (Rule(type="include", all=True),)


def test_nulls_count_as_absent() -> None:
    text = json.dumps(
        [
            {
                "type": "include",
                "all": True,
                "publisher": None,
                "track": None,
                "kind": None,
                "priority": None,
            }
        ]
    )
    assert parse_rules(text, kind="subscribe") == (Rule(type="include", all=True),)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{}",
        "not json",
        "[1]",
        '[{"all": true}]',
        '[{"type": "include"}]',
        '[{"type": "include", "all": "yes"}]',
        '[{"type": "include", "all": true, "kind": "audio"}]',
        '[{"type": "include", "kind": "data"}]',  # no data tracks in recordings
        '[{"type": "include", "publisher": ""}]',
        '[{"type": "include", "publisher": 5}]',
        '[{"type": "include", "kind": "audio", "kind": "video"}]',
        '[{"type": "include", "all": true, "priority": "high"}]',  # no priority in recordings
        '[{"type": "include", "colour": "red"}]',
        json.dumps([{"type": "include", "all": True}] * 21),
    ],
)
def test_invalid_recording_rules_are_53120(text: str) -> None:
    with pytest.raises(errors.RecordingRulesError) as err:
        parse_rules(text, kind="recording")
    assert err.value.code == 53120 and err.value.status == 400


def test_invalid_subscribe_rules_are_53215() -> None:
    with pytest.raises(errors.SubscribeRulesError) as err:
        parse_rules('[{"type": "include", "priority": "urgent", "all": true}]', kind="subscribe")
    assert err.value.code == 53215


def test_subscribe_rules_accept_data_and_priority() -> None:
    rules = parse_rules(
        '[{"type": "include", "kind": "data", "priority": "high"}]', kind="subscribe"
    )
    assert rules == (Rule(type="include", kind="data", priority="high"),)


def test_echo_shapes() -> None:
    rules = (Rule(type="include", kind="audio"), Rule(type="exclude", all=True))
    assert rules_to_json(rules, kind="recording") == [
        {"type": "include", "kind": "audio"},
        {"type": "exclude", "all": True},
    ]
    assert rules_to_json(rules, kind="subscribe")[0] == {
        "type": "include",
        "all": None,
        "publisher": None,
        "track": None,
        "kind": "audio",
        "priority": None,
    }


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_a_rules_error(text: str) -> None:
    try:
        parse_rules(text, kind="subscribe")
    except errors.SubscribeRulesError:
        pass


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["type", "all", "kind", "publisher", "track", "priority", "x"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.text(max_size=5),
                st.sampled_from(["include", "exclude", "audio", "video", "data", "low"]),
            ),
        ),
        max_size=22,
    )
)
def test_any_json_rules_parse_or_raise_and_evaluate(rules: list[dict[str, object]]) -> None:
    try:
        parsed = parse_rules(json.dumps(rules), kind="subscribe")
    except errors.SubscribeRulesError:
        return
    assert evaluate(parsed, TRACKS) <= {t.sid for t in TRACKS}


@pytest.mark.parametrize("kind", ["subscribe", "recording"])
@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # deeper than the JSON parser's recursion
        "[" * 9 + "]" * 9,
        '[{"type": "include", "all": true, "x": [[[[[[[["deep"]]]]]]]]}]',
        '[{"type": "include", "track": "' + "a" * 70_000 + '"}]',
    ],
    ids=["recursion", "depth", "nested-member", "size"],
)
def test_rules_past_the_limits_are_a_rules_error(text: str, kind: RuleKind) -> None:
    with pytest.raises(errors.TwilioError) as err:
        parse_rules(text, kind=kind)
    assert err.value.code == (53215 if kind == "subscribe" else 53120)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '[{"type": "include", "track": "[[[[[[[[[[[[[[[[[[[[\\"]]]]"}]'
    assert parse_rules(text, kind="subscribe")[0].track == "[" * 20 + '"]]]]'
