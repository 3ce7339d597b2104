"""Twilio's `VideoLayout` for compositions: the grammar, the grid, who is shown where and
when, the audio selection and `Trim`. Pure arithmetic: the media pipeline
(`parlour.recording.composer`) only follows the `CompositionPlan` made here.

Grammar (rest-api.md §11.1): a JSON object of regions by name; each region has `x_pos`,
`y_pos`, `z_pos`, `width`, `height`, `max_columns`, `max_rows`, `cells_excluded`, `reuse`
(`none` | `show_oldest` | `show_newest`), `video_sources` (required) and
`video_sources_excluded`. Sources name recordings (`RT…`), tracks (`MT…`), participants
(`PA…`) or track names, with `*` wildcards.

Grid (§11.2): N is the largest number of sources of the region shown at once (every source
for `reuse: none`); `cols = ceil(sqrt(N))`, `rows = ceil(N / cols)`, then `max_rows` and
`max_columns` cap one dimension and the other grows to fit, and both caps together bound
the cells. Cells are numbered row by row from the upper left; `cells_excluded` are never
used (the grid grows to keep N usable cells). A source fills its cell's rectangle keeping
its aspect ratio (`object-fit: contain`).

Reuse (§11.3): a cell is fresh, used or idle. `none` gives new sources fresh cells only;
`show_oldest` a fresh or idle cell, else the source waits until one is idle; `show_newest`
a fresh or idle cell, else it replaces the used cell whose media ends first.

Times are milliseconds on the recordings' common clock (`Recording.offset`).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AudioSelection",
    "Cell",
    "CompositionPlan",
    "LayoutError",
    "Placement",
    "Region",
    "Reuse",
    "Source",
    "VideoLayout",
    "cell_rects",
    "contain",
    "grid_size",
    "kept_spans",
    "matches",
    "parse_layout",
    "parse_resolution",
    "place_region",
    "plan_composition",
    "selected",
]

MAX_LAYOUT_BYTES = 16_384
MAX_REGIONS = 16
MAX_SOURCES = 256
_INT_RE = re.compile(r"^-?\d+$")
_RESOLUTION_RE = re.compile(r"^(\d{1,5})x(\d{1,5})$")


class LayoutError(ValueError):
    """A `VideoLayout`, `Resolution` or source list that Twilio would refuse."""


class Reuse(enum.StrEnum):
    NONE = "none"
    SHOW_OLDEST = "show_oldest"
    SHOW_NEWEST = "show_newest"


def parse_resolution(value: str) -> tuple[int, int]:
    """`{w}x{h}` with 16 ≤ w, h ≤ 1280 and w·h ≤ 921 600 (rest-api.md §11.4)."""
    match = _RESOLUTION_RE.match(value.strip())
    if match is None:
        raise LayoutError(f"Resolution must be {{width}}x{{height}}: {value!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 1280 and 16 <= height <= 1280) or width * height > 921_600:
        raise LayoutError(
            "Resolution must have 16 <= width <= 1280, 16 <= height <= 1280 and "
            f"width * height <= 921600: {value!r}"
        )
    return width, height


@dataclass(frozen=True)
class Region:
    """One region of a layout, as given (None: not given)."""

    name: str
    video_sources: tuple[str, ...]
    x_pos: int = 0
    y_pos: int = 0
    z_pos: int = 0
    width: int | None = None
    height: int | None = None
    max_columns: int | None = None
    max_rows: int | None = None
    cells_excluded: tuple[int, ...] = ()
    reuse: Reuse = Reuse.SHOW_OLDEST
    video_sources_excluded: tuple[str, ...] = ()

    def box(self, resolution: tuple[int, int]) -> tuple[int, int, int, int]:
        """(x, y, width, height) in the composition; a missing size fills to the edge."""
        comp_w, comp_h = resolution
        width = self.width if self.width is not None else comp_w - self.x_pos
        height = self.height if self.height is not None else comp_h - self.y_pos
        return self.x_pos, self.y_pos, width, height

    def to_json(self) -> dict[str, Any]:
        """As Twilio echoes it: every property, 0 / [] for those not given."""
        return {
            "x_pos": self.x_pos,
            "y_pos": self.y_pos,
            "z_pos": self.z_pos,
            "width": self.width or 0,
            "height": self.height or 0,
            "max_columns": self.max_columns or 0,
            "max_rows": self.max_rows or 0,
            "cells_excluded": list(self.cells_excluded),
            "reuse": self.reuse.value,
            "video_sources": list(self.video_sources),
            "video_sources_excluded": list(self.video_sources_excluded),
        }


@dataclass(frozen=True)
class VideoLayout:
    regions: tuple[Region, ...]

    def to_json(self) -> dict[str, Any]:
        return {r.name: r.to_json() for r in self.regions}

    def stored(self) -> dict[str, Any]:
        """The layout as given (unset properties left out), to store and parse again."""
        out: dict[str, Any] = {}
        for r in self.regions:
            item: dict[str, Any] = {"video_sources": list(r.video_sources)}
            for name in ("x_pos", "y_pos", "z_pos"):
                if getattr(r, name):
                    item[name] = getattr(r, name)
            for name in ("width", "height", "max_columns", "max_rows"):
                if getattr(r, name) is not None:
                    item[name] = getattr(r, name)
            if r.cells_excluded:
                item["cells_excluded"] = list(r.cells_excluded)
            if r.reuse is not Reuse.SHOW_OLDEST:
                item["reuse"] = r.reuse.value
            if r.video_sources_excluded:
                item["video_sources_excluded"] = list(r.video_sources_excluded)
            out[r.name] = item
        return out


_REGION_KEYS = {
    "x_pos",
    "y_pos",
    "z_pos",
    "width",
    "height",
    "max_columns",
    "max_rows",
    "cells_excluded",
    "reuse",
    "video_sources",
    "video_sources_excluded",
}


def _int(region: str, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and _INT_RE.match(value))
    ):
        raise LayoutError(f"VideoLayout region {region!r}: {name} must be an integer")
    number = int(value)
    if not low <= number <= high:
        raise LayoutError(f"VideoLayout region {region!r}: {name} must be in [{low}, {high}]")
    return number


def _names(region: str, name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise LayoutError(f"VideoLayout region {region!r}: {name} must be a list of names")
    if len(value) > MAX_SOURCES or any(len(v) > 256 for v in value):
        raise LayoutError(f"VideoLayout region {region!r}: {name} is too long")
    return tuple(value)


def _region(name: str, spec: Any, resolution: tuple[int, int]) -> Region:
    if not isinstance(spec, dict):
        raise LayoutError(f"VideoLayout region {name!r} must be an object")
    unknown = sorted(set(spec) - _REGION_KEYS)
    if unknown:
        raise LayoutError(f"VideoLayout region {name!r}: unknown property {unknown[0]!r}")
    if "video_sources" not in spec:
        raise LayoutError(f"VideoLayout region {name!r}: video_sources is required")
    comp_w, comp_h = resolution
    x = _int(name, "x_pos", spec.get("x_pos", 0), 0, comp_w)
    y = _int(name, "y_pos", spec.get("y_pos", 0), 0, comp_h)
    z = _int(name, "z_pos", spec.get("z_pos", 0), -99, 99)
    # A missing width or height counts as 16 for the position check (rest-api.md §11.1).
    if x > comp_w - (16 if spec.get("width") is None else 0):
        raise LayoutError(f"VideoLayout region {name!r}: x_pos leaves no room for the region")
    if y > comp_h - (16 if spec.get("height") is None else 0):
        raise LayoutError(f"VideoLayout region {name!r}: y_pos leaves no room for the region")
    width = (
        None
        if spec.get("width") is None
        else _int(name, "width", spec["width"], 16, max(16, comp_w - x))
    )
    height = (
        None
        if spec.get("height") is None
        else _int(name, "height", spec["height"], 16, max(16, comp_h - y))
    )
    if width is not None and x + width > comp_w:
        raise LayoutError(f"VideoLayout region {name!r}: x_pos + width exceeds the Resolution")
    if height is not None and y + height > comp_h:
        raise LayoutError(f"VideoLayout region {name!r}: y_pos + height exceeds the Resolution")
    max_columns = (
        None
        if spec.get("max_columns") is None
        else _int(name, "max_columns", spec["max_columns"], 1, 1000)
    )
    max_rows = (
        None if spec.get("max_rows") is None else _int(name, "max_rows", spec["max_rows"], 1, 1000)
    )
    cells_raw = spec.get("cells_excluded", [])
    if not isinstance(cells_raw, list) or len(cells_raw) > 1000:
        raise LayoutError(f"VideoLayout region {name!r}: cells_excluded must be a list")
    cells = tuple(sorted({_int(name, "cells_excluded", c, 0, 999_999) for c in cells_raw}))
    reuse_raw = spec.get("reuse", Reuse.SHOW_OLDEST.value)
    try:
        reuse = Reuse(reuse_raw)
    except ValueError:
        raise LayoutError(
            f"VideoLayout region {name!r}: reuse must be none, show_oldest or show_newest"
        ) from None
    sources = _names(name, "video_sources", spec["video_sources"])
    excluded = _names(name, "video_sources_excluded", spec.get("video_sources_excluded", []))
    return Region(
        name=name,
        video_sources=sources,
        x_pos=x,
        y_pos=y,
        z_pos=z,
        width=width,
        height=height,
        max_columns=max_columns,
        max_rows=max_rows,
        cells_excluded=cells,
        reuse=reuse,
        video_sources_excluded=excluded,
    )


def parse_layout(value: Any, resolution: tuple[int, int]) -> VideoLayout:
    """A `VideoLayout` (already JSON-decoded) checked against the composition's size.

    Raises:
        LayoutError: not an object of regions, no region, or a region Twilio refuses.
    """
    if not isinstance(value, dict) or not value:
        raise LayoutError("VideoLayout must be a JSON object with at least one region")
    if len(value) > MAX_REGIONS:
        raise LayoutError(f"VideoLayout has more than {MAX_REGIONS} regions")
    regions = []
    for name, spec in value.items():
        if not isinstance(name, str) or not name or len(name) > 64:
            raise LayoutError("VideoLayout region names must be 1 to 64 characters")
        regions.append(_region(name, spec, resolution))
    return VideoLayout(tuple(regions))


# -- sources --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A track recording that can be composed: its names and when its media plays.

    `start`/`end` in ms on the common clock (`offset`, `offset + duration`).
    """

    recording_sid: str
    track_sid: str
    participant_sid: str
    track_name: str
    kind: str  # "audio" | "video"
    start: int
    end: int
    width: int = 0
    height: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return (self.recording_sid, self.track_sid, self.participant_sid, self.track_name)


def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def matches(pattern: str, source: Source) -> bool:
    """Whether a `video_sources`-style item names the source (SID exactly, or its track
    name with `*` matching any run of characters)."""
    if "*" not in pattern:
        return pattern in source.names
    compiled = _pattern(pattern)
    return any(compiled.match(name) for name in source.names[3:]) or pattern == "*"


def selected(
    sources: Iterable[Source], include: Sequence[str], exclude: Sequence[str] = ()
) -> list[Source]:
    """The sources `include` names minus those `exclude` names, in start order."""
    picked = [
        s
        for s in sources
        if any(matches(p, s) for p in include) and not any(matches(p, s) for p in exclude)
    ]
    return sorted(picked, key=lambda s: (s.start, s.recording_sid))


# -- grid -----------------------------------------------------------------------------------


def grid_size(
    n: int, max_rows: int | None = None, max_columns: int | None = None
) -> tuple[int, int]:
    """(rows, columns) of a region grid for `n` sources (rest-api.md §11.2)."""
    if n <= 0:
        return 0, 0
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    if max_rows is not None and rows > max_rows:
        rows = max_rows
        cols = math.ceil(n / rows)
    if max_columns is not None and cols > max_columns:
        cols = max_columns
        rows = math.ceil(n / cols)
    if max_rows is not None:
        rows = min(rows, max_rows)
    if max_columns is not None:
        cols = min(cols, max_columns)
    return rows, cols


@dataclass(frozen=True)
class Cell:
    index: int
    x: int
    y: int
    width: int
    height: int


def cell_rects(box: tuple[int, int, int, int], rows: int, cols: int) -> list[Cell]:
    """Every cell of a rows × cols grid over `box`, row by row (edges split evenly)."""
    x0, y0, width, height = box
    cells = []
    for r in range(rows):
        top, bottom = y0 + height * r // rows, y0 + height * (r + 1) // rows
        for c in range(cols):
            left, right = x0 + width * c // cols, x0 + width * (c + 1) // cols
            cells.append(Cell(r * cols + c, left, top, right - left, bottom - top))
    return cells


def contain(cell: Cell, width: int, height: int, *, even: bool = True) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a `width`×`height` picture fitted in the cell, aspect kept, centred
    (`object-fit: contain`). With `even`, every value is even (4:2:0 chroma)."""
    if width <= 0 or height <= 0:
        width, height = cell.width, cell.height
    scale = min(cell.width / width, cell.height / height)
    w = max(2, min(cell.width, round(width * scale)))
    h = max(2, min(cell.height, round(height * scale)))
    x = cell.x + (cell.width - w) // 2
    y = cell.y + (cell.height - h) // 2
    if even:
        w, h, x, y = w & ~1, h & ~1, x & ~1, y & ~1
    return x, y, w, h


def _max_simultaneous(sources: Sequence[Source]) -> int:
    points = sorted([(s.start, 1) for s in sources] + [(s.end, -1) for s in sources])
    best = current = 0
    for _, delta in points:  # ends (-1) sort before starts (+1) at the same time
        current += delta
        best = max(best, current)
    return best


def _usable_cells(n: int, region: Region) -> tuple[int, int, list[int]]:
    """The grid (rows, cols) with n usable cells after `cells_excluded`, and those cells."""
    excluded = set(region.cells_excluded)
    total = n
    while True:
        rows, cols = grid_size(total, region.max_rows, region.max_columns)
        usable = [i for i in range(rows * cols) if i not in excluded]
        capped = (region.max_rows is not None and region.max_columns is not None) and (
            rows * cols >= region.max_rows * region.max_columns
        )
        if len(usable) >= n or capped or total > n + len(excluded):
            return rows, cols, usable
        total += 1


@dataclass(frozen=True)
class Placement:
    """A source shown in a cell of a region from `start` to `end` (ms, common clock)."""

    region: str
    z_pos: int
    order: int  # the region's place in the layout (draw order among equal z_pos)
    source: Source
    cell: Cell
    start: int
    end: int


def place_region(
    region: Region, sources: Sequence[Source], resolution: tuple[int, int], order: int = 0
) -> list[Placement]:
    """Who the region shows in which cell, and when (§11.2 grid, §11.3 reuse)."""
    picked = selected(
        [s for s in sources if s.kind == "video"],
        region.video_sources,
        region.video_sources_excluded,
    )
    picked = [s for s in picked if s.end > s.start]
    if not picked:
        return []
    n = len(picked) if region.reuse is Reuse.NONE else _max_simultaneous(picked)
    rows, cols, usable = _usable_cells(n, region)
    rects = {c.index: c for c in cell_rects(region.box(resolution), rows, cols)}
    fresh = list(usable)
    # cell → (source, shown since, until); idle cells keep None
    used: dict[int, tuple[Source, int] | None] = {}
    placements: list[Placement] = []
    waiting: list[Source] = []

    def show(cell: int, source: Source, since: int) -> None:
        used[cell] = (source, since)

    def finish(cell: int, at: int) -> None:
        current = used.get(cell)
        if current is not None:
            source, since = current
            if at > since:
                placements.append(
                    Placement(region.name, region.z_pos, order, source, rects[cell], since, at)
                )
        used[cell] = None

    def free_cell() -> int | None:
        if region.reuse is Reuse.NONE:
            return fresh.pop(0) if fresh else None
        idle = [c for c in usable if c in used and used[c] is None]
        candidates = sorted(idle + fresh[:1])
        if not candidates:
            return None
        cell = candidates[0]
        if cell in fresh:
            fresh.remove(cell)
        return cell

    times = sorted({s.start for s in picked} | {s.end for s in picked})
    by_start: dict[int, list[Source]] = {}
    for s in picked:
        by_start.setdefault(s.start, []).append(s)
    for t in times:
        for index, current in list(used.items()):
            if current is not None and current[0].end <= t:
                finish(index, current[0].end)
        waiting = [s for s in waiting if s.end > t]
        arrivals = waiting + by_start.get(t, [])
        waiting = []
        for source in arrivals:
            cell: int | None = free_cell()
            if cell is None and region.reuse is Reuse.SHOW_NEWEST:
                live = [(cur[0].end, c) for c, cur in used.items() if cur is not None]
                if live:
                    cell = min(live)[1]
                    finish(cell, t)
            if cell is None:
                if region.reuse is Reuse.SHOW_OLDEST:
                    waiting.append(source)
                continue
            show(cell, source, t)
    for index, current in list(used.items()):
        if current is not None:
            finish(index, current[0].end)
    return sorted(placements, key=lambda p: (p.start, p.cell.index))


# -- audio and trim -------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioSelection:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def pick(self, sources: Iterable[Source]) -> list[Source]:
        return [
            s
            for s in selected([s for s in sources if s.kind == "audio"], self.include, self.exclude)
            if s.end > s.start
        ]


def kept_spans(intervals: Iterable[tuple[int, int]], *, trim: bool) -> list[tuple[int, int]]:
    """The spans of the common clock the composition keeps, in order.

    The gap before the first media is always cut; with `trim` every later gap with no media
    at all is cut too, without it the composition runs from the first start to the last end.
    """
    spans = sorted((a, b) for a, b in intervals if b > a)
    if not spans:
        return []
    if not trim:
        return [(spans[0][0], max(b for _, b in spans))]
    merged = [spans[0]]
    for a, b in spans[1:]:
        last_a, last_b = merged[-1]
        if a <= last_b:
            merged[-1] = (last_a, max(last_b, b))
        else:
            merged.append((a, b))
    return merged


@dataclass(frozen=True)
class CompositionPlan:
    """Everything the media pipeline needs: what to draw where and when, what to mix, which
    spans of time to keep. Times are ms on the common clock."""

    resolution: tuple[int, int]
    placements: tuple[Placement, ...]
    audio: tuple[Source, ...]
    spans: tuple[tuple[int, int], ...]
    has_video: bool
    video_sources: tuple[Source, ...] = field(default=())

    @property
    def duration_ms(self) -> int:
        return sum(b - a for a, b in self.spans)

    def visible(self, at: int) -> list[Placement]:
        """Placements on screen at `at`, in drawing order (lowest z first)."""
        live = [p for p in self.placements if p.start <= at < p.end]
        return sorted(live, key=lambda p: (p.z_pos, p.order, p.cell.index))


def plan_composition(
    sources: Sequence[Source],
    *,
    layout: VideoLayout | None,
    audio: AudioSelection,
    resolution: tuple[int, int],
    trim: bool,
) -> CompositionPlan:
    """The plan for a composition of these recordings (empty spans: nothing to compose)."""
    placements: list[Placement] = []
    if layout is not None:
        for order, region in enumerate(layout.regions):
            placements.extend(place_region(region, sources, resolution, order))
    mixed = audio.pick(sources)
    intervals = [(p.start, p.end) for p in placements] + [(s.start, s.end) for s in mixed]
    spans = kept_spans(intervals, trim=trim)
    shown = {p.source.recording_sid: p.source for p in placements}
    return CompositionPlan(
        resolution=resolution,
        placements=tuple(placements),
        audio=tuple(mixed),
        spans=tuple(spans),
        has_video=layout is not None,
        video_sources=tuple(sorted(shown.values(), key=lambda s: s.start)),
    )


def layout_from_json(value: Mapping[str, Any], resolution: tuple[int, int]) -> VideoLayout:
    """A stored layout, parsed again (it was valid when stored)."""
    return parse_layout(dict(value), resolution)
