"""`dgdr apply`, `delete` and `wait` as kubectl users type them (subprocesses), against one running
service shared by the module (each test uses its own names): `-f DIR`, `kind: List`, documents of
another kind, several names, `-f` and `--all` for delete, `--for=condition=...`, and the waits that
must fail at once (a missing name, a wrongly spelled phase, a phase no longer reachable). What is
not under test is set up in-process, through the client, to keep the module quick."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from dgdr.app.service import Service
from dgdr.client import DgdrClient
from dgdr.domain.errors import NotFound
from dgdr.domain.waiting import WaitFor
from events.connection import ConnectOptions
from events.server import EmbeddedNatsServer
from tests.integration.conftest import fast_config
from tests.integration.test_cli import ROOT, dgdr
from tests.support import manifest, until

pytestmark = pytest.mark.asyncio(loop_scope="module")
# Longer than any wait below may take: a command that waits this out has not failed fast.
LONG = "100s"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DgdrClient]:
    server = EmbeddedNatsServer(tmp_path_factory.mktemp("nats"))
    await server.start()
    service = Service(fast_config(server.url))
    await service.start()
    try:
        async with DgdrClient(ConnectOptions(url=server.url)) as client:
            yield client
    finally:
        await service.stop()
        await server.stop()


def url_of(client: DgdrClient) -> str:
    return client.options.url


def write(path: Path, *docs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs))
    return path


def deleted(*names: str) -> list[str]:
    return [f'dynamographdeploymentrequest.nvidia.com "{name}" deleted' for name in names]


def not_found(name: str) -> str:
    return (
        f'Error from server (NotFound): dynamographdeploymentrequests.nvidia.com "{name}" not found'
    )


async def test_apply_a_directory_its_lists_and_refuse_other_kinds(
    service: DgdrClient, tmp_path: Path
) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [manifest("dir-b1"), manifest("dir-b2")]}
    write(tmp_path / "b.yml", listed)
    write(tmp_path / "a.yaml", manifest("dir-a"))
    dgd = {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment"}
    write(tmp_path / "c.json", {**dgd, "metadata": {"name": "raw"}})  # JSON is YAML
    (tmp_path / "notes.txt").write_text("not a manifest")
    write(tmp_path / "sub" / "d.yaml", manifest("dir-d"))  # only with -R

    code, out, err = await dgdr(url_of(service), "apply", "-f", str(tmp_path))
    assert "Traceback" not in err
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["dynamographdeploymentrequest/dir-a", "created"],
        ["dynamographdeploymentrequest/dir-b1", "created"],
        ["dynamographdeploymentrequest/dir-b2", "created"],
    ]
    assert err.strip() == (
        f"error: {tmp_path}/c.json: DynamoGraphDeployment 'raw' is not a "
        "DynamoGraphDeploymentRequest, the only kind dgdr handles: a DynamoGraphDeployment is what "
        "a DGDR generates: apply it with kubectl, or apply the DGDR that asks for it"
    )
    assert code == 1  # one document was refused
    assert await service.get("dir-d") is None


async def test_delete_several_names_from_files_and_all(service: DgdrClient, tmp_path: Path) -> None:
    url, ns = url_of(service), "cleanup"
    docs = [manifest(f"del-{i}", autoApply=False) for i in (1, 2, 3)]
    write(tmp_path / "one.yaml", docs[0])
    write(tmp_path / "more" / "two-three.yaml", *docs[1:])

    async def apply_all() -> None:
        for doc in docs:
            assert (await service.apply(doc, namespace=ns))["status"] == "accepted"

    await apply_all()
    code, out, err = await dgdr(url, "-n", ns, "delete", "del-1", "nope", "del-2")
    assert (code, out.splitlines(), err.strip()) == (
        1,
        deleted("del-1", "del-2"),
        not_found("nope"),
    )

    code, out, err = await dgdr(
        url, "-n", ns, "delete", "--ignore-not-found", "-R", "-f", str(tmp_path)
    )
    assert (code, out.splitlines(), err) == (0, deleted("del-3"), "")

    await apply_all()
    (code, out, err), (usage, _, usage_err) = await asyncio.gather(
        dgdr(url, "-n", ns, "delete", "--all"), dgdr(url, "delete", "x", "--all")
    )
    assert (code, sorted(out.splitlines())) == (0, deleted("del-1", "del-2", "del-3")), err
    assert usage == 2 and "give one or more names, or -f FILE|DIR, or --all" in usage_err
    assert await service.list(namespace=ns) == []


async def test_wait_for_conditions_of_several_names_and_for_a_delete(service: DgdrClient) -> None:
    url = url_of(service)
    for name in ("first", "second", "going"):
        assert (await service.apply(manifest(name)))["status"] == "accepted"
    await service.wait("going", phase="Deployed", timeout=60)
    assert (await service.delete("going"))["status"] == "accepted"

    (code, out, err), (gone, gone_out, gone_err) = await asyncio.gather(
        dgdr(url, "wait", "first", "second", "--for=condition=succeeded", "--timeout", LONG),
        dgdr(url, "wait", "going", "--for=delete", "--timeout", LONG),
    )
    assert code == 0, err
    assert sorted(out.splitlines()) == [
        f"dynamographdeploymentrequest/{name} condition met (condition=Succeeded=True)"
        for name in ("first", "second")
    ]
    assert gone == 0, gone_err
    assert gone_out.strip() == "dynamographdeploymentrequest/going condition met (delete)"


async def test_wait_fails_at_once_when_it_cannot_succeed(service: DgdrClient) -> None:
    invalid = yaml.safe_load((ROOT / "examples/invalid-sla.yaml").read_text())
    assert (await service.apply(invalid))["status"] == "invalid"
    assert (await service.apply(manifest("done")))["status"] == "accepted"
    await service.wait("done", phase="Deployed", timeout=60)

    async def wait(*args: str) -> tuple[int, str, str]:
        async with asyncio.timeout(60):  # less than LONG: waiting out the timeout fails here
            return await dgdr(url_of(service), "wait", *args, "--timeout", LONG)

    missing, wrong_case, failed, deployed = await asyncio.gather(
        wait("nowhere", "--for", "phase=Deployed"),
        wait("done", "--for", "phase=deployed"),
        wait("invalid-sla", "--for", "phase=Deployed"),
        wait("done", "--for", "phase=Ready"),
    )
    assert (missing[0], missing[2].strip()) == (1, not_found("nowhere"))
    assert wrong_case[0] == 2
    assert wrong_case[2].strip() == (
        "error: 'deployed' is not a phase (did you mean Deployed?): use one of Pending, "
        "Profiling, Ready, Deploying, Deployed, Failed"
    )
    code, _, err = failed
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: invalid-sla is Failed (ValidationFailed: Validation failed: ")
    assert err.strip().endswith(": it cannot become Deployed without a new spec")
    assert deployed[0] == 1
    assert deployed[2].strip() == (
        "error: done is Deployed (Deployed: Deployment is healthy): it cannot become Ready "
        "without a new spec"
    )
    assert "Traceback" not in missing[2] + wrong_case[2] + failed[2] + deployed[2]


async def test_a_wait_ends_with_not_found_when_its_dgdr_is_deleted(service: DgdrClient) -> None:
    assert (await service.apply(manifest("held", autoApply=False)))["status"] == "accepted"
    await service.wait("held", phase="Ready", timeout=60)
    last_sid = service.nc._sid
    waiting = asyncio.ensure_future(
        service.wait_for("held", WaitFor("phase", "Deployed"), timeout=100)
    )
    # deleted while the wait watches (its KV watch is a new subscription), not before it looked
    await until(lambda: waiting.done() or service.nc._sid > last_sid, what="the wait to watch")
    assert not waiting.done(), waiting
    assert (await service.delete("held"))["status"] == "accepted"
    async with asyncio.timeout(60):
        with pytest.raises(NotFound, match='"held" not found'):
            await waiting
