"""DynamoGraphDeployment conversion between nvidia.com/v1alpha1 (`spec.services`, a map) and
nvidia.com/v1beta1 (the storage version, `spec.components`, a list keyed by name), for the
conversion webhook (`POST /convert`), as Dynamo's operator converts DGDs.

Owns `convert(obj, desired_api_version)`. The spec mapping is `sim.convert_dgd` (imported inside
the function: importing `sim` is slow, and the webhook server starts without it); the status
mapping is Dynamo's (`ConvertFrom/ToDynamoGraphDeploymentStatus`): `status.services` <->
`status.components` (a service's `componentName` is the last of its `componentNames`, or makes
them when they are absent), `rollingUpdate.updatedServices` <-> `updatedComponents`, every other
status field as it is.

Lossless round trips, as Dynamo keeps them: the annotations `nvidia.com/dgd-spec` and
`nvidia.com/dgd-status` (Dynamo's names) hold, as JSON, the spec and the status of the version the
object came from whenever mapping it back would not give it exactly (a field with no place in the
target version, e.g. v1alpha1's `spec.pvcs`, a service's `dynamoNamespace`, v1beta1's component
order or `frontendSidecar`; or a value the mapping normalises). Converting back restores the saved
spec exactly when mapping it gives the object's current spec (nothing changed in between); when the
spec was changed in the other version, the mapped spec wins, each component (service) whose
mapping is unchanged is restored from the saved one (the saved component order is kept), and the
top-level fields the other version has no place for are filled in from the saved spec. The saved
status is restored only when mapping it gives the current status. The annotations are scrubbed
from every converted object before the new ones are set; a saved value that is not a JSON object
is ignored (best effort, as Dynamo parses them).

Failure semantics: pure, never does I/O; an object that is not a DGD of either version, or a
desired version that is neither, raises `dgdr.domain.errors.RequestRejected` (reason `invalid`;
the webhook answers the ConversionReview with `result.status: Failure`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from dgdr.domain.errors import RequestRejected

KIND = "DynamoGraphDeployment"
V1ALPHA1 = "nvidia.com/v1alpha1"
V1BETA1 = "nvidia.com/v1beta1"
ANN_SPEC = "nvidia.com/dgd-spec"
ANN_STATUS = "nvidia.com/dgd-status"
ENTRIES = {V1ALPHA1: "services", V1BETA1: "components"}
_UPDATED = {V1ALPHA1: "updatedServices", V1BETA1: "updatedComponents"}

Obj = dict[str, Any]


def convert(obj: Any, desired: str) -> Obj:
    """`obj` (a DGD of either version) in `desired`, with what `desired` cannot hold saved."""
    if not isinstance(obj, dict) or obj.get("kind") != KIND:
        raise RequestRejected("invalid", f"expected a {KIND}")
    source = obj.get("apiVersion")
    if source not in ENTRIES or desired not in ENTRIES:
        raise RequestRejected("invalid", f"cannot convert a {KIND} from {source!r} to {desired!r}")
    out = copy.deepcopy(obj)
    if source == desired:
        return out
    out["apiVersion"] = desired
    metadata = out.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    saved_spec = _saved(annotations.pop(ANN_SPEC, None))
    saved_status = _saved(annotations.pop(ANN_STATUS, None))
    save: dict[str, str] = {}
    if isinstance(obj.get("spec"), dict):
        spec = obj["spec"]
        out["spec"] = _restore_spec(map_spec(spec, source, desired), saved_spec, spec, source)
        if map_spec(out["spec"], desired, source) != spec:
            save[ANN_SPEC] = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    if isinstance(obj.get("status"), dict):
        status = obj["status"]
        out["status"] = map_status(status, source, desired)
        if saved_status is not None and map_status(saved_status, desired, source) == status:
            out["status"] = saved_status
        if map_status(out["status"], desired, source) != status:
            save[ANN_STATUS] = json.dumps(status, sort_keys=True, separators=(",", ":"))
    annotations.update(save)
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return out


def _saved(raw: Any) -> Obj | None:
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --------------------------------------------------------------------------- spec


def map_spec(spec: Obj, source: str, desired: str) -> Obj:
    """What `sim.convert_dgd` maps `spec` (in `source`) to in `desired` (nothing restored)."""
    from sim import convert_dgd  # here: importing sim is slow, and /convert is rarely called

    if source == desired:
        return copy.deepcopy(spec)
    converted, _notes = convert_dgd({"apiVersion": source, "spec": spec}, desired)
    mapped: Obj = converted["spec"]
    return mapped


def _entries(spec: Any, version: str) -> dict[str, Any]:
    """The components (v1beta1) or services (v1alpha1) of a spec, by name, in order."""
    if not isinstance(spec, dict):
        return {}
    found = spec.get(ENTRIES[version])
    if isinstance(found, dict):
        return {k: v for k, v in found.items() if isinstance(v, dict)}
    if isinstance(found, list):
        return {
            c["name"]: c for c in found if isinstance(c, dict) and isinstance(c.get("name"), str)
        }
    return {}


def _map_entry(name: str, entry: Obj, source: str, desired: str) -> Any:
    """One service (component) mapped alone to the other version."""
    one: Obj = {"services": {name: entry}} if source == V1ALPHA1 else {"components": [entry]}
    return _entries(map_spec(one, source, desired), desired).get(name)


def _restore_spec(mapped: Obj, saved: Obj | None, current: Obj, source: str) -> Obj:
    """`mapped` (in the saved spec's version) with what the saved spec held and the mapping of
    `current` (in `source`) lost, as far as `current` still agrees with it."""
    if saved is None:
        return mapped
    desired = V1BETA1 if source == V1ALPHA1 else V1ALPHA1
    if map_spec(saved, desired, source) == current:
        return copy.deepcopy(saved)
    out = copy.deepcopy(mapped)
    for key, value in saved.items():
        if (
            key not in out
            and key != ENTRIES[desired]
            and not map_spec({key: value}, desired, source)
        ):
            out[key] = copy.deepcopy(value)  # no place in `source`: kept from the saved spec
    now, before = _entries(current, source), _entries(saved, desired)
    entries = _entries(out, desired)
    for name, entry in before.items():
        if (
            name in entries
            and name in now
            and _map_entry(name, entry, desired, source) == now[name]
        ):
            entries[name] = copy.deepcopy(entry)
    if isinstance(out.get(ENTRIES[desired]), dict):
        out[ENTRIES[desired]] = entries
    elif isinstance(out.get(ENTRIES[desired]), list):
        order = [n for n in before if n in entries] + [n for n in entries if n not in before]
        out[ENTRIES[desired]] = [entries[n] for n in order]
    return out


# --------------------------------------------------------------------------- status


def map_status(status: Obj, source: str, desired: str) -> Obj:
    """Dynamo's status mapping of `status` (in `source`) to `desired`."""
    out = copy.deepcopy(status)
    if source == desired:
        return out
    entries = out.pop(ENTRIES[source], None)
    if isinstance(entries, dict):
        out[ENTRIES[desired]] = {
            name: _replica_status(entry, desired) if isinstance(entry, dict) else entry
            for name, entry in entries.items()
        }
    rolling = out.get("rollingUpdate")
    if isinstance(rolling, dict) and _UPDATED[source] in rolling:
        rolling[_UPDATED[desired]] = rolling.pop(_UPDATED[source])
    return out


def _replica_status(entry: Obj, desired: str) -> Obj:
    out = dict(entry)
    if desired == V1BETA1:
        name = out.pop("componentName", None)
        if not out.get("componentNames") and isinstance(name, str) and name:
            out["componentNames"] = [name]
    elif out.get("componentNames"):
        out["componentName"] = out["componentNames"][-1]
    return out
