"""What one apply costs the service, counted (not timed): an apply through the request intake with
its status written through (`Projector.writing`) parses its spec once, validates with pydantic
only what it was given, never decodes the commit it has just written, and encodes it with orjson;
the reactor takes the commits of its own process as they were appended, and appends without
waiting for a status write of the same name.

The counts come from `sys.setprofile` over the apply (publish to outcome and projected status):
calls of the named functions in this process, a real nats-server, no mock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from dgdr.app.reactors import Reactor
from dgdr.app.simcluster import SimulatedCluster
from dgdr.domain import model, spec
from dgdr.domain.model import Apply
from events import integrity
from events import subjects as s
from events.server import EmbeddedNatsServer
from tests.dgdr.app.writers import Parts, service
from tests.support import manifest, until

AT = "2026-01-01T00:00:00.000Z"


@contextlib.contextmanager
def counting(functions: dict[str, Callable[..., Any]]) -> Iterator[Counter[str]]:
    """Calls of each Python function in `functions` (by name), and of pydantic's validators
    (`pydantic validations`), made in this thread while the block runs."""
    codes = {f.__code__: name for name, f in functions.items()}
    calls: Counter[str] = Counter()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            name = codes.get(frame.f_code)
            if name is not None:
                calls[name] += 1
        elif (
            event == "c_call"
            and getattr(arg, "__name__", "") == "validate_python"
            and type(getattr(arg, "__self__", None)).__name__ == "SchemaValidator"
        ):
            calls["pydantic validations"] += 1

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(None)


async def apply(
    parts: Parts, name: str, functions: dict[str, Callable[..., Any]], phase: str = "Pending"
) -> Counter[str]:
    """Apply DGDR `name`, counting calls from the publish to its status in `phase`. Encoded,
    subscribed and watched before the count: the client's work is not counted."""
    data = json.dumps(manifest(name, "default")).encode()
    sub = await parts.nc.subscribe(s.result_subject(f"cost-{name}"), max_msgs=1)
    watcher = await parts.kv.watch(s.status_key("default", name))
    with counting(functions) as calls:
        await parts.js.publish(
            s.request_subject("default", name),
            data,
            stream=s.REQUESTS_STREAM,
            headers={"Nats-Msg-Id": f"cost-{name}"},
        )
        outcome = await sub.next_msg(timeout=30)
        async with asyncio.timeout(30):
            async for entry in watcher:  # the status written through
                if entry is not None and entry.value and phase_of(entry.value) == phase:
                    break
    await watcher.stop()
    assert json.loads(outcome.data)["status"] == "accepted", outcome.data
    return calls


def phase_of(value: bytes) -> str:
    return str(json.loads(value)["status"]["phase"])


@pytest.mark.timeout(90)
async def test_an_apply_parses_once_and_never_decodes_or_json_encodes_what_it_wrote(
    nats_server: EmbeddedNatsServer,
) -> None:
    functions: dict[str, Callable[..., Any]] = {
        "parse_spec": spec.parse_spec,
        "event_from_payload": model.event_from_payload,
        "json.dumps": json.JSONEncoder.encode,
    }
    async with service(nats_server, reactor=False) as parts:
        await apply(parts, "warm", functions)  # first-use costs (imports, caches) are not counted
        calls = await apply(parts, "counted", functions)
    assert calls["parse_spec"] == 1, calls  # the request's spec; the write-through reuses it
    assert calls["event_from_payload"] == 0, calls  # its own commit is not decoded back
    assert calls["json.dumps"] == 0, calls  # the commit and the status are orjson-encoded
    # The spec, the command (the user's labels and annotations) and the cluster's hardware facts:
    # the events are built from them, not validated again.
    assert calls["pydantic validations"] <= 3, calls


@pytest.mark.timeout(90)
async def test_the_reactor_takes_the_commits_of_its_process_without_decoding_them(
    nats_server: EmbeddedNatsServer,
) -> None:
    functions: dict[str, Callable[..., Any]] = {"read_commit": integrity.read_commit}
    async with service(nats_server, reactor=True) as parts:
        await apply(parts, "warm", functions, "Profiling")
        calls = await apply(parts, "counted", functions, "Profiling")
    assert calls["read_commit"] == 0, calls


@pytest.mark.timeout(90)
async def test_the_reactor_appends_while_the_status_it_follows_is_being_written(
    nats_server: EmbeddedNatsServer,
) -> None:
    """The reactor's append does not wait for a write-through of the same name (the request
    intake's, of the commit it reacts to): only the status writes of a name are ordered."""
    async with service(nats_server, reactor=False) as parts:
        created = await parts.handler.handle(
            "default",
            "held",
            Apply(
                id="apply-held",
                at=AT,
                correlation_id="apply-held",
                spec=manifest("held")["spec"],
                discovered_hardware=await SimulatedCluster(parts.js).discover_hardware(),
            ),
        )
        assert created.commit is not None and created.events == ("Created", "Validated")
        reactor = Reactor(parts.handler, parts.js, SimulatedCluster(parts.js), parts.projector)
        async with parts.projector.writing("default", "held"):  # a write-through in progress
            reacting = asyncio.create_task(reactor.react(created.commit))

            first = created.commit.seq

            async def appended() -> int | None:
                last = await parts.store.latest("default", "held")
                return last.seq if last is not None and last.seq > first else None

            await until(appended, 20, "StartProfiling appended while the status is being written")
        async with asyncio.timeout(20):
            await reacting
        entry = await parts.kv.get(s.status_key("default", "held"))
        assert phase_of(entry.value or b"{}") == "Profiling"
