"""The roles on a real nats-server started as `dgdr up` starts it (`secured_nats`): the client is
refused every write of history or status and every delete or purge, in one line that names the user
and the subject; the service is refused deletes and purges; admin may; wrong credentials are said to
be refused. Also what `dgdr up` keeps on disk (passwords once, private files, NATS CLI contexts), the
context reader's errors, and the shipped production configuration."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError

from dgdr.domain.errors import ConfigurationError
from events import auth
from events import subjects as s
from events.auth import EmbeddedServer
from events.connection import (
    ConnectOptions,
    connect,
    refusing,
    reported_subject,
)
from events.consumer import ensure_consumer
from events.jetstream import ensure_layout
from events.server import EmbeddedNatsServer, find_nats_server

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
PROJECTOR = "dgdr-projector"


@pytest.fixture
async def laid_out(secured_nats: EmbeddedServer) -> AsyncIterator[EmbeddedServer]:
    """The streams, the status bucket and the projector's durable consumer, made by the service."""
    nc = await connect(secured_nats.roles["service"], reconnect=False)
    try:
        js = nc.jetstream()
        kv = await ensure_layout(js)
        await kv.put("default.existing", b"{}")
        await ensure_consumer(
            js,
            s.EVENTS_STREAM,
            ConsumerConfig(durable_name=PROJECTOR, ack_policy=AckPolicy.EXPLICIT),
        )
    finally:
        await nc.close()
    yield secured_nats


async def connected(server: EmbeddedServer, role: str) -> Client:
    options = ConnectOptions.from_context(server.contexts_dir / f"{role}.json")
    return await connect(options, reconnect=False)


Attempt = Callable[[Client], Awaitable[Any]]
CLIENT_REFUSED: dict[str, tuple[Attempt, str]] = {
    "publish an event": (
        lambda nc: nc.jetstream().publish("dgdr.evt.default.x.u1", b"{}", timeout=5),
        "dgdr.evt.default.x.u1",
    ),
    "write the status bucket": (
        lambda nc: nc.jetstream().publish("$KV.DGDR_STATUS.default.x", b"{}", timeout=5),
        "$KV.DGDR_STATUS.default.x",
    ),
    "delete the events stream": (
        lambda nc: nc.jetstream().delete_stream(s.EVENTS_STREAM),
        "$JS.API.STREAM.DELETE.DGDR_EVENTS",
    ),
    "purge the events stream": (
        lambda nc: nc.jetstream().purge_stream(s.EVENTS_STREAM),
        "$JS.API.STREAM.PURGE.DGDR_EVENTS",
    ),
    "purge the status bucket": (
        lambda nc: nc.jetstream().purge_stream("KV_DGDR_STATUS"),
        "$JS.API.STREAM.PURGE.KV_DGDR_STATUS",
    ),
    "delete the status bucket": (
        lambda nc: nc.jetstream().delete_key_value(s.STATUS_BUCKET),
        "$JS.API.STREAM.DELETE.KV_DGDR_STATUS",
    ),
    "delete the projector's consumer": (
        lambda nc: nc.jetstream().delete_consumer(s.EVENTS_STREAM, PROJECTOR),
        f"$JS.API.CONSUMER.DELETE.DGDR_EVENTS.{PROJECTOR}",
    ),
    "delete a status message": (
        lambda nc: nc.jetstream().delete_msg("KV_DGDR_STATUS", 1),
        "$JS.API.STREAM.MSG.DELETE.KV_DGDR_STATUS",
    ),
    "lift the events stream's protection": (
        lambda nc: nc.jetstream().update_stream(
            StreamConfig(name=s.EVENTS_STREAM, subjects=["dgdr.evt.>"], deny_delete=False)
        ),
        "$JS.API.STREAM.UPDATE.DGDR_EVENTS",
    ),
}


@pytest.mark.parametrize("attempt", sorted(CLIENT_REFUSED))
async def test_the_client_role_is_refused_in_one_line_naming_user_and_subject(
    laid_out: EmbeddedServer, attempt: str
) -> None:
    call, subject = CLIENT_REFUSED[attempt]
    nc = await connected(laid_out, "client")
    try:
        with pytest.raises(ConfigurationError) as refused:
            await refusing(nc, call(nc))
    finally:
        await nc.close()
    message = str(refused.value)
    assert f"user 'client': it may not publish to \"{subject}\"" in message, message
    assert "\n" not in message and laid_out.roles["client"].password not in message
    await assert_untouched(laid_out)


SERVICE_REFUSED = (
    "delete the events stream",
    "purge the events stream",
    "delete the status bucket",
    "delete the projector's consumer",
    "delete a status message",
    "lift the events stream's protection",
)


@pytest.mark.parametrize("attempt", SERVICE_REFUSED)
async def test_the_service_role_may_not_delete_purge_or_unprotect(
    laid_out: EmbeddedServer, attempt: str
) -> None:
    call, subject = CLIENT_REFUSED[attempt]
    nc = await connected(laid_out, "service")
    try:
        expected = re.escape(f"user 'service': it may not publish to \"{subject}\"")
        with pytest.raises(ConfigurationError, match=expected):
            await refusing(nc, call(nc))
    finally:
        await nc.close()
    await assert_untouched(laid_out)


async def assert_untouched(server: EmbeddedServer) -> None:
    nc = await connected(server, "admin")
    try:
        js = nc.jetstream()
        info = await js.stream_info(s.EVENTS_STREAM)
        assert info.config.deny_delete and info.config.deny_purge
        assert (await js.consumer_info(s.EVENTS_STREAM, PROJECTOR)).name == PROJECTOR
        assert (await (await js.key_value(s.STATUS_BUCKET)).get("default.existing")).value == b"{}"
    finally:
        await nc.close()


async def test_admin_may_delete_and_purge(laid_out: EmbeddedServer) -> None:
    nc = await connected(laid_out, "admin")
    try:
        js = nc.jetstream()
        await js.delete_consumer(s.EVENTS_STREAM, PROJECTOR)
        await js.purge_stream("KV_DGDR_STATUS")
        assert await js.delete_key_value(s.STATUS_BUCKET)
        with pytest.raises(NotFoundError):
            await js.stream_info("KV_DGDR_STATUS")
    finally:
        await nc.close()


async def test_the_client_may_read_what_it_needs(laid_out: EmbeddedServer) -> None:
    nc = await connected(laid_out, "client")
    try:
        js = nc.jetstream()

        async def reads() -> None:
            kv = await js.key_value(s.STATUS_BUCKET)
            assert (await kv.get("default.existing")).value == b"{}"
            watcher = await kv.watch("default.>")
            entry = await anext(aiter(watcher))
            assert entry is not None and entry.key == "default.existing"
            await watcher.stop()  # type: ignore[no-untyped-call]
            await js.stream_info(s.EVENTS_STREAM)
            ack = await js.publish("dgdr.req.default.x", b"{}", headers={"Nats-Msg-Id": "r1"})
            assert ack.stream == s.REQUESTS_STREAM

        await refusing(nc, reads())
    finally:
        await nc.close()


async def test_a_wrong_password_is_refused_credentials_not_an_unreachable_server(
    secured_nats: EmbeddedServer,
) -> None:
    url = secured_nats.server.url
    wrong = ConnectOptions(url=url, user="client", password="not-the-password")
    with pytest.raises(ConfigurationError) as refused:
        await connect(wrong, reconnect=True)  # a service would retry forever: refused at once
    assert str(refused.value) == (
        f"NATS at {url} refused the credentials of user 'client': check --context, or "
        "--user/--password (--token, --creds)"
    )
    in_url = ConnectOptions(url=url.replace("nats://", "nats://client:s3cr3t-in-url@"))
    with pytest.raises(ConfigurationError) as refused:
        await connect(in_url, reconnect=False)
    assert "s3cr3t-in-url" not in str(refused.value) and "client:***@" in str(refused.value)
    with pytest.raises(ConfigurationError, match="wants credentials and none were given"):
        await connect(ConnectOptions(url=url), reconnect=False)


# ------------------------------------------------------------------------- on disk, offline


def test_passwords_are_made_once_and_every_file_is_private(tmp_path: Path) -> None:
    first = auth.provision(tmp_path, "nats://127.0.0.1:4999")
    (tmp_path / "auth" / "passwords.json").chmod(0o644)
    second = auth.provision(tmp_path, "nats://127.0.0.1:5000")
    assert first.passwords == second.passwords
    assert len(set(first.passwords.values())) == 3
    private = [tmp_path / "auth" / "passwords.json", second.config_file, *second.contexts.values()]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for role, path in second.contexts.items():
        body = json.loads(path.read_text())
        assert set(auth.CONTEXT_KEYS) <= set(body)
        options = ConnectOptions.from_context(path)
        assert (options.url, options.user) == ("nats://127.0.0.1:5000", role)
        assert options.password == first.passwords[role]


def test_a_damaged_passwords_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "passwords.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"passwords.json.*delete .*passwords.json"):
        auth.provision(tmp_path, "nats://127.0.0.1:4222")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{", "is not a NATS context \\(invalid JSON"),
        ("[]", "is not a JSON object"),
        ('{"url": "nats://h:1", "nsc": "nsc://op"}', "'nsc' is not supported by dgdr"),
        ('{"url": "nats://h:1", "user": 7}', "'user' must be a string"),
        ('{"user": "client"}', "has no url"),
    ],
)
def test_a_context_that_cannot_be_used_is_one_error_naming_the_file(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "ctx.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError, match=expected) as error:
        ConnectOptions.from_context(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_context_keys_map_to_the_connect_options(tmp_path: Path) -> None:
    path = tmp_path / "ctx.json"
    body = {**auth.context("nats://h:1"), "token": "t", "creds": "/c", "nkey": "/n"}
    path.write_text(json.dumps({**body, "cert": "/crt", "key": "/k", "ca": "/ca"}))
    options = ConnectOptions.from_context(path)
    assert (options.token, options.creds_file, options.nkey_seed) == ("t", "/c", "/n")
    assert (options.tls_cert, options.tls_key, options.tls_ca) == ("/crt", "/k", "/ca")


def test_subjects_in_nats_py_lowercased_errors_get_their_case_back() -> None:
    assert reported_subject("$js.api.stream.delete.dgdr_events") == (
        "$JS.API.STREAM.DELETE.DGDR_EVENTS"
    )
    assert reported_subject("$kv.dgdr_status.default.my_2edgdr") == (
        "$KV.DGDR_STATUS.default.my_2Edgdr"
    )


async def test_the_shipped_production_config_is_the_roles_and_nats_server_accepts_it() -> None:
    shipped = ROOT / "deploy" / "nats" / "nats-server.conf"
    assert shipped.read_text() == auth.production_config(), "run `python -m events.auth`"
    assert "password:" in shipped.read_text() and '"' not in _password_lines(shipped)
    env = {**os.environ, **{auth.password_variable(role): "x" for role in auth.ROLES}}
    proc = await asyncio.create_subprocess_exec(
        find_nats_server(), "-t", "-c", str(shipped),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode()


def _password_lines(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if "password:" in line)


def test_connect_options_never_show_a_secret_when_printed() -> None:
    options = ConnectOptions(url="nats://u:in-url@h:1", user="u", password="pw-1", token="tok-2")
    shown = repr(options)
    assert "in-url" not in shown and "pw-1" not in shown and "tok-2" not in shown
    assert "nats://u:***@h:1" in shown and "user='u'" in shown


def test_compose_runs_nats_with_the_shipped_roles_and_the_service_as_its_user() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    nats_service = compose["services"]["nats"]
    mounts = [v.split(":")[:2] for v in nats_service["volumes"] if isinstance(v, str)]
    config_in_container = nats_service["command"][nats_service["command"].index("-c") + 1]
    assert ["./deploy/nats/nats-server.conf", config_in_container] in mounts
    for role in auth.ROLES:  # every password the config reads comes from the environment
        assert nats_service["environment"][auth.password_variable(role)].startswith("${")
    dgdr_env = compose["services"]["dgdr"]["environment"]
    assert dgdr_env["DGDR_NATS_USER"] == "service"
    assert dgdr_env["DGDR_NATS_PASSWORD"].startswith("${" + auth.password_variable("service"))


async def test_a_context_with_an_nkey_seed_connects_as_that_user(tmp_path: Path) -> None:
    import nacl.signing
    import nkeys

    seed = nkeys.encode_seed(bytes(nacl.signing.SigningKey.generate()), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    (tmp_path / "user.nk").write_bytes(seed)
    config = tmp_path / "server.conf"
    config.write_text(f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n')
    async with EmbeddedNatsServer(tmp_path / "nats", config_file=config) as server:
        context = tmp_path / "context.json"
        context.write_text(json.dumps({"url": server.url, "nkey": str(tmp_path / "user.nk")}))
        nc = await connect(ConnectOptions.from_context(context), reconnect=False)
        try:
            assert nc.is_connected
        finally:
            await nc.close()
        with pytest.raises(ConfigurationError, match="wants credentials"):
            await connect(ConnectOptions(url=server.url), reconnect=False)
