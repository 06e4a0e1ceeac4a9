"""The quarantine: one dead-letter entry per stored message that is not folded.

Owns `quarantine(js, commit)`: a damaged commit (`events.integrity`) is recorded in stream
`DGDR_DEADLETTER` on subject `dgdr.dlq.evt.<stream sequence>`, its stored bytes as the data, with
headers `Dgdr-Dead-Letter-Reason` (one line), `Dgdr-Original-Subject` and `Dgdr-Stream-Sequence`.
The entry is written at most once per sequence whoever records it (a redelivery, another replica,
another consumer): the publish expects the subject to be empty (`Nats-Expected-Last-Subject-Sequence`
0, checked by the server) and is deduplicated by `Nats-Msg-Id` `quarantine-<sequence>`.

Failure semantics: an entry that exists already is not an error (returns False); any other failure
(the stream missing, the server gone) raises, so the caller's message is redelivered and the entry
written later. Entries age out with the dead-letter stream's `max_age`; the damaged message itself
stays in `DGDR_EVENTS` and `dgdr history` always shows it.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError

from events import subjects as s
from events.envelope import Commit
from events.integrity import H_EXPECTED, H_MSG_ID

DEAD_LETTER_STREAM = s.DEAD_LETTER_STREAM
QUARANTINE_PREFIX = f"{s.DEAD_LETTER_SUBJECT}.evt"
REASON = "Dgdr-Dead-Letter-Reason"
ORIGINAL_SUBJECT = "Dgdr-Original-Subject"
STREAM_SEQUENCE = "Dgdr-Stream-Sequence"
WRONG_LAST_SEQUENCE = 10071
MAX_HEADER = 1000


def quarantine_subject(seq: int) -> str:
    return f"{QUARANTINE_PREFIX}.{seq}"


def header_value(text: str) -> str:
    """`text` as one header line: ASCII (others escaped), no line breaks, bounded."""
    flat = " ".join(text.split())
    return flat.encode("ascii", "backslashreplace").decode("ascii")[:MAX_HEADER]


async def quarantine(js: JetStreamContext, commit: Commit) -> bool:
    """Record the damaged `commit` once; True when this call recorded it."""
    damage = commit.damage
    if damage is None:
        raise ValueError(f"commit {commit.seq} is not damaged; nothing to quarantine")
    headers = {
        H_MSG_ID: f"quarantine-{damage.seq}",
        H_EXPECTED: "0",
        REASON: header_value(damage.reason),
        ORIGINAL_SUBJECT: header_value(damage.subject),
        STREAM_SEQUENCE: str(damage.seq),
    }
    try:
        ack = await js.publish(
            quarantine_subject(damage.seq),
            commit.raw or commit.encode(),
            stream=DEAD_LETTER_STREAM,
            headers=headers,
            timeout=5,
        )
    except BadRequestError as exc:
        if exc.err_code == WRONG_LAST_SEQUENCE:
            return False
        raise
    return not ack.duplicate
