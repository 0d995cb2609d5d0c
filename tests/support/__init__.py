"""Test helpers: real wallets that sign envelopes, and shortcuts to set up holders.

Fixtures (databases, ``runtime``, ``client``, API keys) are in tests/conftest.py; the ``dao``
processes a test starts, and the servers it talks to, are in tests/support/processes.py;
chain deployment settings in tests/support/chain.py; node and the npm tools in
tests/support/node.py.

EVM wallets sign with eth-account's own EIP-712 implementation (not the server's encoder);
Solana wallets sign the canonical JSON with PyNaCl. The Node signer (tests/js) is the
fully independent check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import base58
from eth_account import Account
from nacl.signing import SigningKey

from governance.runtime import Runtime
from governance.typed_data import TYPES, Domain


def _referenced(primary: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    todo = [primary]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out[name] = TYPES[name]
        for f in TYPES[name]:
            base = f["type"].removesuffix("[]")
            if base in TYPES:
                todo.append(base)
    return out


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Wallet:
    scheme: str
    address: str
    _key: Any = field(repr=False)

    @classmethod
    def evm(cls) -> Wallet:
        acct = Account.create()
        return cls("eip712", acct.address, acct)

    @classmethod
    def solana(cls, digits: int | None = None) -> Wallet:
        """A new Solana wallet; ``digits``: one whose address has that many base58 digits (43 or
        44; one key in ~17 has 43, and only those leave room for a trailing character)."""
        while True:
            sk = SigningKey.generate()
            address = base58.b58encode(bytes(sk.verify_key)).decode()
            if digits is None or len(address) == digits:
                return cls("ed25519", address, sk)

    def sign(self, domain: Domain, primary: str, message: dict[str, Any]) -> dict[str, Any]:
        """The envelope a wallet would send."""
        if self.scheme == "eip712":
            types = {"EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "salt", "type": "bytes32"},
            ], **_referenced(primary)}
            msg = {k: (int(v) if _is_uint256(primary, k) else v) for k, v in message.items()}
            full = {"types": types, "primaryType": primary, "domain": domain.as_json(), "message": msg}
            signed = Account.sign_typed_data(self._key.key, full_message=full)
            sig = "0x" + signed.signature.hex().removeprefix("0x")
        else:
            doc = {"domain": domain.as_json(), "message": message, "type": primary}
            sig = base58.b58encode(self._key.sign(canonical(doc)).signature).decode()
        return {"type": primary, "scheme": self.scheme, "signer": self.address, "signature": sig,
                "message": message}


def _is_uint256(primary: str, name: str) -> bool:
    return any(f["name"] == name and f["type"] == "uint256" for f in TYPES[primary])


def proposal_message(kind: str, proposer: str, now: int, **fields: Any) -> dict[str, Any]:
    base = {"proposer": proposer, "title": fields.pop("title", f"{kind} proposal"),
            "description": fields.pop("description", "why this matters"), "timestamp": now}
    if kind == "PriceChange":
        base["price"] = str(fields.pop("price", 120_000))
    elif kind == "AllocationChange":
        base["shares"] = fields.pop("shares", [
            {"bucket": "compute", "bps": 4000}, {"bucket": "development", "bps": 2500},
            {"bucket": "treasury", "bps": 1500}, {"bucket": "buybacks", "bps": 1500},
            {"bucket": "community", "bps": 500}])
    elif kind == "TreasurySpend":
        base |= {"bucket": fields.pop("bucket", "community"), "asset": fields.pop("asset", "USD"),
                 "recipient": fields.pop("recipient", proposer), "amount": str(fields.pop("amount", 1000))}
    base.update(fields)
    return base


def vote_message(voter: str, proposal: str, choice: int, now: int, reason: str = "") -> dict[str, Any]:
    return {"voter": voter, "proposal": proposal, "choice": choice, "reason": reason, "timestamp": now}


def cancel_message(signer: str, proposal: str, now: int) -> dict[str, Any]:
    return {"signer": signer, "proposal": proposal, "timestamp": now}


TOKEN = 10**18
PRICE = 100_000  # micro-USD per whole token at the default price
START = 1_800_000_000  # a fixed "now" for the settable clock (2027-01-15)


def make_key(runtime: Runtime, role: str) -> str:
    """A new API key with ``role`` (operator, executor, guardian), as ``dao keys create`` makes it."""
    from governance.db import session_scope
    from governance.keys import create_key

    with session_scope(runtime.engine) as session:
        return create_key(session, role, now=runtime.clock.now()).key


class Gov:
    """Drives a deployment through its HTTP API the way holders and operators do."""

    def __init__(self, client, runtime, operator_key: str):
        self.client, self.runtime, self.operator_key = client, runtime, operator_key
        self._refs = 0

    @property
    def now(self) -> int:
        return self.runtime.clock.now()

    @property
    def domain(self) -> Domain:
        return self.runtime.domain

    def advance(self, seconds: int) -> int:
        return self.runtime.clock.advance(seconds)

    def buy(self, wallet: Wallet, tokens: int) -> dict[str, Any]:
        """Buy ``tokens`` whole tokens at the default price."""
        self._refs += 1
        r = self.client.post("/v1/treasury/purchases", headers={"Authorization": f"Bearer {self.operator_key}"},
                             json={"buyer": wallet.address, "payment": tokens * PRICE,
                                   "reference": f"test-{self._refs}-{wallet.address[:10]}"})
        assert r.status_code == 201, r.text
        return r.json()

    def propose(self, wallet: Wallet, kind: str = "PriceChange", **fields: Any):
        msg = proposal_message(kind, wallet.address, self.now, **fields)
        return self.client.post("/v1/proposals", json=wallet.sign(self.domain, kind, msg))

    def proposal(self, wallet: Wallet, kind: str = "PriceChange", **fields: Any) -> str:
        r = self.propose(wallet, kind, **fields)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def vote(self, wallet: Wallet, proposal_id: str, choice: int, *, timestamp: int | None = None,
             reason: str = ""):
        msg = vote_message(wallet.address, proposal_id, choice, timestamp if timestamp is not None else self.now,
                           reason)
        return self.client.post("/v1/votes", json=wallet.sign(self.domain, "Vote", msg))

    def get(self, proposal_id: str) -> dict[str, Any]:
        r = self.client.get(f"/v1/proposals/{proposal_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def tick(self) -> dict[str, int]:
        """One scheduler run, in this process."""
        from governance.scheduler import run_once

        return run_once(self.runtime)
