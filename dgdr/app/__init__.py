"""The application: the dgdr service and the parts it runs, over the domain, the event store and the
projections.

- `service`     `Service`: connects, checks the JetStream layout, runs the roles it is given
                (requests, projector, reactor, profiler) as durable consumers
- `handler`     `CommandHandler`: load an aggregate, decide, append with optimistic concurrency
- `reactors`    events in, commands out: start profiling, deploy the generated DGD, report progress
- `simcluster`  the simulated deployment target (DGDs kept in NATS KV) for laptops and tests
- `logs`        structlog configuration (JSON when not a TTY)

Failure semantics: every consumer is at-least-once and every effect idempotent (deterministic command
ids, `Nats-Msg-Id` on jobs, a target that keeps a DGD it already holds for the same uid). A message a
part cannot handle because of a bug is logged and redelivered with backoff; only a user's mistake
becomes a stored failure.
"""

__all__ = ["handler", "logs", "reactors", "service", "simcluster"]
