"""Who a request is, and whether RBAC lets it through: the emulator's authentication and the
request attributes its authorization (`k8s.emulator.rbac`) judges.

Authentication is by bearer token, from a table the emulator keeps:
- no `Authorization` header, or the token `emulator` (the one `Emulator.write_kubeconfig` writes by
  default), is the cluster admin `emulator-admin` in group `system:masters`: kubectl users and
  tests that speak to the emulator directly are never restricted;
- a token minted for a ServiceAccount (`Tokens.mint`, `Emulator.service_account_token`, or
  `kubectl create token` through the TokenRequest subresource) is
  `system:serviceaccount:<namespace>:<name>`, whose requests RBAC judges;
- any other token is refused with 401 Unauthorized, as kube-apiserver refuses it.
kubectl sends no bearer token over plain http (the emulator's), so kubectl is always the admin;
kubernetes-asyncio sends it, so the service's client is judged.

`request_attributes(method, path, query, user)` parses a URL as kube-apiserver's
RequestInfoFactory does (from the URL alone, before routing, so a refused request never learns
whether a resource exists): discovery and other paths outside `/api/<v>/...` and
`/apis/<g>/<v>/...` are non-resource requests; GET of a collection is `list`, or `watch` with
`watch=true` or the `/watch/` prefix; DELETE of a collection is `deletecollection`; a list or
watch with `fieldSelector=metadata.name=<x>` names `<x>`.

`Authorizer.check(attributes)` raises the 403 Forbidden `ApiError` the real API server answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from k8s.emulator import errors, rbac

ADMIN_TOKEN = "emulator"
ADMIN = rbac.User("emulator-admin", (rbac.MASTERS, rbac.AUTHENTICATED))
_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}  # fmt: skip


def unauthorized() -> errors.ApiError:
    return errors.ApiError(401, "Unauthorized", "Unauthorized")


class Tokens:
    """Bearer token → user."""

    def __init__(self) -> None:
        self._users: dict[str, rbac.User] = {ADMIN_TOKEN: ADMIN}

    def mint(self, namespace: str, name: str) -> str:
        token = f"sa.{namespace}.{name}.{secrets.token_urlsafe(24)}"
        self._users[token] = rbac.service_account(namespace, name)
        return token

    def identify(self, authorization: str | None) -> rbac.User:
        if not authorization:
            return ADMIN
        scheme, _, token = authorization.partition(" ")
        user = self._users.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise unauthorized()
        return user


def _name_from_field_selector(selector: str) -> str:
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if sep and key.strip() == "metadata.name":
            return value.removeprefix("=").strip()
    return ""


def request_attributes(
    method: str, path: str, query: Mapping[str, str], user: rbac.User
) -> rbac.Attributes:
    verb = _VERBS.get(method.upper(), method.lower())
    parts = [p for p in path.split("/") if p]
    non_resource = rbac.Attributes(user, method.lower(), resource_request=False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    rest = parts[1:]
    group = ""
    if parts[0] == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    rest = rest[1:]  # the version
    if rest and rest[0] == "watch":
        verb, rest = "watch", rest[1:]
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        watching = query.get("watch", "").lower() in ("true", "1")
        verb = "watch" if watching else "list"
    elif not name and verb == "delete":
        verb = "deletecollection"
    if verb in ("list", "watch") and not name:
        name = _name_from_field_selector(query.get("fieldSelector", ""))
    return rbac.Attributes(
        user, verb, resource, group, subresource, namespace, name, resource_request=True
    )


class Authorizer:
    """RBAC over the RBAC objects `policy_objects()` returns at the time of each request."""

    def __init__(self, policy_objects: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self.policy_objects = policy_objects

    def allows(self, attrs: rbac.Attributes) -> rbac.Decision:
        if rbac.MASTERS in attrs.user.groups:
            return rbac.Decision(True)
        return rbac.authorize(rbac.policy_from(self.policy_objects()), attrs)

    def check(self, attrs: rbac.Attributes) -> None:
        decision = self.allows(attrs)
        if not decision.allowed:
            message, details = rbac.forbidden(attrs, decision.reason)
            raise errors.ApiError(403, "Forbidden", message, details)

    def check_owner_references(
        self, user: rbac.User, obj: dict[str, Any], plural: str, group: str, namespace: str,
        owner_type: Callable[[str, str], tuple[str, str, bool] | None],
    ) -> None:  # fmt: skip
        """OwnerReferencesPermissionEnforcement on create: an ownerReference with
        `blockOwnerDeletion: true` needs `update` on the owner's `finalizers` subresource.
        `owner_type(apiVersion, kind)` is (group, plural, namespaced) or None when not served."""
        if rbac.MASTERS in user.groups:
            return
        name = str((obj.get("metadata") or {}).get("name", ""))
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            if not isinstance(ref, dict) or ref.get("blockOwnerDeletion") is not True:
                continue
            owner = owner_type(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
            cause = ""
            if owner is None:
                cause = (
                    "cannot set blockOwnerDeletion in this case because cannot find RESTMapping "
                    f"for APIVersion {ref.get('apiVersion')} Kind {ref.get('kind')}"
                )
            else:
                owner_group, owner_plural, namespaced = owner
                attrs = rbac.Attributes(
                    user, "update", owner_plural, owner_group, "finalizers",
                    namespace if namespaced else "", str(ref.get("name", "")),
                )  # fmt: skip
                decision = self.allows(attrs)
                if not decision.allowed:
                    cause = (
                        "cannot set blockOwnerDeletion if an ownerReference refers to a resource "
                        f"you can't set finalizers on: {decision.reason}, {_go_ref(ref)}"
                    )
            if cause:
                message, details = rbac.forbidden_status(plural, group, name, cause)
                raise errors.ApiError(403, "Forbidden", message, details)


def _go_ref(ref: dict[str, Any]) -> str:
    """An ownerReference as Go's %v prints metav1.OwnerReference (its two *bool as values)."""
    fields = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")
    shown = [
        str(ref.get(f, "")).lower() if f in fields[4:] else str(ref.get(f, "")) for f in fields
    ]
    return "{" + " ".join(shown) + "}"
