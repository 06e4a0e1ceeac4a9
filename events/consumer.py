"""A durable JetStream pull consumer, consumed continuously, shared by every service replica.

Owns: creating (or checking and binding to) a durable pull consumer, keeping pull requests outstanding so a message
is delivered the moment it is stored (no fetch round trip per batch), running the handler for each
message, and acknowledging it. Messages that share a key (a DGDR name) run in arrival order; messages
of different keys run concurrently, at most `max_inflight` at a time (the pull credit).

Failure semantics: a handler that raises gets its message redelivered (nak with a delay that doubles
from `retry_delay` up to 30 s per delivery; up to 1 s when NATS was briefly unavailable, see
`events.transient`, so a message failed by a leader election runs again as soon as there is a
leader), so a transient failure is retried and never lost, and a message that keeps failing is
retried slowly and logged each time rather than dropped. While a handler runs, the message is marked
in progress every half ack wait, so a slow handler (retrying through an election) is not redelivered
to run twice at once. Pull requests expire every `expires` seconds and are renewed; two missed idle
heartbeats (`silent_after`) or a no-responders answer (no consumer leader, e.g. its server died)
mean the pull is lost: the loop checks or re-creates the consumer and pulls again; after nats-py
reconnects (the server forgets the old connection's pull requests) it pulls again within
`RECONNECT_CHECK`. The loop
stops only when cancelled, with `IncompatibleConsumer` (below), or with nats-py's
`ConnectionClosedError` once the client is closed for good (its owner reconnects and starts the
consumer again: retrying on a closed client would spin forever). A handler that wants to drop a
message acks or terms it itself and returns. A message the caller says is done already (`done`,
e.g. a commit its writer projected) is acknowledged on delivery without running the handler.

A durable consumer that already exists is checked against the configuration this code wants (every
field the code sets): a difference is logged and the consumer updated when JetStream allows the
change (ack wait, max ack pending, filter subject...); when JetStream refuses (deliver or ack
policy...), `IncompatibleConsumer` names the consumer, the differing fields and the fix, and ends
the loop rather than consume with a configuration the code was not written for.

Observed (`ConsumerObserver`, no-op by default): each handler run, with the consumer's name, the
message's delivery count (above 1: a redelivery), the seconds it took and whether it raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from nats.aio.client import Client
from nats.errors import ConnectionClosedError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from dgdr.domain.errors import IncompatibleConsumer
from events.transient import is_transient

log = structlog.get_logger("events.consumer")

Handler = Callable[[Any], Awaitable[None]]
MAX_RETRY_DELAY = 30.0
MAX_TRANSIENT_DELAY = 1.0  # NATS briefly unavailable (events.transient): retried promptly
LOST_PULL_PAUSE = 0.25
INFO_TIMEOUT = 2.0  # consumer info/create while a leader may be missing: ask again soon
RECONNECT_CHECK = 1.0  # seconds between checks that the connection is still the same one


class ConsumerObserver(Protocol):
    def handled(self, durable: str, delivery: int, seconds: float, failed: bool) -> None:
        """The handler of consumer `durable` ran on a message's `delivery`-th delivery."""


class _Unobserved:
    def handled(self, durable: str, delivery: int, seconds: float, failed: bool) -> None:
        pass


def _check_open(nc: Client, durable: str) -> None:
    """End the loop on a client closed for good: retrying on it would spin forever."""
    if nc.is_closed:
        raise ConnectionClosedError(f"consumer {durable}: the NATS connection is closed")


def _delivery_count(msg: Any) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


def retry_delay(exc: BaseException, attempt: int, first: float) -> float:
    """The nak delay after the `attempt`-th delivery failed with `exc`: doubling from `first` up to
    `MAX_RETRY_DELAY`, or up to `MAX_TRANSIENT_DELAY` when NATS was briefly unavailable (it is back
    within seconds; a doubled delay would leave the message waiting long after)."""
    cap = MAX_TRANSIENT_DELAY if is_transient(exc) else MAX_RETRY_DELAY
    return float(min(cap, first * 2 ** min(attempt - 1, 10)))


def silent_after(expires: float) -> float:
    """Seconds without a message, heartbeat or expiry after which a pull request is taken as lost:
    two missed idle heartbeats (sent every `expires / 4`) and a margin."""
    return expires / 2 + 0.5


def _by_subject(msg: Any) -> str:
    return str(msg.subject)


# Set by the server or naming the consumer, not part of what the code asks of it.
_NOT_COMPARED = frozenset({"name", "durable_name", "metadata"})


def config_differences(
    wanted: ConsumerConfig, stored: ConsumerConfig
) -> dict[str, tuple[Any, Any]]:
    """{field: (stored, wanted)} for every field `wanted` sets that `stored` has otherwise."""
    differences = {}
    for field in dataclasses.fields(ConsumerConfig):
        want = getattr(wanted, field.name)
        if field.name in _NOT_COMPARED or want is None:
            continue
        have = getattr(stored, field.name)
        if have != want:
            differences[field.name] = (have, want)
    return differences


def _describe(differences: dict[str, tuple[Any, Any]]) -> str:
    def plain(value: Any) -> Any:
        return getattr(value, "value", value)

    return ", ".join(
        f"{name} is {plain(have)!r}, wants {plain(want)!r}"
        for name, (have, want) in differences.items()
    )


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer, or bind to the stored one once it has `config` (updated when
    it differs); `IncompatibleConsumer` when JetStream refuses the update. Other failures (the
    stream or the server not there yet) raise as they are, for the caller to retry."""
    durable = str(config.durable_name)
    try:
        info = await js.consumer_info(stream, durable, timeout=INFO_TIMEOUT)
        stored: ConsumerConfig | None = info.config
    except NotFoundError:
        stored = None
    differences = {} if stored is None else config_differences(config, stored)
    if stored is not None and not differences:
        return
    if differences:
        log.warning(
            "consumer configuration differs; updating it",
            stream=stream,
            durable=durable,
            differences=_describe(differences),
        )
    try:
        await js.add_consumer(stream, config, timeout=INFO_TIMEOUT)
    except APIError as exc:
        if not differences or isinstance(exc, ServiceUnavailableError):
            raise
        raise IncompatibleConsumer(
            f"JetStream consumer {durable!r} on stream {stream!r} has another configuration than "
            f"this version needs ({_describe(differences)}) and JetStream refuses to change it: "
            f"{exc.description or exc}. Fix: delete the consumer (`nats consumer rm {stream} "
            f"{durable}`, with no service running) and start the service again; it is created "
            "anew and delivers the stream from its first message, as on a first start."
        ) from exc


class _Puller:
    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        stream: str,
        durable: str,
        handler: Handler,
        key: Callable[[Any], str],
        max_inflight: int,
        retry_delay: float,
        expires: float,
        ack_wait: float,
        observer: ConsumerObserver | None = None,
        done: Callable[[Any], bool] | None = None,
    ) -> None:
        self.nc, self.js, self.stream, self.durable = nc, js, stream, durable
        self.done = done
        self.observer: ConsumerObserver = observer or _Unobserved()
        self.handler, self.key = handler, key
        self.max_inflight, self.retry_delay, self.expires = max_inflight, retry_delay, expires
        self.ack_wait = ack_wait
        self.lost = False  # the server said no consumer leader took our pull request
        self.credit = 0  # messages requested and not yet delivered or expired
        self.inflight = 0
        self.tails: dict[str, asyncio.Future[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        # id(message) -> (message, when it started or was last marked in progress)
        self.running: dict[int, tuple[Any, float]] = {}
        self.last_seen = time.monotonic()
        self.wake = asyncio.Event()

    async def pull(self, inbox: str) -> None:
        want = self.max_inflight - self.inflight - self.credit
        if want < max(1, self.max_inflight // 4):
            return
        self.credit += want
        self.last_seen = time.monotonic()
        request = {
            "batch": want,
            "expires": int(self.expires * 1e9),
            "idle_heartbeat": int(self.expires / 4 * 1e9),
        }
        await self.nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}",
            json.dumps(request).encode(),
            reply=inbox,
        )

    async def keep_in_progress(self) -> None:
        """While a handler runs (e.g. retrying through a leader election), tell the server every
        half ack wait that its message is still being worked on, so it is not redelivered to run
        a second time alongside. One loop for every running handler (not a task per message),
        ticking every eighth of the ack wait."""
        tick = self.ack_wait / 8
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for key, (msg, since) in list(self.running.items()):
                # marked at most half an ack wait apart, as a timer per message would mark it
                if now - since >= self.ack_wait / 2 - tick and key in self.running:
                    self.running[key] = (msg, now)
                    with contextlib.suppress(Exception):
                        await msg.in_progress()

    async def on_msg(self, msg: Any) -> None:
        status = (msg.headers or {}).get("Status")
        if status == "503":  # no responders: no consumer leader took the pull request
            self.lost = True
            self.wake.set()
            return
        self.last_seen = time.monotonic()
        if status is not None:
            if status in ("408", "409"):  # request expired / closed: return its unused credit
                pending = int((msg.headers or {}).get("Nats-Pending-Messages", 0) or 0)
                self.credit = max(0, self.credit - pending) if pending else 0
                self.wake.set()
            return  # 100 = idle heartbeat
        self.credit = max(0, self.credit - 1)
        key = self.key(msg)
        if self.done is not None and key not in self.tails and self.done(msg):
            self.observer.handled(self.durable, _delivery_count(msg), 0.0, False)
            with contextlib.suppress(Exception):
                await msg.ack()
            self.wake.set()
            return
        self.inflight += 1
        previous = self.tails.get(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tails[key] = done
        task = asyncio.create_task(self._run(msg, previous, done, key))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(
        self, msg: Any, previous: asyncio.Future[None] | None, done: asyncio.Future[None], key: str
    ) -> None:
        try:
            if previous is not None:
                await asyncio.shield(previous)
            started = time.monotonic()
            self.running[id(msg)] = (msg, started)
            try:
                await self.handler(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt = _delivery_count(msg)
                self.observer.handled(self.durable, attempt, time.monotonic() - started, True)
                delay = retry_delay(exc, attempt, self.retry_delay)
                if is_transient(exc):  # a leader election or a reconnect: no traceback
                    log.warning(
                        "handler failed: NATS unavailable; message will be redelivered",
                        durable=self.durable,
                        subject=msg.subject,
                        attempt=attempt,
                        retry_in=delay,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                else:
                    log.exception(
                        "handler failed; message will be redelivered",
                        durable=self.durable,
                        subject=msg.subject,
                        attempt=attempt,
                        retry_in=delay,
                    )
                with contextlib.suppress(Exception):
                    await msg.nak(delay=delay)
            else:
                self.observer.handled(
                    self.durable, _delivery_count(msg), time.monotonic() - started, False
                )
                with contextlib.suppress(Exception):
                    await msg.ack()
            finally:
                self.running.pop(id(msg), None)
        finally:
            done.set_result(None)
            if self.tails.get(key) is done:
                del self.tails[key]
            self.inflight -= 1
            self.wake.set()


async def run_consumer(
    nc: Client,
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    subject: str,
    handler: Handler,
    key: Callable[[Any], str] = _by_subject,
    max_inflight: int = 256,
    ack_wait: float = 10.0,
    retry_delay: float = 0.5,
    expires: float = 10.0,
    ready: asyncio.Event | None = None,
    observer: ConsumerObserver | None = None,
    done: Callable[[Any], bool] | None = None,
) -> None:
    """Consume `subject` of `stream` through durable `durable` until cancelled (the module
    docstring says how). A message for which `done(msg)` holds, with no message of its key
    running, is acknowledged at once without running the handler: its work is already done (a
    commit its writer wrote through, `Projector.folded`)."""
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_deliver=-1,
        max_ack_pending=max(10_000, max_inflight),
        filter_subject=subject,
    )
    puller = _Puller(
        nc,
        js,
        stream,
        durable,
        handler,
        key,
        max_inflight,
        retry_delay,
        expires,
        ack_wait,
        observer,
        done,
    )
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=puller.on_msg)
    keepalive = asyncio.create_task(puller.keep_in_progress())
    try:
        while True:
            _check_open(nc, durable)
            try:
                await ensure_consumer(js, stream, config)
            except IncompatibleConsumer:
                raise
            except Exception as exc:  # the stream or the server is not there (yet): keep trying
                _check_open(nc, durable)
                log.warning("consumer not ready; retrying", durable=durable, error=str(exc))
                await asyncio.sleep(0.5)
                continue
            if ready is not None:
                ready.set()
            puller.credit = 0
            puller.lost = False
            puller.last_seen = time.monotonic()
            connection = nc.stats["reconnects"]
            await puller.pull(inbox)
            while True:
                puller.wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(expires / 2, RECONNECT_CHECK)):
                        await puller.wake.wait()
                _check_open(nc, durable)
                if nc.stats["reconnects"] != connection:
                    log.info("reconnected; pulling again", durable=durable)
                    break  # the server forgot the pull requests of the old connection
                if puller.lost:
                    log.info("no consumer leader took the pull; pulling again", durable=durable)
                    await asyncio.sleep(LOST_PULL_PAUSE)
                    break
                if puller.credit and time.monotonic() - puller.last_seen > silent_after(expires):
                    log.warning("pull consumer silent; pulling again", durable=durable)
                    break  # no message, heartbeat or expiry: the pull is lost; start over
                await puller.pull(inbox)
    finally:
        keepalive.cancel()
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        for task in list(puller.tasks):
            task.cancel()
