"""Request intake policy: what the service answers when a request is over a limit or its handling
fails, and how a dead letter is kept. Pure functions; `dgdr.app.service` does the I/O.

- `over_limits`: the `invalid` outcome (reason `LimitExceeded`) for what `dgdr.domain.limits` found;
- `failure_action`: retry a failed request or give up on it (dead-letter it and answer `rejected`,
  reason `InternalError`): failures that say NATS is unavailable (`TRANSIENT`) get more deliveries
  than the others (a bug, a damaged history), which no retry will fix;
- `dead_letter`: a dead letter's headers and body, within the server's max payload;
- `outcome_body`: an outcome's JSON, cut down when echoed input would make it too large to send.
"""

from __future__ import annotations

from typing import Any, Literal

import nats.errors
import orjson
from nats.js.errors import ServiceUnavailableError

from dgdr.app.handler import Outcome
from dgdr.domain.errors import ServerUnavailable

DEAD_LETTER_REASON = "Dgdr-Dead-Letter-Reason"
DEAD_LETTER_TRUNCATED = "Dgdr-Dead-Letter-Truncated"  # the original size, when the body was cut
DEAD_LETTER_HEADERS_DROPPED = "Dgdr-Dead-Letter-Headers-Dropped"  # their size, when too large
LIMITS_EXCEEDED = "the request exceeds the service's limits; nothing was recorded"


def over_limits(problems: list[tuple[str, str]]) -> Outcome:
    return Outcome(
        "invalid",
        reason="LimitExceeded",
        message=LIMITS_EXCEEDED,
        errors=tuple({"field": path, "message": message} for path, message in problems),
    )


def deliveries(msg: Any) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


# Failures that say NATS is unavailable for now, not that the request cannot be handled.
TRANSIENT = (
    nats.errors.Error,  # connection closed, timeouts, no responders...
    ServiceUnavailableError,
    ServerUnavailable,
    TimeoutError,
    ConnectionError,
)


def failure_action(
    exc: BaseException, deliveries: int, *, max_deliveries: int, max_transient: int
) -> Literal["retry", "give_up"]:
    """What to do with a request whose handling raised `exc` on its `deliveries`-th delivery:
    redeliver it (NATS unavailable: up to `max_transient` deliveries; anything else, a bug or a
    damaged history: up to `max_deliveries`), or give up (dead-letter it and answer rejected)."""
    limit = max_transient if isinstance(exc, TRANSIENT) else max_deliveries
    return "retry" if deliveries < limit else "give_up"


def _header_value(text: str, limit: int) -> str:
    """A header value: one line, at most `limit` characters."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _headers_size(headers: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) + 4 for k, v in headers.items()) + 12


def dead_letter(
    original: dict[str, str], subject: str, reason: str, data: bytes, max_payload: int
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of the dead letter for a request, always within `max_payload`: the reason,
    the original subject and request id (shortened, one line each), the original headers but the
    `Nats-*` ones (JetStream directives such as an expected stream would steer the dead letter's
    own publish, and its request id would be deduplicated), dropped when they would take more than
    a quarter of the max payload; the body, cut when it does not fit (`Dgdr-Dead-Letter-Truncated`
    says its original size)."""
    kept = {k: v for k, v in original.items() if not k.lower().startswith("nats-")}
    headers: dict[str, str] = {}
    if kept and _headers_size(kept) <= max_payload // 4:
        headers.update(kept)
    elif kept:
        headers[DEAD_LETTER_HEADERS_DROPPED] = str(_headers_size(kept))
    headers[DEAD_LETTER_REASON] = _header_value(reason, 1000)
    headers["Dgdr-Original-Subject"] = _header_value(subject, 1000)
    if original.get("Nats-Msg-Id"):
        headers["Dgdr-Request-Id"] = _header_value(original["Nats-Msg-Id"], 300)
    room = max_payload - _headers_size(headers) - 64
    if len(data) > room:
        headers[DEAD_LETTER_TRUNCATED] = str(len(data))
        data = data[: max(0, room)]
    return headers, data


def outcome_body(outcome: Outcome, request_id: str, max_bytes: int) -> bytes:
    """The outcome's JSON; when it would exceed `max_bytes` (errors that echo a huge input), with
    the message and each error cut short and at most 100 errors."""
    body = orjson.dumps(outcome.to_dict(request_id))
    if len(body) <= max_bytes:
        return body
    errors = tuple({k: v[:500] for k, v in e.items()} for e in outcome.errors[:100])
    short = Outcome(
        outcome.status,
        outcome.resource_version,
        outcome.uid,
        outcome.events,
        reason=outcome.reason,
        message=outcome.message[:2000],
        errors=errors,
    )
    return orjson.dumps(short.to_dict(request_id))
