"""Manifests as kubectl reads them: files, directories (`-f DIR`: their *.json, *.yaml, *.yml in
lexical order, subdirectories with `recursive`), stdin, several documents per file, `kind: List`s
unpacked into their items. Each comes out as a `Document` that names where it came from, so a
message can name it ("x.yaml (document 2, item 3)").

Failure semantics: a file that cannot be read, is not UTF-8 or not YAML, a document or a List item
that is not a mapping, a directory without manifests: one `ConfigurationError` in one line naming
it. A document of another kind is not an error here: `Document.kind_problem` says why dgdr will not
apply it, and the caller goes on with the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dgdr.domain.errors import ConfigurationError
from dgdr.domain.kinds import KIND

if TYPE_CHECKING:  # PyYAML is imported by `load_documents`: the client's other calls need none
    import yaml

MANIFEST_EXTENSIONS = (".json", ".yaml", ".yml")  # what kubectl reads from a directory


@dataclass(frozen=True)
class Document:
    """One manifest to apply or delete: where it came from (for messages) and its body."""

    where: str  # "x.yaml", "x.yaml (document 2)", "x.yaml (document 1, item 3)"
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind") or "")

    @property
    def name(self) -> str:
        meta = self.body.get("metadata")
        return str(meta.get("name") or "") if isinstance(meta, dict) else ""

    @property
    def namespace(self) -> str | None:
        meta = self.body.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        return str(ns) if ns else None

    def kind_problem(self) -> str | None:
        """Why dgdr will not handle this document (another kind), or None for a DGDR (or a
        document with no kind: the service names what is missing)."""
        if not self.kind or self.kind == KIND:
            return None
        named = f" {self.name!r}" if self.name else ""
        fix = (
            "a DynamoGraphDeployment is what a DGDR generates: apply it with kubectl, or apply "
            "the DGDR that asks for it"
            if self.kind == "DynamoGraphDeployment"
            else "apply it with kubectl"
        )
        return (
            f"{self.where}: {self.kind}{named} is not a {KIND}, the only kind dgdr handles: {fix}"
        )


def manifest_paths(path: Path, recursive: bool = False) -> list[Path]:
    """`path` itself, or the manifests of a directory in lexical order (kubectl's `-f DIR`:
    *.json, *.yaml, *.yml; subdirectories only when `recursive`). A directory without any is a
    `ConfigurationError`."""
    if not path.is_dir():
        return [path]
    found: list[Path] = []
    for entry in sorted(path.iterdir()):
        if entry.is_dir():
            if recursive:
                found.extend(p for p in manifest_paths(entry, True) if p.is_file())
        elif entry.suffix in MANIFEST_EXTENSIONS:
            found.append(entry)
    if not found and not recursive:
        raise ConfigurationError(
            f"{path}: no manifest in this directory (recognized file extensions are "
            f"{', '.join(MANIFEST_EXTENSIONS)}; -R reads subdirectories)"
        )
    return found


def unpack_lists(where: str, body: dict[str, Any]) -> list[Document]:
    """A `kind: List` (or any `<Kind>List` with `items`, as `kubectl get -o yaml` writes) as its
    items, each named by its position; any other document as itself."""
    items = body.get("items")
    if not (str(body.get("kind") or "").endswith("List") and isinstance(items, list)):
        return [Document(where, body)]
    prefix = where[:-1] + ", " if where.endswith(")") else where + " ("
    docs: list[Document] = []
    for i, item in enumerate(items, start=1):
        item_where = f"{prefix}item {i})"
        if not isinstance(item, dict):
            raise ConfigurationError(f"{item_where} is not a mapping")
        docs.extend(unpack_lists(item_where, item))
    return docs


def load_manifests(
    sources: list[str], *, recursive: bool = False, stdin: bytes | None = None
) -> list[Document]:
    """Every manifest of `sources` (files, directories, `-` for `stdin`), in order, `kind: List`s
    unpacked. An unreadable or malformed file is a `ConfigurationError` naming it."""
    docs: list[Document] = []
    for source in sources:
        if source == "-":
            named = [("<stdin>", load_documents("<stdin>", stdin or b""))]
        else:
            try:
                paths = manifest_paths(Path(source), recursive)
                named = [(str(p), load_documents(p)) for p in paths]
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read {exc.filename or source}: {exc.strerror or exc}"
                ) from None
        for name, bodies in named:
            for i, body in enumerate(bodies, start=1):
                where = name if len(bodies) == 1 else f"{name} (document {i})"
                docs.extend(unpack_lists(where, body))
    return docs


def load_documents(source: str | Path, text: str | bytes | None = None) -> list[dict[str, Any]]:
    """Every YAML/JSON document in a file (or `text`), skipping empty ones. A file that is not
    UTF-8 text or not YAML is a `ConfigurationError` in one line naming it (and where it broke)."""
    import yaml

    content = Path(source).read_bytes() if text is None else text
    try:
        raw = content.decode("utf-8") if isinstance(content, bytes) else content
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{source}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}): "
            "a manifest is a YAML or JSON file"
        ) from None
    try:
        docs = [d for d in yaml.safe_load_all(raw) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: not YAML: {_yaml_problem(exc)}") from None
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise ConfigurationError(f"{source}: document {i + 1} is not a mapping")
    return docs


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: the problem and where (its own text spans several lines)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"
