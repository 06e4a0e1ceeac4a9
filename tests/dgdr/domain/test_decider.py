"""The decider, given/when/then: every transition and every rejection."""

from __future__ import annotations

from typing import Any

import pytest

from dgdr.domain.decider import MAX_REMEMBERED, REQUEST_MEMORY, decide, fold, initial_state
from dgdr.domain.hardware import DEFAULT_GPUS_PER_NODE
from dgdr.domain.machine import profiling_state
from dgdr.domain.model import (
    AutoApplyEnabled,
    Command,
    Created,
    Deleted,
    DeploymentCreated,
    DeploymentDegraded,
    DeploymentDeleted,
    DeploymentFailed,
    DeploymentObserved,
    DeploymentReady,
    DeploymentStarted,
    ProfilingCompleted,
    ProfilingFailed,
    ProfilingProgressed,
    ProfilingStarted,
    Rejection,
    SpecUpdated,
    Validated,
    ValidationFailed,
)
from dgdr.domain.phases import PROFILING_PHASES
from dgdr.domain.spec import GPU_SKUS
from tests.dgdr.domain.builders import (
    AUTO,
    DGD,
    INVALID,
    JOB,
    LIVE_VARIANTS,
    MANUAL,
    NO_SKU,
    OTHER,
    PARETO,
    RESOLVED_HW,
    SCHEMA_INVALID,
    SELECTED,
    SPEC,
    THOROUGH_AUTO,
    VALID_MESSAGE,
    Given,
    apply,
    delete,
    fail,
    given,
    history,
    observe,
    progress,
    result,
    run,
    start,
)

PHASE_OF_VARIANT = {
    "Pending": "Pending",
    "Profiling": "Profiling",
    "Ready": "Ready",
    "Deploying": "Deploying",
    "DeployingCreated": "Deploying",
    "Deployed": "Deployed",
    "Failed": "Failed",
    "FailedProfiling": "Failed",
    "FailedDeleted": "Failed",
    "FailedConflict": "Failed",
}


def spec_of(variant: str) -> dict[str, Any]:
    return MANUAL if variant == "Ready" else INVALID if variant == "Failed" else SPEC


def test_canonical_histories_reach_their_phase() -> None:
    for variant, phase in PHASE_OF_VARIANT.items():
        assert given(history(variant)).state.phase == phase, variant


# ------------------------------------------------------------------------------------------ create


def test_create_valid_spec_is_created_and_validated() -> None:
    state = (
        given()
        .when(apply(SPEC, labels={"app": "chat"}))
        .then(
            Created(spec=SPEC, generation=1, labels={"app": "chat"}),
            Validated(generation=1, hardware=RESOLVED_HW, message=VALID_MESSAGE),
        )
    )
    assert state.phase == "Pending"
    assert state.machine_state == "Pending"
    assert (state.generation, state.validated_generation) == (1, 1)
    assert state.spec == SPEC
    assert state.hardware == RESOLVED_HW


def test_create_invalid_spec_is_created_and_fails_validation_naming_the_field() -> None:
    when = given().when(apply(INVALID))
    state = when.then_types("Created", "ValidationFailed")
    assert isinstance(when.decision, list)
    failed = when.decision[1]
    assert isinstance(failed, ValidationFailed)
    assert failed.generation == 1
    assert [e["field"] for e in failed.errors] == ["spec.sla.e2eLatency"]
    assert "cannot be combined with ttft/itl" in failed.errors[0]["message"]
    assert state.phase == "Failed"
    assert state.validated_generation == 0


def test_create_with_several_later_errors_records_all_of_them() -> None:
    spec = {"model": "m", "sla": {"ttft": -1, "e2eLatency": 2}, "workload": {"isl": 0}}
    when = given().when(apply(spec))
    when.then_types("Created", "ValidationFailed")
    assert isinstance(when.decision, list)
    failed = when.decision[1]
    assert isinstance(failed, ValidationFailed)
    assert sorted(e["field"] for e in failed.errors) == [
        "spec.sla.e2eLatency",
        "spec.sla.ttft",
        "spec.workload.isl",
    ]


def test_create_refused_at_admission_records_nothing_and_names_every_field() -> None:
    spec = {"model": "", "backend": "x", "autoApply": "yes", "workload": {"isl": 2.5}}
    rejection = given().when(apply(spec)).then_rejected("Invalid")
    assert rejection.invalid
    assert sorted(e.field for e in rejection.errors) == [
        "spec.autoApply",
        "spec.backend",
        "spec.model",
        "spec.workload.isl",
    ]


def test_thorough_with_backend_auto_is_refused_on_create_and_when_an_update_brings_it() -> None:
    refused = given().when(apply(THOROUGH_AUTO)).then_rejected("Invalid", "concrete backend")
    assert refused.invalid and [e.field for e in refused.errors] == ["spec.searchStrategy"]
    for variant in ("Pending", "Failed"):
        given(history(variant)).when(apply(THOROUGH_AUTO)).then_rejected("Invalid")
    given(history("Ready")).when(apply(THOROUGH_AUTO)).then_rejected("SpecChangeRejected")


def test_a_stored_thorough_auto_spec_may_be_kept_and_fails_validation() -> None:
    # Dynamo's webhook lets an update keep what the stored spec already had (a history from
    # before the rule); the profiler's validation then fails it.
    stored = [Created(spec=THOROUGH_AUTO), ValidationFailed(generation=1, errors=[])]
    changed = {**THOROUGH_AUTO, "image": "img:1.0.0"}
    state = given(*stored).when(apply(changed)).then_types("SpecUpdated", "ValidationFailed")
    assert state.phase == "Failed"


@pytest.mark.parametrize("variant", LIVE_VARIANTS)
def test_a_schema_invalid_spec_leaves_an_existing_dgdr_unchanged(variant: str) -> None:
    rejection = given(history(variant)).when(apply(SCHEMA_INVALID)).then_rejected("Invalid")
    assert rejection.invalid
    assert [e.field for e in rejection.errors] == ["spec.autoApply"]


def test_missing_gpu_sku_and_nothing_discovered_fails_validation() -> None:
    when = given().when(apply(NO_SKU))
    state = when.then_types("Created", "ValidationFailed")
    assert isinstance(when.decision, list)
    failed = when.decision[1]
    assert isinstance(failed, ValidationFailed)
    assert [e["field"] for e in failed.errors] == ["spec.hardware.gpuSku"]
    assert "none discovered" in failed.errors[0]["message"]
    assert ", ".join(GPU_SKUS) in failed.errors[0]["message"]
    assert state.phase == "Failed"


def test_discovered_none_values_do_not_count_as_discovered() -> None:
    given().when(apply(NO_SKU, discovered={"gpuSku": None})).then_types(
        "Created", "ValidationFailed"
    )


def test_discovered_hardware_is_used_when_the_spec_has_none() -> None:
    discovered = {"gpuSku": "a100_sxm", "numGpusPerNode": 4, "totalGpus": 16, "vramMb": 81920}
    given().when(apply(NO_SKU, discovered=discovered)).then(
        Created(spec=NO_SKU, generation=1),
        Validated(
            generation=1,
            hardware=discovered,
            message="Spec is valid; hardware: 16 x a100_sxm (4 per node)",
        ),
    )


def test_discovered_hardware_is_merged_with_the_spec_and_the_spec_wins() -> None:
    spec = {"model": "m", "hardware": {"gpuSku": "h100_sxm", "totalGpus": 2}}
    discovered = {"gpuSku": "h100_sxm", "numGpusPerNode": 4, "totalGpus": 16, "rdma": True}
    state = given().when(apply(spec, discovered=discovered)).then_types("Created", "Validated")
    # the spec's facts override the cluster's
    assert state.hardware == {
        "gpuSku": "h100_sxm",
        "numGpusPerNode": 4,
        "totalGpus": 2,
        "rdma": True,
    }
    assert state.spec == spec  # the user's spec is recorded as written


def test_hardware_discovered_for_another_sku_is_not_merged() -> None:
    spec = {"model": "m", "hardware": {"gpuSku": "l4", "totalGpus": 2}}
    discovered = {"gpuSku": "h200_sxm", "numGpusPerNode": 4, "vramMb": 143771, "rdma": True}
    state = given().when(apply(spec, discovered=discovered)).then_types("Created", "Validated")
    assert state.hardware == {"gpuSku": "l4", "numGpusPerNode": 8, "totalGpus": 2}


def test_gpu_counts_default_to_one_node() -> None:
    state = given(apply(SPEC)).state
    assert state.hardware["numGpusPerNode"] == DEFAULT_GPUS_PER_NODE == 8
    assert state.hardware["totalGpus"] == 8
    state = given(apply({"model": "m", "hardware": {"gpuSku": "l4", "numGpusPerNode": 2}})).state
    assert state.hardware == {"gpuSku": "l4", "numGpusPerNode": 2, "totalGpus": 2}


# --------------------------------------------------------------------------------------- profiling


def test_start_profiling_from_pending() -> None:
    state = given(apply()).when(start(1, JOB)).then(ProfilingStarted(generation=1, job_name=JOB))
    assert state.machine_state == profiling_state("Initializing")
    assert state.phase == "Profiling"
    assert state.profiling_phase == "Initializing"
    assert state.job_name == JOB


@pytest.mark.parametrize("generation", [0, 2, 7])
def test_start_profiling_for_another_generation_is_stale(generation: int) -> None:
    given(apply()).when(start(generation)).then_rejected("Stale", f"generation {generation}")


def test_start_profiling_for_a_superseded_generation_is_stale() -> None:
    g = given(apply(), apply(OTHER))
    assert g.state.generation == 2
    g.when(start(1)).then_rejected("Stale", "generation 1", "current 2")
    g.when(start(2)).then_types("ProfilingStarted")


@pytest.mark.parametrize("variant", ["Profiling", "Ready", "Deploying", "Deployed", "Failed"])
def test_start_profiling_outside_pending_is_stale(variant: str) -> None:
    given(history(variant)).when(start(1)).then_rejected("Stale", PHASE_OF_VARIANT[variant])


def test_start_profiling_after_validation_failed_then_fixed() -> None:
    g = given(apply(INVALID), apply(SPEC))
    assert (g.state.phase, g.state.generation, g.state.validated_generation) == ("Pending", 2, 2)
    g.when(start(2)).then(ProfilingStarted(generation=2, job_name=JOB))


def test_progress_moves_forward() -> None:
    state = (
        given(history("Profiling"))
        .when(progress("SweepingPrefill", message="sweeping prefill TP1..8"))
        .then(ProfilingProgressed(sub_phase="SweepingPrefill", message="sweeping prefill TP1..8"))
    )
    assert state.machine_state == profiling_state("SweepingPrefill")
    assert state.profiling_phase == "SweepingPrefill"


def test_progress_can_skip_sub_phases() -> None:
    state = (
        given(history("Profiling"))
        .when(progress("SelectingConfig"))
        .then_types("ProfilingProgressed")
    )
    assert state.profiling_phase == "SelectingConfig"


def test_progress_through_every_sub_phase_in_order() -> None:
    state = given(history("Profiling")).state
    for sub in PROFILING_PHASES[1:]:
        state = (
            Given(state)
            .when(progress(sub, message=sub))
            .then(ProfilingProgressed(sub_phase=sub, message=sub))
        )
        assert state.profiling_phase == sub
    assert state.profiling_phase == "Done"
    assert state.machine_state == profiling_state("Done")


@pytest.mark.parametrize("sub", PROFILING_PHASES)
def test_progress_to_the_same_sub_phase_decides_nothing(sub: str) -> None:
    to_sub = [] if sub == "Initializing" else [progress(sub)]
    given(history("Profiling"), *to_sub).when(progress(sub)).then_nothing()


@pytest.mark.parametrize(
    ("at", "back"),
    [
        ("SweepingPrefill", "Initializing"),
        ("SelectingConfig", "SweepingDecode"),
        ("Done", "GeneratingDGD"),
        ("Done", "Initializing"),
    ],
)
def test_progress_to_a_passed_sub_phase_is_stale_not_an_invalid_transition(
    at: str, back: str
) -> None:
    given(history("Profiling"), progress(at)).when(progress(back)).then_rejected(
        "Stale", f"profiling is at {at}, past {back}"
    )


def test_progress_to_an_unknown_sub_phase_is_rejected() -> None:
    given(history("Profiling")).when(progress("Warmup")).then_rejected(
        "InvalidTransition", "Warmup"
    )


def test_progress_for_another_generation_is_stale() -> None:
    given(history("Profiling")).when(progress("SweepingPrefill", generation=2)).then_rejected(
        "Stale", "generation 2"
    )


@pytest.mark.parametrize("variant", ["Pending", "Ready", "Deploying", "Deployed", "Failed"])
def test_profiling_reports_outside_profiling_are_stale(variant: str) -> None:
    g = given(history(variant))
    g.when(progress("SweepingPrefill")).then_rejected("Stale")
    g.when(fail("SweepingPrefill")).then_rejected("Stale")
    g.when(result()).then_rejected("Stale")


def test_profiling_failure_keeps_the_sub_phase() -> None:
    state = (
        given(history("Profiling"), progress("SweepingDecode"))
        .when(fail(None, message="OOM at TP1"))
        .then(ProfilingFailed(sub_phase="SweepingDecode", message="OOM at TP1"))
    )
    assert state.phase == "Failed"
    assert state.profiling_phase == "SweepingDecode"


def test_profiling_failure_names_its_own_sub_phase_when_given() -> None:
    state = (
        given(history("Profiling"))
        .when(fail("SweepingPrefill", message="no GPUs"))
        .then(ProfilingFailed(sub_phase="SweepingPrefill", message="no GPUs"))
    )
    assert state.profiling_phase == "SweepingPrefill"


def test_profiling_failure_for_another_generation_is_stale() -> None:
    given(history("Profiling")).when(fail(generation=3)).then_rejected("Stale")


def test_result_with_auto_apply_deploys() -> None:
    state = (
        given(history("Profiling"), progress("Done"))
        .when(result(message="TP2 x 1"))
        .then(
            ProfilingCompleted(
                dgd_name=DGD, selected_config=SELECTED, pareto=PARETO, message="TP2 x 1"
            ),
            DeploymentStarted(dgd_name=DGD),
        )
    )
    assert state.phase == "Deploying"
    assert state.profiling_phase is None
    assert state.dgd_name == DGD
    assert state.deployment_created is False


def test_result_with_explicit_auto_apply_true_deploys() -> None:
    given(apply(AUTO), start()).when(result()).then_types("ProfilingCompleted", "DeploymentStarted")


def test_result_without_auto_apply_is_ready() -> None:
    state = (
        given(apply(MANUAL), start())
        .when(result())
        .then(
            ProfilingCompleted(dgd_name=DGD, selected_config=SELECTED, pareto=PARETO,
                               message="picked TP2"),
        )
    )  # fmt: skip
    assert state.phase == "Ready"
    assert state.profiling_phase is None
    assert state.dgd_name == DGD


def test_result_for_another_generation_is_stale() -> None:
    given(history("Profiling")).when(result(generation=2)).then_rejected("Stale")


@pytest.mark.parametrize(
    "manual",
    [{"auto_apply": False}, {"autoApply": "false"}, {"autoApply": 0}],
    ids=["snake_case", "string-false", "zero"],
)
def test_a_spec_validated_as_manual_is_not_deployed(manual: dict[str, Any]) -> None:
    spec = {**SPEC, **manual}
    refused = decide(initial_state(), apply(spec))
    if isinstance(refused, Rejection) and refused.invalid:
        return  # refusing the spec at admission (as Dynamo's CRD schema does) is a fix too
    decision = given(apply(spec), start()).when(result()).decision
    assert isinstance(decision, list)
    assert [e.type for e in decision] == ["ProfilingCompleted"]


# -------------------------------------------------------------------------------- spec changes


def test_ready_and_auto_apply_turned_on_deploys_without_reprofiling() -> None:
    state = (
        given(history("Ready"))
        .when(apply(AUTO))
        .then(AutoApplyEnabled(spec=AUTO, generation=2), DeploymentStarted(dgd_name=DGD))
    )
    assert state.phase == "Deploying"
    assert state.spec == AUTO
    assert state.generation == 2
    assert state.dgd_name == DGD


def test_ready_and_auto_apply_turned_on_by_removing_the_false_deploys() -> None:
    given(history("Ready")).when(apply(SPEC)).then_types("AutoApplyEnabled", "DeploymentStarted")


def test_ready_and_a_new_runtime_version_goes_back_to_pending() -> None:
    changed = {**MANUAL, "runtimeVersionOverride": "1.4.1"}
    state = (
        given(history("Ready"))
        .when(apply(changed))
        .then(
            SpecUpdated(spec=changed, generation=2),
            Validated(generation=2, hardware=RESOLVED_HW, message=VALID_MESSAGE),
        )
    )
    assert state.phase == "Pending"
    assert (state.generation, state.validated_generation) == (2, 2)
    assert state.dgd_name is None and state.job_name is None and state.profiling_phase is None


def test_ready_and_auto_apply_on_with_a_new_runtime_version_reprofiles() -> None:
    changed = {**AUTO, "runtimeVersionOverride": "1.4.1"}
    state = given(history("Ready")).when(apply(changed)).then_types("SpecUpdated", "Validated")
    assert state.phase == "Pending"


def test_ready_and_any_other_spec_change_is_refused_as_dynamos_webhook_does() -> None:
    changed = {**MANUAL, "model": "Qwen/Qwen3-8B"}
    refused = given(history("Ready")).when(apply(changed)).decision
    assert isinstance(refused, Rejection) and refused.reason == "SpecChangeRejected"
    assert refused.message == (
        "spec updates are forbidden while the resource is in phase 'Ready'; "
        "delete and recreate the resource to change its spec"
    )


def test_pending_and_spec_change_revalidates() -> None:
    state = (
        given(apply())
        .when(apply(OTHER))
        .then(
            SpecUpdated(spec=OTHER, generation=2),
            Validated(generation=2, hardware=RESOLVED_HW, message=VALID_MESSAGE),
        )
    )
    assert state.phase == "Pending"


def test_pending_and_invalid_spec_change_fails() -> None:
    state = given(apply()).when(apply(INVALID)).then_types("SpecUpdated", "ValidationFailed")
    assert state.phase == "Failed"
    assert (state.generation, state.validated_generation) == (2, 1)


@pytest.mark.parametrize(
    "variant", ["Failed", "FailedProfiling", "FailedDeleted", "FailedConflict"]
)
def test_failed_and_new_spec_goes_back_to_pending(variant: str) -> None:
    before = given(history(variant)).state
    state = (
        given(history(variant))
        .when(apply(OTHER))
        .then(
            SpecUpdated(spec=OTHER, generation=before.generation + 1),
            Validated(
                generation=before.generation + 1, hardware=RESOLVED_HW, message=VALID_MESSAGE
            ),
        )
    )
    assert state.phase == "Pending"
    assert state.profiling_phase is None
    assert state.dgd_name is None
    assert state.deployment_created is False
    assert (state.replicas, state.available_replicas, state.deployment_state) == (0, 0, None)


def test_failed_and_still_invalid_spec_stays_failed() -> None:
    still_invalid = {**INVALID, "backend": "auto"}
    state = (
        given(history("Failed"))
        .when(apply(still_invalid))
        .then_types("SpecUpdated", "ValidationFailed")
    )
    assert state.phase == "Failed"


@pytest.mark.parametrize(
    ("variant", "phase"),
    [("Profiling", "Profiling"), ("Deploying", "Deploying"), ("DeployingCreated", "Deploying"),
     ("Deployed", "Deployed")],
)  # fmt: skip
def test_spec_change_while_immutable_is_rejected_naming_the_phase(variant: str, phase: str) -> None:
    rejection = (
        given(history(variant))
        .when(apply(OTHER))
        .then_rejected(
            "SpecChangeRejected",
            f"spec updates are forbidden while the resource is in phase '{phase}'; "
            "delete and recreate the resource to change its spec",
        )
    )
    assert rejection.invalid
    assert [e.field for e in rejection.errors] == ["spec"]


@pytest.mark.parametrize("sub", PROFILING_PHASES)
def test_spec_change_is_rejected_in_every_profiling_sub_phase(sub: str) -> None:
    to_sub = [] if sub == "Initializing" else [progress(sub)]
    given(history("Profiling"), *to_sub).when(apply(OTHER)).then_rejected(
        "SpecChangeRejected", "'Profiling'"
    )


def test_auto_apply_flip_while_deployed_is_rejected() -> None:
    given(history("Deployed")).when(apply(MANUAL)).then_rejected("SpecChangeRejected")


@pytest.mark.parametrize("variant", [v for v in LIVE_VARIANTS if v != "FailedConflict"])
def test_identical_reapply_decides_nothing_in_every_phase(variant: str) -> None:
    given(history(variant)).when(apply(spec_of(variant))).then_nothing()


def test_a_deployment_conflict_is_retried_by_applying_the_same_spec_again() -> None:
    conflict, retry = history("FailedConflict"), apply(spec_of("FailedConflict"))
    retried = given(conflict).when(retry).then(DeploymentStarted(dgd_name=DGD))
    assert retried.phase == "Deploying" and retried.selected_config is not None
    # the foreign DGD still there: Failed again, and again retriable; once it is gone: deployed
    again = given(conflict, retry).when(observe("conflict")).then_types("DeploymentFailed")
    assert again.phase == "Failed"
    given(conflict, retry, observe("conflict")).when(apply(spec_of("FailedConflict"))).then_types(
        "DeploymentStarted"
    )
    deployed = (
        given(conflict, retry)
        .when(observe("successful"))
        .then_types("DeploymentCreated", "DeploymentReady")
    )
    assert deployed.phase == "Deployed"


def test_identical_reapply_with_other_labels_or_hardware_decides_nothing() -> None:
    given(apply()).when(apply(SPEC, labels={"x": "y"}, discovered={"gpuSku": "t4"})).then_nothing()


# --------------------------------------------------------------------------------- idempotency


def test_same_command_id_twice_decides_nothing() -> None:
    create = apply(SPEC, id="req-1")
    g = given(create)
    g.when(create).then_nothing()
    # even a different command body under an applied id is a retry, not a new request
    g.when(apply(OTHER, id="req-1")).then_nothing()


@pytest.mark.parametrize(
    "replayed_index",
    range(4),
    ids=["apply", "start", "result", "observe"],
)
def test_replayed_commands_decide_nothing(replayed_index: int) -> None:
    commands: list[Command] = [apply(), start(), result(), observe("successful")]
    g = given(commands)
    assert g.state.phase == "Deployed"
    g.when(commands[replayed_index]).then_nothing()


def test_a_replayed_delete_after_deletion_decides_nothing() -> None:
    d = delete(id="del-1")
    g = given(apply(), d)
    g.when(d).then_nothing()
    g.when(delete()).then_rejected("Deleted")


def test_rejected_commands_are_not_remembered() -> None:
    stale = start(2, id="start-2")
    g = given(apply())
    g.when(stale).then_rejected("Stale")
    given(apply(), apply(OTHER)).when(stale).then_types("ProfilingStarted")


def test_applied_ids_are_folded_from_history() -> None:
    state, recorded = run([apply(id="a"), start(id="b")])
    assert state.applied == frozenset({"a", "b"})
    assert fold(recorded) == state


def test_a_new_generation_forgets_the_profiling_commands_and_refuses_them_as_stale() -> None:
    started = start(1, id="start-profiling:u:1")
    profiled: list[Command] = [apply(MANUAL), started, progress("SweepingPrefill", id="p1"), fail()]
    assert {"start-profiling:u:1", "p1"} <= given(profiled).state.applied
    revived = given(profiled, apply({**MANUAL, "image": "fixed"}))
    assert revived.state.generation == 2
    assert {"start-profiling:u:1", "p1"}.isdisjoint(revived.state.applied)
    revived.when(started).then_rejected("Stale")
    revived.when(progress("SweepingPrefill", id="p1")).then_rejected("Stale")


def test_only_the_last_observation_is_remembered_so_a_recovery_is_not_ignored() -> None:
    ready = observe("successful", replicas=2, available=2, id="observe:u:qwen-dgd:successful:2:2")
    degraded = observe("failed", replicas=2, available=0, id="observe:u:qwen-dgd:failed:2:0")
    g = given(apply(), start(), result(), ready, degraded)
    assert g.state.phase == "Deploying"
    assert ready.id not in g.state.applied and degraded.id in g.state.applied
    g.when(degraded).then_nothing()  # the same observation again
    g.when(ready).then(DeploymentReady(replicas=2, available_replicas=2))  # recovered


def test_a_redeployed_dgd_observed_exactly_as_before_is_not_ignored() -> None:
    ready = observe("successful", id="observe:u:qwen-dgd:successful:1:1")
    gone = observe("deleted", id="observe:u:qwen-dgd:deleted:0:0")
    g = given(apply(), start(), result(), ready, gone, apply({**SPEC, "image": "again"}),
              start(2), result(2))  # fmt: skip
    assert g.state.phase == "Deploying" and g.state.generation == 2
    g.when(ready).then_types("DeploymentCreated", "DeploymentReady")


def test_the_request_memory_is_a_window_of_the_last_requests() -> None:
    requests: list[Command] = [
        apply({**MANUAL, "image": f"v{i}"}, id=f"req-{i}") for i in range(40)
    ]
    g = given(requests)
    assert len(g.state.applied) <= MAX_REMEMBERED
    kept = {f"req-{i}" for i in range(40 - REQUEST_MEMORY, 40)}
    assert kept <= g.state.applied and "req-0" not in g.state.applied
    g.when(requests[40 - REQUEST_MEMORY]).then_nothing()  # the oldest remembered: a retry
    # a forgotten request is decided by its content: its spec is no longer the current one
    g.when(requests[0]).then_types("SpecUpdated", "Validated")


def test_the_memory_stays_bounded_over_a_long_flapping_deployment() -> None:
    commands: list[Command] = [apply(), start(), *(progress(p) for p in PROFILING_PHASES[1:]),
                               result()]  # fmt: skip
    for i in range(200):
        commands.append(observe("successful", replicas=2, available=2, id=f"ok-{i}"))
        commands.append(observe("failed", replicas=2, available=0, id=f"bad-{i}"))
    state, recorded = run(tuple(commands))
    assert len(recorded) > 400
    assert len(state.applied) <= MAX_REMEMBERED
    profiling = commands[: 2 + len(PROFILING_PHASES)]  # apply, start, six reports, result
    assert state.applied == {c.id for c in profiling} | {"bad-199"}


# ------------------------------------------------------------------------------------ typed state


def test_the_state_holds_the_typed_spec_and_hardware_and_the_selected_config() -> None:
    state = given(apply(), start(), result()).state
    assert state.parsed_spec is not None and state.parsed_spec.model == "Qwen/Qwen3-0.6B"
    assert state.resolved_hardware is not None
    assert state.resolved_hardware.to_dict() == RESOLVED_HW == state.hardware
    assert state.selected_config == SELECTED and state.additional_resources == ()
    retagged = {**MANUAL, "runtimeVersionOverride": "1.4.1"}
    updated = given(apply(MANUAL), start(), result(), apply(retagged)).state
    assert updated.selected_config is None and updated.parsed_spec is not None
    assert updated.parsed_spec.runtime_version_override == "1.4.1"
    assert given(apply(INVALID)).state.parsed_spec is None


def test_a_folded_history_derives_the_same_typed_state_as_the_live_decision() -> None:
    state, recorded = run([apply(), start(), result()])
    decoded = [(type(e).model_validate(e.model_dump(by_alias=True)), cid) for e, cid in recorded]
    assert fold(decoded) == state


# -------------------------------------------------------------------------------- observations


def test_observed_created_records_the_dgd() -> None:
    state = (
        given(history("Deploying")).when(observe("created")).then(DeploymentCreated(dgd_name=DGD))
    )
    assert state.phase == "Deploying"
    assert state.deployment_created is True


def test_observed_created_again_decides_nothing() -> None:
    given(history("Deploying"), observe("created")).when(observe("created")).then_nothing()


def test_observed_pending_records_creation_and_progress() -> None:
    state = (
        given(history("Deploying"))
        .when(observe("pending", replicas=2, available=0))
        .then(
            DeploymentCreated(dgd_name=DGD),
            DeploymentObserved(state="pending", replicas=2, available_replicas=0),
        )
    )
    assert state.phase == "Deploying"
    assert (state.deployment_state, state.replicas, state.available_replicas) == ("pending", 2, 0)


def test_observed_pending_with_new_replica_counts_is_recorded() -> None:
    given(history("DeployingCreated")).when(observe("pending", replicas=2, available=1)).then(
        DeploymentObserved(state="pending", replicas=2, available_replicas=1)
    )


def test_observed_failed_while_deploying_keeps_deploying() -> None:
    state = (
        given(history("DeployingCreated"))
        .when(observe("failed", available=0))
        .then(DeploymentObserved(state="failed", replicas=1, available_replicas=0))
    )
    assert state.phase == "Deploying"


def test_observed_successful_is_deployed() -> None:
    state = (
        given(history("Deploying"))
        .when(observe("successful", replicas=2, available=2))
        .then(DeploymentCreated(dgd_name=DGD), DeploymentReady(replicas=2, available_replicas=2))
    )
    assert state.phase == "Deployed"
    assert state.deployment_state == "successful"


def test_observed_successful_after_creation_is_deployed() -> None:
    state = (
        given(history("DeployingCreated"))
        .when(observe("successful"))
        .then(DeploymentReady(replicas=1, available_replicas=1))
    )
    assert state.phase == "Deployed"


@pytest.mark.parametrize("seen", ["pending", "failed"])
def test_deployed_and_degraded_goes_back_to_deploying(seen: str) -> None:
    state = (
        given(history("Deployed"))
        .when(observe(seen, replicas=1, available=0))
        .then(DeploymentDegraded(state=seen, replicas=1, available_replicas=0))
    )
    assert state.phase == "Deploying"
    assert state.deployment_state == seen


def test_degraded_then_recovered_is_deployed_again() -> None:
    state = (
        given(history("Deployed"), observe("pending", available=0))
        .when(observe("successful"))
        .then(DeploymentReady(replicas=1, available_replicas=1))
    )
    assert state.phase == "Deployed"


def test_deployed_and_new_replica_counts_are_recorded() -> None:
    state = (
        given(history("Deployed"))
        .when(observe("successful", replicas=3, available=3))
        .then(DeploymentObserved(state="successful", replicas=3, available_replicas=3))
    )
    assert state.phase == "Deployed"
    assert (state.replicas, state.available_replicas) == (3, 3)


@pytest.mark.parametrize("variant", ["Deployed", "DeployingCreated"])
def test_dgd_deleted_by_someone_else_fails(variant: str) -> None:
    state = given(history(variant)).when(observe("deleted")).then(DeploymentDeleted(dgd_name=DGD))
    assert state.phase == "Failed"
    assert state.dgd_name is None
    assert state.deployment_created is False


def test_deleted_before_creation_is_not_yet_there() -> None:
    given(history("Deploying")).when(observe("deleted")).then_nothing()


@pytest.mark.parametrize("variant", ["Deploying", "DeployingCreated"])
def test_conflicting_dgd_fails(variant: str) -> None:
    when = given(history(variant)).when(observe("conflict"))
    state = when.then_types("DeploymentFailed")
    assert isinstance(when.decision, list)
    failed = when.decision[0]
    assert isinstance(failed, DeploymentFailed)
    assert failed.reason == "DeploymentConflict"
    assert DGD in failed.message and "overrides.dgd.metadata.name" in failed.message
    assert state.phase == "Failed"


@pytest.mark.parametrize("seen", ["created", "conflict"])
def test_deployed_ignores_created_and_conflict(seen: str) -> None:
    given(history("Deployed")).when(observe(seen)).then_nothing()


@pytest.mark.parametrize(
    ("variant", "seen", "replicas", "available"),
    [
        ("DeployingCreated", "pending", 1, 0),
        ("Deployed", "successful", 1, 1),
    ],
)
def test_repeated_identical_observation_decides_nothing(
    variant: str, seen: str, replicas: int, available: int
) -> None:
    given(history(variant)).when(
        observe(seen, replicas=replicas, available=available)
    ).then_nothing()


@pytest.mark.parametrize("variant", ["Deploying", "DeployingCreated", "Deployed"])
@pytest.mark.parametrize(
    "seen", ["created", "pending", "successful", "failed", "deleted", "conflict"]
)
def test_observation_of_another_dgd_is_rejected(variant: str, seen: str) -> None:
    given(history(variant)).when(observe(seen, dgd="someone-else-dgd")).then_rejected(
        "Stale", "someone-else-dgd"
    )


@pytest.mark.parametrize("variant", ["Pending", "Profiling", "Ready", "Failed", "FailedDeleted"])
def test_observation_outside_deployment_is_rejected(variant: str) -> None:
    given(history(variant)).when(observe("successful")).then_rejected("Stale")


# -------------------------------------------------------------------------------------- delete


@pytest.mark.parametrize("variant", LIVE_VARIANTS)
def test_delete_in_every_live_phase(variant: str) -> None:
    state = given(history(variant)).when(delete()).then(Deleted())
    assert state.phase is None
    assert state.is_terminal
    assert not state.exists


@pytest.mark.parametrize("sub", PROFILING_PHASES)
def test_delete_in_every_profiling_sub_phase(sub: str) -> None:
    to_sub = [] if sub == "Initializing" else [progress(sub)]
    given(history("Profiling"), *to_sub).when(delete()).then(Deleted())


def test_delete_of_an_absent_dgdr_is_not_found() -> None:
    given().when(delete()).then_rejected("NotFound")


@pytest.mark.parametrize(
    "command",
    [apply(SPEC), apply(OTHER), delete(), start(1), progress("Done"), fail(), result(),
     observe("successful"), observe("deleted")],
    ids=lambda c: type(c).__name__,
)  # fmt: skip
def test_any_command_after_deleted_is_rejected(command: Command) -> None:
    given(history("Deployed"), delete()).when(command).then_rejected("Deleted", "apply it again")


@pytest.mark.parametrize(
    "command",
    [start(1), progress("Done"), fail(), result(), observe("successful")],
    ids=lambda c: type(c).__name__,
)
def test_reactor_commands_for_an_absent_dgdr_are_rejected(command: Command) -> None:
    decision = decide(initial_state(), command)
    assert isinstance(decision, Rejection)


def test_a_dgd_is_kept_by_its_owner_taken_over_from_a_predecessor_and_never_from_others() -> None:
    from dgdr.domain.target import OWNER_UID, claim, owned_labels

    def dgd(owner: str, labels: dict[str, str]) -> dict[str, Any]:
        meta = {"name": "x-dgd", "namespace": "team", "labels": labels}
        return {"metadata": {**meta, "annotations": {OWNER_UID: owner}}}

    ours = owned_labels({}, "team", "x")
    assert claim(dgd("uid-2", ours), "uid-2", "team", "x") == "exists"
    assert claim(dgd("uid-1", ours), "uid-2", "team", "x") == "adopted"  # x deleted, re-created
    assert claim(dgd("uid-1", owned_labels({}, "team", "y")), "uid-2", "team", "x") == "conflict"
    assert claim(dgd("uid-1", owned_labels({}, "other", "x")), "uid-2", "team", "x") == "conflict"
    assert claim({"metadata": {"name": "x-dgd", "labels": {}}}, "uid-2", "team", "x") == "conflict"
    foreign = {**ours, "nvidia.com/managed-by": "someone-else"}
    assert claim(dgd("uid-1", foreign), "uid-2", "team", "x") == "conflict"
