"""The per-process cache of DGDR states: (aggregate, folded state, stream sequence) per name.

Owns `Loaded` (a state and the sequence of the last commit folded into it) and `StateCache`, which the
command handler and the reactor share. An entry is exact for its sequence: it comes from a fold of the
store, from a decision appended at that sequence, or from a consumed commit whose expected sequence
was the entry's (`advance`). It may be behind the store; users treat it as a hint: the handler's
append fails with `ConcurrencyConflict` on a stale entry and reloads, and `advance` reports a gap
(None) instead of guessing.

Folding is trusted but verified (`events.integrity`): a damaged message, or a commit that is not a
legal continuation of the state folded so far, is never folded; only the sequence moves past it (the
service's next commit expects that sequence), and when it belongs to the live incarnation it is kept
in `Loaded.damage`. Later commits are folded when they are legal from the last good state, so a
damaged DGDR still takes the service's decisions (a delete above all).

Bounded: least recently used entries go beyond `size` names (default `STATE_CACHE_SIZE`, enough for
every DGDR in the middle of its lifecycle at once; a DGDR that was evicted costs one reload from the
store when it is next decided for), so memory does not grow with the number of DGDRs. An entry is only ever replaced by a
later one (a higher sequence), so concurrent users cannot move it backwards. Never raises.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from dgdr.domain.decider import evolve, initial_state
from dgdr.domain.model import State
from events.envelope import AggregateId, Commit, Damage
from events.integrity import illegal, mark_illegal


@dataclass(frozen=True)
class Loaded:
    """The incarnation `aggregate` of a name (None: no history) folded up to the message at
    sequence `version` (the last of the name read, folded or not); `damage` lists the last
    messages of this incarnation that were not folded (at most `MAX_DAMAGE_HELD`)."""

    aggregate: AggregateId | None
    state: State
    version: int
    damage: tuple[Damage, ...] = ()


NOTHING = Loaded(None, initial_state(), 0)
# The most recent damage a `Loaded` keeps (a flood of forged messages must not grow the cache).
MAX_DAMAGE_HELD = 16


def verified(loaded: Loaded, commit: Commit) -> Commit:
    """`commit`, marked damaged when it is not a legal continuation of `loaded`."""
    if commit.damage is not None:
        return commit
    reason = illegal(loaded.state.machine_state, loaded.aggregate, commit)
    return commit if reason is None else mark_illegal(commit, reason)


def fold_commits(loaded: Loaded, commits: list[Commit]) -> Loaded:
    """`loaded` with `commits` (the next messages of its name, in order) folded in, each one only
    when it is a valid commit and a legal continuation (`events.integrity`)."""
    aggregate, state, version, damage = (
        loaded.aggregate,
        loaded.state,
        loaded.version,
        loaded.damage,
    )
    for commit in commits:
        commit = verified(Loaded(aggregate, state, version), commit)
        version = max(version, commit.seq)
        if commit.damage is not None:
            if commit.aggregate == aggregate and not state.is_terminal:
                damage = (*damage, commit.damage)[-MAX_DAMAGE_HELD:]
            continue
        if commit.aggregate != aggregate or state.is_terminal:  # a new incarnation
            aggregate, state, damage = commit.aggregate, initial_state(), ()
        for env in commit.envelopes:
            state = evolve(state, env.event, env.causation_id)
    return Loaded(aggregate, state, version, damage)


STATE_CACHE_SIZE = 2048


class StateCache:
    def __init__(self, size: int = STATE_CACHE_SIZE) -> None:
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
        if commit.damage is not None or cached.version != commit.expected:
            return None
        return self.put(agg.namespace, agg.name, fold_commits(cached, [commit]))
