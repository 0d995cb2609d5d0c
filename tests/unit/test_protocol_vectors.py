"""The conformance vectors of docs/vectors/ are current, and the project's code gives every value
in them: a change in the code that changes a vector fails here (regenerate the vectors and say
so in docs/protocol.md), and so does a vector file edited by hand."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import msgspec
import pytest

from governance.errors import GovernanceError
from governance.signatures import Envelope, verify_envelope
from governance.typed_data import Domain, TypedDataEncoder, canonical_json, encode_type
from treasury_exec.journal import GENESIS, entry_hash
from treasury_exec.split import split_payment, tokens_for_payment
from voting import merkle
from voting.export import verify_export
from voting.tally import Totals, decide

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors"


def _generator():
    spec = importlib.util.spec_from_file_location("vectors_generate", VECTORS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _b(h: str) -> bytes:
    return bytes.fromhex(h.removeprefix("0x"))


def test_committed_vectors_are_what_the_generator_produces_now() -> None:
    gen = _generator()
    built = gen.build()
    assert sorted(built) == sorted(p.name for p in VECTORS.glob("*.json"))
    for name, doc in built.items():
        assert (VECTORS / name).read_text(encoding="utf-8") == gen.dump(doc), \
            f"docs/vectors/{name} is stale: run .venv/bin/python docs/vectors/generate.py"


def test_the_generator_flags_a_stale_file(tmp_path: Path, monkeypatch) -> None:
    gen = _generator()
    for p in VECTORS.glob("*.json"):
        (tmp_path / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(gen, "OUT", tmp_path)
    assert gen.main(["--check"]) == 0
    doc = json.loads((tmp_path / "merkle.json").read_text(encoding="utf-8"))
    doc["emptyRoot"] = "0x" + "11" * 32
    (tmp_path / "merkle.json").write_text(gen.dump(doc), encoding="utf-8")
    assert gen.main(["--check"]) == 1


def _domain(d: dict) -> Domain:
    return Domain(name=d["name"], version=d["version"], chain_id=d["chainId"], salt=d["salt"])


def test_signing_vectors() -> None:
    v = load("signing.json")
    enc = TypedDataEncoder(_domain(v["domain"]))
    assert enc.domain_separator.hex() == v["domainSeparator"][2:]
    schemes = set()
    for c in v["cases"]:
        assert encode_type(c["type"]) == c["encodeType"]
        assert enc.hash_struct(c["type"], c["message"]).hex() == c["hashStruct"][2:]
        assert canonical_json(enc.domain, c["type"], c["message"]).hex() == c["canonical_hex"]
        verified = verify_envelope(msgspec.convert(c["envelope"], Envelope), enc)
        assert "0x" + verified.digest.hex() == c["digest"]
        schemes.add((c["envelope"]["scheme"], c["type"]))
    assert len(schemes) == 10  # every type, both schemes
    assert {r["expected"].get("code") for r in v["refusals"]} >= {
        "bad_signature", "high_s_signature", "malformed_signature", "invalid_address", "signer_mismatch",
        "invalid_message", "unknown_type"}
    for r in v["refusals"]:
        want = r["expected"]
        if want["accepted"]:
            assert "0x" + verify_envelope(msgspec.convert(r["envelope"], Envelope), enc).digest.hex() == want["digest"]
            continue
        with pytest.raises(GovernanceError) as info:
            verify_envelope(msgspec.convert(r["envelope"], Envelope), enc)
        assert (info.value.status_code, info.value.code) == (want["status"], want["code"]), r["why"]


def test_merkle_vectors() -> None:
    v = load("merkle.json")
    enc = TypedDataEncoder(_domain(v["domain"]))
    assert merkle.root([]).hex() == v["emptyRoot"][2:]
    assert [t["n"] for t in v["ballotTrees"]] == [t["n"] for t in v["holderTrees"]] == [0, 1, 2, 3, 100]
    for t in v["ballotTrees"]:
        for b in t["ballots"]:
            assert "0x" + enc.digest("Vote", b["vote"]).hex() == b["id"]
        ordered = sorted(t["ballots"], key=lambda b: b["voter"])
        assert [b["voter"] for b in ordered] == t["voterOrder"]
        leaves = [merkle.ballot_leaf(b["id"], int(b["weight"])) for b in ordered]
        _check_tree(t, leaves)
    for t in v["holderTrees"]:
        ordered = sorted(t["holders"], key=lambda h: h["address"])
        assert [h["address"] for h in ordered] == t["addressOrder"]
        _check_tree(t, [merkle.holder_leaf(h["address"], int(h["balance"])) for h in ordered])
    for b in v["badProofs"]:
        assert not merkle.verify_proof(_b(b["leaf"]), [_b(p) for p in b["path"]], _b(b["root"]))


def _check_tree(t: dict, leaves: list[bytes]) -> None:
    assert [x.hex() for x in leaves] == t["leaves"]
    assert ["0x" + merkle.leaf_hash(x).hex() for x in leaves] == t["leafHashes"]
    root = merkle.root(leaves)
    assert "0x" + root.hex() == t["root"]
    for p in t["proofs"]:
        path = merkle.inclusion_proof(leaves, p["index"])
        assert ["0x" + s.hex() for s in path] == p["path"]
        assert merkle.verify_proof(_b(p["leaf"]), path, root)


def test_journal_vectors() -> None:
    v = load("journal.json")
    assert v["genesis"] == GENESIS
    prev = GENESIS
    for e in v["entries"]:
        legs = [(p["account"], p["asset"], int(p["amount"])) for p in e["postings"]]
        assert e["prev_hash"] == prev
        assert entry_hash(e["seq"], e["kind"], e["reference"], e["created_at"], e["memo"], prev, legs) == e["hash"]
        assert e["preimage"].isascii() and hashlib.sha256(e["preimage"].encode()).hexdigest() == e["hash"]
        prev = e["hash"]
    assert v["head"] == {"seq": len(v["entries"]), "hash": prev}


def test_arithmetic_vectors() -> None:
    v = load("arithmetic.json")
    for p in v["purchases"]:
        assert str(tokens_for_payment(int(p["payment"]), int(p["price"]), p["decimals"])) == p["tokens"]
    for s in v["splits"]:
        parts = split_payment(int(s["payment"]), s["allocation"])
        assert {b: str(x) for b, x in parts.items()} == s["parts"]
        assert sum(parts.values()) == int(s["payment"])
    for t in v["tallies"]:
        o = decide(Totals(int(t["for"]), int(t["against"]), int(t["abstain"]), 0), supply=int(t["supply"]),
                   quorum_bps=t["quorum_bps"], approval_bps=t["approval_bps"])
        assert (str(o.quorum), o.quorum_reached, o.name) == (t["quorum"], t["quorum_reached"], t["outcome"])


def test_export_vectors() -> None:
    v = load("export.json")
    report = verify_export(v["export"])
    assert report.ok, report.problems
    assert (report.ballots, report.outcome) == (v["expected"]["ballots"], v["expected"]["outcome"])
    assert v["export"]["result"]["merkle_root"] == v["expected"]["merkle_root"]
    assert v["expected"]["tieWinner"] in v["expected"]["counted"]
    assert len(v["doctored"]) >= 5
    for d in v["doctored"]:
        assert not verify_export(d["export"]).ok, d["why"]
