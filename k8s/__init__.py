"""The Kubernetes adapter (issue 4): watch DGDRs, write status, create DGDs. Not built yet.

It will be the only package that imports kubernetes_asyncio; until then `dgdr up` deploys to the
simulated cluster in `dgdr.simcluster`.
"""
