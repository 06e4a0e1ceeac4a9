"""The generated DGD against Dynamo's real DGD CRD (v1beta1, and rendered as v1alpha1 the v1alpha1
schema) with nothing pruned, and its worker flags against Dynamo's current profiler templates.
The upstream files live next to the checkout (`../shared/reference/upstream`); without them those
tests skip. `test_flags_per_backend` states our own expectations and always runs."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from dgdr.domain.spec import DGDRSpec
from k8s.emulator import schema as crd_schema
from sim import convert_dgd
from sim._dgd import DgdPlan, WorkerShape, build_dgd
from sim._dgd_model import main_container

UPSTREAM = Path(__file__).resolve().parents[3] / "shared" / "reference" / "upstream"
CRD = UPSTREAM / "nvidia.com_dynamographdeployments.yaml"
TEMPLATES = UPSTREAM / "templates"
ALPHA, BETA = "nvidia.com/v1alpha1", "nvidia.com/v1beta1"
PLANNER = {
    "componentType": "planner",
    "replicas": 1,
    "extraPodSpec": {
        "mainContainer": {
            "image": "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.4.0",
            "command": ["python3", "-m", "dynamo.planner"],
            "args": ["--config", "/workspace/planner-config/planner_config.json"],
            "volumeMounts": [{"name": "planner-config", "mountPath": "/workspace/planner-config"}],
        },
        "volumes": [{"name": "planner-config", "configMap": {"name": "planner-config-x"}}],
    },
}


def _schemas() -> dict[str, dict[str, Any]]:
    if not CRD.is_file():
        pytest.skip(f"Dynamo's DGD CRD is not here ({CRD}): upstream schema not checked")
    return _load_schemas()


@functools.cache
def _load_schemas() -> dict[str, dict[str, Any]]:
    """The CRD's schema per version, read once (the file has 20k lines)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(CRD.read_text(), Loader=loader)
    return {
        f"nvidia.com/{v['name']}": v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"]
    }


def _spec(backend: str, **fields: Any) -> DGDRSpec:
    return DGDRSpec.model_validate({"model": "Qwen/Qwen3-8B", "backend": backend, **fields})


def _plan(spec: DGDRSpec, backend: str, disagg: bool, **options: Any) -> DgdPlan:
    return DgdPlan(
        spec=spec,
        backend=backend,
        name="req",
        namespace="ns",
        workers=WorkerShape(options.pop("tp", 2), 2, max_batch=64),
        prefill=WorkerShape(1, 3, max_num_tokens=4000) if disagg else None,
        gpus_per_node=options.pop("gpus_per_node", 8),
        **options,
    )


def _override(version: str, worker: str) -> dict[str, Any]:
    if version == ALPHA:
        body: dict[str, Any] = {
            "services": {
                worker: {
                    "envs": [{"name": "A", "value": "1"}],
                    "extraPodSpec": {"mainContainer": {"args": ["--enforce-eager"]}},
                }
            }
        }
    else:
        container = {"name": "main", "env": [{"name": "A", "value": "1"}]}
        body = {
            "components": [{"name": worker, "podTemplate": {"spec": {"containers": [container]}}}]
        }
    return {"apiVersion": version, "kind": "DynamoGraphDeployment", "spec": body}


def _cases() -> list[tuple[str, DgdPlan]]:
    cases: list[tuple[str, DgdPlan]] = []
    for backend in ("vllm", "sglang", "trtllm"):
        for disagg in (False, True):
            cases.append(
                (
                    f"{backend}-{'disagg' if disagg else 'agg'}",
                    _plan(_spec(backend), backend, disagg),
                )
            )
    vllm = _spec("vllm")
    cases += [
        ("planner", _plan(vllm, "vllm", True, extra_services={"Planner": PLANNER})),
        ("mocker", _plan(vllm, "vllm", True, mocker_data="planner-profile-data-x")),
        ("multinode", _plan(vllm, "vllm", False, tp=16)),
        ("multinode-sglang", _plan(_spec("sglang"), "sglang", True, tp=16, gpus_per_node=4)),
        (
            "model-cache",
            _plan(
                _spec("vllm", modelCache={"pvcName": "cache", "pvcModelPath": "m"}), "vllm", True
            ),
        ),
        ("hf-cache", _plan(_spec("trtllm", modelCache={"pvcName": "cache"}), "trtllm", False)),
        (
            "runtime-version",
            _plan(_spec("sglang", runtimeVersionOverride="1.3.0"), "sglang", False),
        ),
    ]
    for version in (ALPHA, BETA):
        for backend, worker in (("vllm", "VllmDecodeWorker"), ("trtllm", "decode")):
            spec = _spec(backend, overrides={"dgd": _override(version, worker)})
            cases.append(
                (f"override-{version.split('/')[1]}-{backend}", _plan(spec, backend, True))
            )
    tolerate = {"template": {"spec": {"tolerations": [{"key": "gpu", "operator": "Exists"}]}}}
    cases.append(
        ("tolerations", _plan(_spec("vllm", overrides={"profilingJob": tolerate}), "vllm", False))
    )
    return cases


CASES = _cases()


def _check(schema: dict[str, Any], dgd: dict[str, Any]) -> list[str]:
    obj = copy.deepcopy(dgd)
    pruned = crd_schema.prune(schema, obj)
    errors = [f"{e.field}: {e.detail}" for e in crd_schema.validate(schema, obj)]
    return [f"pruned {p}" for p in pruned] + errors


@pytest.mark.parametrize(("case", "plan"), CASES, ids=[c for c, _ in CASES])
def test_generated_dgd_validates_against_dynamos_crd(case: str, plan: DgdPlan) -> None:
    schemas = _schemas()
    beta, notes = build_dgd(plan)
    assert beta["apiVersion"] == BETA and "components" in beta["spec"]
    assert _check(schemas[BETA], beta) == [], case
    alpha, alpha_notes = build_dgd(DgdPlan(**{**plan.__dict__, "api_version": ALPHA}))
    assert alpha["apiVersion"] == ALPHA and "services" in alpha["spec"]
    assert _check(schemas[ALPHA], alpha) == [], case
    assert alpha_notes == notes  # nothing lost on the way to v1alpha1
    back, lost = convert_dgd(alpha, BETA)
    assert lost == [] and back == beta


def test_the_cases_cover_what_the_brief_names() -> None:
    """The schema cases include every backend in both modes, planner, mocker, multinode, model
    cache and overrides in both versions (so a case silently dropped from the list is caught)."""
    names = {c for c, _ in CASES}
    assert {f"{b}-{m}" for b in ("vllm", "sglang", "trtllm") for m in ("agg", "disagg")} <= names
    assert {"planner", "mocker", "multinode", "model-cache"} <= names
    assert {n for n in names if n.startswith("override-")} >= {
        "override-v1alpha1-vllm",
        "override-v1beta1-vllm",
    }


def _template(name: str) -> dict[str, Any]:
    path = TEMPLATES / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(f"Dynamo's profiler template {path} is not here")
    return dict(yaml.safe_load(path.read_text()))


def _flags(args: list[str]) -> set[str]:
    return {a for a in args if a.startswith("--")}


@pytest.mark.parametrize(
    "template",
    [
        "vllm-agg",
        "vllm-disagg",
        "sglang-agg",
        "sglang-disagg",
        "trtllm-agg",
        "trtllm-disagg",
        "mocker-disagg",
    ],
)
def test_components_and_flags_match_dynamos_templates(template: str) -> None:
    """Every component of the template is generated with its name, type, command, working
    directory, envFrom and resource kinds, and with every flag the template gives it (and its
    value, where it does not depend on the model or the picked size)."""
    upstream = _template(template)
    backend, mode = template.split("-")
    mocker = backend == "mocker"
    plan = _plan(
        _spec("vllm" if mocker else backend),
        "vllm" if mocker else backend,
        mode == "disagg",
        **({"mocker_data": "data"} if mocker else {}),
    )
    ours = {c["name"]: c for c in build_dgd(plan)[0]["spec"]["components"]}
    sized = {"--model", "--model-path", "--served-model-name", "--model-name", "--tp"}
    for theirs in upstream["spec"]["components"]:
        mine = ours.get(theirs["name"])
        assert mine is not None, f"{template}: no component {theirs['name']}"
        assert mine["type"] == theirs["type"]
        t_main, m_main = main_container(theirs), main_container(mine)
        assert t_main is not None and m_main is not None
        assert m_main["command"] == t_main["command"]
        assert m_main.get("workingDir") == t_main.get("workingDir")
        assert m_main.get("envFrom") == t_main.get("envFrom")
        t_res, m_res = t_main.get("resources", {}), m_main.get("resources", {})
        for side in ("limits", "requests"):
            assert set(m_res.get(side, {})) == set(t_res.get(side, {})), (theirs["name"], side)
        t_args, m_args = t_main["args"], m_main["args"]
        missing = _flags(t_args) - _flags(m_args)
        assert not missing, f"{template} {theirs['name']}: missing {sorted(missing)}"
        for i, flag in enumerate(t_args):
            if flag.startswith("--") and flag not in sized and i + 1 < len(t_args):
                value = t_args[i + 1]
                if not value.startswith("--"):
                    assert m_args[m_args.index(flag) + 1] == value, (theirs["name"], flag)
        assert "--is-prefill-worker" not in m_args


TEMPLATE_NAMES = sorted(p.stem for p in TEMPLATES.glob("*.yaml")) if TEMPLATES.is_dir() else []


@pytest.mark.parametrize("template", TEMPLATE_NAMES or ["(absent)"])
def test_convert_dgd_round_trips_dynamos_templates_through_v1alpha1(template: str) -> None:
    """Dynamo's own v1beta1 templates convert to a v1alpha1 DGD its v1alpha1 schema accepts, with
    nothing left out, and back to themselves."""
    schemas = _schemas()
    upstream = _template(template)
    assert _check(schemas[BETA], upstream) == []
    alpha, notes = convert_dgd(upstream, ALPHA)
    assert notes == [] and _check(schemas[ALPHA], alpha) == []
    back, notes = convert_dgd(alpha, BETA)
    assert notes == []
    assert back == upstream
