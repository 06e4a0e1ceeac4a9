"""YAML as the CLI prints it: block style, keys in the order given, and never an anchor or alias.

PyYAML's dumper writes an object that appears twice in a document once, as an anchor (`&id001`),
and then as an alias (`*id001`): valid YAML, but unreadable to a person and refused by some tools.
Every YAML the CLI prints goes through `dump_yaml` / `dump_yaml_all`, whose dumper writes each
occurrence out in full.

Failure semantics: as `yaml.safe_dump`: a value with no YAML representation (an arbitrary object)
raises `yaml.representer.RepresenterError`, a bug of the caller, never of the user's input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class NoAliasSafeDumper(yaml.SafeDumper):
    """`yaml.SafeDumper` that repeats a shared object instead of anchoring it."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """One YAML document, keys in insertion order, no anchors or aliases."""
    return yaml.dump(data, Dumper=NoAliasSafeDumper, sort_keys=False, allow_unicode=True)


def dump_yaml_all(documents: Iterable[Any]) -> str:
    """A stream of YAML documents separated by `---` (for `kubectl apply -f -`), no aliases."""
    return yaml.dump_all(
        documents,
        Dumper=NoAliasSafeDumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
    )
