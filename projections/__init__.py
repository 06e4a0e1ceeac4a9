"""Projections: the DGDR status (Dynamo's v1beta1 shape) as a pure fold of the stored events, and
the projector that keeps it current in the `DGDR_STATUS` KV bucket.

- `status`     `project(obj, envelope, seq)`: the object after one more event; pure
- `projector`  follows the events stream and writes each DGDR's object by compare-and-swap, only
               forward (`metadata.resourceVersion` is the stream sequence of the last folded commit)

Failure semantics: a projection is disposable and rebuilt from the store; the projector refuses to
run when the bucket claims events the store does not have. A stored message that is not a valid,
legal commit (`events.integrity`) is never folded: it is quarantined once and shown on its DGDR as
condition `HistoryIntact` False.
"""

__all__ = ["projector", "status"]
