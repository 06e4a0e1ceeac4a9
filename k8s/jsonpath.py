"""A JSONPath subset, enough for CRD printer columns and built-in table cells (the API emulator's
`k8s.emulator.table`) and for `dgdr get -o jsonpath|custom-columns` (`dgdr.cli.template`). Pure.

Owns parsing and evaluation of: `.a.b`, `['a']`, `.a[0]`, `.a[-1]`, `.a[*].b`, `.*`, `..b`
(recursive descent) and filters `[?(@.type=="X")]` (`==`, `!=`, `<`, `<=`, `>`, `>=`, or bare
`@.path` for existence), optionally wrapped in `{...}` as kubectl writes them.

Failure semantics: `compile_path` raises `ValueError` on syntax it does not understand; evaluation
never raises: missing keys, wrong types and out-of-range indexes simply yield no result (the
server's printer columns use AllowMissingKeys and show `<none>`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Field:
    name: str  # "*" for every value


@dataclass(frozen=True)
class _Recursive:
    name: str


@dataclass(frozen=True)
class _Index:
    index: int | None  # None = [*]


@dataclass(frozen=True)
class _Filter:
    path: tuple[Any, ...]
    op: str  # "" = exists
    value: Any


Step = _Field | _Recursive | _Index | _Filter

_NAME = re.compile(r"[^.\[\]\s]+")
_FILTER = re.compile(
    r"\[\?\(\s*@((?:\.[^.\s=!<>)\[\]]+|\[[^\]]*\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)\]"
)


def compile_path(expr: str) -> tuple[Step, ...]:
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        if text.startswith("..", pos):
            m = _NAME.match(text, pos + 2)
            if not m:
                raise ValueError(f"invalid recursive descent at {pos} in {expr!r}")
            steps.append(_Recursive(m.group(0)))
            pos = m.end()
        elif text[pos] == ".":
            m = _NAME.match(text, pos + 1)
            if not m:
                if pos + 1 == len(text):  # a lone "." selects the root
                    pos += 1
                    continue
                raise ValueError(f"invalid field at {pos} in {expr!r}")
            steps.append(_Field(m.group(0)))
            pos = m.end()
        elif text.startswith("[?", pos):
            m = _FILTER.match(text, pos)
            if not m:
                raise ValueError(f"unsupported filter at {pos} in {expr!r}")
            path = compile_path(m.group(1)) if m.group(1) else ()
            value = _literal(m.group(3)) if m.group(3) is not None else None
            steps.append(_Filter(path, m.group(2) or "", value))
            pos = m.end()
        elif text[pos] == "[":
            end = text.find("]", pos)
            if end < 0:
                raise ValueError(f"unclosed '[' in {expr!r}")
            inner = text[pos + 1 : end].strip()
            if inner == "*":
                steps.append(_Index(None))
            elif re.fullmatch(r"-?\d+", inner):
                steps.append(_Index(int(inner)))
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                steps.append(_Field(inner[1:-1]))
            else:
                raise ValueError(f"unsupported subscript [{inner}] in {expr!r}")
            pos = end + 1
        elif not steps and pos == 0:
            m = _NAME.match(text, pos)  # "a.b" without the leading dot
            if not m:
                raise ValueError(f"invalid path {expr!r}")
            steps.append(_Field(m.group(0)))
            pos = m.end()
        else:
            raise ValueError(f"unexpected {text[pos]!r} at {pos} in {expr!r}")
    return tuple(steps)


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _descend(node: Any, name: str) -> list[Any]:
    out: list[Any] = []
    if isinstance(node, dict) and name in node:
        out.append(node[name])
    for child in _children(node):
        out.extend(_descend(child, name))
    return out


def _compare(have: Any, op: str, want: Any) -> bool:
    if op == "==":
        return bool(have == want) or (isinstance(want, str) and _text(have) == want)
    if op == "!=":
        return not _compare(have, "==", want)
    try:
        if op == "<":
            return bool(have < want)
        if op == "<=":
            return bool(have <= want)
        if op == ">":
            return bool(have > want)
        return bool(have >= want)
    except TypeError:
        return False


def evaluate(steps: tuple[Step, ...], data: Any) -> list[Any]:
    nodes = [data]
    for step in steps:
        nxt: list[Any] = []
        for node in nodes:
            if isinstance(step, _Field):
                if step.name == "*":
                    nxt.extend(_children(node))
                elif isinstance(node, dict) and step.name in node:
                    nxt.append(node[step.name])
            elif isinstance(step, _Recursive):
                nxt.extend(_descend(node, step.name))
            elif isinstance(step, _Index):
                if isinstance(node, list):
                    if step.index is None:
                        nxt.extend(node)
                    elif -len(node) <= step.index < len(node):
                        nxt.append(node[step.index])
            else:
                items = node if isinstance(node, list) else []
                for item in items:
                    found = evaluate(step.path, item)
                    if not found:
                        continue
                    if step.op == "" or _compare(found[0], step.op, step.value):
                        nxt.append(item)
        nodes = nxt
    return nodes


def find(expr: str, data: Any) -> list[Any]:
    """All values `expr` selects in `data` (empty when nothing matches)."""
    return evaluate(compile_path(expr), data)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def render(value: Any) -> str:
    """A value as kubectl's JSONPath printer writes it (strings bare, objects as JSON)."""
    return _text(value)
