"""The API group versions and kinds dgdr reads and writes, with nothing else, so that what needs
only these names (the client, manifest reading, the CLI's output) does not load the spec models.

`dgdr.domain.spec` re-exports them. Failure semantics: none (constants).
"""

from __future__ import annotations

API_VERSION = "nvidia.com/v1beta1"
KIND = "DynamoGraphDeploymentRequest"
DGD_API_VERSION = "nvidia.com/v1alpha1"
DGD_KIND = "DynamoGraphDeployment"
