"""Two ``Authorization`` headers over real HTTP, against a real ``dao serve``: the service does
not guess which one counts (a gateway in front may have checked the other), whatever their
order. The in-process test client folds repeated headers into one, so only a real server and
a raw request show what a client on the wire can send."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from tests.support import make_key
from tests.support.processes import Server, dao_env, deployment

pytestmark = pytest.mark.slow


def post(server: Server, authorizations: list[str]) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("POST", "/v1/treasury/purchases")
        for value in authorizations:
            conn.putheader("Authorization", value)
        body = b"{}"  # the key is checked before the body: a good key gets as far as 400 invalid_body
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, json.loads(r.read())["error"]
    finally:
        conn.close()


def test_several_authorization_headers_are_refused(database_url: str, tmp_path: Path) -> None:
    rt, _ = deployment(database_url, tmp_path)
    good = f"Bearer {make_key(rt, 'operator')}"
    server = Server(dao_env(database_url, tmp_path / "clock"), tmp_path / "serve.log")
    try:
        got = [post(server, pair) for pair in ([good, "Bearer garbage"], ["Bearer garbage", good], [good, good])]
        alone = post(server, [good])
    finally:
        server.stop()
        rt.close()
    assert got == [(401, "invalid_api_key")] * 3, got
    assert alone == (400, "invalid_body"), alone
