"""The VideoLayout engine against Twilio's documented examples (rest-api.md §11)."""

from __future__ import annotations

import pytest

from parlour.domain.compositions import CompositionSpec, like_pattern, name_pattern
from parlour.domain.layouts import (
    AudioSelection,
    Cell,
    LayoutError,
    Reuse,
    Source,
    cell_rects,
    contain,
    grid_size,
    kept_spans,
    matches,
    parse_layout,
    parse_resolution,
    place_region,
    plan_composition,
)

VGA = (640, 480)


def src(n: int, start: int, end: int, *, name: str | None = None, kind: str = "video") -> Source:
    return Source(
        recording_sid=f"RT{n:032x}",
        track_sid=f"MT{n:032x}",
        participant_sid=f"PA{n:032x}",
        track_name=name or f"track{n}",
        kind=kind,
        start=start,
        end=end,
    )


# -- grid: the three tables of "The Region as a Grid" ---------------------------------------


@pytest.mark.parametrize(
    ("n", "rows", "cols"),
    [(1, 1, 1), (2, 1, 2), (3, 2, 2), (4, 2, 2), (5, 2, 3), (6, 2, 3), (7, 3, 3), (9, 3, 3)]
    + [(10, 3, 4), (12, 3, 4), (17, 4, 5), (20, 4, 5)],
)
def test_unconstrained_grid_stays_square(n: int, rows: int, cols: int) -> None:
    assert grid_size(n) == (rows, cols)


@pytest.mark.parametrize(
    ("n", "max_rows", "max_columns", "expected"),
    [
        (5, 1, None, (1, 5)),
        (5, None, 1, (5, 1)),
        (5, 2, None, (2, 3)),
        (7, 2, None, (2, 4)),
        (9, 2, None, (2, 5)),
        (12, 2, None, (2, 6)),
        (5, None, 2, (3, 2)),
        (9, None, 2, (5, 2)),
    ],
)
def test_one_dimension_capped_grows_the_other(
    n: int, max_rows: int | None, max_columns: int | None, expected: tuple[int, int]
) -> None:
    assert grid_size(n, max_rows, max_columns) == expected


@pytest.mark.parametrize(
    ("n", "max_rows", "max_columns", "expected"),
    [(9, 1, 7, (1, 7)), (9, 2, 7, (2, 5)), (9, 3, 7, (3, 3)), (5, 2, 2, (2, 2)), (5, 1, 2, (1, 2))],
)
def test_both_capped_bound_the_cells(
    n: int, max_rows: int, max_columns: int, expected: tuple[int, int]
) -> None:
    assert grid_size(n, max_rows, max_columns) == expected


def test_cells_split_the_region_row_by_row() -> None:
    cells = cell_rects((0, 0, 640, 480), 2, 2)
    assert cells == [
        Cell(0, 0, 0, 320, 240),
        Cell(1, 320, 0, 320, 240),
        Cell(2, 0, 240, 320, 240),
        Cell(3, 320, 240, 320, 240),
    ]


def test_contain_letterboxes_and_keeps_the_aspect() -> None:
    # a 640x480 picture in a 320x480 cell: full width, centred vertically
    assert contain(Cell(0, 320, 0, 320, 480), 640, 480) == (320, 120, 320, 240)
    # a 16:9 picture in a 4:3 cell
    x, y, w, h = contain(Cell(0, 0, 0, 640, 480), 1280, 720)
    assert (x, w) == (0, 640) and h == 360 and y == 60


# -- grammar --------------------------------------------------------------------------------


def test_layout_echo_fills_in_every_property() -> None:
    layout = parse_layout({"grid": {"video_sources": ["*"]}}, VGA)
    assert layout.to_json() == {
        "grid": {
            "x_pos": 0,
            "y_pos": 0,
            "z_pos": 0,
            "width": 0,
            "height": 0,
            "max_columns": 0,
            "max_rows": 0,
            "cells_excluded": [],
            "reuse": "show_oldest",
            "video_sources": ["*"],
            "video_sources_excluded": [],
        }
    }
    region = layout.regions[0]
    assert region.box(VGA) == (0, 0, 640, 480)


@pytest.mark.parametrize(
    "layout",
    [
        {},
        [],
        {"r": {}},
        {"r": {"video_sources": ["*"], "x_pos": 700}},
        {"r": {"video_sources": ["*"], "width": 8}},
        {"r": {"video_sources": ["*"], "x_pos": 600, "width": 100}},
        {"r": {"video_sources": ["*"], "z_pos": 100}},
        {"r": {"video_sources": ["*"], "max_rows": 0}},
        {"r": {"video_sources": ["*"], "reuse": "sometimes"}},
        {"r": {"video_sources": ["*"], "cells_excluded": [-1]}},
        {"r": {"video_sources": [1]}},
        {"r": {"video_sources": ["*"], "colour": "red"}},
        {"r": "grid"},
    ],
)
def test_bad_layouts_are_refused(layout: object) -> None:
    with pytest.raises(LayoutError):
        parse_layout(layout, VGA)


@pytest.mark.parametrize("value", ["640x480", "1280x720", "16x16", "1280x720"])
def test_resolutions_in_range(value: str) -> None:
    assert parse_resolution(value) == tuple(int(v) for v in value.split("x"))


@pytest.mark.parametrize("value", ["1920x1080", "15x480", "640", "axb", "1280x1280"])
def test_resolutions_out_of_range(value: str) -> None:
    with pytest.raises(LayoutError):
        parse_resolution(value)


def test_spec_needs_a_layout_or_audio() -> None:
    with pytest.raises(LayoutError):
        CompositionSpec.checked()
    spec = CompositionSpec.checked(audio_sources=("*",))
    assert spec.resolution == "640x480" and spec.format.value == "webm" and spec.trim


def test_wildcards_match_track_names_and_sids_exactly() -> None:
    s = src(1, 0, 10, name="studentTeam")
    assert matches("student*", s) and matches("*Team", s) and matches("*", s)
    assert matches("stu*Team", s) and not matches("teacher*", s)
    assert matches(s.recording_sid, s) and matches(s.track_sid, s)
    assert matches(s.participant_sid, s) and not matches("student", s)


def test_friendly_name_filters() -> None:
    assert name_pattern("my*hook").match("My Best Hook")
    assert not name_pattern("hook").match("hooks")
    assert like_pattern("a_b*c%") == "a\\_b%c\\%"


# -- reuse ----------------------------------------------------------------------------------


def region(**kw: object) -> object:
    return parse_layout({"r": {"video_sources": ["*"], **kw}}, VGA).regions[0]


def test_grid_holds_the_most_simultaneous_sources() -> None:
    # three sources, never more than two at once: a 1x2 grid
    placements = place_region(
        region(),  # type: ignore[arg-type]
        [src(1, 0, 100), src(2, 0, 50), src(3, 60, 100)],
        VGA,
    )
    assert {p.cell.width for p in placements} == {320}
    by_source = {p.source.track_name: p.cell.index for p in placements}
    assert by_source == {"track1": 0, "track2": 1, "track3": 1}  # 3 reuses 2's idle cell


def test_reuse_none_never_reuses_a_cell() -> None:
    placements = place_region(
        region(reuse="none"),  # type: ignore[arg-type]
        [src(1, 0, 100), src(2, 0, 50), src(3, 60, 100)],
        VGA,
    )
    cells = {p.source.track_name: p.cell.index for p in placements}
    assert cells == {"track1": 0, "track2": 1, "track3": 2}  # a 2x2 grid for 3 sources
    assert placements[0].cell.width == 320 and placements[0].cell.height == 240


def test_show_oldest_makes_new_sources_wait() -> None:
    placements = place_region(
        region(max_rows=1, max_columns=1),  # type: ignore[arg-type]
        [src(1, 0, 100), src(2, 20, 150)],
        VGA,
    )
    assert [(p.source.track_name, p.start, p.end) for p in placements] == [
        ("track1", 0, 100),
        ("track2", 100, 150),
    ]


def test_show_newest_replaces_the_source_that_ends_first() -> None:
    placements = place_region(
        region(max_rows=1, max_columns=2, reuse="show_newest"),  # type: ignore[arg-type]
        [src(1, 0, 300), src(2, 0, 100), src(3, 50, 200)],
        VGA,
    )
    shown = sorted((p.source.track_name, p.cell.index, p.start, p.end) for p in placements)
    assert shown == [("track1", 0, 0, 300), ("track2", 1, 0, 50), ("track3", 1, 50, 200)]


def test_reuse_none_on_a_capped_grid_drops_late_sources() -> None:
    placements = place_region(
        region(max_rows=1, max_columns=1, reuse="none"),  # type: ignore[arg-type]
        [src(1, 0, 100), src(2, 200, 300)],
        VGA,
    )
    assert [p.source.track_name for p in placements] == ["track1"]


def test_cells_excluded_are_skipped_and_the_grid_grows() -> None:
    placements = place_region(
        region(cells_excluded=[0]),  # type: ignore[arg-type]
        [src(1, 0, 100), src(2, 0, 100)],
        VGA,
    )
    cells = {p.source.track_name: p.cell.index for p in placements}
    assert cells == {"track1": 1, "track2": 2}  # a 2x2 grid, upper-left cell never used


def test_sources_excluded_and_regions_stack_by_z() -> None:
    layout = parse_layout(
        {
            "main": {"z_pos": 1, "video_sources": ["*"], "video_sources_excluded": ["pip*"]},
            "pip": {
                "z_pos": 2,
                "x_pos": 480,
                "y_pos": 360,
                "width": 160,
                "height": 120,
                "video_sources": ["pip*"],
            },
        },
        VGA,
    )
    plan = plan_composition(
        [src(1, 0, 100, name="speaker"), src(2, 0, 100, name="pipcam")],
        layout=layout,
        audio=AudioSelection(),
        resolution=VGA,
        trim=True,
    )
    visible = plan.visible(50)
    assert [p.region for p in visible] == ["main", "pip"]
    assert visible[0].cell == Cell(0, 0, 0, 640, 480)
    assert visible[1].cell == Cell(0, 480, 360, 160, 120)


# -- audio and trim -------------------------------------------------------------------------


def test_audio_sources_minus_excluded() -> None:
    sources = [
        src(1, 0, 10, name="alice-mic", kind="audio"),
        src(2, 0, 10, name="bob-mic", kind="audio"),
        src(3, 0, 10, name="alice-cam"),
    ]
    picked = AudioSelection(("*",), ("bob*",)).pick(sources)
    assert [s.track_name for s in picked] == ["alice-mic"]


def test_trim_cuts_every_gap_and_always_the_first() -> None:
    intervals = [(1000, 2000), (1500, 3000), (5000, 6000)]
    assert kept_spans(intervals, trim=True) == [(1000, 3000), (5000, 6000)]
    assert kept_spans(intervals, trim=False) == [(1000, 6000)]
    assert kept_spans([], trim=True) == []


def test_plan_keeps_audio_only_spans_and_runs_end_to_end() -> None:
    plan = plan_composition(
        [src(1, 0, 1000), src(2, 3000, 4000, kind="audio", name="mic")],
        layout=parse_layout({"g": {"video_sources": ["*"]}}, VGA),
        audio=AudioSelection(("*",)),
        resolution=VGA,
        trim=True,
    )
    assert plan.spans == ((0, 1000), (3000, 4000))
    assert plan.duration_ms == 2000
    assert plan.visible(500) and not plan.visible(3500)
    assert Reuse("show_newest") is Reuse.SHOW_NEWEST
