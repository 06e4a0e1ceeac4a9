"""kubectl's `-o jsonpath=TEMPLATE` and `-o custom-columns=SPEC`, over the JSONPath of `k8s.jsonpath`.

A template is text with actions in braces, as client-go's jsonpath templates: `{.path}` prints what
the path selects (several results space-separated; strings bare, objects as JSON), `{"\\n"}` a
string literal, `{range .items[*]}...{end}` its body once per selected element (paths inside are
relative to the element, `$` is the whole object, `@` the element), `{@}` the current element.
Missing keys print nothing (kubectl's default `--allow-missing-template-keys`).

Custom columns are `HEADER:PATH` pairs separated by commas; the path may omit its braces and its
leading dot (`NAME:metadata.name`); a cell with no value is `<none>`, several values are joined
by commas.

Failure semantics: `parse_template` and `parse_custom_columns` raise `ValueError` with a one-line
message naming what is wrong (unclosed action, `{end}` without `{range}`, a column without `:`,
a path the JSONPath subset does not parse); evaluation never raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from k8s import jsonpath


@dataclass(frozen=True)
class _Path:
    steps: tuple[jsonpath.Step, ...]
    from_root: bool
    current: bool = False  # `{@}`: the element itself


@dataclass
class _Range:
    path: _Path
    body: list[_Node] = field(default_factory=list)


_Node = str | _Path | _Range


def _compile(expr: str, template: str) -> _Path:
    text = expr.strip()
    if text in ("@", "$"):
        return _Path((), text == "$", current=text == "@")
    from_root = text.startswith("$")
    text = text.removeprefix("$").removeprefix("@")
    try:
        return _Path(jsonpath.compile_path(text), from_root)
    except ValueError as exc:
        raise ValueError(f"jsonpath {template}: {exc}") from None


def _action_end(text: str, start: int) -> int:
    """The index of the `}` that closes the action opened at `start` (quotes may hold braces)."""
    quote: str | None = None
    i = start + 1
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "}":
            return i
        i += 1
    raise ValueError(f"jsonpath {text}: unclosed action (a '{{' without its '}}')")


def _literal(action: str, template: str) -> str:
    if action.startswith("'"):
        action = '"' + action[1:-1].replace('"', '\\"') + '"'
    try:
        value = json.loads(action)
    except ValueError:
        raise ValueError(f"jsonpath {template}: bad string literal {action}") from None
    return str(value)


def parse_template(template: str) -> list[_Node]:
    """The template's text, paths and ranges, or ValueError naming what is wrong."""
    root: list[_Node] = []
    stack: list[list[_Node]] = [root]
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            stack[-1].append(template[pos:])
            break
        if start > pos:
            stack[-1].append(template[pos:start])
        end = _action_end(template, start)
        action = template[start + 1 : end].strip()
        if action.startswith("range ") or action == "range":
            node = _Range(_compile(action[len("range") :], template))
            stack[-1].append(node)
            stack.append(node.body)
        elif action == "end":
            if len(stack) == 1:
                raise ValueError(f"jsonpath {template}: {{end}} without a {{range}}")
            stack.pop()
        elif action[:1] in ("'", '"'):
            stack[-1].append(_literal(action, template))
        else:
            stack[-1].append(_compile(action, template))
        pos = end + 1
    if len(stack) > 1:
        raise ValueError(f"jsonpath {template}: a {{range}} without its {{end}}")
    return root


def _select(path: _Path, root: Any, current: Any) -> list[Any]:
    if path.current:
        return [current]
    return jsonpath.evaluate(path.steps, root if path.from_root else current)


def _execute(nodes: list[_Node], root: Any, current: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Path):
            out.append(" ".join(jsonpath.render(v) for v in _select(node, root, current)))
        else:
            for element in _select(node.path, root, current):
                _execute(node.body, root, element, out)


def execute(nodes: list[_Node], data: Any) -> str:
    """The template's output for `data` (an object, or a List of them)."""
    out: list[str] = []
    _execute(nodes, data, data, out)
    return "".join(out)


@dataclass(frozen=True)
class Column:
    header: str
    path: _Path


def parse_custom_columns(spec: str) -> list[Column]:
    """`HEADER:PATH,...` as kubectl's `-o custom-columns`, or ValueError naming the bad part."""
    columns = []
    for part in spec.split(","):
        header, colon, expr = part.partition(":")
        if not colon or not header.strip() or not expr.strip():
            raise ValueError(
                f"custom-columns: {part!r} is not HEADER:PATH (e.g. NAME:.metadata.name)"
            )
        expr = expr.strip()
        if expr.startswith("{") and expr.endswith("}"):
            expr = expr[1:-1]
        if not expr.startswith((".", "$", "@", "[")):
            expr = "." + expr
        columns.append(Column(header.strip(), _compile(expr, part)))
    return columns


def column_cells(columns: list[Column], obj: Any) -> list[str]:
    """One object's cells: `<none>` where the path selects nothing, commas between several."""
    cells = []
    for column in columns:
        values = _select(column.path, obj, obj)
        cells.append(",".join(jsonpath.render(v) for v in values) if values else "<none>")
    return cells
