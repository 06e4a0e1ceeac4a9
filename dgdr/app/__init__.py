"""The application: the dgdr service and the parts it runs, over the domain, the event store and the
projections.

- `service`     `Service`: connects, checks the JetStream layout, runs the roles it is given
                (requests, projector, reactor, profiler) as durable consumers
- `handler`     `CommandHandler`: decide on the latest state held, append with optimistic
                concurrency, bring the state up to date from the store on a conflict
- `states`      `StateCache`: the (state, stream sequence) per DGDR the handler and the reactor hold
- `reactors`    events in, commands out: start profiling, deploy the generated DGD, report progress;
                the profiling worker (`sim.profile_async`, each step reported as it happens)
- `simcluster`  the simulated deployment target (DGDs kept in NATS KV) for laptops and tests
- `logs`        structlog configuration (JSON when not a TTY)

Failure semantics: every consumer is at-least-once and every effect idempotent (deterministic command
ids, `Nats-Msg-Id` on jobs, a target that keeps a DGD it already holds for the same uid). A message a
part cannot handle because of a bug is logged and redelivered with backoff; only a user's mistake
becomes a stored failure.
"""

__all__ = ["handler", "logs", "reactors", "service", "simcluster", "states"]
