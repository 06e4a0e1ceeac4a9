"""The profile's last stages: the planner's curves and ConfigMaps (BuildingCurves), and the DGD for
the selected config (GeneratingDGD), with their reports.

Owns: what the autoscale start and the mocker deploy next to the workers (the ConfigMaps with the
curves of the picked engine sizes, and for autoscale the planner's config and the `Planner`
service), and turning the selection into the `DgdPlan` that `sim._dgd.build_dgd` generates.

Failure semantics: `planner_objects` raises `ProfilingError("SelectingConfig", ...)` for a
planner config that enables no scaling mode (`sim._planner.planner_config`); `build_dgd` raises
`ProfilingError("GeneratingDGD", ...)` for a DGD name that is not a DNS label. Pure otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dgdr.domain.target import owned_labels

from ._dgd import (
    DEFAULT_DGD_API_VERSION,
    DISAGG_SERVICES,
    WORKER_SERVICE,
    DgdPlan,
    WorkerShape,
    runtime_image,
)
from ._planner import configmaps, curves, planner_config, planner_service
from ._resolve import Setup
from ._select import Selection


@dataclass(frozen=True)
class PlannerObjects:
    """What is deployed next to the workers: nothing, or the curves' ConfigMaps (in the order to
    create them) with the `Planner` service (autoscale) or the mocker's data ConfigMap name."""

    configmaps: list[dict[str, Any]] = field(default_factory=list)
    services: dict[str, Any] = field(default_factory=dict)
    mocker_data: str | None = None
    # (prefill_raw_data, decode_raw_data) when curves were built
    curves: tuple[dict[str, Any], dict[str, Any]] | None = None


def planner_objects(setup: Setup, selection: Selection) -> PlannerObjects:
    """The planner's ConfigMaps and service for an autoscale start, the profile data for the
    mocker, nothing otherwise."""
    mocker = setup.spec.mocker_enabled
    if not (selection.autoscaled or mocker):
        return PlannerObjects()
    c, backend = selection.chosen, selection.backend
    config = (
        planner_config(setup.spec, backend, setup.sla, c.prefill_tp, c.tp, setup.total_gpus)
        if selection.autoscaled
        else None
    )
    prefill_data, decode_data = curves(
        setup.model,
        setup.gpu,
        backend,
        c.prefill_tp,
        c.tp,
        setup.vram_mb,
        c.prefill_ep,
        c.ep,
        c.prefill_dp,
        c.dp,
    )
    maps = configmaps(
        config,
        prefill_data,
        decode_data,
        namespace=setup.namespace,
        labels=owned_labels({}, setup.namespace, setup.name),
    )
    services: dict[str, Any] = {}
    if selection.autoscaled:
        image = runtime_image(setup.spec.image, "planner", setup.spec.runtime_version_override)
        services["Planner"] = planner_service(image, maps)
    return PlannerObjects(
        configmaps=maps,
        services=services,
        mocker_data=maps[-1]["metadata"]["name"] if mocker else None,
        curves=(prefill_data, decode_data),
    )


def curves_message(selection: Selection, objects: PlannerObjects) -> str:
    """The curves built for the planner or the mocker, and the ConfigMaps that carry them."""
    assert objects.curves is not None
    prefill_data, decode_data = objects.curves
    c = selection.chosen
    return (
        f"{'planner' if selection.autoscaled else 'mocker'} curves: prefill TTFT over "
        f"{len(prefill_data['prefill_isl'])} ISLs at {_size(c.prefill_tp, c.prefill_dp)}; "
        f"decode ITL at {len(decode_data['z_itl'])} (KV usage, context) points at "
        f"{_size(c.tp, c.dp)}, up to "
        f"{decode_data['max_kv_tokens']} KV tokens; ConfigMaps "
        + ", ".join(m["metadata"]["name"] for m in objects.configmaps)
    )


def _size(tp: int, dp: int) -> str:
    return f"DEP {tp}" if dp > 1 else f"TP {tp}"


def dgd_plan(
    setup: Setup,
    selection: Selection,
    objects: PlannerObjects,
    api_version: str = DEFAULT_DGD_API_VERSION,
) -> DgdPlan:
    """The DGD to generate for the selected config: the picked batch size is each aggregated or
    decode worker's limit on sequences in flight; a prefill worker takes a whole prompt (the
    workload's ISL) in one engine step, as profiled, so its token budget is the ISL."""
    c = selection.chosen
    disagg = c.mode == "disagg"
    return DgdPlan(
        spec=setup.spec,
        backend=selection.backend,
        name=setup.name,
        namespace=setup.namespace,
        workers=WorkerShape(
            tp=c.tp, replicas=c.replicas, ep=c.ep, pp=c.pp, max_batch=c.batch, dp=c.dp
        ),
        prefill=(
            WorkerShape(
                tp=c.prefill_tp,
                replicas=c.prefill_workers,
                ep=c.prefill_ep,
                max_num_tokens=setup.workload.isl,
                dp=c.prefill_dp,
            )
            if disagg
            else None
        ),
        gpus_per_node=setup.gpus_per_node,
        extra_services=objects.services,
        mocker_data=objects.mocker_data,
        api_version=api_version,
    )


def generating_message(
    setup: Setup, selection: Selection, objects: PlannerObjects, dgd: dict[str, Any]
) -> str:
    """The DGD generated: its services with their sizes, and the runtime image."""
    c, backend = selection.chosen, selection.backend
    if objects.mocker_data is not None:
        workers = f"mocker prefill ({c.prefill_workers}) + decode ({c.replicas}), no GPUs"
    elif c.mode != "disagg":
        workers = f"{WORKER_SERVICE[backend]} ({c.replicas} x {c.tp * c.pp} GPU)"
    else:
        p_name, d_name = DISAGG_SERVICES[backend]
        workers = (
            f"{p_name} ({c.prefill_workers} x {c.prefill_tp} GPU) + "
            f"{d_name} ({c.replicas} x {c.tp} GPU)"
        )
    if objects.services:
        workers += " + Planner (autoscale: the planner scales the workers)"
    return f"generated DGD {dgd['metadata']['name']}: Frontend + {workers}, image " + runtime_image(
        setup.spec.image,
        "planner" if objects.mocker_data is not None else backend,
        setup.spec.runtime_version_override,
    )
