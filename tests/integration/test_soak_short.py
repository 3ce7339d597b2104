"""`make soak`, two minutes of it: the same seeded churn against a real `parlour serve`
process (lean endpoints and Python SDK clients joining, publishing, muting, unpublishing,
leaving, vanishing, never finishing ICE; rooms completed and re-created over REST;
recordings switched by RecordingRules; status callbacks to a receiver), then every counted
series must be back at its baseline: sockets, descriptors, tasks, sessions, live rows,
spool files and the media gauges (memory is reported, not checked, in so short a run);
every callback delivered with a valid signature and every recording decodable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import SoakConfig, soak

pytestmark = [pytest.mark.integration]


async def test_two_minutes_of_churn_leave_nothing_behind(tmp_path: Path) -> None:
    # The soak samples one process (its sockets, tasks and memory): bench.soak's server
    # keeps the SFU in it (PARLOUR_MEDIA_WORKERS=0).
    config = SoakConfig(minutes=2.0, seed=7, out=tmp_path, check_memory=False, warmup_seconds=10.0)
    result = await soak(config, progress=lambda line: None)
    assert result["failures"] == [], (
        result["failures"],
        result["leftovers"],
        result["leftover_log"],
    )
    counters = result["counters"]
    assert counters["joins"] >= 40 and counters["vanished"] + counters["no_ice"] > 0
    assert counters["mutes"] and counters["unpublishes"] and counters["rule_changes"]
    assert result["callbacks"]["valid"] > 0 and result["callbacks"]["invalid"] == 0
    assert result["recordings"]["statuses"].get("completed", 0) > 0
    # The churn really loaded the server, and everything it held went away.
    assert result["peak"]["sessions"] >= 10 and result["final"]["sessions"] == 0
    assert result["peak"]["udp_sockets"] >= 1
    assert result["peak"]["asyncio_tasks"] > result["baseline"]["asyncio_tasks"] + 20
    assert (tmp_path / f"{result['date'][:10]}-soak.png").stat().st_size > 10_000
