"""``dao demo``: a deployment with a few holders who bought tokens, ready to sign with.

The demo goes through the public HTTP API, as an operator would: it imports no domain.
Its keys are kept in ``<database dir>/demo-keys.json`` so a second run reuses the same
holders (and the purchases replay idempotently instead of minting twice).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import base58
from eth_account import Account
from nacl.signing import SigningKey
from sqlalchemy.engine import make_url

from governance.db import normalize_url, session_scope
from governance.keys import create_key
from governance.runtime import Runtime
from governance.setup import initialise

HOLDERS = (("alice", "eip712", 2_000_000_000), ("bob", "eip712", 750_000_000), ("carol", "ed25519", 400_000_000))


def _keys_file(rt: Runtime) -> Path:
    url = make_url(normalize_url(rt.settings.database_url))
    base = Path(url.database).parent if url.get_backend_name() == "sqlite" and url.database else Path("data")
    return base / "demo-keys.json"


def _new_holder(name: str, scheme: str) -> dict[str, str]:
    if scheme == "eip712":
        acct = Account.create()
        return {"name": name, "scheme": scheme, "address": acct.address, "private_key": acct.key.hex()}
    sk = SigningKey.generate()
    return {"name": name, "scheme": scheme, "address": base58.b58encode(bytes(sk.verify_key)).decode(),
            # the 64-byte secret key as Solana wallets export it (seed ‖ public key)
            "private_key": base58.b58encode(bytes(sk) + bytes(sk.verify_key)).decode(),
            "seed_hex": bytes(sk).hex()}


def setup_demo(rt: Runtime, echo: Callable[[str], Any] = print, *, base_url: str | None = None) -> dict[str, Any]:
    """Initialise the deployment, create (or reuse) demo holders and an operator key, and
    record each holder's purchase through ``POST /v1/treasury/purchases``."""
    from litestar.testing import TestClient

    from governance.app import create_app

    deployment, _ = initialise(rt)
    path = _keys_file(rt)
    state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if state.get("salt") != deployment.salt:  # a new database: new demo identities
        state = {"salt": deployment.salt, "holders": [_new_holder(n, s) for n, s, _ in HOLDERS]}
        with session_scope(rt.engine) as session:
            state["operator_key"] = create_key(session, "operator", label="demo", now=rt.clock.now()).key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)
    payments = {n: p for n, _, p in HOLDERS}
    with TestClient(app=create_app(runtime=rt)) as client:
        for h in state["holders"]:
            r = client.post("/v1/treasury/purchases", headers={"Authorization": f"Bearer {state['operator_key']}"},
                            json={"buyer": h["address"], "payment": payments[h["name"]],
                                  "reference": f"demo-{h['name']}-{state['salt'][:10]}"})
            if r.status_code not in (200, 201):
                raise RuntimeError(f"demo purchase for {h['name']} failed: {r.status_code} {r.text}")
            h["tokens"] = r.json()["tokens"]
        treasury = client.get("/v1/treasury").json()
    _print(rt, state, treasury, path, echo, base_url or f"http://{rt.settings.host}:{rt.settings.port}")
    return state


def _print(rt: Runtime, state: dict[str, Any], treasury: dict[str, Any], path: Path,
           echo: Callable[[str], Any], base: str) -> None:
    s = rt.settings
    echo("")
    echo(f"  {s.dao_name} demo  (chain id {s.chain_id}, salt {state['salt']})")
    echo(f"  database  {s.database_url}")
    echo(f"  keys      {path}  (demo only: never use these keys for real funds)")
    echo("")
    echo("  holders (each bought AST at $0.10):")
    for h in state["holders"]:
        whole = int(h["tokens"]) / 10**s.token_decimals
        echo(f"    {h['name']:<6} {h['scheme']:<8} {h['address']}")
        echo(f"           {whole:,.0f} {s.token_symbol}   private key: {h['private_key']}")
    echo("")
    echo(f"  operator API key: {state['operator_key']}")
    echo(f"  treasury buckets (micro-USD): {treasury.get('buckets')}")
    echo("")
    echo(f"  API        {base}/v1/dao   {base}/v1/treasury   {base}/v1/signing")
    echo(f"  API docs   {base}/schema/swagger")
    echo(f"  voting     opens {s.voting_delay} s after a proposal, lasts {s.voting_period} s; "
         f"timelock {s.timelock} s; the scheduler runs every {s.scheduler_interval} s")
    echo("")

