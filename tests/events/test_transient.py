"""events.transient and the consumer's retry delays: which failures are retried promptly."""

from __future__ import annotations

import nats.errors
import pytest
from nats.js.errors import BadRequestError, NoStreamResponseError, ServiceUnavailableError

from events.consumer import MAX_RETRY_DELAY, MAX_TRANSIENT_DELAY, retry_delay, silent_after
from events.transient import is_transient, retry_transient


@pytest.mark.parametrize(
    "exc",
    [
        nats.errors.NoRespondersError(),
        NoStreamResponseError(),
        ServiceUnavailableError(code=503, description="no leader"),
        nats.errors.TimeoutError(),
        TimeoutError(),
    ],
)
def test_a_lost_leader_is_transient_and_retried_within_a_second(exc: Exception) -> None:
    assert is_transient(exc)
    assert retry_delay(exc, 20, 0.5) == MAX_TRANSIENT_DELAY


def test_other_failures_back_off_up_to_the_slow_delay() -> None:
    bug = ValueError("a bug")
    assert not is_transient(bug)
    assert not is_transient(nats.errors.ConnectionClosedError())  # its owner reconnects
    assert retry_delay(bug, 1, 0.5) == 0.5
    assert retry_delay(bug, 20, 0.5) == MAX_RETRY_DELAY


def test_a_pull_is_taken_as_lost_after_two_missed_heartbeats() -> None:
    assert 2 * (10.0 / 4) < silent_after(10.0) < 10.0


async def test_retry_transient_goes_on_through_no_responders_and_stops_at_other_errors() -> None:
    failures = [NoStreamResponseError(), ServiceUnavailableError(code=503)]

    async def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "stored"

    assert await retry_transient(flaky, "append", deadline=10) == "stored"

    async def refused() -> str:
        raise BadRequestError(code=400, err_code=10071)

    with pytest.raises(BadRequestError):
        await retry_transient(refused, "append", deadline=10)

    async def down() -> str:
        raise nats.errors.NoRespondersError

    with pytest.raises(nats.errors.NoRespondersError):
        await retry_transient(down, "append", deadline=0.3)
