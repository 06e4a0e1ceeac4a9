"""The resource types the emulator serves: built-in kinds and kinds defined by CRDs.

Owns `ResourceType` (group, version, plural, kind, scope, short names, status subresource, schema,
printer columns, storage version, conversion webhook, deprecation warning) and `Registry`, the set of served types looked up by group/version/plural. The
built-in kinds are declared here; custom kinds come from CustomResourceDefinition objects (the
manifests loaded at start, or CRDs created at runtime through the API). `emulator_crds()` are the
CRDs the emulator installs by default: k8s/manifests, the DGD CRD with `conversion: {strategy:
None}` (its manifest names dgdr's conversion webhook, which only `dgdr up` registers).

Failure semantics: `Registry.lookup` returns None for an unknown type (the server answers 404);
`resource_types_from_crd` raises `ApiError` 422 for a CRD that lacks the fields it needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from k8s.emulator import errors

MANIFESTS = Path(__file__).parents[1] / "manifests"
DEFAULT_CRD_FILES = ("dgdr-crd.yaml", "dgd-crd.yaml")
# CRDs the emulator alone installs with `conversion: {strategy: None}` although their manifest names
# a conversion webhook (dgdr's, behind a Service the emulator cannot reach): the DGD, whose
# simulated controller serves either version's shape (v1alpha1 `services`, v1beta1 `components`)
# and whose v1alpha1 objects in-process callers write directly. dgdr registers the webhook over it
# (k8s.webhook.server.install). The DGDR CRD keeps its Webhook strategy: without dgdr's webhook
# server its v1alpha1 reads fail (500), its v1beta1 ones work.
STANDALONE_WITHOUT_CONVERSION = ("dynamographdeployments.nvidia.com",)

RBAC = "rbac.authorization.k8s.io"
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    custom: bool = False  # defined by a CRD (JSON/merge/apply patches only, schema validation)
    tracks_generation: bool = False  # metadata.generation bumped when spec changes
    schema: dict[str, Any] | None = None  # openAPIV3Schema (custom kinds)
    printer_columns: tuple[dict[str, Any], ...] = ()  # additionalPrinterColumns (custom kinds)
    crd_name: str = ""
    storage: bool = True  # this version is the one objects are stored in
    # The CRD's `conversion.webhook` (clientConfig, conversionReviewVersions) when its strategy is
    # Webhook: objects are converted through it between this version and the storage version.
    conversion_webhook: dict[str, Any] | None = None
    deprecation_warning: str | None = None  # served deprecated: a Warning on every request

    @property
    def converts_by_webhook(self) -> bool:
        """Objects of this version are the storage version's, converted by a webhook."""
        return self.conversion_webhook is not None and not self.storage

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored per (group, plural): every served version sees the same objects."""
        return (self.group, self.plural)

    @property
    def gvk(self) -> dict[str, str]:
        return {"group": self.group, "version": self.version, "kind": self.kind}


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: Iterable[str] = (),
    categories: Iterable[str] = (),
    status: bool = False,
    generation: bool = False,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=tuple(short),
        categories=tuple(categories),
        status_subresource=status,
        tracks_generation=generation,
    )


BUILTINS: tuple[ResourceType, ...] = (
    _builtin("", "v1", "namespaces", "Namespace", namespaced=False, short=["ns"], status=True),
    _builtin("", "v1", "nodes", "Node", namespaced=False, short=["no"], status=True),
    _builtin("", "v1", "configmaps", "ConfigMap", short=["cm"]),
    _builtin("", "v1", "events", "Event", short=["ev"]),
    _builtin("", "v1", "pods", "Pod", short=["po"], categories=["all"], status=True),
    _builtin("", "v1", "secrets", "Secret"),
    _builtin("", "v1", "services", "Service", short=["svc"], categories=["all"], status=True),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"]),
    _builtin("batch", "v1", "jobs", "Job", categories=["all"], status=True, generation=True),
    # Stored as given, for `kubectl apply -k k8s/manifests` (no controller runs their pods).
    _builtin(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short=["deploy"],
        categories=["all"],
        status=True,
        generation=True,
    ),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    _builtin("events.k8s.io", "v1", "events", "Event", short=["ev"]),
    _builtin(RBAC, "v1", "roles", "Role"),
    _builtin(RBAC, "v1", "rolebindings", "RoleBinding"),
    _builtin(RBAC, "v1", "clusterroles", "ClusterRole", namespaced=False),
    _builtin(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
        categories=["api-extensions"],
        generation=True,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
        categories=["api-extensions"],
        generation=True,
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=["crd", "crds"],
        categories=["api-extensions"],
        status=True,
        generation=True,
    ),
)

CRD_TYPE = BUILTINS[-1]
NAMESPACE_TYPE = BUILTINS[0]
MUTATING_TYPE = next(rt for rt in BUILTINS if rt.kind == "MutatingWebhookConfiguration")
VALIDATING_TYPE = next(rt for rt in BUILTINS if rt.kind == "ValidatingWebhookConfiguration")
RBAC_TYPES = tuple(rt for rt in BUILTINS if rt.group == RBAC)


def resource_types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CustomResourceDefinition object."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = str(spec.get("group") or "")
    plural = str(names.get("plural") or "")
    kind = str(names.get("kind") or "")
    name = (crd.get("metadata") or {}).get("name", "")
    problems: list[errors.FieldError] = []
    if not group:
        problems.append(errors.required("spec.group"))
    if not plural:
        problems.append(errors.required("spec.names.plural"))
    if not kind:
        problems.append(errors.required("spec.names.kind"))
    if not spec.get("versions"):
        problems.append(errors.required("spec.versions"))
    if group and plural and name and name != f"{plural}.{group}":
        problems.append(
            errors.invalid_value("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
        )
    if problems:
        raise errors.invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, problems)
    out = []
    conversion = spec.get("conversion") or {}
    webhook = conversion.get("webhook") if conversion.get("strategy") == "Webhook" else None
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        warning = None
        if version.get("deprecated"):
            warning = version.get("deprecationWarning") or (
                f"{group}/{version['name']} {kind} is deprecated"
            )
        out.append(
            ResourceType(
                group=group,
                version=version["name"],
                plural=plural,
                singular=names.get("singular") or kind.lower(),
                kind=kind,
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in (version.get("subresources") or {}),
                custom=True,
                tracks_generation=True,
                schema=schema,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                crd_name=name,
                storage=bool(version.get("storage", len(spec["versions"]) == 1)),
                conversion_webhook=webhook if isinstance(webhook, dict) else None,
                deprecation_warning=warning,
            )
        )
    return out


def load_crd_manifests(paths: Iterable[Path] | None = None) -> list[dict[str, Any]]:
    """Read CRD objects from YAML files (default: the two manifests next to this package)."""
    files = list(paths) if paths is not None else [MANIFESTS / f for f in DEFAULT_CRD_FILES]
    crds = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    return crds


def emulator_crds() -> list[dict[str, Any]]:
    """The CRDs the emulator installs by default: the manifests next to this package, the ones in
    STANDALONE_WITHOUT_CONVERSION with `conversion: {strategy: None}`."""
    crds = load_crd_manifests()
    for crd in crds:
        if (crd.get("metadata") or {}).get("name") in STANDALONE_WITHOUT_CONVERSION:
            crd["spec"]["conversion"] = {"strategy": "None"}
            (crd.get("metadata") or {}).pop("annotations", None)
    return crds


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving the Kubernetes version order: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), version)


@dataclass
class Registry:
    """The served resource types, by (group, version, plural)."""

    _types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove_crd(self, crd_name: str) -> None:
        for key, rt in list(self._types.items()):
            if rt.custom and rt.crd_name == crd_name:
                del self._types[key]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def storage_type(self, rt: ResourceType) -> ResourceType:
        """The served version of `rt`'s resource that objects are stored in (`rt` when none is)."""
        for other in self._types.values():
            if other.storage_key == rt.storage_key and other.storage:
                return other
        return rt

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self._types.values():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions, highest priority first (core group under "")."""
        out: dict[str, set[str]] = {}
        for rt in self._types.values():
            out.setdefault(rt.group, set()).add(rt.version)
        return {g: sorted(vs, key=version_priority) for g, vs in sorted(out.items())}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.group == group and rt.version == version]


def default_registry() -> Registry:
    registry = Registry()
    for rt in BUILTINS:
        registry.add(rt)
    return registry
