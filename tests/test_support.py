"""The shared `until` helper returns what the check returns and fails past its deadline."""

from __future__ import annotations

import pytest

from tests.support import until


@pytest.mark.timeout(10)
async def test_until_returns_the_first_truthy_value_of_a_plain_or_async_check() -> None:
    calls: list[int] = []

    def plain() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    async def awaited() -> str:
        return "ready"

    assert await until(plain, timeout=5) == 3
    assert await until(awaited, timeout=5) == "ready"


@pytest.mark.timeout(10)
async def test_until_fails_with_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for the moon"):
        await until(lambda: None, timeout=0.05, what="the moon")
