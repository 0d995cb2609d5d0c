"""The rate limiter over real HTTP, against a real ``dao serve``: a client cannot buy itself a
fresh bucket by naming another address in ``X-Forwarded-For``. The header is believed only
from the proxies named in ``DAO_TRUSTED_PROXIES`` (uvicorn's own default believes it from
127.0.0.1, where every local client and every local proxy connects from)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.processes import Server, dao_env, deployment

pytestmark = pytest.mark.slow

BURST = 5
LIMITS = {"DAO_RATE_LIMIT_PER_MINUTE": "6", "DAO_RATE_LIMIT_BURST": str(BURST)}  # one token in 10 s: no refill


def statuses(server: Server, forwarded: list[str | None]) -> list[tuple[int, str]]:
    out = []
    with httpx.Client(base_url=server.base, timeout=10) as http:
        for xff in forwarded:
            r = http.get("/v1/dao", headers={"X-Forwarded-For": xff} if xff else {})
            out.append((r.status_code, r.json().get("detail", "") if r.status_code == 429 else ""))
    return out


def test_rotating_forwarded_for_does_not_escape_the_rate_limit(database_url: str, tmp_path: Path) -> None:
    rt, _ = deployment(database_url, tmp_path)
    server = Server(dao_env(database_url, tmp_path / "clock", **LIMITS), tmp_path / "serve.log")
    try:
        got = statuses(server, [f"203.0.113.{i}" for i in range(1, 13)])
    finally:
        server.stop()
        rt.close()
    assert [s for s, _ in got] == [200] * BURST + [429] * (12 - BURST), got
    assert all("127.0.0.1" in detail for _, detail in got[BURST:]), got  # keyed on the socket's peer


def test_a_trusted_proxy_forwards_the_client_address(database_url: str, tmp_path: Path) -> None:
    rt, _ = deployment(database_url, tmp_path)
    server = Server(dao_env(database_url, tmp_path / "clock", DAO_TRUSTED_PROXIES="127.0.0.1", **LIMITS),
                    tmp_path / "serve.log")
    try:
        rotating = statuses(server, [f"203.0.113.{i}" for i in range(1, 13)])
        one_client = statuses(server, ["198.51.100.7"] * (BURST + 2))
        # a proxy appends the address it saw: what the client wrote before it is not believed
        spoofing = statuses(server, [f"192.0.2.{i}, 198.51.100.7" for i in range(1, 4)])
        direct = statuses(server, [None] * (BURST + 1))
    finally:
        server.stop()
        rt.close()
    assert [s for s, _ in rotating] == [200] * 12, rotating  # each forwarded client has its own bucket
    assert [s for s, _ in one_client] == [200] * BURST + [429, 429], one_client
    assert all("198.51.100.7" in detail for _, detail in one_client[BURST:]), one_client
    assert [s for s, _ in spoofing] == [429] * 3 and "198.51.100.7" in spoofing[0][1], spoofing
    assert [s for s, _ in direct] == [200] * BURST + [429], direct  # the proxy's own requests: its address
    assert "127.0.0.1" in direct[-1][1], direct
