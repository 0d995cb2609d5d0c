"""A JSON-RPC proxy in front of anvil that answers as a load-balanced RPC with a backend behind
the others would, for chain tests (real HTTP, real node behind it).

- ``lag`` blocks, every ``every``-th answer: ``eth_getTransactionReceipt`` of a transaction
  mined in the last ``lag`` blocks is answered with null (the lagging backend has not seen its
  block yet). ``every=2`` alternates, as a round-robin balancer over two backends does.
- ``keep_state`` blocks: ``eth_getTransactionCount`` and ``eth_getBalance`` at a block older
  than the last ``keep_state`` answer "missing trie node", as a node that is not an archive
  node does (geth keeps the state of about the last 128 blocks).

Everything else goes to anvil unchanged. ``lagged`` and ``pruned`` count the answers changed.
- ``pending_bonus``: ``eth_getTransactionCount`` at ``"pending"`` says that many more than the
  node holds (a mempool of another backend, or a node that is simply wrong).

``on_call(method)``, when set, runs before each request is answered (a test's probe of what the
service holds while it waits for the node: :class:`LockProbe`).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

_STATE_READS = {"eth_getTransactionCount", "eth_getBalance"}


class LaggingRpc:
    def __init__(self, upstream: str, *, lag: int = 0, every: int = 2, keep_state: int | None = None,
                 pending_bonus: int = 0) -> None:
        self.upstream = upstream
        self.lag, self.every, self.keep_state = lag, every, keep_state
        self.pending_bonus = pending_bonus
        self.lagged = self.pruned = 0
        self.on_call: Callable[[str], None] | None = None
        self._receipts = itertools.count()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                data = json.dumps(proxy.answer(body)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, body: Any) -> Any:
        req = urllib.request.Request(self.upstream, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def _head(self) -> int:
        return int(self._forward({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})["result"], 16)

    def answer(self, body: Any) -> Any:
        if not isinstance(body, dict):
            return self._forward(body)
        method, params = body.get("method"), body.get("params") or []
        if self.on_call is not None:
            self.on_call(str(method))
        if method in _STATE_READS and self.keep_state is not None and len(params) > 1 \
                and str(params[1]).startswith("0x") and int(params[1], 16) < self._head() - self.keep_state:
            with self._lock:
                self.pruned += 1
            return {"jsonrpc": "2.0", "id": body.get("id"),
                    "error": {"code": -32000, "message": "missing trie node (state is not available)"}}
        out = self._forward(body)
        if method == "eth_getTransactionCount" and len(params) > 1 and params[1] == "pending" \
                and self.pending_bonus and isinstance(out.get("result"), str):
            out["result"] = hex(int(out["result"], 16) + self.pending_bonus)
        if method == "eth_getTransactionReceipt" and isinstance(out.get("result"), dict) and self.lag > 0:
            with self._lock:
                turn = next(self._receipts) % self.every == self.every - 1
            if turn and int(out["result"]["blockNumber"], 16) > self._head() - self.lag:
                with self._lock:
                    self.lagged += 1
                return {"jsonrpc": "2.0", "id": body.get("id"), "result": None}
        return out


class LockProbe:
    """Whether the service holds a database lock at the moment it asks the node something: on
    SQLite, whether another connection can take the write lock at once (``BEGIN IMMEDIATE``
    with no wait); on PostgreSQL, whether a session of the test's database has a transaction
    id (any row lock or write takes one; a read-only transaction has none). ``calls`` lists
    every method asked, ``held`` those asked under a lock."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.calls: list[str] = []
        self.held: list[str] = []

    def __call__(self, method: str) -> None:
        self.calls.append(method)
        if self._locked():
            self.held.append(method)

    def _locked(self) -> bool:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:  # "database is locked"
                return True
            finally:
                conn.close()
        with psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()").fetchone()
            return bool(row and row[0])
