"""Which branch each example of a hypothesis property reached, so that a property cannot pass
vacuously (every example filtered out, or every example taking the expected-error branch).

The property's `@given` function is defined inside its test and called there; it calls
`reached(branch)` for each example, and the test then calls `assert_reached(*branches)`, which
prints the counts (shown by `pytest -rP`) and fails naming them when a branch was never reached.
"""

from __future__ import annotations

from collections import Counter


class Reached:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, branch: str) -> None:
        self.counts[branch] += 1

    def assert_reached(self, *branches: str) -> None:
        print(f"examples per branch: {dict(sorted(self.counts.items()))}")
        missing = [b for b in branches if self.counts[b] == 0]
        assert not missing, f"no example reached {missing}: {dict(self.counts)}"
