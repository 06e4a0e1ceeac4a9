"""Writers project their own commits (`Projector.writing`) in the projector's process: an apply's
status and the reactor's Profiling start show in KV without the projector's consumer, with the
bytes a rebuild gives; the consumer, run afterwards, finds them folded and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from events import subjects as s
from events.server import EmbeddedNatsServer
from tests.dgdr.app.writers import service
from tests.support import manifest, until

MANIFEST = manifest("through", "default")


@pytest.mark.timeout(90)
async def test_writers_project_their_commits_without_the_projectors_consumer(
    nats_server: EmbeddedNatsServer,
) -> None:
    async with service(nats_server, reactor=True) as parts:
        nc, js, kv, projector = parts.nc, parts.js, parts.kv, parts.projector
        key = s.status_key("default", "through")
        sub = await nc.subscribe(s.result_subject("through-1"), max_msgs=1)
        await js.publish(
            s.request_subject("default", "through"),
            json.dumps(MANIFEST).encode(),
            stream=s.REQUESTS_STREAM,
            headers={"Nats-Msg-Id": "through-1"},
        )
        outcome = json.loads((await sub.next_msg(timeout=30)).data)
        assert outcome["status"] == "accepted", outcome

        async def phase() -> str | None:
            try:
                entry = await kv.get(key)
            except Exception:
                return None
            status = json.loads(entry.value or b"{}").get("status") or {}
            return "Profiling" if status.get("phase") == "Profiling" else None

        await until(phase, 30, "the status in phase Profiling, written by its writers")
        written = await kv.get(key)
        assert (await projector.values())[key] == (await projector.rebuild())[key]

        projected: list[Any] = []

        async def project(msg: Any) -> None:
            projected.append(msg)
            await projector.on_message(msg)

        # As the service runs it: what the writers folded is acknowledged without the handler.
        parts.consume(s.EVENTS_STREAM, "dgdr-projector", s.EVENTS_PREFIX, project, projector.folded)

        async def projected_all() -> bool:
            try:
                info = await js.consumer_info(s.EVENTS_STREAM, "dgdr-projector")
            except NotFoundError:  # not created yet
                return False
            return info.delivered.stream_seq >= 2 and not info.num_pending + info.num_ack_pending

        await until(projected_all, 30, "the projector's consumer to take every commit")
        assert (await kv.get(key)).revision == written.revision  # nothing written again
        assert projected == []  # every commit was folded by its writer
