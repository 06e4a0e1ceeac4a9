"""The `Emulator`: one in-process emulated Kubernetes API server, for development and tests.

Owns the lifecycle (seed objects, start the aiohttp server on a port, stop it cleanly), the
kubeconfig it writes, the simulated controllers it runs and the test hooks.

Python API:
- `Emulator(nodes=None, dgd_ready_delay=1.0, history=1000, bookmark_interval=1.0, job_runner=None,
  crds=None, data_dir=None)`; with `data_dir`, the objects are kept in `data_dir/objects.json`
  (see `k8s.emulator.store`): an emulator started on a data dir that has them serves them again
  (same uids, resourceVersions continuing) instead of seeding `nodes` and `crds`; `nodes` is a list of Node dicts (see `gpu_nodes`), `crds` a list of CRD objects
  (default: the manifests in k8s/manifests, the DGD CRD without its conversion webhook:
  `resources.emulator_crds`), `job_runner(store, job) -> Awaitable[None]` runs
  for every created batch/v1 Job (default: active, then succeeded/Complete after 1 s).
- `await start(host="127.0.0.1", port=0) -> url`, `url`, `write_kubeconfig(path, token=None)`
  (None: the admin's token), `await stop()`.
- RBAC (`k8s.emulator.auth`, `k8s.emulator.rbac`): `await apply_manifests(path)` applies every
  document of a YAML file (e.g. k8s/manifests/rbac.yaml) as the admin;
  `service_account_token(namespace, name)` mints a bearer token for an existing ServiceAccount,
  whose requests the stored Roles and bindings then judge. The bootstrap ClusterRole and binding
  `system:discovery` are seeded, so every authenticated user can read discovery.
- Hooks (synchronous): `inject_conflicts(count, plural=None, subresource=None)`, `compact()`,
  `expire_watches()`, `set_dgd_state(namespace, name, state)`; `requests` (method, path?query).
- `store` (`k8s.emulator.store.Store`): reads `get`/`list` (synchronous) and writes
  `await create/replace/patch/apply/update_status/patch_status/delete`, the same path HTTP
  clients go through (new resourceVersions, watch events, validation). A job runner reports
  progress with e.g. `await emu.store.patch_status("batch", "v1", "jobs", ns, name, {...})` and
  publishes results with `await emu.store.apply({"apiVersion": "v1", "kind": "ConfigMap", ...})`.

Failure semantics: `start` raises OSError if the port is taken; `stop` is idempotent, closes every
watch stream cleanly and cancels controller tasks; seeding errors (an invalid CRD or node) raise
`ApiError` from the constructor.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from k8s.emulator import errors
from k8s.emulator.auth import ADMIN_TOKEN
from k8s.emulator.controllers import DgdController, JobController, JobRunner, default_job_runner
from k8s.emulator.nodes import node_status
from k8s.emulator.rbac import bootstrap_policy
from k8s.emulator.resources import (
    CRD_TYPE,
    NAMESPACE_TYPE,
    default_registry,
    emulator_crds,
)
from k8s.emulator.server import ApiServer
from k8s.emulator.store import Store, WriteOptions

NODE_TYPE_KEY = ("", "v1", "nodes")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def load_yaml(path: str | Path) -> list[dict[str, Any]]:
    """The mapping documents of a YAML file."""
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if isinstance(d, dict)]


class Emulator:
    """An emulated Kubernetes API server (see the module docstring)."""

    def __init__(
        self,
        nodes: list[dict[str, Any]] | None = None,
        dgd_ready_delay: float = 1.0,
        history: int = 1000,
        bookmark_interval: float = 1.0,
        job_runner: JobRunner | None = None,
        crds: list[dict[str, Any]] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        path = None if data_dir is None else Path(data_dir) / "objects.json"
        self.store = Store(default_registry(), history=history, path=path)
        self._server = ApiServer(self.store, bookmark_interval=bookmark_interval)
        self.dgd_controller = DgdController(self.store, dgd_ready_delay)
        self.job_controller = JobController(self.store, job_runner or default_job_runner)
        self.store.add_listener(self.dgd_controller.on_event)
        self.store.add_listener(self.job_controller.on_event)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        if not self.store.load():
            self._seed(nodes or [], emulator_crds() if crds is None else crds)
            self.store.save()

    def _seed(self, nodes: list[dict[str, Any]], crds: list[dict[str, Any]]) -> None:
        for name in INITIAL_NAMESPACES:
            self.store.do_create(NAMESPACE_TYPE, "", {"metadata": {"name": name}}, WriteOptions())
        for crd in crds:
            self.store.do_create(CRD_TYPE, "", copy.deepcopy(crd), WriteOptions())
        for obj in bootstrap_policy():
            rt = self.store.registry.by_kind(obj["apiVersion"], obj["kind"])
            assert rt is not None
            self.store.do_create(rt, "", obj, WriteOptions())
        node_rt = self.store.resource_type(*NODE_TYPE_KEY)
        for i, node in enumerate(nodes):
            created = self.store.do_create(node_rt, "", copy.deepcopy(node), WriteOptions())
            status = node.get("status") or node_status(index=i)
            self.store.set_status(node_rt, "", created["metadata"]["name"], status)

    # ------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            return self.url
        runner = web.AppRunner(self._server.app(), shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound = runner.addresses[0]
        actual_port = bound[1]
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{actual_port}"
        self._server.server_address = f"{shown}:{actual_port}"
        self._runner = runner
        return self._url

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        await self.dgd_controller.stop()
        await self.job_controller.stop()
        self.store.close_watchers()
        self.store.save()
        if runner is not None:
            await runner.cleanup()
        await self._server.webhooks.close()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_kubeconfig(self, path: str | Path, token: str | None = None) -> Path:
        """Write a kubeconfig (context "emulated", namespace default) with `token`, by default
        the admin's ("emulator")."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            "users": [{"name": "emulated", "user": {"token": token or ADMIN_TOKEN}}],
            "contexts": [
                {
                    "name": "emulated",
                    "context": {"cluster": "emulated", "user": "emulated", "namespace": "default"},
                }
            ],
            "current-context": "emulated",
            "preferences": {},
        }
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        target.chmod(0o600)  # it holds a bearer token
        return target

    # ------------------------------------------------------------ RBAC

    async def apply_manifests(self, path: str | Path) -> list[dict[str, Any]]:
        """Server-side apply, as the admin, of every document in the YAML file at `path`."""
        return [await self.store.apply(doc, field_manager="kubectl") for doc in load_yaml(path)]

    def service_account_token(self, namespace: str, name: str) -> str:
        """A bearer token that authenticates as `system:serviceaccount:<namespace>:<name>`;
        404 NotFound (`ApiError`) when that ServiceAccount does not exist."""
        if self.store.get("", "v1", "serviceaccounts", namespace, name) is None:
            raise errors.not_found("", "serviceaccounts", name)
        return self._server.tokens.mint(namespace, name)

    # ------------------------------------------------------------ test hooks

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path with query) of the last 10,000 HTTP requests served, in order."""
        return list(self._server.requests)

    def inject_conflicts(
        self, count: int, *, plural: str | None = None, subresource: str | None = None
    ) -> None:
        """Make the next `count` PUT/PATCH requests matching (plural, subresource) fail with 409.

        `subresource="status"` matches only /status writes; None matches any write.
        """
        self._server.inject_conflicts(count, plural=plural, subresource=subresource)

    def compact(self) -> None:
        """Forget watch history: watches from any earlier resourceVersion get 410 Gone."""
        self.store.compact()

    def expire_watches(self) -> None:
        """Close every open watch stream cleanly, as a server-side timeout would."""
        self.store.close_watchers()

    def set_dgd_state(self, namespace: str, name: str, state: str) -> dict[str, Any]:
        """Write a DGD's status.state (and its Ready condition) now; returns the object."""
        return self.dgd_controller.write_state(namespace, name, state)
