"""Property: every parser of untrusted input returns or raises its documented error.

One test per target (`targets.py`): mutations of real seed inputs (drawn as a seed index and a
random seed, so a failure reproduces from the two numbers) and raw random bytes. Bounded for
`make test` (`FUZZ_EXAMPLES`, 150 by default); `make fuzz` runs the long campaign instead.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.mutate import mutate
from tests.fuzz.targets import TARGETS, Target

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))


def mutated(target: Target) -> st.SearchStrategy[bytes]:
    seeds = target.seeds()

    def build(pick: tuple[int, int]) -> bytes:
        index, rng_seed = pick
        rng = random.Random(rng_seed)
        seed = seeds[index % len(seeds)]
        return mutate(seed, rng, seeds, json_keys=target.json_keys, max_size=target.max_size)

    return st.tuples(st.integers(0, 63), st.integers(0, 2**32 - 1)).map(build)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_seeds_are_accepted(target: Target) -> None:
    assert any(target.run(seed) for seed in target.seeds())


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_parser_returns_or_raises_its_documented_error(target: Target) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same inputs on every run; `make fuzz` explores
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=mutated(target) | st.binary(max_size=target.max_size // 64))
    def check(data: bytes) -> None:
        try:
            target.run(data)
        except target.known:
            pass

    check()
