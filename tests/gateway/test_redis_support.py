"""The Redis test helper: runs when Redis answers, skips outside CI only when it does not."""

from __future__ import annotations

import pytest

from tests.support import redis_server


async def test_an_unreachable_redis_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_server, "REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Redis answers"):
        await redis_server.connect()


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
async def test_an_unreachable_redis_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setattr(redis_server, "REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI must run the Redis tests"):
        await redis_server.connect()
