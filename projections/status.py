"""The status projection: a pure fold of stored events into the DGDR object as `kubectl get -o json`
would show it, with Dynamo's v1beta1 status shape (design §3.4).

`project(obj, envelope, seq)` folds one event into the previous object (None before `Created`) and
returns the new object, or None once the DGDR is deleted. It reads only the event and the object, so
folding the same history always gives the same object, byte for byte through `encode`. Condition
`lastTransitionTime` changes only when that condition's status changes. `metadata.resourceVersion` is
the stream sequence of the last commit folded in.
"""

from __future__ import annotations

import json
from typing import Any

from dgdr.domain.spec import API_VERSION, KIND
from events.envelope import Envelope

CONDITION_ORDER = ("Succeeded", "Validation", "Profiling", "SpecGenerated", "DeploymentReady")

SUCCEEDED: dict[str, tuple[str, str, str]] = {
    "Pending": ("False", "Pending", "DGDR is pending"),
    "Profiling": ("False", "Profiling", "Profiling is in progress"),
    "Ready": ("True", "SpecGenerated", "Profiling complete, spec available"),
    "Deploying": ("False", "Deploying", "Deployment is in progress"),
    "Deployed": ("True", "Deployed", "Deployment is healthy"),
    "Failed": ("False", "Failed", "DGDR has failed"),
}


def encode(obj: dict[str, Any]) -> bytes:
    """The canonical bytes of an object (sorted keys, compact): equal objects, equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def set_condition(
    status: dict[str, Any],
    ctype: str,
    cstatus: str,
    reason: str,
    message: str,
    *,
    at: str,
    generation: int | None,
) -> None:
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    old = next((c for c in conditions if c["type"] == ctype), None)
    new: dict[str, Any] = {
        "type": ctype,
        "status": cstatus,
        "reason": reason,
        "message": message,
        "lastTransitionTime": old["lastTransitionTime"] if old and old["status"] == cstatus else at,
    }
    if generation is not None:
        new["observedGeneration"] = generation
    rest = [c for c in conditions if c["type"] != ctype] + [new]
    status["conditions"] = sorted(rest, key=lambda c: CONDITION_ORDER.index(c["type"]))


def _drop_conditions(status: dict[str, Any], *types: str) -> None:
    status["conditions"] = [c for c in status.get("conditions", []) if c["type"] not in types]


def _phase(
    status: dict[str, Any],
    phase: str,
    at: str,
    gen: int,
    reason: str | None = None,
    message: str | None = None,
) -> None:
    status["phase"] = phase
    cstatus, default_reason, default_message = SUCCEEDED[phase]
    set_condition(
        status,
        "Succeeded",
        cstatus,
        reason or default_reason,
        message or default_message,
        at=at,
        generation=gen,
    )


def _copy_for_fold(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough for `_fold`, which only replaces values below metadata and status
    (conditions are rebuilt by `set_condition`, never mutated), so the input stays untouched."""
    status = dict(obj["status"])
    if "conditions" in status:
        status["conditions"] = list(status["conditions"])
    return {**obj, "metadata": dict(obj["metadata"]), "status": status}


def project(obj: dict[str, Any] | None, envelope: Envelope, seq: int) -> dict[str, Any] | None:
    p, at, t = envelope.payload, envelope.time, envelope.type
    if t == "Created":
        agg = envelope.aggregate
        meta: dict[str, Any] = {
            "name": agg.name,
            "namespace": agg.namespace,
            "uid": agg.uid,
            "generation": p["generation"],
            "creationTimestamp": at,
        }
        if p.get("labels"):
            meta["labels"] = p["labels"]
        if p.get("annotations"):
            meta["annotations"] = p["annotations"]
        obj = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": meta,
            "spec": p["spec"],
            "status": {},
        }
        _phase(obj["status"], "Pending", at, p["generation"])
    elif obj is None or t == "Deleted":
        return None
    else:
        obj = _copy_for_fold(obj)
        _fold(obj, t, p, at)
    obj["metadata"]["resourceVersion"] = str(seq)
    return obj


def _fold(obj: dict[str, Any], t: str, p: dict[str, Any], at: str) -> None:
    st: dict[str, Any] = obj["status"]
    gen: int = obj["metadata"]["generation"]
    dgd = st.get("dgdName", "")
    if t in ("SpecUpdated", "AutoApplyEnabled"):
        obj["spec"], obj["metadata"]["generation"] = p["spec"], p["generation"]
        gen = p["generation"]
        if t == "AutoApplyEnabled":
            st["observedGeneration"] = gen
        else:
            for key in (
                "profilingPhase",
                "profilingJobName",
                "dgdName",
                "profilingResults",
                "deploymentInfo",
            ):
                st.pop(key, None)
            _drop_conditions(st, "Profiling", "SpecGenerated", "DeploymentReady")
            _phase(st, "Pending", at, gen)
    elif t == "Validated":
        st["observedGeneration"] = p["generation"]
        set_condition(st, "Validation", "True", "Validated", p["message"], at=at, generation=gen)
        set_condition(
            st,
            "Profiling",
            "False",
            "Pending",
            "Waiting for a profiling worker to take the job",
            at=at,
            generation=gen,
        )
    elif t == "ValidationFailed":
        st["observedGeneration"] = p["generation"]
        msg = "; ".join(f"{e['field']}: {e['message']}" for e in p["errors"])
        set_condition(st, "Validation", "False", "ValidationFailed", msg, at=at, generation=gen)
        _phase(st, "Failed", at, gen, "ValidationFailed", msg)
    elif t == "ProfilingStarted":
        st["profilingJobName"], st["profilingPhase"] = p["jobName"], "Initializing"
        _phase(st, "Profiling", at, gen)
        set_condition(
            st,
            "Profiling",
            "False",
            "Initializing",
            f"Profiling job {p['jobName']} queued",
            at=at,
            generation=gen,
        )
    elif t == "ProfilingProgressed":
        sub = p["subPhase"]
        st["profilingPhase"] = sub
        reason = "Completed" if sub == "Done" else sub
        set_condition(st, "Profiling", "False", reason, p["message"], at=at, generation=gen)
        _phase(st, "Profiling", at, gen, reason, p["message"])
    elif t == "ProfilingFailed":
        sub = p.get("subPhase")
        reason = f"{sub}Failed" if sub else "ProfilingFailed"
        if sub:
            st["profilingPhase"] = sub
        set_condition(st, "Profiling", "False", reason, p["message"], at=at, generation=gen)
        _phase(st, "Failed", at, gen, reason, p["message"])
    elif t == "ProfilingCompleted":
        st.pop("profilingPhase", None)
        st["dgdName"] = p["dgdName"]
        st["profilingResults"] = {"selectedConfig": p["selectedConfig"], "pareto": p["pareto"]}
        set_condition(
            st, "Profiling", "True", "ProfilingCompleted", p["message"], at=at, generation=gen
        )
        set_condition(
            st,
            "SpecGenerated",
            "True",
            "SpecGenerated",
            f"DynamoGraphDeployment {p['dgdName']} spec generated",
            at=at,
            generation=gen,
        )
        _phase(st, "Ready", at, gen)
    elif t == "DeploymentStarted":
        st["dgdName"] = p["dgdName"]
        _phase(st, "Deploying", at, gen)
        set_condition(
            st,
            "DeploymentReady",
            "False",
            "DeploymentPending",
            f"Creating DynamoGraphDeployment {p['dgdName']}",
            at=at,
            generation=gen,
        )
    elif t == "DeploymentCreated":
        set_condition(
            st,
            "DeploymentReady",
            "False",
            "DeploymentCreated",
            f"DGD {p['dgdName']} created, waiting for Ready",
            at=at,
            generation=gen,
        )
    elif t in ("DeploymentObserved", "DeploymentReady", "DeploymentDegraded"):
        st["deploymentInfo"] = {
            "replicas": p["replicas"],
            "availableReplicas": p["availableReplicas"],
        }
        if t == "DeploymentReady":
            set_condition(
                st,
                "DeploymentReady",
                "True",
                "DeploymentReady",
                f"DynamoGraphDeployment {dgd} is ready",
                at=at,
                generation=gen,
            )
            _phase(st, "Deployed", at, gen)
        elif t == "DeploymentDegraded":
            set_condition(
                st,
                "DeploymentReady",
                "False",
                "DeploymentDegraded",
                f"Deployment degraded to {p['state']}",
                at=at,
                generation=gen,
            )
            _phase(st, "Deploying", at, gen)
        elif st.get("phase") == "Deploying":
            set_condition(
                st,
                "DeploymentReady",
                "False",
                "DeploymentInProgress",
                f"DGD {dgd} is in {p['state']} state",
                at=at,
                generation=gen,
            )
    elif t == "DeploymentDeleted":
        st.pop("dgdName", None)
        st.pop("deploymentInfo", None)
        msg = "Deployment was deleted by user. Create a new DGDR to redeploy."
        set_condition(
            st, "DeploymentReady", "False", "DeploymentDeleted", msg, at=at, generation=gen
        )
        _phase(st, "Failed", at, gen, "DeploymentDeleted", msg)
    elif t == "DeploymentFailed":
        set_condition(
            st, "DeploymentReady", "False", p["reason"], p["message"], at=at, generation=gen
        )
        _phase(st, "Failed", at, gen, p["reason"], p["message"])
    else:
        raise ValueError(f"the status projection does not know event type {t}")


def project_all(
    commits: list[tuple[int, list[Envelope]]], obj: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    for seq, envelopes in commits:
        for env in envelopes:
            obj = project(obj, env, seq)
    return obj
