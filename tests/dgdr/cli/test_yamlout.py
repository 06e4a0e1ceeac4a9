"""YAML as the CLI prints it: a shared object is written out in full, never anchored."""

from __future__ import annotations

import yaml

from dgdr.cli.yamlout import dump_yaml, dump_yaml_all


def test_a_shared_object_is_repeated_not_anchored() -> None:
    worker = {"name": "decode", "replicas": 2, "args": ["--tp", "1"]}
    report = {"selected": worker, "pareto": [worker, {"name": "other"}]}
    text = dump_yaml(report)
    assert "&" not in text and "*" not in text, text
    assert text.count("name: decode") == 2
    assert yaml.safe_load(text) == report
    assert list(yaml.safe_load(text)) == ["selected", "pareto"]  # the order given, not sorted


def test_a_document_stream_for_kubectl_apply() -> None:
    labels = {"app": "x"}
    docs = [{"kind": "ConfigMap", "labels": labels}, {"kind": "DynamoGraphDeployment", "l": labels}]
    text = dump_yaml_all(docs)
    assert text.startswith("---\nkind: ConfigMap\n") and "\n---\n" in text
    assert "&id" not in text and list(yaml.safe_load_all(text)) == docs
