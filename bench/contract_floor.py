"""The command path's floor: the messages an apply must cost, sent by plain nats-py, no domain work.

    uv run python bench/contract_floor.py --server nats://127.0.0.1:4222

Serves apply requests the way the contract requires and nothing more, so `bench/event_path.py` can
time it exactly as it times the service and print how much of the service's cost the protocol and
the Python client already take. For each request (a durable pull consumer on `DGDR_REQUESTS`,
batches of up to 64, every message handled concurrently):

1. append one fixed event commit to `DGDR_EVENTS` with subject optimistic concurrency (a new name:
   expected last sequence 0 over `dgdr.evt.<ns>.<name>.*`) and wait for its acknowledgement;
2. publish the outcome on `dgdr.res.<request id>` (core NATS), as the service does, before the
   status is written: the outcome says the event is stored;
3. write a fixed status value carrying that sequence as its resourceVersion to `DGDR_STATUS` with
   `create` semantics (expected last subject sequence 0) and wait for its acknowledgement;
4. acknowledge the request.

Nothing is decoded but the subject and the request id header; the event and status bytes are built
once per request from constant templates of the service's sizes (`--event-bytes`,
`--status-bytes`). What it leaves out that the service must do: validating the spec, deciding,
encoding the events and folding the status, the request's own JSON decode, the integrity envelope.

Failure semantics: none beyond a benchmark's; a refused append or write is printed and the request
is acknowledged anyway (the bench then reports the outcome it got).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from events import subjects as s  # noqa: E402
from events.jetstream import ensure_layout  # noqa: E402

FETCH_BATCH = 64


def padded(value: dict[str, Any], size: int) -> bytes:
    """`value` as JSON with a padding field that brings it to about `size` bytes."""
    bare = len(json.dumps(value, separators=(",", ":")))
    return json.dumps(
        {**value, "pad": "x" * max(0, size - bare - 10)}, separators=(",", ":")
    ).encode()


async def serve(url: str, event_bytes: int, status_bytes: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_layout(js)
    event = padded({"type": "Created"}, event_bytes)
    status_head, status_tail = padded({"status": {"phase": "Pending"}}, status_bytes).split(b"{", 1)
    pull = await js.pull_subscribe(
        f"{s.REQUESTS_PREFIX}.>",
        durable="contract-floor",
        stream=s.REQUESTS_STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=1024),
    )

    async def handle(msg: Any) -> None:
        namespace, name = s.parse_request_subject(msg.subject)
        request_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        outcome: dict[str, Any] = {"status": "accepted", "requestId": request_id}
        try:
            ack = await js.publish(
                s.events_subject(namespace, name, str(uuid.uuid4())),
                event,
                headers={
                    "Nats-Msg-Id": request_id,
                    "Nats-Expected-Last-Subject-Sequence": "0",
                    "Nats-Expected-Last-Subject-Sequence-Subject": s.name_subjects(namespace, name),
                },
            )
            outcome["resourceVersion"] = ack.seq
            await nc.publish(s.result_subject(request_id), json.dumps(outcome).encode())
            meta = b'{"metadata":{"resourceVersion":"%d"},' % ack.seq
            await js.publish(
                f"$KV.{s.STATUS_BUCKET}.{s.status_key(namespace, name)}",
                status_head + meta + status_tail,
                headers={"Nats-Expected-Last-Subject-Sequence": "0"},
            )
        except nats.errors.Error as exc:
            print(f"contract floor: {name}: {exc}", file=sys.stderr)
            if "resourceVersion" not in outcome:
                outcome = {"status": "rejected", "requestId": request_id, "message": str(exc)}
                await nc.publish(s.result_subject(request_id), json.dumps(outcome).encode())
        await msg.ack()

    tasks: set[asyncio.Task[None]] = set()
    while True:
        try:
            batch = await pull.fetch(FETCH_BATCH, timeout=5)
        except TimeoutError:
            continue
        for msg in batch:
            task = asyncio.create_task(handle(msg))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--event-bytes", type=int, default=900)
    parser.add_argument("--status-bytes", type=int, default=1000)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.server, args.event_bytes, args.status_bytes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
