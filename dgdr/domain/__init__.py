"""The domain: what a DGDR is and which changes to it are allowed. Pure: no I/O, no NATS, no
Kubernetes, no numpy (import-linter checks it); everything above builds on it.

- `spec`      the DGDR spec and manifest (pydantic, Dynamo's v1beta1 fields), parsed once at the edge;
              `FieldError` names a field and its fix
- `phases`    the phase and profiling sub-phase names (Dynamo's enums)
- `machine`   the lifecycle state machine (`transitions`), the single source of allowed edges
- `model`     commands, events (the domain's own types; `events` stores them) and the aggregate state
- `decider`   pure `decide` / `evolve` / `fold` over the machine
- `hardware`  the GPU facts a profile runs on: spec over discovered, every missing fact named
- `describe`  one description of a stored event for people (type, reason, message), used by
              `dgdr describe`, Kubernetes Events and status condition reasons
- `target`    the deployment-target port: where DGDs go, the labels that tie them to a DGDR, and the
              one rule that turns an observed DGD into an observation
- `errors`    the exception tree of the whole project
- `clock`     the one clock (`now_rfc3339`) for the edges that stamp commands; never read by
              `decide` / `evolve`

Failure semantics: `decide` returns events or a `Rejection`, never raises for a user's mistake;
`evolve` raises `InvalidHistory` only for a stored history the machine does not allow.

The submodules are imported on demand (`from dgdr.domain.spec import DGDRSpec`), so reading the
spec never pulls the state machine.
"""

__all__ = [
    "clock",
    "decider",
    "describe",
    "errors",
    "hardware",
    "machine",
    "model",
    "phases",
    "spec",
    "target",
]
