"""How the CLI shows DGDRs: `get` rows and tables, ages, `history` and `describe` text.

The objects and histories are folded from decided commands (the status projection and the envelopes
the store holds), so the rendering is checked on what the service really serves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dgdr.cli import render
from dgdr.client import DAMAGED, history_entries
from dgdr.domain.decider import decide, evolve, initial_state
from dgdr.domain.model import Command, Rejection
from events import subjects
from events.envelope import AggregateId, wrap
from events.integrity import read_commit
from projections.status import project_all
from tests.dgdr.domain.builders import (
    DGD,
    INVALID,
    JOB,
    MANUAL,
    NAME,
    NAMESPACE,
    SPEC,
    apply,
    delete,
    fail,
    observe,
    progress,
    result,
    start,
)

START = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
FIRST = AggregateId(NAMESPACE, NAME, "11111111-0000-4000-8000-000000000001")
SECOND = AggregateId(NAMESPACE, NAME, "22222222-0000-4000-8000-000000000002")


def stamp(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def lifecycle(
    aggregate: AggregateId, *commands: Command, first_seq: int = 1
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the projected object, the history as `DgdrClient.history` lists it); commit i at second i."""
    state, commits, listed = initial_state(), [], []
    for seq, command in enumerate(commands, start=first_seq):
        decision = decide(state, command)
        assert not isinstance(decision, Rejection) and decision, (command, decision)
        for event in decision:
            state = evolve(state, event, command.id)
        envelopes = wrap(
            decision, aggregate, command_id=command.id, at=stamp(seq), correlation_id=None
        )
        commits.append((seq, envelopes))
        listed += [{"sequence": seq, **env.to_dict()} for env in envelopes]
    return project_all(commits), listed


def deployed() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    obj, history = lifecycle(
        FIRST,
        apply(SPEC, labels={"app": "chat"}),
        start(),
        progress("SweepingPrefill", message="prefill: 4 TP candidates"),
        progress("Done", message="profiling done"),
        result(message="TP2, 1 replica"),
        observe("pending", replicas=2, available=0),
        observe("successful", replicas=2, available=2),
    )
    assert obj is not None
    return obj, history


def text(*parts: str) -> str:
    return "\n".join(parts)


def section(rendered: str, title: str) -> list[list[str]]:
    """The rows of a describe table under `title:` (header excluded), each split on spaces."""
    lines = rendered.splitlines()
    start = lines.index(title) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith(" ") and line.endswith(":"):
            break
        if line.strip():
            rows.append(line.split())
    return rows


# ------------------------------------------------------------------------------------------ ages


@pytest.mark.parametrize(
    ("elapsed", "shown"),
    [
        (0, "0s"),
        (119, "119s"),
        (120, "2m0s"),
        (599, "9m59s"),
        (600, "10m"),
        (2 * 3600 - 1, "119m"),
        (2 * 3600, "2h0m"),
        (2 * 86400 - 60, "47h59m"),
        (2 * 86400, "2d"),
        (-30, "0s"),  # a clock behind the server's is not a negative age
    ],
)
def test_age_like_kubectl(elapsed: int, shown: str) -> None:
    assert render.age(stamp(0), START + timedelta(seconds=elapsed)) == shown


def test_age_of_nothing_is_unknown() -> None:
    assert render.age(None) == "<unknown>"
    assert render.age("") == "<unknown>"


# ------------------------------------------------------------------------------------------ get


def test_a_row_has_dynamos_printer_columns() -> None:
    obj, _ = deployed()
    now = START + timedelta(seconds=65)
    assert render.row(obj, now=now) == [
        NAME,
        "Qwen/Qwen3-0.6B",
        "auto",
        "Deployed",
        "",
        "Deployed",
        "Deployment is healthy",
        DGD,
        "64s",
    ]
    wide = render.row(obj, wide=True, now=now)
    assert wide[len(render.COLUMNS) :] == ["1", "7", FIRST.uid]


def test_a_profiling_row_shows_the_sub_phase_as_phase_and_reason() -> None:
    obj, _ = lifecycle(FIRST, apply(), start(), progress("SweepingPrefill", message="prefill"))
    assert obj is not None
    cells = dict(zip(render.COLUMNS, render.row(obj, now=START), strict=True))
    assert (cells["PHASE"], cells["PROFILING"], cells["REASON"], cells["MESSAGE"]) == (
        "Profiling",
        "SweepingPrefill",
        "SweepingPrefill",
        "prefill",
    )


def test_the_table_has_a_header_and_a_row_per_object_with_namespaces_on_request() -> None:
    obj, _ = deployed()
    failed, _ = lifecycle(SECOND, apply(INVALID))
    assert failed is not None
    lines = text(render.table([obj, failed], now=START)).splitlines()
    assert lines[0].split() == list(render.COLUMNS)
    assert lines[1].split()[:4] == [NAME, "Qwen/Qwen3-0.6B", "auto", "Deployed"]
    assert lines[2].split()[3:5] == ["Failed", "ValidationFailed"]
    with_ns = text(render.table([obj], namespaces=True, now=START)).splitlines()
    assert with_ns[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert with_ns[1].split()[:2] == [NAMESPACE, NAME]


# -------------------------------------------------------------------------------------- history


def test_history_lists_every_stored_event_with_its_description() -> None:
    _, history = deployed()
    rows = [line.split()[:5] for line in text(render.history_table(history)).splitlines()[1:]]
    assert [r[0] for r in rows] == [str(e["sequence"]) for e in history]
    assert [(r[2], r[3], r[4]) for r in rows] == [
        ("Created", "Normal", "Created"),
        ("Validated", "Normal", "Initialized"),
        ("ProfilingStarted", "Normal", "ProfilingJobCreated"),
        ("ProfilingProgressed", "Normal", "SweepingPrefill"),
        ("ProfilingProgressed", "Normal", "Completed"),
        ("ProfilingCompleted", "Normal", "SpecGenerated"),
        ("DeploymentStarted", "Normal", "Deploying"),
        ("DeploymentCreated", "Normal", "DeploymentCreated"),
        ("DeploymentObserved", "Normal", "DeploymentObserved"),
        ("DeploymentReady", "Normal", "DeploymentReady"),
    ]


def test_an_event_a_newer_dgdr_wrote_is_shown_by_its_type() -> None:
    _, history = deployed()
    newer = {**history[-1], "sequence": 99, "type": "DeploymentScaled", "payload": {"to": 3}}
    described = render.describe_stored(newer)
    assert described.reason == "DeploymentScaled" and described.noteworthy
    assert "DeploymentScaled" in text(render.history_table([*history, newer]))


def test_a_damaged_message_is_a_history_row_of_its_own_with_its_reason_and_bytes() -> None:
    obj, history = deployed()
    subject = subjects.events_subject(NAMESPACE, NAME, FIRST.uid)
    garbage = read_commit(b"\x00[bold]x", subject=subject, headers={}, seq=11)
    (entry,) = history_entries([garbage])
    assert entry["type"] == DAMAGED and entry["aggregate"]["uid"] == FIRST.uid
    lines = text(render.history_table([*history, entry])).splitlines()
    assert lines[-1].split()[:4] == ["11", "-", DAMAGED, "Warning"]
    assert "HistoryDamaged" in lines[-1] and "not JSON" in lines[-1]
    assert "\\x00[bold]x" in lines[-1]  # escaped, and not read as markup
    events = section(text(*render.describe(obj, [*history, entry])), "Events:")
    assert events[-1][:2] == ["Warning", "HistoryDamaged"]


# ------------------------------------------------------------------------------------- describe


def test_describe_shows_spec_status_conditions_and_the_story() -> None:
    obj, history = deployed()
    rendered = text(*render.describe(obj, history, now=START + timedelta(seconds=10)))
    lines = [line.rstrip() for line in rendered.splitlines()]
    for indent, key, value in (
        ("", "Name", NAME),
        ("", "Namespace", NAMESPACE),
        ("", "UID", FIRST.uid),
        ("", "Resource Version", "7"),
        ("  ", "model", "Qwen/Qwen3-0.6B"),
        ("  ", "hardware", "gpuSku=h100_sxm"),
        ("  ", "Phase", "Deployed"),
        ("  ", "Profiling Job", JOB),
        ("  ", "DGD", DGD),
        ("  ", "Replicas", "2/2 available"),
    ):
        assert f"{indent}{key + ':':<22}{value}" in lines, key
    assert not any(line.lstrip().startswith("Profiling Phase:") for line in lines)
    conditions = section(rendered, "Conditions:")
    assert [(c[0], c[1], c[2]) for c in conditions] == [
        ("Succeeded", "True", "Deployed"),
        ("Validation", "True", "ValidationPassed"),
        ("Profiling", "True", "ProfilingCompleted"),
        ("SpecGenerated", "True", "SpecGenerated"),
        ("DeploymentReady", "True", "DeploymentReady"),
    ]
    events = section(rendered, "Events:")
    assert [(e[0], e[1], e[2]) for e in events] == [
        ("Normal", "Initialized", "9s"),
        ("Normal", "ProfilingJobCreated", "8s"),
        ("Normal", "SweepingPrefill", "7s"),
        ("Normal", "Completed", "6s"),
        ("Normal", "SpecGenerated", "5s"),
        ("Normal", "Deploying", "5s"),
        ("Normal", "DeploymentCreated", "4s"),
        ("Normal", "DeploymentReady", "3s"),
    ]
    assert "prefill: 4 TP candidates" in rendered


def test_describe_tells_only_this_incarnations_story_with_warnings() -> None:
    _, first = lifecycle(FIRST, apply(), start(), fail(message="OOM"), delete())
    obj, second = lifecycle(SECOND, apply(), start(), fail("SweepingPrefill", message="no fit"),
                            first_seq=5)  # fmt: skip
    assert obj is not None
    events = section(text(*render.describe(obj, first + second, now=START)), "Events:")
    assert [(e[0], e[1]) for e in events] == [
        ("Normal", "Initialized"),
        ("Normal", "ProfilingJobCreated"),
        ("Warning", "SweepingPrefillFailed"),
    ]
    assert events[-1][3:] == ["no", "fit"]


def test_describe_writes_values_as_yaml_and_kubectl_do_not_as_python() -> None:
    obj, history = lifecycle(FIRST, apply(MANUAL, labels={"app": "chat"}))
    assert obj is not None
    lines = [line.split() for line in render.describe(obj, history, now=START)]
    assert ["autoApply:", "false"] in lines and ["Labels:", "app=chat"] in lines
    obj["spec"]["autoApply"] = True
    assert ["autoApply:", "true"] in [line.split() for line in render.describe(obj, history)]
    assert not any("None" in line for line in render.describe(obj, history))


def test_describe_shows_the_whole_pareto_front_the_status_holds_only_the_top_of() -> None:
    from dgdr.domain.model import ReportProfilingResult
    from projections.status import PARETO_STATUS_ROWS

    front = [
        {
            "config": {
                "mode": "agg", "backend": "vllm", "tensorParallelSize": 1, "replicas": i + 1,
                "totalGpus": i + 1, "batchSize": 64, "ttftMs": 80.0, "itlMs": 10.0 + i,
                "tokensPerSecondPerGpu": 1000.0 + i, "tokensPerSecondPerUser": 90.0 - i,
                "meetsSla": True, "selected": i == 3,
            }
        }
        for i in range(12)
    ]  # fmt: skip
    report = ReportProfilingResult(
        id="report", at=stamp(3), generation=1, dgd_name=DGD, selected_config={"kind": "DGD"},
        pareto=front, message="TP1 x 4",
    )  # fmt: skip
    obj, history = lifecycle(FIRST, apply(SPEC), start(), report)
    assert obj is not None
    assert len(obj["status"]["profilingResults"]["pareto"]) == PARETO_STATUS_ROWS
    rows = section(text(*render.describe(obj, history, now=START)), "Pareto Front:")
    assert [row[-2] for row in rows if row[0] != "*"] == [f"{90.0 - i:.1f}" for i in range(12)
                                                         if i != 3]  # fmt: skip
    assert [row[1:] for row in rows if row[0] == "*"] == [
        ["vllm", "agg", "1", "4", "4", "64", "80.0", "13.00", "1003", "87.0", "met"]
    ]
