"""Signatures made by an independent signer (Node: ethers and tweetnacl, with its own
canonical JSON) verify here, give the same ids, and stop verifying once a byte changes.

Without node or node_modules this test skips, unless ``DAO_REQUIRE_NODE`` is set (CI), where
it fails instead.
"""

from __future__ import annotations

import copy
import json
import secrets
import subprocess
from pathlib import Path

import base58
import msgspec
import pytest
from eth_account import Account
from nacl.signing import SigningKey

from governance.errors import Forbidden, GovernanceError
from governance.signatures import Envelope, verify_envelope
from governance.typed_data import Domain, TypedDataEncoder, canonical_json, typed_data_document
from tests.support.node import node_with

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "js" / "sign.mjs"
NOW = 1_800_000_000
TRICKY = 'Preis €0,12 ✓ naïve 日本 🚀 "q" \\ \n\t\x01\x7f \u2028 end'  # escapes, non-BMP, U+2028


def node_or_skip() -> str:
    return node_with("the independent signer", *(ROOT / "node_modules" / m for m in ("ethers", "tweetnacl", "bs58")))


def messages(who: str, recipient: str, proposal: str) -> list[tuple[str, dict]]:
    return [
        ("PriceChange", {"proposer": who, "title": TRICKY, "description": "naïve 日本", "price": "120000",
                         "timestamp": NOW}),
        ("AllocationChange", {"proposer": who, "title": "split", "description": "", "timestamp": NOW,
                              "shares": [{"bucket": "compute", "bps": 6000}, {"bucket": "trésor", "bps": 4000}]}),
        ("AllocationChange", {"proposer": who, "title": "empty", "description": "d", "timestamp": NOW,
                              "shares": []}),
        ("TreasurySpend", {"proposer": who, "title": "grant", "description": TRICKY, "bucket": "community",
                           "asset": "USDC", "recipient": recipient, "amount": str(2**256 - 1), "timestamp": NOW}),
        ("Vote", {"voter": who, "proposal": proposal, "choice": 2, "reason": TRICKY, "timestamp": NOW}),
        ("Cancel", {"signer": who, "proposal": proposal, "timestamp": NOW}),
    ]


def run_signer(node: str, domain: Domain, items: list[dict]) -> list[dict]:
    # the types exactly as GET /v1/signing serves them: the signer trims them as a client would
    job = {"domain": domain.as_json(), "types": typed_data_document(domain)["types"], "items": items}
    run = subprocess.run([node, str(SCRIPT)], input=json.dumps(job), capture_output=True, text=True,
                         encoding="utf-8", cwd=ROOT, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def flip_signature(envelope: dict) -> dict:
    out = copy.deepcopy(envelope)
    if envelope["scheme"] == "eip712":
        raw = bytearray(bytes.fromhex(envelope["signature"][2:]))
        raw[10] ^= 0x01  # a byte of r
        out["signature"] = "0x" + raw.hex()
    else:
        raw = bytearray(base58.b58decode(envelope["signature"]))
        raw[40] ^= 0x01  # a byte of S
        out["signature"] = base58.b58encode(bytes(raw)).decode()
    return out


def test_node_signatures_verify_and_break_on_any_byte() -> None:
    node = node_or_skip()
    domain = Domain(name="AST DAO ✓", chain_id=31337, salt="0x" + secrets.token_hex(32))
    encoder = TypedDataEncoder(domain)
    acct, seed = Account.create(), SigningKey.generate()
    sol = base58.b58encode(bytes(seed.verify_key)).decode()
    proposal = "0x" + secrets.token_hex(32)
    items = [{"scheme": "eip712", "privateKey": "0x" + bytes(acct.key).hex(), "primaryType": t, "message": m}
             for t, m in messages(acct.address, sol, proposal)]
    items += [{"scheme": "ed25519", "privateKey": bytes(seed).hex(), "primaryType": t, "message": m}
              for t, m in messages(sol, acct.address, proposal)]
    signed = run_signer(node, domain, items)
    assert len(signed) == len(items) == 12
    assert {(e["scheme"], e["type"]) for e in signed} == {(i["scheme"], i["primaryType"]) for i in items}

    for item, envelope in zip(items, signed, strict=True):
        ethers_digest = envelope.pop("digest")
        canonical = envelope.pop("canonical", None)
        assert envelope["message"] == item["message"]
        if canonical is not None:  # the JS canonical JSON is byte-identical to ours
            assert canonical.encode() == canonical_json(domain, envelope["type"], envelope["message"])
        v = verify_envelope(msgspec.convert(envelope, Envelope), encoder)
        assert v.signer == (acct.address if envelope["scheme"] == "eip712" else sol)
        assert "0x" + v.digest.hex() == ethers_digest  # ethers computes the same record id

        with pytest.raises(Forbidden) as info:
            verify_envelope(msgspec.convert(flip_signature(envelope), Envelope), encoder)
        assert info.value.code == "bad_signature"
        for field in envelope["message"]:  # every field is covered by the signature
            changed = copy.deepcopy(envelope)
            value = changed["message"][field]
            if field == "shares":
                changed["message"][field] = value[:-1] if value else [{"bucket": "compute", "bps": 1}]
            elif isinstance(value, int):
                changed["message"][field] = value - 1
            elif value.startswith("0x") and field == "proposal":
                changed["message"][field] = "0x" + ("00" if value[2:4] != "00" else "01") + value[4:]
            elif field in ("price", "amount"):
                changed["message"][field] = str(int(value) - 1)
            else:
                changed["message"][field] = value + "x"
            with pytest.raises(GovernanceError) as info:
                verify_envelope(msgspec.convert(changed, Envelope), encoder)
            signer_field = field in ("proposer", "voter", "signer")
            assert info.value.code == ("signer_mismatch" if signer_field else "bad_signature"), field


def test_node_signatures_for_another_deployment_fail() -> None:
    node = node_or_skip()
    here = Domain(name="AST DAO", chain_id=31337, salt="0x" + secrets.token_hex(32))
    acct, seed = Account.create(), SigningKey.generate()
    sol = base58.b58encode(bytes(seed.verify_key)).decode()
    vote = {"proposal": "0x" + "ab" * 32, "choice": 1, "reason": "", "timestamp": NOW}
    for other in (Domain(name=here.name, chain_id=1, salt=here.salt),
                  Domain(name=here.name, chain_id=here.chain_id, salt="0x" + secrets.token_hex(32))):
        items = [{"scheme": "eip712", "privateKey": "0x" + bytes(acct.key).hex(), "primaryType": "Vote",
                  "message": vote | {"voter": acct.address}},
                 {"scheme": "ed25519", "privateKey": bytes(seed).hex(), "primaryType": "Vote",
                  "message": vote | {"voter": sol}}]
        for envelope in run_signer(node, other, items):
            envelope.pop("digest"), envelope.pop("canonical", None)
            with pytest.raises(Forbidden) as info:
                verify_envelope(msgspec.convert(envelope, Envelope), TypedDataEncoder(here))
            assert info.value.code == "bad_signature"


def test_signer_reports_bad_jobs() -> None:
    node = node_or_skip()
    run = subprocess.run([node, str(SCRIPT)], input="{not json", capture_output=True, text=True, cwd=ROOT,
                         timeout=60, check=False)
    assert run.returncode == 1 and "sign.mjs" in run.stderr


def test_missing_node_skips_only_when_not_required(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)  # a tree without node_modules
    monkeypatch.delenv("DAO_REQUIRE_NODE", raising=False)
    with pytest.raises(pytest.skip.Exception):
        node_or_skip()
    monkeypatch.setenv("DAO_REQUIRE_NODE", "1")
    with pytest.raises(pytest.fail.Exception, match="DAO_REQUIRE_NODE"):
        node_or_skip()
