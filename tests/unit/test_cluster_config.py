"""Several nodes' settings: PARLOUR_REDIS_URL asks for what every node must share."""

from __future__ import annotations

import pytest

from parlour.config import Config

PG = "postgresql://parlour:pw@db.internal/parlour"
REDIS = "redis://:pw@cache.internal:6379/0"


def test_without_redis_nothing_changes() -> None:
    config = Config.from_env({})
    assert config.redis_url is None and config.internal_url is None


def test_a_node_of_a_cluster() -> None:
    config = Config.from_env(
        {
            "PARLOUR_REDIS_URL": REDIS,
            "PARLOUR_DATABASE_URL": PG,
            "PARLOUR_SECRET_KEY": "s" * 64,
            "PARLOUR_HOST": "10.0.0.5",
            "PARLOUR_PORT": "8080",
        }
    )
    assert config.redis_url == REDIS and config.node_url == "http://10.0.0.5:8080"
    assert "pw@cache" not in repr(config)  # the Redis password stays out of logs
    flagged = Config.from_env(
        {"PARLOUR_SECRET_KEY": "s"},
        redis_url=REDIS,
        database_url=PG,
        host="0.0.0.0",
        internal_url="http://node-2.internal:8080/",
    )
    assert flagged.node_url == "http://node-2.internal:8080"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "needs PARLOUR_DATABASE_URL=postgresql"),
        ({"PARLOUR_DATABASE_URL": "sqlite:///x.db"}, "needs PARLOUR_DATABASE_URL=postgresql"),
        ({"PARLOUR_DATABASE_URL": PG}, "needs PARLOUR_SECRET_KEY"),
        (
            {"PARLOUR_DATABASE_URL": PG, "PARLOUR_SECRET_KEY": "s", "PARLOUR_HOST": "0.0.0.0"},
            "needs PARLOUR_INTERNAL_URL",
        ),
        (
            {"PARLOUR_DATABASE_URL": PG, "PARLOUR_SECRET_KEY": "s", "PARLOUR_INTERNAL_URL": "x"},
            "is not an http:// or https:// URL",
        ),
    ],
)
def test_what_every_node_must_share_is_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config.from_env({"PARLOUR_REDIS_URL": REDIS, **env})
