"""Signatures made by an independent signer (Node: ethers and tweetnacl, with its own
canonical JSON) verify here, and stop verifying once a byte changes."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import base58
import msgspec
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from nacl.signing import SigningKey

from governance.errors import GovernanceError
from governance.signatures import Envelope, verify_envelope
from governance.typed_data import EIP712_DOMAIN_TYPE, TYPES, Domain, TypedDataEncoder, canonical_json

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "js" / "sign.mjs"


def node_or_skip() -> str:
    node = shutil.which("node")
    if node and (ROOT / "node_modules" / "ethers").is_dir() and (ROOT / "node_modules" / "tweetnacl").is_dir():
        return node
    if os.environ.get("DAO_REQUIRE_NODE") == "1":
        pytest.fail("DAO_REQUIRE_NODE=1 but node or node_modules (ethers, tweetnacl) are missing: run npm install")
    pytest.skip("node and node_modules are needed for the independent signer (npm install)")


def messages(evm: str, sol: str, proposal: str, now: int) -> list[tuple[str, str, dict]]:
    out = []
    for scheme, who in (("eip712", evm), ("ed25519", sol)):
        out += [
            (scheme, "PriceChange", {"proposer": who, "title": "Preis €0,12 ✓", "description": "naïve 日本",
                                     "price": "120000", "timestamp": now}),
            (scheme, "AllocationChange", {"proposer": who, "title": "t", "description": "", "timestamp": now,
                                          "shares": [{"bucket": "compute", "bps": 6000},
                                                     {"bucket": "treasury", "bps": 4000}]}),
            (scheme, "TreasurySpend", {"proposer": who, "title": "grant", "description": "d", "bucket": "community",
                                       "asset": "USD", "recipient": evm, "amount": str(2**256 - 1),
                                       "timestamp": now}),
            (scheme, "Vote", {"voter": who, "proposal": proposal, "choice": 2, "reason": "ok \"quoted\"",
                              "timestamp": now}),
            (scheme, "Cancel", {"signer": who, "proposal": proposal, "timestamp": now}),
        ]
    return out


def test_node_signatures_verify_and_break_on_any_byte() -> None:
    node = node_or_skip()
    domain = Domain(name="AST DAO", chain_id=31337, salt="0x" + secrets.token_hex(32))
    encoder = TypedDataEncoder(domain)
    acct = Account.create()
    seed = SigningKey.generate()
    sol = base58.b58encode(bytes(seed.verify_key)).decode()
    proposal = "0x" + secrets.token_hex(32)
    now = 1_800_000_000
    items = [{"scheme": s, "primaryType": t, "message": m,
              "privateKey": acct.key.hex() if s == "eip712" else bytes(seed).hex()}
             for s, t, m in messages(acct.address, sol, proposal, now)]
    job = {"domain": domain.as_json(), "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **TYPES}, "items": items}
    run = subprocess.run([node, str(SCRIPT)], input=json.dumps(job), capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    signed = json.loads(run.stdout)
    assert len(signed) == 10
    for env in signed:
        canonical = env.pop("canonical", None)
        if canonical is not None:  # the JS canonical JSON is byte-identical to ours
            assert canonical.encode() == canonical_json(domain, env["type"], env["message"])
        v = verify_envelope(msgspec.convert(env, Envelope), encoder)
        assert v.signer == (to_checksum_address(acct.address) if env["scheme"] == "eip712" else sol)
        # one changed signature byte, and one changed message field, each fail
        bad_sig = dict(env)
        if env["scheme"] == "eip712":
            raw = bytearray(bytes.fromhex(env["signature"][2:]))
            raw[10] ^= 0x01
            bad_sig["signature"] = "0x" + raw.hex()
        else:
            raw = bytearray(base58.b58decode(env["signature"]))
            raw[10] ^= 0x01
            bad_sig["signature"] = base58.b58encode(bytes(raw)).decode()
        with pytest.raises(GovernanceError) as info:
            verify_envelope(msgspec.convert(bad_sig, Envelope), encoder)
        assert info.value.code in ("bad_signature", "high_s_signature", "malformed_signature")
        bad_msg = json.loads(json.dumps(env))
        bad_msg["message"]["timestamp"] += 1
        with pytest.raises(GovernanceError) as info:
            verify_envelope(msgspec.convert(bad_msg, Envelope), encoder)
        assert info.value.code == "bad_signature"
