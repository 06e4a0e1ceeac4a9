"""The event store and JetStream plumbing: how the domain's events are stored, read and consumed.

- `envelope`    the stored event envelope and commit (one message per decision), upcasting of older
                schema versions, and the codec
- `integrity`   what a valid stored commit is (decodes, validates, carries the service's headers,
                follows the state folded before it); anything else is damaged and never folded
- `quarantine`  the one dead-letter entry per damaged message (`dgdr.dlq.evt.<sequence>`)
- `store`       the `EventStore` port and the in-memory store (the contract tests run against both)
- `jetstream`   the JetStream event store, the stream layout (created or verified at start-up)
- `consumer`    durable pull consumers with per-key ordering and redelivery with backoff
- `subjects`    subject, key and stream names, with the reversible escaping of name tokens
- `connection`  NATS connection options (URL, credentials, TLS, NATS CLI contexts), connecting, and
                refusals (wrong credentials, permission violations) reported in one line
- `auth`        the roles (service, client, admin) as NATS permissions, the server configuration,
                and the passwords and contexts `dgdr up` keeps in its data dir
- `server`      the embedded `nats-server` launcher

Failure semantics: an append is atomic and checked against the last sequence of the DGDR's name;
a conflict raises `ConcurrencyConflict` and changes nothing. Reads never raise for what is stored (a
message that is not a valid commit is returned damaged). Nothing here folds an event; `integrity`
only checks that each one is a lifecycle machine edge.
"""

__all__ = [
    "auth",
    "connection",
    "consumer",
    "envelope",
    "integrity",
    "jetstream",
    "quarantine",
    "server",
    "store",
    "subjects",
]
