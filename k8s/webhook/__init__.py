"""dgdr's Kubernetes webhooks: admission (defaulting and validating) and CRD conversion for
DynamoGraphDeploymentRequests, served over HTTPS as Dynamo's operator serves them.

- `dgdr_conversion`: pure v1alpha1 <-> v1beta1 conversion.
- `tls`: a self-signed CA and a serving certificate, generated at start.
- `server`: the aiohttp HTTPS server (`WebhookServer`) and the manifests that register it.
"""
