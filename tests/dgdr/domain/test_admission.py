"""Admission as Dynamo's API server and validating webhook judge a DGDR: `review` and `review_apply`.

The Dynamo manifests under `data/dynamo_dgdrs/` (copied from Dynamo's docs, examples, operator test
data and e2e tests; each names its source and the verdict Dynamo's CRD and webhook give it) are
reviewed as creates; the webhook's update rules are checked on them too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dgdr.domain.admission import SPEC_FROZEN_PHASES, review, review_apply
from dgdr.domain.spec import parse_spec

DATA = Path(__file__).parent / "data" / "dynamo_dgdrs"
FILES = sorted(DATA.glob("*.yaml"))


def _expectation(path: Path) -> tuple[str, list[str]]:
    """The `# expect:` line: `accepted`, or `refused` and the fields refused."""
    line = next(x for x in path.read_text().splitlines() if x.startswith("# expect: "))
    verdict, _, fields = line.removeprefix("# expect: ").partition(" ")
    return verdict, sorted(f.strip() for f in fields.split(",") if f.strip())


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


ACCEPTED = [p for p in FILES if _expectation(p)[0] == "accepted"]


def test_the_dynamo_manifests_are_all_there_and_cite_their_source() -> None:
    assert len(FILES) == 39
    assert (len(ACCEPTED), len(FILES) - len(ACCEPTED)) == (33, 6)
    for path in FILES:
        text = path.read_text()
        assert text.startswith("# Copied from NVIDIA Dynamo (ai-dynamo/dynamo, Apache-2.0)"), path
        assert "2a6da14c83617f5412caba5777dbf0e2399e9c5f" in text, path
        assert _load(path)["apiVersion"] == "nvidia.com/v1beta1", path


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_a_dynamo_manifest_is_admitted_or_refused_as_dynamo_does(path: Path) -> None:
    verdict, fields = _expectation(path)
    result = review("CREATE", _load(path))
    if verdict == "accepted":
        assert result.allowed, result.message
        assert result.errors == () and result.message == ""
    else:
        assert verdict == "refused"
        assert not result.allowed
        assert sorted(e.field for e in result.errors) == fields
        assert all(e.message for e in result.errors)
        assert result.message and result.reason == "Invalid"


@pytest.mark.parametrize("path", ACCEPTED, ids=[p.stem for p in ACCEPTED])
@pytest.mark.parametrize(
    "phase", ["Pending", "Profiling", "Ready", "Deploying", "Deployed", "Failed"]
)
def test_the_webhook_forbids_a_spec_change_only_in_profiling_ready_deploying_and_deployed(
    path: Path, phase: str
) -> None:
    old = _load(path)
    new = copy.deepcopy(old)
    new["spec"]["model"] = "Qwen/Qwen3-8B" if old["spec"]["model"] != "Qwen/Qwen3-8B" else "m"
    result = review("UPDATE", new, old, phase)
    if phase in SPEC_FROZEN_PHASES:
        assert not result.allowed and result.reason == "SpecChangeRejected"
        assert result.message == (
            f"spec updates are forbidden while the resource is in phase '{phase}'; "
            "delete and recreate the resource to change its spec"
        )
        assert [e.field for e in result.errors] == ["spec"]
    else:
        assert result.allowed
    # the same object again, a metadata change, a deletion: always admitted
    assert review("UPDATE", old, old, phase).allowed
    labelled = {**old, "metadata": {**old["metadata"], "labels": {"team": "a"}}}
    assert review("UPDATE", labelled, old, phase).allowed
    deleting = {**new, "metadata": {**new["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert review("UPDATE", deleting, old, phase).allowed
    assert review("DELETE", None, old, phase).allowed


def test_thorough_with_auto_is_refused_on_create_and_when_an_update_brings_it() -> None:
    old = _load(DATA / "e2e-webhook-valid-minimal.yaml")
    new = copy.deepcopy(old)
    new["spec"].update(backend="auto", searchStrategy="thorough")
    assert not review("CREATE", new).allowed
    for phase in ("Pending", "Failed"):
        result = review("UPDATE", new, old, phase)
        assert not result.allowed and [e.field for e in result.errors] == ["spec.searchStrategy"]
    # an update that keeps what the stored object already had is admitted; the profiler fails it
    kept = copy.deepcopy(new)
    kept["spec"]["image"] = "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.5.0"
    assert review("UPDATE", kept, new, "Failed").allowed
    assert isinstance(parse_spec(kept["spec"]), list)


def test_a_ready_dgdr_waiting_for_review_may_turn_auto_apply_on_and_set_the_runtime_version() -> (
    None
):
    old = _load(DATA / "e2e-webhook-valid-minimal.yaml")
    old["spec"]["autoApply"] = False
    deploy = copy.deepcopy(old)
    deploy["spec"].update(autoApply=True, runtimeVersionOverride="1.4.1")
    assert review("UPDATE", deploy, old, "Ready").allowed
    assert not review("UPDATE", deploy, old, "Deployed").allowed  # only while Ready
    other = copy.deepcopy(deploy)
    other["spec"]["model"] = "Qwen/Qwen3-8B"
    refused = review("UPDATE", other, old, "Ready")
    assert not refused.allowed and refused.reason == "SpecChangeRejected"
    auto = copy.deepcopy(old)
    auto["spec"]["autoApply"] = True
    del auto["spec"]["autoApply"]  # turned on by leaving it to its default
    assert review("UPDATE", auto, old, "Ready").allowed
    stored_auto = copy.deepcopy(old)
    stored_auto["spec"]["autoApply"] = True
    retag = copy.deepcopy(stored_auto)
    retag["spec"]["runtimeVersionOverride"] = "1.4.1"
    assert not review("UPDATE", retag, stored_auto, "Ready").allowed  # not a deferred deployment


def test_an_update_is_checked_against_the_schema_whatever_the_phase() -> None:
    old = _load(DATA / "e2e-webhook-valid-minimal.yaml")
    new = copy.deepcopy(old)
    new["spec"]["workload"] = {"isl": "4000"}
    for phase in ("Pending", "Ready", "Failed", "Deployed"):
        result = review("UPDATE", new, old, phase)
        assert not result.allowed and [e.field for e in result.errors] == ["spec.workload.isl"]


def test_later_rules_are_admitted() -> None:
    doc = _load(DATA / "e2e-webhook-valid-minimal.yaml")
    doc["spec"].update(
        sla={"ttft": -1, "e2eLatency": 9}, workload={"requestRate": 1, "concurrency": 2}
    )
    assert review("CREATE", doc).allowed
    assert isinstance(parse_spec(doc["spec"]), list)


def test_review_apply_uses_the_parsed_spec_and_judges_a_list_of_errors_again() -> None:
    spec = {"model": "m", "sla": {"ttft": -1}}
    parsed = parse_spec(spec)
    assert isinstance(parsed, list)  # a later error only: admitted
    assert review_apply(spec, parsed).allowed
    bad = {"model": "m", "autoApply": "no"}
    refused = review_apply(bad, parse_spec(bad))
    assert not refused.allowed and [e.field for e in refused.errors] == ["spec.autoApply"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (
            {
                "apiVersion": "nvidia.com/v1beta1",
                "kind": "DynamoGraphDeploymentRequest",
                "metadata": {"name": "Bad_Name"},
                "spec": {"model": "m"},
            },
            "metadata.name",
        ),
        (
            {
                "apiVersion": "nvidia.com/v1beta1",
                "kind": "DynamoGraphDeploymentRequest",
                "metadata": {"name": "a"},
            },
            "spec",
        ),
        (
            {
                "apiVersion": "nvidia.com/v1beta1",
                "kind": "DynamoGraphDeploymentRequest",
                "metadata": {"name": "a"},
                "spec": {
                    "model": "m",
                    "overrides": {"profilingJob": {"template": {"spec": {"containers": [{}]}}}},
                },
            },
            "spec.overrides.profilingJob.template.spec.containers.0.name",
        ),
    ],
)
def test_review_refuses_a_bad_object_naming_the_field(document: dict[str, Any], field: str) -> None:
    result = review("CREATE", document)
    assert not result.allowed and [e.field for e in result.errors] == [field]


def test_a_create_whose_name_is_too_long_for_its_dgd_and_job_is_refused_naming_the_limit() -> None:
    from tests.support import manifest

    assert review("CREATE", manifest("n" * 55, "default")).allowed
    refused = review("CREATE", manifest("n" * 60, "default"))
    assert not refused.allowed and [e.field for e in refused.errors] == ["metadata.name"]
    assert refused.message.startswith("metadata.name: 60 characters is too long: the limit is 55")
    # an object stored before (an update, a delete) is not judged by its name again
    assert review("UPDATE", manifest("n" * 60, "default"), manifest("n" * 60, "default")).allowed
