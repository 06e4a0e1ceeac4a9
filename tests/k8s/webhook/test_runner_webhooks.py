"""`dgdr up --cluster kubernetes --webhook-port N [--webhook-cert-dir DIR]`: the webhooks served
in the pod with the certificate a cert-manager Secret mounts (or a generated one), and the option
combinations `dgdr up` refuses."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
import typer

from dgdr.cli.serve import _cluster_side
from dgdr.domain.errors import ConfigurationError
from events.server import free_port
from k8s.emulator import Emulator
from k8s.runner import ClusterOptions, KubernetesSide
from k8s.webhook import tls
from k8s.webhook.server import VALIDATE_PATH
from tests.support import manifest

pytestmark = pytest.mark.timeout(60)


async def test_a_real_cluster_gets_the_webhooks_on_the_port_with_the_mounted_certificate(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"  # what cert-manager's Secret looks like mounted
    tls.generate(secret, ["dgdr-webhook.dgdr-system.svc", "127.0.0.1"])
    emulator = Emulator()
    await emulator.start(port=0)
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    port = free_port()
    side = KubernetesSide(
        ClusterOptions(
            mode="kubernetes", kubeconfig=kubeconfig, webhook_port=port, webhook_cert_dir=secret
        )
    )
    try:
        await side.open(tmp_path / "data")
        assert side.webhooks is not None and side.webhooks.url == f"https://0.0.0.0:{port}"
        ctx = ssl.create_default_context(cafile=str(secret / "ca.crt"))
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "1", "operation": "CREATE", "object": manifest("a", "default")},
        }
        url = f"https://127.0.0.1:{port}{VALIDATE_PATH}"
        async with aiohttp.ClientSession() as session, session.post(url, json=review, ssl=ctx) as r:
            assert r.status == 200
            assert (await r.json())["response"] == {"uid": "1", "allowed": True}
        # a real cluster registers its own webhooks (webhooks.yaml): dgdr installs none there
        assert emulator.store.list("admissionregistration.k8s.io", "v1",
                                   "validatingwebhookconfigurations") == []  # fmt: skip
    finally:
        await side.close()
        await emulator.stop()


async def test_a_cert_dir_without_the_key_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "tls.crt").write_text("x")
    with pytest.raises(ConfigurationError, match=r"tls\.key"):
        tls.load(tmp_path / "secret")


@pytest.mark.parametrize(
    ("mode", "webhook"),
    [("simulated", (9443, None)), ("kubernetes", (None, Path("/certs")))],
)
def test_dgdr_up_refuses_webhook_options_that_go_nowhere(
    mode: str, webhook: tuple[int | None, Path | None]
) -> None:
    with pytest.raises(typer.Exit) as exited:
        _cluster_side(mode, None, None, None, 1.0, webhook=webhook)
    assert exited.value.exit_code == 2
