"""The per-process cache of DGDR states: (aggregate, folded state, stream sequence) per name.

Owns `Loaded` (a state and the sequence of the last commit folded into it) and `StateCache`, which the
command handler and the reactor share. An entry is exact for its sequence: it comes from a fold of the
store, from a decision appended at that sequence, or from a consumed commit whose expected sequence
was the entry's (`advance`). It may be behind the store; users treat it as a hint: the handler's
append fails with `ConcurrencyConflict` on a stale entry and reloads, and `advance` reports a gap
(None) instead of guessing.

Bounded: least recently used entries go beyond `size` names. An entry is only ever replaced by a
later one (a higher sequence), so concurrent users cannot move it backwards. Never raises, except
`InvalidHistory` from `evolve` for a consumed commit the machine does not allow (a store bug).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from dgdr.domain.decider import evolve, initial_state
from dgdr.domain.model import State
from events.envelope import AggregateId, Commit


@dataclass(frozen=True)
class Loaded:
    """The incarnation `aggregate` of a name (None: no history) folded up to commit `version`."""

    aggregate: AggregateId | None
    state: State
    version: int


NOTHING = Loaded(None, initial_state(), 0)


def fold_commits(loaded: Loaded, commits: list[Commit]) -> Loaded:
    """`loaded` with `commits` (the next ones of its name, in order) folded in."""
    aggregate, state, version = loaded.aggregate, loaded.state, loaded.version
    for commit in commits:
        if commit.aggregate != aggregate:  # a new incarnation starts from nothing
            aggregate, state = commit.aggregate, initial_state()
        for env in commit.envelopes:
            state = evolve(state, env.event, env.causation_id)
        version = commit.seq
    return Loaded(aggregate, state, version)


class StateCache:
    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], Loaded] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, namespace: str, name: str) -> Loaded | None:
        loaded = self._entries.get((namespace, name))
        if loaded is not None:
            self._entries.move_to_end((namespace, name))
        return loaded

    def put(self, namespace: str, name: str, loaded: Loaded) -> Loaded:
        """Keep `loaded` unless a later state is cached already; returns the one kept."""
        key = (namespace, name)
        current = self._entries.get(key)
        if current is not None and current.version > loaded.version:
            loaded = current
        self._entries[key] = loaded
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return loaded

    def advance(self, commit: Commit) -> Loaded | None:
        """The state once `commit` is folded in: the cached one if it already includes it, the
        cached one advanced by it if it is the next commit of the name; None when the cache
        cannot say (nothing cached, or commits of the name are missing in between)."""
        agg = commit.aggregate
        cached = self.get(agg.namespace, agg.name)
        if cached is None:
            return None
        if cached.version >= commit.seq:
            return cached
        if cached.version != commit.expected:
            return None
        return self.put(agg.namespace, agg.name, fold_commits(cached, [commit]))
