"""NATS names of the public contract (design §4) and the reversible escaping of subject tokens.

A DGDR name may contain `.`, which separates subject tokens and KV key tokens. `escape` maps every
character outside `[A-Za-z0-9-]` to `_XX` (its UTF-8 bytes in hex), `_` included, so `unescape(escape(s))`
== s for every string and an escaped token never contains `.`, `*`, `>` or whitespace.

Escaping can triple a token's length, and nats-server closes a connection whose protocol line (the
subject and reply) exceeds 4,096 bytes. Callers bound what they put in a subject (names, uids and
request ids are validated first); as a last line, every subject built here longer than
`MAX_SUBJECT_BYTES` raises `SubjectTooLong` (a ValueError) instead of being sent.
"""

from __future__ import annotations

import functools
import re

from dgdr.domain.errors import SubjectTooLong

EVENTS_STREAM = "DGDR_EVENTS"
EVENTS_PREFIX = "dgdr.evt"
REQUESTS_STREAM = "DGDR_REQUESTS"
REQUESTS_PREFIX = "dgdr.req"
RESULTS_PREFIX = "dgdr.res"
DEAD_LETTER_STREAM = "DGDR_DEADLETTER"
DEAD_LETTER_SUBJECT = "dgdr.dlq"
JOBS_STREAM = "DGDR_JOBS"
JOBS_PREFIX = "dgdr.job"
STATUS_BUCKET = "DGDR_STATUS"
SIMULATED_CLUSTER_BUCKET = "DGDR_SIMCLUSTER"  # the simulated deployment target's DGDs

MAX_SUBJECT_BYTES = 2048  # half the server's control line: room for the reply subject

_SAFE = re.compile(r"[A-Za-z0-9-]")
_ALL_SAFE = re.compile(r"[A-Za-z0-9-]+")


@functools.lru_cache(maxsize=65536)
def escape(token: str) -> str:
    if not token:
        return "_"
    if _ALL_SAFE.fullmatch(token):
        return token
    return "".join(
        c if _SAFE.fullmatch(c) else "".join(f"_{b:02X}" for b in c.encode()) for c in token
    )


def unescape(token: str) -> str:
    if token == "_":
        return ""
    if "_" not in token:  # nothing was escaped (a uid, most names)
        return token
    out = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "_":
            out.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            out.extend(token[i].encode())
            i += 1
    return out.decode()


def _bounded(subject: str) -> str:
    if len(subject) > MAX_SUBJECT_BYTES:  # escaped subjects are ASCII: characters are bytes
        raise SubjectTooLong(
            f"subject {subject[:80]}… is {len(subject)} bytes; the limit is {MAX_SUBJECT_BYTES}"
        )
    return subject


def name_subjects(namespace: str, name: str) -> str:
    """Every incarnation of one DGDR name: the scope of its optimistic concurrency."""
    return _bounded(f"{EVENTS_PREFIX}.{escape(namespace)}.{escape(name)}.*")


def events_subject(namespace: str, name: str, uid: str) -> str:
    return _bounded(f"{EVENTS_PREFIX}.{escape(namespace)}.{escape(name)}.{escape(uid)}")


def parse_events_subject(subject: str) -> tuple[str, str, str]:
    _, _, ns, name, uid = subject.split(".")
    return unescape(ns), unescape(name), unescape(uid)


def request_subject(namespace: str, name: str) -> str:
    return _bounded(f"{REQUESTS_PREFIX}.{escape(namespace)}.{escape(name)}")


def parse_request_subject(subject: str) -> tuple[str, str]:
    parts = subject.split(".")
    if len(parts) != 4:
        raise ValueError(f"request subject {subject!r} is not dgdr.req.<namespace>.<name>")
    return unescape(parts[2]), unescape(parts[3])


def result_subject(request_id: str) -> str:
    return _bounded(f"{RESULTS_PREFIX}.{escape(request_id)}")


def status_key(namespace: str, name: str) -> str:
    return _bounded(f"{escape(namespace)}.{escape(name)}")


def parse_status_key(key: str) -> tuple[str, str]:
    ns, name = key.split(".")
    return unescape(ns), unescape(name)
