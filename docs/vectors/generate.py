"""Conformance vectors for docs/protocol.md, computed by the project's own code.

    .venv/bin/python docs/vectors/generate.py          # rewrites docs/vectors/*.json
    .venv/bin/python docs/vectors/generate.py --check  # exit 1 if a committed file differs

Deterministic: fixed keys, fixed timestamps, fixed shuffles (EIP-712 signatures are RFC 6979
deterministic, ed25519 signatures always are). tests/unit/test_protocol_vectors.py checks that
the committed files equal what this produces now, so a change in the code that changes a
vector fails there; tests/js/protocol/ reproduces every vector independently, from the document.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import base58
from eth_account import Account
from nacl.signing import SigningKey

from governance.errors import GovernanceError
from governance.hashing import keccak
from governance.signatures import Envelope, HALF_N, SECP256K1_N, verify_envelope
from governance.typed_data import (
    EIP712_DOMAIN_TYPE,
    TYPES,
    Domain,
    TypedDataEncoder,
    canonical_json,
    encode_type,
    typed_data_document,
)
from treasury_exec.journal import GENESIS, entry_hash
from treasury_exec.split import split_payment, tokens_for_payment
from voting import merkle
from voting.export import FORMAT, verify_export
from voting.tally import BallotRecord, count, decide, effective_ballots, quorum_needed

OUT = Path(__file__).resolve().parent
DOMAIN = Domain(name="AST DAO ✓", chain_id=31337, salt="0x" + hashlib.sha256(b"ast-governance vectors salt").hexdigest())
OTHER_DOMAIN = Domain(name=DOMAIN.name, chain_id=DOMAIN.chain_id,
                      salt="0x" + hashlib.sha256(b"another deployment").hexdigest())
ENC = TypedDataEncoder(DOMAIN)
NOW = 1_800_000_000
TRICKY = 'Preis €0,12 ✓ naïve 日本 🚀 "q" \\ / \n\t\r\b\f\x01\x1f\x7f \u2028\u2029 end'
PROPOSAL = "0x" + keccak(b"a proposal id").hex()


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


class Evm:
    """A fixed secp256k1 key."""

    def __init__(self, i: int):
        self.key = keccak(f"ast-governance vectors evm key {i}".encode())
        self.address = Account.from_key(self.key).address

    def sign(self, digest: bytes) -> str:
        return _hex(bytes(Account.unsafe_sign_hash(digest, self.key).signature))


class Sol:
    """A fixed ed25519 key (a Solana wallet)."""

    def __init__(self, i: int):
        self.key = SigningKey(hashlib.sha256(f"ast-governance vectors solana seed {i}".encode()).digest())
        self.address = base58.b58encode(bytes(self.key.verify_key)).decode()

    def sign(self, payload: bytes) -> str:
        return base58.b58encode(self.key.sign(payload).signature).decode()


def envelope(wallet: Evm | Sol, primary: str, message: dict[str, Any], domain: Domain = DOMAIN) -> dict[str, Any]:
    """A signed envelope, as a client sends it."""
    if isinstance(wallet, Evm):
        sig = wallet.sign(TypedDataEncoder(domain).digest(primary, message))
        return {"type": primary, "scheme": "eip712", "signer": wallet.address, "signature": sig, "message": message}
    sig = wallet.sign(canonical_json(domain, primary, message))
    return {"type": primary, "scheme": "ed25519", "signer": wallet.address, "signature": sig, "message": message}


def messages(who: str, other: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("PriceChange", {"proposer": who, "title": "Price to $0.12", "description": TRICKY, "price": "120000",
                         "timestamp": NOW}),
        ("AllocationChange", {"proposer": who, "title": "Split", "description": "",
                              "shares": [{"bucket": "compute", "bps": 5500}, {"bucket": "development", "bps": 2000},
                                         {"bucket": "treasury", "bps": 1500}, {"bucket": "buybacks", "bps": 500},
                                         {"bucket": "community", "bps": 500}], "timestamp": NOW}),
        ("AllocationChange", {"proposer": who, "title": "no shares", "description": "d", "shares": [],
                              "timestamp": NOW}),
        ("TreasurySpend", {"proposer": who, "title": "Grant ✓", "description": "naïve 日本", "bucket": "community",
                           "asset": "USD", "recipient": other, "amount": str(2**256 - 1), "timestamp": NOW}),
        ("Vote", {"voter": who, "proposal": PROPOSAL, "choice": 2, "reason": TRICKY, "timestamp": NOW}),
        ("Cancel", {"signer": who, "proposal": PROPOSAL, "timestamp": NOW}),
    ]


# --------------------------------------------------------------------------------------- signing

def signing() -> dict[str, Any]:
    evm, sol = Evm(0), Sol(0)
    cases = []
    for wallet, other in ((evm, sol), (sol, evm)):
        for primary, message in messages(wallet.address, other.address):
            canonical = canonical_json(DOMAIN, primary, message)
            cases.append({
                "type": primary, "message": message,
                "encodeType": encode_type(primary),
                "typeHash": _hex(ENC.type_hashes[primary]),
                "hashStruct": _hex(ENC.hash_struct(primary, message)),
                "digest": _hex(ENC.digest(primary, message)),
                "canonical_hex": canonical.hex(),
                "envelope": envelope(wallet, primary, message),
            })
    domain_type = "EIP712Domain(" + ",".join(f"{f['type']} {f['name']}" for f in EIP712_DOMAIN_TYPE) + ")"
    return {
        "about": "EIP-712 typed-data digests (the record ids), the ed25519 canonical JSON and signed "
                 "envelopes of both schemes for every message type (docs/protocol.md, Signing); "
                 "then envelopes that must be refused, with the status and code.",
        "domain": DOMAIN.as_json(),
        "types": typed_data_document(DOMAIN)["types"],
        "eip712DomainType": domain_type,
        "eip712DomainTypeHash": _hex(keccak(domain_type.encode())),
        "domainSeparator": _hex(ENC.domain_separator),
        "keys": {"eip712": [{"privateKey": _hex(evm.key), "address": evm.address}],
                 "ed25519": [{"seed": bytes(sol.key).hex(), "address": sol.address}]},
        "cases": cases,
        "refusals": refusals(evm, sol),
    }


def refusals(evm: Evm, sol: Sol) -> list[dict[str, Any]]:
    """Envelopes that must be refused, and ones that must be accepted though they look odd."""
    vote = {"voter": evm.address, "proposal": PROPOSAL, "choice": 1, "reason": "", "timestamp": NOW}
    good = envelope(evm, "Vote", vote)
    sol_good = envelope(sol, "Vote", vote | {"voter": sol.address})
    raw = bytes.fromhex(good["signature"][2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    assert s <= HALF_N
    flipped = bytearray(raw)
    flipped[40] ^= 0x01  # a byte of s: still low, still well formed, a different signature
    out: list[tuple[str, dict[str, Any]]] = [
        ("v as 0 or 1 is accepted as 27 or 28", good | {"signature": _hex(r + raw[32:64] + bytes([v - 27]))}),
        ("a byte of the signature changed", good | {"signature": _hex(bytes(flipped))}),
        ("the high-s twin of a valid signature", good | {
            "signature": _hex(r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]))}),
        ("v is 29", good | {"signature": _hex(raw[:64] + bytes([29]))}),
        ("the signature is 64 bytes", good | {"signature": _hex(raw[:64])}),
        ("the signer in lower case", good | {"signer": good["signer"].lower(),
                                             "message": vote | {"voter": good["signer"].lower()}}),
        ("the envelope's signer is not the message's voter", good | {"signer": Evm(1).address}),
        ("signed for another deployment (salt)", envelope(evm, "Vote", vote, OTHER_DOMAIN)),
        ("a message field the type does not have", good | {"message": vote | {"extra": 1}}),
        ("a message field missing", good | {"message": {k: x for k, x in vote.items() if k != "reason"}}),
        ("a uint256 with a leading zero", envelope(evm, "PriceChange", messages(evm.address, sol.address)[0][1])
         | {"message": messages(evm.address, sol.address)[0][1] | {"price": "0120000"}}),
        ("a uint8 out of range", good | {"message": vote | {"choice": 256}}),
        ("a bytes32 in upper case", good | {"message": vote | {"proposal": PROPOSAL.upper().replace("0X", "0x")}}),
        ("an unknown type", good | {"type": "Ballot"}),
        ("the scheme does not fit the signer", good | {"scheme": "ed25519"}),
        ("ed25519 signed for another deployment", envelope(sol, "Vote", vote | {"voter": sol.address},
                                                           OTHER_DOMAIN)),
        ("an ed25519 signature with a trailing space", sol_good | {"signature": sol_good["signature"] + " "}),
        ("an ed25519 signer with a leading 1 too many", sol_good | {
            "signer": "1" + sol.address, "message": sol_good["message"] | {"voter": "1" + sol.address}}),
    ]
    cases = []
    for why, env in out:
        try:
            v_ = verify_envelope(Envelope(**env), ENC)
            expected: dict[str, Any] = {"accepted": True, "digest": _hex(v_.digest)}
        except GovernanceError as exc:
            expected = {"accepted": False, "status": exc.status_code, "code": exc.code}
        cases.append({"why": why, "envelope": env, "expected": expected})
    return cases


# ---------------------------------------------------------------------------------------- merkle

def wallets(n: int) -> list[Evm | Sol]:
    """n wallets, Ethereum and Solana alternating."""
    return [Evm(100 + i) if i % 2 == 0 else Sol(100 + i) for i in range(n)]


def tree(leaves: list[bytes], proof_at: list[int]) -> dict[str, Any]:
    r = merkle.root(leaves)
    proofs = []
    for i in proof_at:
        path = merkle.inclusion_proof(leaves, i)
        assert merkle.verify_proof(leaves[i], path, r)
        proofs.append({"index": i, "leaf": leaves[i].hex(), "path": [_hex(p) for p in path]})
    return {"leaves": [x.hex() for x in leaves], "leafHashes": [_hex(merkle.leaf_hash(x)) for x in leaves],
            "root": _hex(r), "proofs": proofs}


def proof_indices(n: int) -> list[int]:
    return list(range(n)) if n <= 3 else [0, 1, 37, n - 5, n - 2, n - 1]


def merkle_vectors() -> dict[str, Any]:
    ballots, holders = [], []
    for n in (0, 1, 2, 3, 100):
        rng = random.Random(n)
        ws = wallets(n)
        rows = []
        for i, w in enumerate(ws):
            msg = {"voter": w.address, "proposal": PROPOSAL, "choice": i % 3, "reason": "", "timestamp": NOW + i}
            rows.append({"voter": w.address, "id": _hex(ENC.digest("Vote", msg)), "weight": str(10**18 * (i + 1) + i),
                         "vote": msg})
        rng.shuffle(rows)  # given in any order: the tree's order is the voters'
        ordered = sorted(rows, key=lambda b: b["voter"])
        leaves = [merkle.ballot_leaf(b["id"], int(b["weight"])) for b in ordered]
        ballots.append({"n": n, "ballots": rows, "voterOrder": [b["voter"] for b in ordered]}
                       | tree(leaves, proof_indices(n)))
        listed = [{"address": w.address, "balance": str(7 * 10**20 + 3 * i)} for i, w in enumerate(ws)]
        rng.shuffle(listed)
        by_address = sorted(listed, key=lambda h: h["address"])
        leaves = [merkle.holder_leaf(h["address"], int(h["balance"])) for h in by_address]
        holders.append({"n": n, "holders": listed, "addressOrder": [h["address"] for h in by_address]}
                       | tree(leaves, proof_indices(n)))
    order = ballots[-1]["voterOrder"]
    # the 100-leaf trees exercise the order: byte order, not case-insensitive order, and every
    # Ethereum address before every Solana address
    assert order != sorted(order, key=str.lower)
    assert all(a.startswith("0x") for a in order[:50]) and not any(a.startswith("0x") for a in order[50:])
    big = ballots[-1]
    wrong = copy.deepcopy(big["proofs"][2])
    wrong["leaf"] = wrong["leaf"][:-2] + format((int(wrong["leaf"][-2:], 16) + 1) % 256, "02x")  # weight + 1
    bad = [{"why": "the weight in the leaf raised by one", "root": big["root"]} | wrong,
           {"why": "the path's last step left out", "root": big["root"]} | big["proofs"][2]
           | {"path": big["proofs"][2]["path"][:-1]}]
    for case in bad:
        assert not merkle.verify_proof(bytes.fromhex(case["leaf"]), [bytes.fromhex(p[2:]) for p in case["path"]],
                                       bytes.fromhex(case["root"][2:]))
    return {"about": "Merkle trees over counted ballots and over holder lists (docs/protocol.md, Merkle tree): "
                     "the inputs in any order, the order of the leaves, each leaf's bytes (hex), its hash, the "
                     "root, and inclusion proofs; then proofs that must fail.",
            "domain": DOMAIN.as_json(), "emptyRoot": _hex(merkle.EMPTY_ROOT),
            "ballotTrees": ballots, "holderTrees": holders, "badProofs": bad}


# --------------------------------------------------------------------------------------- journal

def journal_vectors() -> dict[str, Any]:
    buyer, other = Evm(200).address, Sol(201).address
    allocation = {"compute": 5000, "development": 2000, "treasury": 1500, "buybacks": 1000, "community": 500}
    payment, price = 1_234_567, 100_000
    tokens = tokens_for_payment(payment, price, 18)
    parts = split_payment(payment, allocation)
    spec = [
        ("purchase", "order-1", NOW, "", [("external:payments", "USD", -payment)]
         + [(f"bucket:{b}", "USD", x) for b, x in parts.items() if x]
         + [("issuance:AST", "AST", -tokens), (f"holder:{buyer}", "AST", tokens)]),
        ("transfer", "t-1", NOW + 5, "", [(f"holder:{buyer}", "AST", -10**18), (f"holder:{other}", "AST", 10**18)]),
        ("deposit", "0xdeadbeef:0", NOW + 9, "", [("external:deposits:USDC", "USDC", -5_000_000),
                                                  ("bucket:community", "USDC", 5_000_000)]),
        ("spend", f"proposal:{PROPOSAL}", NOW + 60, TRICKY, [("bucket:community", "USD", -61),
                                                              (f"payable:{other}", "USD", 61)]),
        # one account and asset thrice: the amounts sort as strings ("-1" < "-9" < "10"), not as numbers
        ("transfer", "same account thrice", NOW + 61, "memo", [(f"holder:{other}", "AST", 10),
                                                               (f"holder:{other}", "AST", -9),
                                                               (f"holder:{other}", "AST", -1)]),
    ]
    entries, prev = [], GENESIS
    for seq, (kind, reference, created_at, memo, postings) in enumerate(spec, 1):
        digest = entry_hash(seq, kind, reference, created_at, memo, prev, postings)
        doc = {"seq": seq, "kind": kind, "reference": reference, "created_at": created_at, "memo": memo,
               "prev": prev, "postings": sorted([a, s, str(x)] for a, s, x in postings)}
        preimage = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        assert hashlib.sha256(preimage.encode()).hexdigest() == digest
        entries.append({"seq": seq, "kind": kind, "reference": reference, "created_at": created_at, "memo": memo,
                        "prev_hash": prev, "postings": [{"account": a, "asset": s, "amount": str(x)}
                                                        for a, s, x in postings],
                        "preimage": preimage, "hash": digest})
        prev = digest
    return {"about": "Journal entries as GET /v1/treasury/ledger serves them (postings in stored order), the "
                     "exact text hashed (ASCII) and the hash, chained from the genesis hash "
                     "(docs/protocol.md, Journal).",
            "genesis": GENESIS, "entries": entries, "head": {"seq": len(entries), "hash": prev}}


# ------------------------------------------------------------------------------------ arithmetic

def arithmetic_vectors() -> dict[str, Any]:
    purchases = [(payment, price, decimals) for payment, price, decimals in
                 ((1_000_000, 100_000, 18), (1, 100_000, 18), (1_234_567, 100_000, 18), (999_999, 333_333, 6),
                  (1, 3, 0), (10**30, 7, 18), (5, 100_000, 2))]
    allocations = [{"compute": 5000, "development": 2000, "treasury": 1500, "buybacks": 1000, "community": 500},
                   {"compute": 3333, "development": 3333, "treasury": 3334},
                   {"compute": 10000, "treasury": 0}]
    splits = [(p, a) for p in (1, 7, 99, 1_234_567, 10**20 + 1) for a in allocations]
    tallies = [(f, ag, ab, supply, q, ap) for f, ag, ab, supply, q, ap in
               ((60, 40, 0, 1000, 1000, 5000), (50, 50, 0, 1000, 1000, 5000), (0, 0, 100, 1000, 1000, 5000),
                (61, 39, 0, 1000, 1000, 6000), (60, 40, 0, 1000, 1000, 6000), (99, 0, 0, 1001, 1000, 5000),
                (100, 0, 0, 1001, 1000, 5000), (1, 0, 0, 0, 1500, 5000), (0, 0, 0, 0, 1000, 5000),
                (10**27, 10**26, 5, 3 * 10**27 + 1, 1500, 6000))]
    return {
        "about": "Token arithmetic of a purchase, the revenue split, quorum and outcome (docs/protocol.md, "
                 "Token arithmetic and Result). Integers as decimal strings.",
        "purchases": [{"payment": str(p), "price": str(pr), "decimals": d,
                       "tokens": str(tokens_for_payment(p, pr, d))} for p, pr, d in purchases],
        "splits": [{"payment": str(p), "allocation": a,
                    "parts": {b: str(x) for b, x in split_payment(p, a).items()}} for p, a in splits],
        "tallies": [{"for": str(f), "against": str(ag), "abstain": str(ab), "supply": str(s), "quorum_bps": q,
                     "approval_bps": ap,
                     "quorum": str(quorum_needed(q, s)),
                     "quorum_reached": (o := decide(_totals(f, ag, ab), supply=s, quorum_bps=q,
                                                    approval_bps=ap)).quorum_reached,
                     "outcome": o.name} for f, ag, ab, s, q, ap in tallies],
    }


def _totals(f: int, ag: int, ab: int):
    from voting.tally import Totals

    return Totals(f, ag, ab, 0)


# ---------------------------------------------------------------------------------------- export

def export_vectors() -> dict[str, Any]:
    proposer = Evm(300)
    prop_msg = {"proposer": proposer.address, "title": "Price to $0.11", "description": "", "price": "110000",
                "timestamp": NOW}
    prop_env = envelope(proposer, "PriceChange", prop_msg)
    pid = _hex(ENC.digest("PriceChange", prop_msg))
    voters = [proposer, Sol(301), Evm(302), Sol(303), Evm(304)]
    weights = {w.address: 10**18 * (i + 2) for i, w in enumerate(voters)}

    def vote(w: Evm | Sol, choice: int, at: int, reason: str = "") -> dict[str, Any]:
        return envelope(w, "Vote", {"voter": w.address, "proposal": pid, "choice": choice, "reason": reason,
                                    "timestamp": at})

    tie_a, tie_b = vote(voters[3], 0, NOW + 500, "a"), vote(voters[3], 1, NOW + 500, "b")
    signed = [vote(voters[0], 1, NOW + 100), vote(voters[1], 0, NOW + 110), vote(voters[2], 1, NOW + 120, TRICKY),
              vote(voters[1], 2, NOW + 300),  # a change of mind: the newer one counts
              tie_a, tie_b,  # equal timestamps: the greater id counts
              vote(voters[4], 0, NOW + 130)]
    ballots = [{"seq": i, "accepted_at": NOW + 3700 + i, "weight": str(weights[e["signer"]]), "envelope": e}
               for i, e in enumerate(signed, 1)]
    records = [BallotRecord(_hex(ENC.digest("Vote", e["message"])), e["signer"], e["message"]["choice"],
                            weights[e["signer"]], e["message"]["timestamp"]) for e in signed]
    effective = effective_ballots(records)
    totals, root = count(effective)
    supply = 40 * 10**18
    outcome = decide(totals, supply=supply, quorum_bps=1000, approval_bps=5000)
    doc = {
        "format": FORMAT, "domain": DOMAIN.as_json(), "types": TYPES,
        "proposal": {"id": pid, "state": "queued", "envelope": prop_env, "created_at": NOW + 1,
                     "starts_at": NOW + 3601, "ends_at": NOW + 3601 + 259200,
                     "rules": {"quorum_bps": 1000, "approval_bps": 5000}},
        "snapshot": {"source": "ledger", "ref": 5, "total": str(supply),
                     "ledger_head": {"seq": 5, "hash": journal_vectors()["head"]["hash"]},
                     "weights": {a: str(x) for a, x in weights.items()}},
        "ballots": ballots,
        "result": {"outcome": outcome.name, "for": str(totals.for_votes), "against": str(totals.against_votes),
                   "abstain": str(totals.abstain_votes), "voters": totals.voters, "quorum": str(outcome.quorum),
                   "quorum_reached": outcome.quorum_reached, "merkle_root": _hex(root), "tallied_at": NOW + 262802,
                   "ledger_head": {"seq": 5, "hash": journal_vectors()["head"]["hash"]}},
    }
    report = verify_export(doc)
    assert report.ok, report.problems
    tie_winner = max((r for r in records if r.voter == voters[3].address), key=lambda r: r.id)
    expected = {"ok": True, "ballots": report.ballots, "outcome": report.outcome,
                "counted": sorted(b.id for b in effective.values()), "tieWinner": tie_winner.id,
                "for": str(totals.for_votes), "against": str(totals.against_votes),
                "abstain": str(totals.abstain_votes), "voters": totals.voters, "merkle_root": _hex(root)}
    doctored = []
    for why, change in _doctorings(weights, voters):
        bad = copy.deepcopy(doc)
        change(bad)
        bad_report = verify_export(bad)
        assert not bad_report.ok, why
        doctored.append({"why": why, "export": bad, "expected": {"ok": False}})
    return {"about": "A small export (format ast-governance-export/1) and what verifying it gives "
                     "(docs/export.md, docs/protocol.md); then doctored copies that must fail.",
            "export": doc, "expected": expected, "doctored": doctored}


def _doctorings(weights: dict[str, int], voters: list[Any]) -> list[tuple[str, Any]]:
    def weight_raised(d: dict[str, Any]) -> None:
        d["ballots"][0]["weight"] = str(int(d["ballots"][0]["weight"]) + 1)

    def both_weights_raised(d: dict[str, Any]) -> None:  # consistent with each other, not with the result
        a = voters[0].address
        d["snapshot"]["weights"][a] = d["ballots"][0]["weight"] = str(weights[a] + 1)

    def ballot_dropped(d: dict[str, Any]) -> None:
        del d["ballots"][6]

    def choice_changed(d: dict[str, Any]) -> None:
        d["ballots"][0]["envelope"]["message"]["choice"] = 0

    def root_changed(d: dict[str, Any]) -> None:
        r = d["result"]["merkle_root"]
        d["result"]["merkle_root"] = r[:-1] + ("0" if r[-1] != "0" else "1")

    def outcome_flipped(d: dict[str, Any]) -> None:
        d["result"]["outcome"] = "defeated" if d["result"]["outcome"] == "succeeded" else "succeeded"

    def proposal_id_changed(d: dict[str, Any]) -> None:
        d["proposal"]["envelope"]["message"]["price"] = "110001"

    return [("a ballot's weight raised", weight_raised),
            ("a voter's weight raised in the snapshot and the ballot", both_weights_raised),
            ("a ballot dropped", ballot_dropped), ("a ballot's choice changed", choice_changed),
            ("the Merkle root changed", root_changed), ("the outcome flipped", outcome_flipped),
            ("the proposal's price changed", proposal_id_changed)]


# ------------------------------------------------------------------------------------------ main

def build() -> dict[str, Any]:
    """Every vector file's document, by file name."""
    return {"signing.json": signing(), "merkle.json": merkle_vectors(), "journal.json": journal_vectors(),
            "arithmetic.json": arithmetic_vectors(), "export.json": export_vectors()}


def dump(doc: Any) -> str:
    """A vector file's text: UTF-8, non-ASCII as itself, one key per line."""
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name, doc in build().items():
        path, text = OUT / name, dump(doc)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale vectors: {', '.join(stale)} (run docs/vectors/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
