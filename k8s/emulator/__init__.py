"""A Kubernetes API server emulator, for development and tests: not a Kubernetes API server for
production.

No real kube-apiserver can run here, so this package serves the Kubernetes REST protocol over
aiohttp, faithfully enough that `kubectl` (1.37) and `kubernetes_asyncio` work against it: discovery
and OpenAPI v3, CRUD with optimistic concurrency, status subresources, merge/JSON/apply patches,
CRD schema validation with defaulting and pruning, label and field selectors, server-side tables,
watches with bookmarks and 410 Gone, finalizers and ownerReference garbage collection, admission
webhooks (Mutating/ValidatingWebhookConfiguration objects, called over HTTPS with their caBundle)
and CRD conversion webhooks (objects stored in the storage version; `webhooks`), bearer-token
authentication and RBAC authorization (`auth`, `rbac`: no token is the admin; a ServiceAccount's
token, minted with `service_account_token` or `kubectl create token`, is judged by the stored
Roles, ClusterRoles and bindings, with Kubernetes' 403 Forbidden). The
DynamoGraphDeploymentRequest and DynamoGraphDeployment CRDs from `k8s/manifests` are served by
default, and simulated controllers move DynamoGraphDeployments and Jobs along.

    emu = Emulator(nodes=gpu_nodes(2), dgd_ready_delay=0.2)
    url = await emu.start()
    emu.write_kubeconfig(tmp_path / "kubeconfig")
    ...
    await emu.stop()

Or from a shell: `python -m k8s.emulator --port 6443 --kubeconfig ./kubeconfig --nodes 2`.

Deliberately not emulated: aggregated discovery (kubectl falls back to per-group discovery),
list pagination (`limit`/`continue` are ignored: everything comes back in one page), managedFields
and server-side-apply ownership conflicts (apply is a recursive merge), real strategic merge of
keyed lists for built-in kinds (treated as a JSON merge patch), protobuf responses and protobuf
request bodies beyond ConfigMap/Secret/Namespace/ServiceAccount, namespace termination (deleting a
namespace removes its contents at once), authentication other than the emulator's token table,
aggregated ClusterRoles and RBAC escalation checks, webhooks behind a Service (only
`clientConfig.url` is called) and webhook selectors, and the controllers other than the simulated
DGD and Job ones (no pods run).
"""

from k8s.emulator.controllers import default_job_runner
from k8s.emulator.emulator import Emulator
from k8s.emulator.errors import ApiError
from k8s.emulator.nodes import gpu_nodes

__all__ = ["ApiError", "Emulator", "default_job_runner", "gpu_nodes"]
