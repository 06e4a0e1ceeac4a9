"""dgdr's Kubernetes webhooks: admission (defaulting and validating) and CRD conversion for
DynamoGraphDeploymentRequests, and CRD conversion for DynamoGraphDeployments, served over HTTPS as
Dynamo's operator serves them.

- `dgdr_conversion`: pure DGDR v1alpha1 <-> v1beta1 conversion.
- `dgd_conversion`: pure DGD v1alpha1 <-> v1beta1 conversion (`sim.convert_dgd`, lossless).
- `tls`: a self-signed CA and a serving certificate, generated at start.
- `server`: the aiohttp HTTPS server (`WebhookServer`) and the manifests that register it.
"""
