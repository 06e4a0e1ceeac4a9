"""RBAC as kube-apiserver decides and words it (`k8s.emulator.rbac`, pure), and requests parsed
into RBAC attributes as its RequestInfoFactory parses them (`k8s.emulator.auth`)."""

from __future__ import annotations

from typing import Any

import pytest

from k8s.emulator import rbac
from k8s.emulator.auth import ADMIN, Tokens, request_attributes
from k8s.emulator.errors import ApiError

SA = rbac.service_account("dgdr-system", "dgdr")
G = rbac.RBAC_GROUP


def cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def role(namespace: str, name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": list(rules)}  # fmt: skip


def binding(
    kind: str, name: str, ref_kind: str, ref: str, subjects: list[dict[str, Any]],
    namespace: str = "",
) -> dict[str, Any]:  # fmt: skip
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "subjects": subjects,
            "roleRef": {"apiGroup": G, "kind": ref_kind, "name": ref}}  # fmt: skip


SA_SUBJECT = {"kind": "ServiceAccount", "name": "dgdr", "namespace": "dgdr-system"}


def rule(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **extra}


def allowed(objects: list[dict[str, Any]], **attrs: Any) -> bool:
    user = attrs.pop("user", SA)
    return rbac.authorize(rbac.policy_from(objects), rbac.Attributes(user, **attrs)).allowed


def cluster_wide(*rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        cluster_role("r", *rules),
        binding("ClusterRoleBinding", "b", "ClusterRole", "r", [SA_SUBJECT]),
    ]


def test_a_cluster_role_binding_grants_every_namespace_and_the_cluster_scope() -> None:
    policy = cluster_wide(rule(["batch"], ["jobs"], ["list", "watch"]))
    assert allowed(policy, verb="list", resource="jobs", api_group="batch", namespace="a")
    assert allowed(policy, verb="watch", resource="jobs", api_group="batch")
    assert not allowed(policy, verb="create", resource="jobs", api_group="batch", namespace="a")
    assert not allowed(policy, verb="list", resource="jobs", api_group="", namespace="a")
    assert not allowed(policy, verb="list", resource="cronjobs", api_group="batch")


def test_a_role_binding_grants_its_namespace_only() -> None:
    policy = [
        role("dgdr-system", "lease", rule(["coordination.k8s.io"], ["leases"], ["get"])),
        binding("RoleBinding", "b", "Role", "lease", [SA_SUBJECT], namespace="dgdr-system"),
    ]
    lease = {"verb": "get", "resource": "leases", "api_group": "coordination.k8s.io", "name": "x"}
    assert allowed(policy, namespace="dgdr-system", **lease)
    assert not allowed(policy, namespace="default", **lease)
    assert not allowed(policy, **lease)  # the cluster scope


def test_a_role_binding_may_grant_a_cluster_role_in_its_namespace() -> None:
    policy = [
        cluster_role("view", rule([""], ["configmaps"], ["get"])),
        binding("RoleBinding", "b", "ClusterRole", "view", [SA_SUBJECT], namespace="team"),
    ]
    assert allowed(policy, verb="get", resource="configmaps", namespace="team", name="x")
    assert not allowed(policy, verb="get", resource="configmaps", namespace="other", name="x")


def test_a_role_is_found_in_the_binding_namespace_only() -> None:
    policy = [
        role("elsewhere", "r", rule([""], ["configmaps"], ["get"])),
        binding("RoleBinding", "b", "Role", "r", [SA_SUBJECT], namespace="team"),
    ]
    decision = rbac.authorize(
        rbac.policy_from(policy),
        rbac.Attributes(SA, "get", "configmaps", namespace="team", name="x"),
    )
    assert not decision.allowed
    assert decision.reason == f'RBAC: role.{G} "r" not found'


@pytest.mark.parametrize(
    ("subject", "user", "expected"),
    [
        (SA_SUBJECT, SA, True),
        ({**SA_SUBJECT, "namespace": "default"}, SA, False),
        ({"kind": "User", "name": SA.name}, SA, True),
        ({"kind": "Group", "name": "system:serviceaccounts:dgdr-system"}, SA, True),
        ({"kind": "Group", "name": "system:serviceaccounts"}, rbac.User("alice"), False),
        ({"kind": "User", "name": "alice"}, rbac.User("alice"), True),
    ],
)
def test_subjects(subject: dict[str, Any], user: rbac.User, expected: bool) -> None:
    policy = [
        cluster_role("r", rule([""], ["nodes"], ["list"])),
        binding("ClusterRoleBinding", "b", "ClusterRole", "r", [subject]),
    ]
    assert allowed(policy, user=user, verb="list", resource="nodes") is expected


def test_subresources_are_granted_apart_from_their_resource() -> None:
    dgdrs = "dynamographdeploymentrequests"
    policy = cluster_wide(
        rule(["nvidia.com"], [dgdrs], ["get", "patch"]),
        rule(["nvidia.com"], [f"{dgdrs}/status"], ["update"]),
    )
    common = {"resource": dgdrs, "api_group": "nvidia.com", "namespace": "a", "name": "x"}
    assert allowed(policy, verb="update", subresource="status", **common)
    assert not allowed(policy, verb="patch", subresource="status", **common)
    assert not allowed(policy, verb="update", **common)
    assert not allowed(policy, verb="update", subresource="finalizers", **common)
    assert allowed(policy, verb="patch", **common)


def test_wildcards() -> None:
    everything = cluster_wide(rule(["*"], ["*"], ["*"]))
    assert allowed(everything, verb="deletecollection", resource="jobs", api_group="batch")
    assert allowed(everything, verb="update", resource="jobs", api_group="batch",
                   subresource="status", namespace="a", name="x")  # fmt: skip
    any_status = cluster_wide(rule(["batch"], ["*/status"], ["update"]))
    assert allowed(any_status, verb="update", resource="jobs", api_group="batch",
                   subresource="status", namespace="a", name="x")  # fmt: skip
    assert not allowed(any_status, verb="update", resource="jobs", api_group="batch",
                       namespace="a", name="x")  # fmt: skip


def test_resource_names_restrict_named_requests_and_refuse_unnamed_ones() -> None:
    policy = cluster_wide(
        rule(
            ["coordination.k8s.io"],
            ["leases"],
            ["get", "update", "create", "list"],
            resourceNames=["dgdr-k8s-adapter"],
        )
    )
    lease = {"resource": "leases", "api_group": "coordination.k8s.io", "namespace": "n"}
    assert allowed(policy, verb="get", name="dgdr-k8s-adapter", **lease)
    assert not allowed(policy, verb="get", name="other", **lease)
    assert not allowed(policy, verb="create", **lease)  # a create names nothing
    assert not allowed(policy, verb="list", **lease)


def test_non_resource_urls_and_the_bootstrap_discovery_role() -> None:
    policy = rbac.bootstrap_policy()
    user = rbac.User("alice", (rbac.AUTHENTICATED,))
    for path in ("/apis", "/apis/nvidia.com/v1beta1", "/api/v1", "/version", "/openapi/v3"):
        assert allowed(policy, user=user, verb="get", resource_request=False, path=path), path
    assert not allowed(policy, user=user, verb="get", resource_request=False, path="/metrics")
    assert not allowed(policy, user=user, verb="post", resource_request=False, path="/apis")
    assert not allowed(policy, user=rbac.User("anonymous"), verb="get", resource_request=False,
                       path="/apis")  # fmt: skip


def test_masters_are_allowed_everything_without_any_binding() -> None:
    assert allowed([], user=ADMIN, verb="delete", resource="nodes", name="n")


def test_a_missing_cluster_role_is_the_reason_of_the_refusal() -> None:
    policy = [binding("ClusterRoleBinding", "b", "ClusterRole", "gone", [SA_SUBJECT])]
    attrs = rbac.Attributes(SA, "list", "nodes")
    decision = rbac.authorize(rbac.policy_from(policy), attrs)
    assert decision == rbac.Decision(False, f'RBAC: clusterrole.{G} "gone" not found')
    message, _ = rbac.forbidden(attrs, decision.reason)
    assert message.endswith(f'at the cluster scope: RBAC: clusterrole.{G} "gone" not found')


def test_the_namespaced_refusal_is_worded_as_kubernetes_words_it() -> None:
    attrs = rbac.Attributes(SA, "delete", "dynamographdeployments", "nvidia.com",
                            namespace="default", name="x")  # fmt: skip
    message, details = rbac.forbidden(attrs)
    assert message == (
        'dynamographdeployments.nvidia.com "x" is forbidden: User '
        '"system:serviceaccount:dgdr-system:dgdr" cannot delete resource '
        '"dynamographdeployments" in API group "nvidia.com" in the namespace "default"'
    )
    assert details == {"name": "x", "group": "nvidia.com", "kind": "dynamographdeployments"}


def test_the_cluster_scoped_refusal_is_worded_as_kubernetes_words_it() -> None:
    message, details = rbac.forbidden(rbac.Attributes(SA, "list", "nodes"))
    assert message == (
        'nodes is forbidden: User "system:serviceaccount:dgdr-system:dgdr" cannot list '
        'resource "nodes" in API group "" at the cluster scope'
    )
    assert details == {"kind": "nodes"}


def test_a_subresource_and_a_path_refusal_are_worded_as_kubernetes_words_them() -> None:
    status = rbac.Attributes(SA, "patch", "jobs", "batch", "status", "a", "j")
    assert rbac.forbidden(status)[0] == (
        'jobs.batch "j" is forbidden: User "system:serviceaccount:dgdr-system:dgdr" cannot '
        'patch resource "jobs/status" in API group "batch" in the namespace "a"'
    )
    path = rbac.Attributes(SA, "get", resource_request=False, path="/metrics")
    assert rbac.forbidden(path) == (
        'forbidden: User "system:serviceaccount:dgdr-system:dgdr" cannot get path "/metrics"',
        {},
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/apis/nvidia.com/v1beta1", {}, ("get", "", "", "", "", "", False)),
        ("GET", "/api/v1/nodes", {}, ("list", "", "nodes", "", "", "", True)),
        ("GET", "/api/v1/namespaces/a/configmaps", {"watch": "true"},
         ("watch", "", "configmaps", "", "a", "", True)),
        ("GET", "/api/v1/watch/namespaces/a/configmaps", {},
         ("watch", "", "configmaps", "", "a", "", True)),
        ("GET", "/apis/batch/v1/jobs", {"fieldSelector": "metadata.name=j"},
         ("list", "batch", "jobs", "", "", "j", True)),
        ("PUT", "/apis/nvidia.com/v1beta1/namespaces/a/dynamographdeploymentrequests/x/status", {},
         ("update", "nvidia.com", "dynamographdeploymentrequests", "status", "a", "x", True)),
        ("DELETE", "/apis/batch/v1/namespaces/a/jobs", {},
         ("deletecollection", "batch", "jobs", "", "a", "", True)),
        ("POST", "/api/v1/namespaces/a/serviceaccounts/s/token", {},
         ("create", "", "serviceaccounts", "token", "a", "s", True)),
        ("GET", "/api/v1/namespaces/a", {}, ("get", "", "namespaces", "", "a", "a", True)),
        ("PUT", "/api/v1/namespaces/a/status", {},
         ("update", "", "namespaces", "status", "a", "a", True)),
        ("PATCH", "/apis/coordination.k8s.io/v1/namespaces/n/leases/l", {},
         ("patch", "coordination.k8s.io", "leases", "", "n", "l", True)),
    ],
)  # fmt: skip
def test_request_attributes(
    method: str, path: str, query: dict[str, str], expected: tuple[Any, ...]
) -> None:
    a = request_attributes(method, path, query, SA)
    got = (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name, a.resource_request)
    assert got == expected


def test_tokens_identify_the_admin_minted_service_accounts_and_refuse_others() -> None:
    tokens = Tokens()
    assert tokens.identify(None) == ADMIN
    assert tokens.identify("Bearer emulator") == ADMIN
    minted = tokens.mint("dgdr-system", "dgdr")
    assert tokens.identify(f"Bearer {minted}") == SA
    with pytest.raises(ApiError) as refused:
        tokens.identify("Bearer guessed")
    assert refused.value.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
    }  # fmt: skip
