"""RBAC authorization as kube-apiserver's RBAC authorizer decides it: pure functions over the
Role, ClusterRole, RoleBinding and ClusterRoleBinding objects (plain dicts), no I/O.

`authorize(policy, attributes)` allows a request when a rule of a role bound to the user matches
it: ClusterRoleBindings grant their ClusterRole everywhere (every namespace and the cluster scope);
a RoleBinding grants its Role, or a ClusterRole, in the binding's namespace only. A subject matches
by `User` name, `Group` name, or `ServiceAccount` (`system:serviceaccount:<namespace>:<name>`).
A rule matches on verb (`*` any), apiGroup (`""` core, `*` any), resource (`*` any,
`<resource>/<subresource>` exact, `*/<subresource>` any resource's subresource), and resourceNames
(empty: any; else the request's name must be listed, so a create, list or watch, which carry no
name, never match a rule with resourceNames). Non-resource requests (discovery, /version, /healthz)
match `nonResourceURLs` (exact, or a prefix ending in `*`) with the lowercase HTTP method as verb.
The group `system:masters` is allowed everything, as kube-apiserver's privileged-group authorizer
does. A binding whose role does not exist grants nothing and is named in the refusal's reason
(`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`), as the real authorizer reports it.

`forbidden(attributes, reason)` is the refusal as the API server words it: the message
(`<resource>.<group> "<name>" is forbidden: User "<user>" cannot <verb> resource "<resource>" in API
group "<group>" in the namespace "<ns>"`, or `... at the cluster scope`, or `forbidden: User "<user>"
cannot get path "/apis"`) and the Status details ({name, group, kind = the resource}).

Not modelled: aggregated ClusterRoles (`aggregationRule`), escalation prevention on RBAC writes,
and authorizers other than RBAC (Node, webhook).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


def service_account(namespace: str, name: str) -> User:
    """The user a ServiceAccount's token authenticates as, with the groups Kubernetes gives it."""
    return User(
        f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


@dataclass(frozen=True)
class Attributes:
    """What a request asks for. A resource request names `resource` (plural); a non-resource
    request has `resource_request=False` and a `path`."""

    user: User
    verb: str
    resource: str = ""
    api_group: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    resource_request: bool = True
    path: str = ""


@dataclass(frozen=True)
class Policy:
    """The RBAC objects in force, as stored."""

    roles: tuple[dict[str, Any], ...] = ()
    cluster_roles: tuple[dict[str, Any], ...] = ()
    role_bindings: tuple[dict[str, Any], ...] = ()
    cluster_role_bindings: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass
class _Rules:
    rules: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def _subject_matches(subject: dict[str, Any], user: User, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"
    return False


def _applies(binding: dict[str, Any], user: User) -> bool:
    namespace = _namespace(binding)
    return any(_subject_matches(s, user, namespace) for s in binding.get("subjects") or [])


def _role_rules(policy: Policy, ref: dict[str, Any], namespace: str, out: _Rules) -> None:
    kind, name = ref.get("kind"), ref.get("name", "")
    if kind == "ClusterRole":
        found = [r for r in policy.cluster_roles if _name(r) == name]
        missing = f'clusterrole.{RBAC_GROUP} "{name}" not found'
    elif kind == "Role":
        found = [r for r in policy.roles if _name(r) == name and _namespace(r) == namespace]
        missing = f'role.{RBAC_GROUP} "{name}" not found'
    else:
        out.errors.append(f"unsupported role reference kind: {kind!r}")
        return
    if not found:
        out.errors.append(missing)
        return
    out.rules.extend(found[0].get("rules") or [])


def rules_for(policy: Policy, user: User, namespace: str) -> _Rules:
    """Every rule that applies to `user` in `namespace` ("" = the cluster scope), and the
    errors of applicable bindings whose role is missing."""
    out = _Rules()
    for binding in policy.cluster_role_bindings:
        if _applies(binding, user):
            _role_rules(policy, binding.get("roleRef") or {}, "", out)
    if namespace:
        for binding in policy.role_bindings:
            if _namespace(binding) == namespace and _applies(binding, user):
                _role_rules(policy, binding.get("roleRef") or {}, namespace, out)
    return out


def _has(values: Iterable[str] | None, wanted: str) -> bool:
    listed = list(values or ())
    return "*" in listed or wanted in listed


def _resource_matches(rule: dict[str, Any], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for candidate in rule.get("resources") or []:
        if candidate in ("*", combined):
            return True
        if subresource and candidate == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: dict[str, Any], path: str) -> bool:
    for candidate in rule.get("nonResourceURLs") or []:
        if candidate == "*" or candidate == path:
            return True
        if candidate.endswith("*") and path.startswith(candidate[:-1]):
            return True
    return False


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    if not _has(rule.get("apiGroups"), attrs.api_group):
        return False
    if not _resource_matches(rule, attrs.resource, attrs.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def authorize(policy: Policy, attrs: Attributes) -> Decision:
    if MASTERS in attrs.user.groups:
        return Decision(True)
    scope = attrs.namespace if attrs.resource_request else ""
    found = rules_for(policy, attrs.user, scope)
    if any(rule_allows(rule, attrs) for rule in found.rules):
        return Decision(True)
    if not found.errors:
        return Decision(False)
    errors = found.errors[0] if len(found.errors) == 1 else f"[{', '.join(found.errors)}]"
    return Decision(False, f"RBAC: {errors}")


def forbidden_message(attrs: Attributes) -> str:
    """What the user cannot do, worded as kube-apiserver's `forbiddenMessage`."""
    user = attrs.user.name
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group '
        f'"{attrs.api_group}" {where}'
    )


def forbidden(attrs: Attributes, reason: str = "") -> tuple[str, dict[str, Any]]:
    """The 403 Forbidden Status's message and details for a refused request."""
    cause = forbidden_message(attrs) + (f": {reason}" if reason else "")
    return forbidden_status(attrs.resource, attrs.api_group, attrs.name, cause)


def forbidden_status(
    resource: str, group: str, name: str, cause: str
) -> tuple[str, dict[str, Any]]:
    """Message and details of `apierrors.NewForbidden(group/resource, name, cause)`."""
    if not resource and not group:
        return f"forbidden: {cause}", {}
    qualified = f"{resource}.{group}" if group else resource
    message = (
        f'{qualified} "{name}" is forbidden: {cause}'
        if name
        else (f"{qualified} is forbidden: {cause}")
    )
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    return message, details


def policy_from(objects: Iterable[dict[str, Any]]) -> Policy:
    """A Policy from RBAC objects of any of the four kinds (others are ignored)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(str(obj.get("kind")), []).append(obj)
    return Policy(
        tuple(by_kind.get("Role", [])),
        tuple(by_kind.get("ClusterRole", [])),
        tuple(by_kind.get("RoleBinding", [])),
        tuple(by_kind.get("ClusterRoleBinding", [])),
    )


# kube-apiserver's bootstrap policy for discovery: every authenticated user may read the
# discovery documents, /version and the health endpoints (ClusterRole and ClusterRoleBinding
# `system:discovery`).
DISCOVERY_URLS = (
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
)


def bootstrap_policy() -> list[dict[str, Any]]:
    """The ClusterRole and ClusterRoleBinding `system:discovery`, as a new cluster has them."""
    meta = {"name": "system:discovery", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}
    return [
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRole",
            "metadata": dict(meta),
            "rules": [{"nonResourceURLs": list(DISCOVERY_URLS), "verbs": ["get"]}],
        },
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "system:discovery"},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": AUTHENTICATED}],
        },
    ]
