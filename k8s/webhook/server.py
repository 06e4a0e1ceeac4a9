"""dgdr's webhook server: Kubernetes admission (defaulting, validating) and CRD conversion for
DynamoGraphDeploymentRequests, over HTTPS, on the paths Dynamo's operator serves them on.

Endpoints (request and response bodies are Kubernetes review objects, JSON):
- `POST /mutate-nvidia-com-v1beta1-dynamographdeploymentrequest` (AdmissionReview v1): on CREATE,
  an empty `spec.image` gets the profiler image `nvcr.io/nvidia/ai-dynamo/dynamo-planner:<version>`
  (a JSONPatch); anything else is admitted unchanged.
- `POST /validate-nvidia-com-v1beta1-dynamographdeploymentrequest` (AdmissionReview v1): the verdict
  of `dgdr.domain.admission.review(operation, object, oldObject, oldObject.status.phase)`; a refusal
  is `allowed: false` with status 403 Forbidden and the review's message, as controller-runtime
  answers for Dynamo's validator.
- `POST /convert` (ConversionReview v1): every object converted by its kind,
  `k8s.webhook.dgdr_conversion.convert` for a DynamoGraphDeploymentRequest and
  `k8s.webhook.dgd_conversion.convert` for a DynamoGraphDeployment (the one webhook both CRDs name).
- `GET /healthz`.

`WebhookServer(tls)` serves them (`await start(host, port) -> base URL`, `await stop()`);
`install(store, base_url, ca_bundle)` registers them on an emulated cluster's store;
`registrations(base_url, ca_bundle)` gives the Mutating/ValidatingWebhookConfiguration objects of
k8s/manifests/webhooks.yaml pointed at a URL with the CA bundle, and `crd_with_conversion` a CRD
(DGDR or DGD) with the conversion webhook of its shipped manifest pointed the same way (for an
emulated cluster, where the API server reaches dgdr by URL rather than through a Service; the
emulator alone installs the DGD CRD with `strategy: None`, see `k8s.emulator.resources`).

Failure semantics: a body that is not a review of the expected kind is answered 400 with a text
message (the API server then applies the webhook's failurePolicy); a DGDR the converter refuses is
a ConversionReview with `result.status: Failure`; a review never raises out of a handler.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import structlog
import yaml
from aiohttp import web

from dgdr.domain.admission import review
from dgdr.domain.errors import ConfigurationError, RequestRejected
from dgdr.domain.spec import DYNAMO_VERSION
from k8s.webhook import dgd_conversion
from k8s.webhook.dgdr_conversion import V1ALPHA1, convert
from k8s.webhook.tls import TlsFiles

log = structlog.get_logger("k8s.webhook")

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"
MUTATE_PATH = "/mutate-nvidia-com-v1beta1-dynamographdeploymentrequest"
VALIDATE_PATH = "/validate-nvidia-com-v1beta1-dynamographdeploymentrequest"
CONVERT_PATH = "/convert"
PROFILER_IMAGE = "nvcr.io/nvidia/ai-dynamo/dynamo-planner"
# The profiler image the defaulting webhook names: Dynamo's operator takes its own version; dgdr
# takes the Dynamo release it stands in for.
DEFAULT_IMAGE = f"{PROFILER_IMAGE}:{DYNAMO_VERSION}"

Obj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _review_request(body: Any, kind: str) -> Obj | str:
    """The review's request, or why the body is not the review the endpoint takes."""
    if not isinstance(body, dict) or body.get("kind") != kind:
        return f"expected a {kind}"
    request = body.get("request")
    if not isinstance(request, dict) or not request.get("uid"):
        return f"the {kind} has no request with a uid"
    return request


def _as_v1beta1(obj: Any) -> Any:
    """Admission takes v1beta1; a v1alpha1 object (matchPolicy Exact callers) is converted first."""
    if isinstance(obj, dict) and obj.get("apiVersion") == V1ALPHA1:
        return convert(obj, "nvidia.com/v1beta1")
    return obj


def mutate(request: Obj, default_image: str = DEFAULT_IMAGE) -> Obj:
    """The AdmissionResponse of the defaulting webhook."""
    response: Obj = {"uid": request["uid"], "allowed": True}
    obj = request.get("object")
    if request.get("operation") != "CREATE" or not isinstance(obj, dict) or not default_image:
        return response
    spec = obj.get("spec")
    if not isinstance(spec, dict) or spec.get("image"):
        return response
    op = "replace" if "image" in spec else "add"
    patch = [{"op": op, "path": "/spec/image", "value": default_image}]
    response["patchType"] = "JSONPatch"
    response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return response


def validate(request: Obj) -> Obj:
    """The AdmissionResponse of the validating webhook."""
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE", "DELETE"):
        return {"uid": request["uid"], "allowed": True}
    try:
        new = _as_v1beta1(request.get("object"))
        old = _as_v1beta1(request.get("oldObject"))
    except RequestRejected as exc:
        return _denied(request["uid"], exc.message)
    old_phase = ((old or {}).get("status") or {}).get("phase") if isinstance(old, dict) else None
    verdict = review(
        operation,
        new if isinstance(new, dict) else None,
        old if isinstance(old, dict) else None,
        old_phase,
    )
    if verdict.allowed:
        return {"uid": request["uid"], "allowed": True}
    return _denied(request["uid"], verdict.message)


def _denied(uid: str, message: str) -> Obj:
    return {
        "uid": uid,
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": message},
    }


def convert_any(obj: Any, desired: str) -> Obj:
    """`obj` in `desired`, by the converter of its kind (DGD, else DGDR)."""
    if isinstance(obj, dict) and obj.get("kind") == dgd_conversion.KIND:
        return dgd_conversion.convert(obj, desired)
    return convert(obj, desired)


def conversion_response(request: Obj) -> Obj:
    """The ConversionResponse for a ConversionRequest."""
    desired = str(request.get("desiredAPIVersion", ""))
    try:
        converted = [convert_any(obj, desired) for obj in request.get("objects") or []]
    except RequestRejected as exc:
        return {
            "uid": request["uid"],
            "convertedObjects": [],
            "result": {"status": "Failure", "message": exc.message},
        }
    return {"uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}}


class WebhookServer:
    """The HTTPS server for the three webhooks (see the module docstring)."""

    def __init__(self, tls: TlsFiles, default_image: str = DEFAULT_IMAGE) -> None:
        self.tls = tls
        self.default_image = default_image
        self.calls: list[str] = []  # request paths served, in order (for tests and logs)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024**2)
        app.router.add_post(MUTATE_PATH, self._admission(lambda r: mutate(r, self.default_image)))
        app.router.add_post(VALIDATE_PATH, self._admission(validate))
        app.router.add_post(CONVERT_PATH, self._convert)
        app.router.add_get("/healthz", self._healthz)
        return app

    @staticmethod
    async def _healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _read(self, request: web.Request, kind: str) -> tuple[Obj, Obj] | web.Response:
        """(body, its request) of a review, or the 400 answer to a body that is not one."""
        self.calls.append(request.path)
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            return web.Response(status=400, text=f"the body is not JSON: {exc}")
        req = _review_request(body, kind)
        if isinstance(req, str):
            return web.Response(status=400, text=req)
        return body, req

    def _admission(self, decide: Callable[[Obj], Obj]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            read = await self._read(request, "AdmissionReview")
            if isinstance(read, web.Response):
                return read
            body, req = read
            response = decide(req)
            log.info(
                "admission",
                path=request.path,
                operation=req.get("operation"),
                name=req.get("name"),
                namespace=req.get("namespace"),
                allowed=response["allowed"],
            )
            api_version = body.get("apiVersion") or "admission.k8s.io/v1"
            return web.json_response(
                {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}
            )

        return handle

    async def _convert(self, request: web.Request) -> web.Response:
        read = await self._read(request, "ConversionReview")
        if isinstance(read, web.Response):
            return read
        body, req = read
        return web.json_response(
            {
                "apiVersion": body.get("apiVersion") or "apiextensions.k8s.io/v1",
                "kind": "ConversionReview",
                "response": conversion_response(req),
            }
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            return self.url
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self.tls.server_context())
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        shown = f"[{host}]" if ":" in host else host
        self._url = f"https://{shown}:{runner.addresses[0][1]}"
        self._runner = runner
        return self._url

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the webhook server is not started")
        return self._url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


# --------------------------------------------------------------------------- registrations


def _url_client_config(client_config: Obj, base_url: str, ca_bundle: str) -> Obj:
    path = ((client_config.get("service") or {}).get("path")) or ""
    return {"url": base_url.rstrip("/") + path, "caBundle": ca_bundle}


def registrations(base_url: str, ca_bundle: str) -> list[Obj]:
    """The webhook configurations of k8s/manifests/webhooks.yaml, calling `base_url` directly."""
    out = []
    for doc in yaml.safe_load_all((MANIFESTS / "webhooks.yaml").read_text()):
        if not isinstance(doc, dict) or not doc.get("kind", "").endswith("WebhookConfiguration"):
            continue
        doc = copy.deepcopy(doc)
        doc["metadata"].pop("annotations", None)
        for hook in doc.get("webhooks") or []:
            hook["clientConfig"] = _url_client_config(hook["clientConfig"], base_url, ca_bundle)
        out.append(doc)
    return out


def shipped_conversion(crd_name: str) -> Obj:
    """The `spec.conversion` of the CRD `crd_name` as k8s/manifests ships it (Webhook, by Service)."""
    for path in (MANIFESTS / "dgdr-crd.yaml", MANIFESTS / "dgd-crd.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and (doc.get("metadata") or {}).get("name") == crd_name:
                conversion: Obj = doc["spec"]["conversion"]
                return conversion
    raise ConfigurationError(f"k8s/manifests has no CRD {crd_name}")


def crd_with_conversion(crd: Obj, base_url: str, ca_bundle: str) -> Obj:
    """`crd` with its conversion webhook calling `base_url` directly: the webhook its shipped
    manifest names, also when `crd` was installed without it (`strategy: None`)."""
    out = copy.deepcopy(crd)
    if (out["spec"].get("conversion") or {}).get("strategy") != "Webhook":
        out["spec"]["conversion"] = copy.deepcopy(shipped_conversion(out["metadata"]["name"]))
    webhook = out["spec"]["conversion"]["webhook"]
    webhook["clientConfig"] = _url_client_config(webhook["clientConfig"], base_url, ca_bundle)
    (out.get("metadata") or {}).pop("annotations", None)
    return out


class ObjectStore(Protocol):
    """What `install` needs of an emulated cluster's store (`k8s.emulator.store.Store`)."""

    def get(
        self, group: str, version: str, plural: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None: ...

    async def apply(
        self, body: dict[str, Any], field_manager: str = ..., force: bool = ...
    ) -> dict[str, Any]: ...

    async def replace(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
    ) -> dict[str, Any]: ...


DGDR_CRD = "dynamographdeploymentrequests.nvidia.com"
DGD_CRD = "dynamographdeployments.nvidia.com"
CRD_GVR = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")


async def install(store: ObjectStore, base_url: str, ca_bundle: str) -> None:
    """Register the webhooks and the DGDR and DGD CRDs' conversion webhook, calling `base_url`."""
    for doc in registrations(base_url, ca_bundle):
        await store.apply(doc, field_manager="dgdr")
    for name in (DGDR_CRD, DGD_CRD):
        crd = store.get(*CRD_GVR, None, name)
        if crd is None:
            raise ConfigurationError(
                f"the cluster has no CRD {name} to point at the conversion webhook"
            )
        await store.replace(*CRD_GVR, None, name, crd_with_conversion(crd, base_url, ca_bundle))
