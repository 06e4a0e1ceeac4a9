"""The Kubernetes side of dgdr (issue 4). The only package that imports kubernetes_asyncio.

- `k8s.adapter`   DGDR objects ↔ requests and projections (finalizer, status subresource, Events)
- `k8s.target`    the deployment target: DGDs created and watched, GPUs discovered from node labels
- `k8s.profiling` thorough profiling as the Job `profile-<name>` and its output ConfigMap
- `k8s.job`       that Job's spec, with `overrides.profilingJob` merged through an allow-list
- `k8s.leader`    one active adapter among replicas, through a coordination.k8s.io Lease
- `k8s.informer`  list-then-watch with relist on 410 and periodic resync
- `k8s.runner`    wiring for `dgdr up --cluster emulated|kubernetes`
- `k8s.emulator`  a Kubernetes API server emulator for development and tests (not for production)
- `k8s/manifests` CRDs (DGDR v1beta1, DGD v1alpha1), least-privilege RBAC, the Deployment
"""
