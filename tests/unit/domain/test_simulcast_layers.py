"""Choosing a simulcast layer for one subscriber: render size first, then the bitrate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parlour.domain.bandwidth import SimulcastLayer, choose_layer

KBPS = 1000
THREE = (
    SimulcastLayer(width=320, height=180, bitrate=150 * KBPS),
    SimulcastLayer(width=640, height=360, bitrate=500 * KBPS),
    SimulcastLayer(width=1280, height=720, bitrate=1500 * KBPS),
)


def test_no_layers_or_none_arriving() -> None:
    assert choose_layer((), render_area=None, bitrate=None) == (0, 2)
    quiet = tuple(SimulcastLayer(active=False) for _ in range(3))
    assert choose_layer(quiet, render_area=100, bitrate=100) == (2, 2)


def test_the_smallest_layer_large_enough_for_the_render_size() -> None:
    assert choose_layer(THREE, render_area=None, bitrate=None) == (2, 2)
    assert choose_layer(THREE, render_area=160 * 90, bitrate=None) == (0, 2)
    assert choose_layer(THREE, render_area=360 * 200, bitrate=None) == (0, 2)  # within slack
    assert choose_layer(THREE, render_area=480 * 270, bitrate=None) == (1, 2)
    assert choose_layer(THREE, render_area=1280 * 720, bitrate=None) == (2, 2)
    assert choose_layer(THREE, render_area=1920 * 1080, bitrate=None) == (2, 2)


def test_unknown_sizes_give_the_best_layer() -> None:
    unknown = tuple(SimulcastLayer(bitrate=b.bitrate) for b in THREE)
    assert choose_layer(unknown, render_area=100, bitrate=None) == (2, 2)


def test_layers_not_arriving_are_skipped() -> None:
    top_off = (*THREE[:2], SimulcastLayer(width=1280, height=720, active=False))
    assert choose_layer(top_off, render_area=1280 * 720, bitrate=None) == (1, 2)
    low_off = (SimulcastLayer(active=False), *THREE[1:])
    assert choose_layer(low_off, render_area=100, bitrate=None) == (1, 2)


def test_the_bitrate_moves_down_a_layer_then_drops_temporal_layers() -> None:
    assert choose_layer(THREE, render_area=None, bitrate=2000 * KBPS) == (2, 2)
    assert choose_layer(THREE, render_area=None, bitrate=1000 * KBPS) == (1, 2)
    assert choose_layer(THREE, render_area=None, bitrate=200 * KBPS) == (0, 2)
    assert choose_layer(THREE, render_area=None, bitrate=100 * KBPS) == (0, 1)
    assert choose_layer(THREE, render_area=None, bitrate=60 * KBPS) == (0, 0)
    assert choose_layer(THREE, render_area=None, bitrate=10 * KBPS) == (0, 0)
    assert choose_layer(THREE, render_area=160 * 90, bitrate=10_000 * KBPS) == (0, 2)


@given(
    st.lists(
        st.builds(
            SimulcastLayer,
            width=st.integers(0, 4000),
            height=st.integers(0, 4000),
            bitrate=st.integers(0, 10**7),
            active=st.booleans(),
        ),
        max_size=4,
    ),
    st.none() | st.integers(0, 10**7),
    st.none() | st.integers(0, 10**7),
)
def test_the_choice_is_an_arriving_layer_when_there_is_one(
    layers: list[SimulcastLayer], area: int | None, bitrate: int | None
) -> None:
    spatial, temporal = choose_layer(layers, render_area=area, bitrate=bitrate)
    assert 0 <= temporal <= 2
    if any(layer.active for layer in layers):
        assert layers[spatial].active
    if bitrate is not None and layers and layers[spatial].active:
        lowest = next(i for i, layer in enumerate(layers) if layer.active)
        assert layers[spatial].bitrate <= bitrate or spatial == lowest
