"""How every part (service, client, CLI, tests) connects to NATS: URL, credentials, token, TLS.

`ConnectOptions.from_env()` reads `DGDR_NATS_URL`, `DGDR_NATS_CREDS`, `DGDR_NATS_USER`,
`DGDR_NATS_PASSWORD`, `DGDR_NATS_TOKEN`, `DGDR_NATS_TLS_CA`, `DGDR_NATS_TLS_CERT`, `DGDR_NATS_TLS_KEY`.
`connect()` fails fast with `ServerUnavailable` (one line, the URL in it) when nothing answers, instead
of nats-py's default of retrying for minutes. Once connected, every error nats-py reports
asynchronously (a lost connection, a permissions violation, a slow consumer, a failed reconnect) is
logged at warning by `events.connection`, with the URL's password or token replaced by `***` (in
the URL and in the error's text), so neither a log nor `ServerUnavailable` ever shows a secret.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
import structlog
from nats.aio.client import Client

from dgdr.domain.errors import ConfigurationError, ServerUnavailable

log = structlog.get_logger("events.connection")

DEFAULT_URL = "nats://127.0.0.1:4222"
HIDDEN = "***"


def redact_url(url: str) -> str:
    """`url` without its secret: the password of `user:password@`, or the token of `token@`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return HIDDEN
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, has_password, _ = userinfo.partition(":")
    hidden = f"{user}:{HIDDEN}" if has_password else HIDDEN
    return urlunsplit(parts._replace(netloc=f"{hidden}@{host}"))


@dataclass(frozen=True)
class ConnectOptions:
    url: str = DEFAULT_URL
    creds_file: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    name: str = "dgdr"

    @classmethod
    def from_env(cls, **overrides: Any) -> ConnectOptions:
        env = os.environ.get
        base = cls(
            url=env("DGDR_NATS_URL", DEFAULT_URL),
            creds_file=env("DGDR_NATS_CREDS"),
            user=env("DGDR_NATS_USER"),
            password=env("DGDR_NATS_PASSWORD"),
            token=env("DGDR_NATS_TOKEN"),
            tls_ca=env("DGDR_NATS_TLS_CA"),
            tls_cert=env("DGDR_NATS_TLS_CERT"),
            tls_key=env("DGDR_NATS_TLS_KEY"),
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def safe_url(self) -> str:
        """The URL as it may be logged or shown."""
        return redact_url(self.url)

    def secrets(self) -> list[str]:
        """Every secret a message about this connection could echo: the URL's, and the options'."""
        found = [self.password, self.token]
        if "@" in self.url:
            userinfo = urlsplit(self.url).netloc.rsplit("@", 1)[0]
            found.append(userinfo.partition(":")[2] or userinfo)
        return [secret for secret in found if secret]

    def scrub(self, text: str) -> str:
        """`text` with the URL redacted and every secret replaced by `***`."""
        text = text.replace(self.url, self.safe_url)
        for secret in self.secrets():
            text = text.replace(secret, HIDDEN)
        return text

    def tls_context(self) -> ssl.SSLContext | None:
        if not (self.tls_ca or self.tls_cert):
            return None
        ctx = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            if not self.tls_key:
                raise ConfigurationError(
                    "a TLS client certificate needs its key: set DGDR_NATS_TLS_KEY / --tls-key"
                )
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx

    def nats_kwargs(self) -> dict[str, Any]:
        # A cluster: several URLs, comma-separated; nats-py fails over between them.
        servers = [u.strip() for u in self.url.split(",") if u.strip()]
        kw: dict[str, Any] = {"servers": servers, "name": self.name}
        if self.creds_file:
            kw["user_credentials"] = self.creds_file
        if self.user:
            kw["user"], kw["password"] = self.user, self.password
        if self.token:
            kw["token"] = self.token
        tls = self.tls_context()
        if tls:
            kw["tls"] = tls
        return kw


async def connect(
    options: ConnectOptions, *, reconnect: bool = True, timeout: float = 10.0
) -> Client:
    """Connect, or raise `ServerUnavailable` within `timeout` seconds. With `reconnect` (services)
    a dropped connection is retried forever; without it (the CLI) a lost server is an error."""

    connected = False

    async def report(error: Exception) -> None:
        if not connected:
            return  # a failed first connect is raised below as ServerUnavailable, with its cause
        log.warning(
            "nats error",
            url=options.safe_url,
            error_type=type(error).__name__,
            error=options.scrub(str(error)),
        )

    try:
        # nats-py loops forever on a refused initial connect unless reconnects are bounded.
        nc = await asyncio.wait_for(
            nats.connect(
                **options.nats_kwargs(),
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1 if reconnect else 1,
                reconnect_time_wait=0.2,
                error_cb=report,
            ),
            timeout,
        )
    except Exception as exc:  # nats-py raises several unrelated types for "nothing answers"
        reason = "no answer" if isinstance(exc, TimeoutError) else f"{exc.__class__.__name__} {exc}"
        message = f"cannot reach NATS at {options.url}: {reason}".strip()
        raise ServerUnavailable(options.scrub(message)) from exc
    connected = True
    return nc
