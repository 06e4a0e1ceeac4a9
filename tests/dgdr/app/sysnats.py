"""A real nats-server with a system account, for tests that act on connections as an operator does:
kick one (`$SYS.REQ.SERVER.<id>.KICK`), list them. Clients without credentials are the JetStream
account's user (`no_auth_user`); `system_url` is the system account's. `max_payload` is configurable
so a test can send messages larger than the default 1 MiB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nats

from events.server import EmbeddedNatsServer


class SystemAccountNats:
    def __init__(self, data_dir: Path, max_payload: str = "1MB") -> None:
        self.max_payload = max_payload
        self.config = data_dir / "accounts.conf"  # listen address and store: the launcher's flags
        self.server = EmbeddedNatsServer(data_dir, config_file=self.config)
        self.port = self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def system_url(self) -> str:
        return f"nats://sys:sys@127.0.0.1:{self.port}"

    async def start(self) -> SystemAccountNats:
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"""
max_payload: {self.max_payload}
accounts {{
  APP {{ jetstream: enabled, users: [{{user: app, password: app}}] }}
  SYS {{ users: [{{user: sys, password: sys}}] }}
}}
system_account: SYS
no_auth_user: app
"""
        )
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop()

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
