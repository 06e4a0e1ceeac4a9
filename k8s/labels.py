"""Kubernetes label selectors: the grammar of `kubectl get -l` and of the API's `labelSelector`.

Owns parsing and matching of `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists),
`!k` (does not exist), `k>n`, `k<n`; a comma means AND. Pure: used by the API emulator
(`k8s.emulator.selectors`, which answers a malformed one with 400 BadRequest) and by `dgdr get -l`.

Failure semantics: a malformed selector raises `ValueError` with the API server's wording
("unable to parse requirement: ..."), before anything is matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            have, want = int(str(value)), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.op == ">" else have < want


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"unable to parse requirement: invalid selector: {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a label selector; raises `ValueError` (the API server's wording) when malformed."""
    if not text or not text.strip():
        return LabelSelector()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def fail(why: str) -> ValueError:
        return ValueError(f"unable to parse requirement: {why}")

    while i < len(toks):
        if toks[i] == "!":
            if i + 1 >= len(toks) or not _is_word(toks[i + 1]):
                raise fail("found '!', expected: identifier")
            reqs.append(Requirement(toks[i + 1], "!"))
            i += 2
        elif _is_word(toks[i]):
            key = toks[i]
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            elif toks[i] in ("=", "==", "!="):
                op = "!=" if toks[i] == "!=" else "="
                i += 1
                value = ""
                if i < len(toks) and _is_word(toks[i]):
                    value = toks[i]
                    i += 1
                reqs.append(Requirement(key, op, (value,)))
            elif toks[i] in ("in", "notin"):
                op = toks[i]
                i += 1
                if i >= len(toks) or toks[i] != "(":
                    raise fail(f"found '{toks[i] if i < len(toks) else ''}', expected: '('")
                i += 1
                values: list[str] = []
                while i < len(toks) and toks[i] != ")":
                    if toks[i] != ",":
                        if not _is_word(toks[i]):
                            raise fail(f"found '{toks[i]}', expected: ',', ')' or identifier")
                        values.append(toks[i])
                    i += 1
                if i >= len(toks):
                    raise fail("found '', expected: ')'")
                i += 1
                reqs.append(Requirement(key, op, tuple(values)))
            elif toks[i] in (">", "<"):
                op = toks[i]
                i += 1
                if i >= len(toks) or not re.fullmatch(r"-?\d+", toks[i]):
                    raise fail("for 'gt', 'lt' operators, exactly one integer value is required")
                reqs.append(Requirement(key, op, (toks[i],)))
                i += 1
            else:
                raise fail(f"found '{toks[i]}', expected: in, notin, =, ==, !=, gt, lt")
        else:
            raise fail(f"found '{toks[i]}', expected: !, identifier, or 'end of string'")
        if i < len(toks):
            if toks[i] != ",":
                raise fail(f"found '{toks[i]}', expected: ',' or 'end of string'")
            i += 1
            if i >= len(toks):
                raise fail("found '', expected: identifier after ','")
    return LabelSelector(tuple(reqs))


def _is_word(tok: str) -> bool:
    return tok not in ("!=", "==", "=", "!", "(", ")", ",", ">", "<")
