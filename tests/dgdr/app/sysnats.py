"""A real nats-server with a system account, for tests that act on connections as an operator does:
kick one (`$SYS.REQ.SERVER.<id>.KICK`), list them. Clients without credentials are the JetStream
account's user (`no_auth_user`); `system_url` is the system account's. `max_payload` is configurable
so a test can send messages larger than the default 1 MiB."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats

from events.server import find_nats_server, free_port


class SystemAccountNats:
    def __init__(self, data_dir: Path, max_payload: str = "1MB") -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.max_payload = max_payload
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def system_url(self) -> str:
        return f"nats://sys:sys@127.0.0.1:{self.port}"

    async def start(self) -> SystemAccountNats:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats.conf"
        config.write_text(
            f"""
listen: 127.0.0.1:{self.port}
jetstream {{ store_dir: "{self.data_dir / "jetstream"}" }}
max_payload: {self.max_payload}
accounts {{
  APP {{ jetstream: enabled, users: [{{user: app, password: app}}] }}
  SYS {{ users: [{{user: sys, password: sys}}] }}
}}
system_account: SYS
no_auth_user: app
"""
        )
        log = (self.data_dir / "nats-server.log").open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            find_nats_server(), "-c", str(config), stdout=log, stderr=log
        )
        log.close()
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                await writer.wait_closed()
                return self

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def system_request(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        nc = await nats.connect(self.system_url)
        try:
            reply = await nc.request(subject, json.dumps(body).encode(), timeout=5)
        finally:
            await nc.close()
        answer: dict[str, Any] = json.loads(reply.data)
        if answer.get("error"):
            raise AssertionError(f"{subject}: {answer['error']}")
        return answer

    async def connection(self, cid: int) -> tuple[str, dict[str, Any]]:
        """(the id of the server holding connection `cid`, the connection as CONNZ shows it)."""
        nc = await nats.connect(self.system_url)
        try:
            reply = await nc.request(
                "$SYS.REQ.SERVER.PING.CONNZ", json.dumps({"cid": cid}).encode(), timeout=5
            )
        finally:
            await nc.close()
        answer = json.loads(reply.data)
        connections = answer["data"]["connections"] or []
        assert len(connections) == 1, f"no connection {cid}: {answer}"
        return str(answer["server"]["id"]), connections[0]

    async def kick(self, cid: int) -> None:
        """Close client connection `cid` from the server side, as an operator would."""
        server_id, _ = await self.connection(cid)
        await self.system_request(f"$SYS.REQ.SERVER.{server_id}.KICK", {"cid": cid})
