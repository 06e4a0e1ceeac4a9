"""What one apply costs the service, counted (not timed): an apply through the request intake with
its status written through (`Projector.writing`) parses its spec once, validates with pydantic
only what it was given, never decodes the commit it has just written, and encodes it with orjson.

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

import nats
import pytest

from dgdr.app.handler import CommandHandler
from dgdr.app.request_handler import RequestHandler
from dgdr.app.simcluster import SimulatedCluster
from dgdr.domain import model, spec
from events import subjects as s
from events.consumer import run_consumer
from events.jetstream import JetStreamEventStore, ensure_layout
from events.server import EmbeddedNatsServer
from projections.projector import Projector
from tests.support import manifest


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


@pytest.mark.timeout(90)
async def test_an_apply_parses_once_and_never_decodes_or_json_encodes_what_it_wrote(
    nats_server: EmbeddedNatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    task: asyncio.Task[None] | None = None
    try:
        js = nc.jetstream()
        kv = await ensure_layout(js)
        store = JetStreamEventStore(nc, js)
        projector = Projector(js, kv, store)
        requests = RequestHandler(
            nc,
            js,
            CommandHandler(store),
            SimulatedCluster(js),
            model_dirs=(),
            max_deliveries=5,
            max_transient_deliveries=20,
            projector=projector,
        )
        task = asyncio.create_task(
            run_consumer(
                nc,
                js,
                stream=s.REQUESTS_STREAM,
                durable="dgdr-service",
                subject=f"{s.REQUESTS_PREFIX}.>",
                handler=requests.on_message,
            )
        )

        async def apply(name: str) -> Counter[str]:
            # Encoded, subscribed and watched before the count: the client's work is not counted.
            data = json.dumps(manifest(name, "default")).encode()
            sub = await nc.subscribe(s.result_subject(f"cost-{name}"), max_msgs=1)
            watcher = await kv.watch(s.status_key("default", name))
            with counting(functions) as calls:
                await js.publish(
                    s.request_subject("default", name),
                    data,
                    stream=s.REQUESTS_STREAM,
                    headers={"Nats-Msg-Id": f"cost-{name}"},
                )
                outcome = await sub.next_msg(timeout=30)
                async with asyncio.timeout(30):
                    async for entry in watcher:  # the status written through
                        if entry is not None:
                            break
            await watcher.stop()  # type: ignore[no-untyped-call]
            assert json.loads(outcome.data)["status"] == "accepted", outcome.data
            return calls

        functions: dict[str, Callable[..., Any]] = {
            "parse_spec": spec.parse_spec,
            "event_from_payload": model.event_from_payload,
            "json.dumps": json.JSONEncoder.encode,
        }
        await apply("warm")  # first-use costs (imports, caches) are not an apply's
        calls = await apply("counted")
    finally:
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=5)
        await nc.close()
    assert calls["parse_spec"] == 1, calls  # the request's spec; the write-through reuses it
    assert calls["event_from_payload"] == 0, calls  # its own commit is not decoded back
    assert calls["json.dumps"] == 0, calls  # the commit and the status are orjson-encoded
    # The spec (and its profiling job overrides) and the Created event's user fields
    # (labels, annotations): the validation's result is built, not validated again.
    assert calls["pydantic validations"] <= 3, calls
