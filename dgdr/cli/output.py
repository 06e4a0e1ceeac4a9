"""`dgdr get -o FORMAT`: what each of kubectl's output formats prints for DGDRs, for a list, for
one object and for each change of a watch.

Formats: the default table and `wide` (Dynamo's printer columns, `dgdr.cli.render`), `name`
(`dynamographdeploymentrequest.nvidia.com/NAME`), `json`, `yaml`, `jsonpath=TEMPLATE` and
`custom-columns=HEADER:PATH,...` (`dgdr.cli.template`). Pure: objects in, text out; the caller
prints it.

Failure semantics: `parse_output` raises `ValueError` in one line for an unknown format (listing
the allowed ones) or a template / column spec that does not parse; the CLI exits 2 with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dgdr.cli import render
from dgdr.cli.printer import Columns
from dgdr.domain.kinds import API_VERSION

if TYPE_CHECKING:  # templates (`k8s.jsonpath`) are imported for -o jsonpath/custom-columns only
    from dgdr.cli import template
    from dgdr.client import DgdrObject

RESOURCE = f"dynamographdeploymentrequest.{API_VERSION.split('/')[0]}"
FORMATS = ("custom-columns", "json", "jsonpath", "name", "wide", "yaml")


@dataclass
class Output:
    """A parsed `-o` value, and (for tables) the columns of what it printed so far."""

    kind: str  # "table", or one of FORMATS
    namespaces: bool = False
    nodes: list[Any] = field(default_factory=list)
    columns: list[template.Column] = field(default_factory=list)
    _table: Columns | None = None

    @property
    def tabular(self) -> bool:
        return self.kind in ("table", "wide", "custom-columns")

    def _headers(self) -> list[str]:
        if self.kind == "custom-columns":
            return [c.header for c in self.columns]
        headers = render.WIDE_COLUMNS if self.kind == "wide" else render.COLUMNS
        return (["NAMESPACE"] if self.namespaces else []) + list(headers)

    def _cells(self, obj: DgdrObject, now: datetime | None) -> list[str]:
        if self.kind == "custom-columns":
            from dgdr.cli import template

            return template.column_cells(self.columns, obj)
        ns = [obj["metadata"].get("namespace", "")] if self.namespaces else []
        return ns + render.row(obj, wide=self.kind == "wide", now=now)

    def objects(self, objects: list[DgdrObject], single: bool, now: datetime | None = None) -> str:
        """What `get` prints for `objects` (`single`: one object asked for by name)."""
        if self.tabular:
            self._table = Columns(self._headers())
            return "\n".join(self._table.lines(self._cells(o, now) for o in objects))
        if self.kind == "name":
            return "\n".join(f"{RESOURCE}/{o['metadata']['name']}" for o in objects)
        data: Any = objects[0] if single else {"apiVersion": "v1", "kind": "List", "items": objects}
        if self.kind == "jsonpath":
            from dgdr.cli import template

            return template.execute(self.nodes, data)
        return dump(data, self.kind)

    def change(self, obj: DgdrObject, now: datetime | None = None) -> str:
        """What a watch prints for one change: a row under the table printed before (its header
        first when nothing was printed yet), or the object in the format."""
        if self.tabular:
            if self._table is None:
                return self.objects([obj], single=True, now=now)
            return self._table.line(self._cells(obj, now))
        if self.kind == "yaml":
            return "---\n" + dump(obj, "yaml").rstrip("\n")
        return self.objects([obj], single=True, now=now)


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=4)
    from dgdr.cli.yamlout import dump_yaml  # PyYAML: only for -o yaml

    return dump_yaml(data).rstrip("\n")


def parse_output(value: str | None, namespaces: bool = False) -> Output:
    """The `-o` value as kubectl reads it (`-o=json` too), or ValueError in one line."""
    if value is None or value == "":
        return Output("table", namespaces)
    value = value.removeprefix("=")
    kind, eq, argument = value.partition("=")
    if kind in ("jsonpath", "custom-columns") and eq:
        from dgdr.cli import template

        if kind == "jsonpath":
            return Output(kind, namespaces, nodes=template.parse_template(argument))
        return Output(kind, namespaces, columns=template.parse_custom_columns(argument))
    if kind in ("jsonpath", "custom-columns"):
        raise ValueError(f"-o {kind} needs a value: -o {kind}=" + _EXAMPLES[kind])
    if kind in FORMATS and not eq:
        return Output(kind, namespaces)
    raise ValueError(
        f"unable to match a printer suitable for the output format {value!r}, allowed formats "
        f"are: {','.join(FORMATS)}"
    )


_EXAMPLES = {
    "jsonpath": "'{.items[*].metadata.name}'",
    "custom-columns": "NAME:.metadata.name,PHASE:.status.phase",
}
