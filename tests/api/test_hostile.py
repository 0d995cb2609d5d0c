"""A catalogue of hostile HTTP requests against the real app, on SQLite and PostgreSQL.

Each case arranges a small state (holders with tokens, a proposal in the right state, an
execution waiting for an executor), takes a snapshot of every row of every table, sends one
hostile request, and asserts three things: the HTTP status, the machine-readable code of the
``{"error", "detail"}`` body (DESIGN.md), and that the database is exactly as before ("a
rejected request stores nothing"). Replays are the exception the contract names: the identical
signed message again answers 200 with the stored record, and still stores nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import base58
import pytest
from sqlalchemy import inspect, select
from sqlmodel import SQLModel

from governance.db import session_scope
from governance.keys import create_key, revoke_key
from governance.metadata import import_all_models
from governance.signatures import SECP256K1_N
from governance.typed_data import Domain
from tests.support import TOKEN, Gov, Wallet, cancel_message, proposal_message, vote_message

SETTINGS = {"voting_delay": 60, "voting_period": 600, "timelock": 300, "grace_period": 600,
            "proposal_threshold": TOKEN, "external_buckets": ("development",),
            "rpc_url": "http://127.0.0.1:9",  # never called by these cases; chain assets need one at start
            "chain_assets": json.dumps({"ETH": {"native": True, "decimals": 18, "mode": "external",
                                                "senders": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]}})}
UINT256_OVER = str(2**256)  # one past the largest uint256
SHARES = [("compute", 5000), ("development", 2000), ("treasury", 1500), ("buybacks", 1000), ("community", 500)]


@pytest.fixture
def settings_overrides() -> dict:
    return dict(SETTINGS)


# --- the database snapshot ----------------------------------------------------------------

import_all_models()


def database_state(engine) -> dict[str, list[str]]:
    """Every row of every table, order-independent: any insert, update or delete shows, the
    largest ids and the journal head's hash included."""
    with engine.connect() as conn:
        return {t.name: sorted(repr(tuple(row)) for row in conn.execute(select(t)))
                for t in SQLModel.metadata.sorted_tables}


# --- requests and the world they are made in ------------------------------------------------

@dataclass
class Req:
    """One HTTP request; ``same_as`` is the id a replay must answer with."""

    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    same_as: str | int | None = None


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def raw(content: bytes) -> dict[str, Any]:
    return {"content": content, "headers": {"Content-Type": "application/json"}}


class World:
    """The shared setup: alice (EVM) and bob (Solana) hold 1000 tokens each; alice's
    PriceChange ``active`` is open for votes; the clock stands 60 s after its creation."""

    def __init__(self, gov: Gov) -> None:
        self.gov, self.runtime, self.client = gov, gov.runtime, gov.client
        self.alice, self.bob, self.carol = Wallet.evm(), Wallet.solana(), Wallet.evm()  # carol holds nothing
        gov.buy(self.alice, 1000)
        gov.buy(self.bob, 1000)
        self.active = gov.proposal(self.alice, "PriceChange", title="active")
        gov.advance(60)

    @property
    def now(self) -> int:
        return self.gov.now

    @property
    def domain(self) -> Domain:
        return self.runtime.domain

    # signed envelopes
    def proposal_env(self, kind: str = "PriceChange", signer: Wallet | None = None, *,
                     domain: Domain | None = None, **fields: Any) -> dict[str, Any]:
        w = signer or self.alice
        proposer = fields.pop("proposer", w.address)
        msg = proposal_message(kind, proposer, fields.pop("timestamp", self.now), **fields)
        return w.sign(domain or self.domain, kind, msg)

    def vote_env(self, voter: Wallet | None = None, proposal: str | None = None, choice: int = 1, *,
                 timestamp: int | None = None, reason: str = "", signer: Wallet | None = None,
                 domain: Domain | None = None) -> dict[str, Any]:
        v = voter or self.bob
        msg = vote_message(v.address, proposal or self.active, choice,
                           self.now if timestamp is None else timestamp, reason)
        return (signer or v).sign(domain or self.domain, "Vote", msg)

    def cancel_env(self, signer: Wallet, proposal: str, *, timestamp: int | None = None) -> dict[str, Any]:
        return signer.sign(self.domain, "Cancel",
                           cancel_message(signer.address, proposal, self.now if timestamp is None else timestamp))

    # state
    def pending(self) -> str:
        """A proposal of alice's whose voting opens in 60 s."""
        return self.gov.proposal(self.alice, "PriceChange", title="pending", price=110_000)

    def key(self, role: str, *, revoked: bool = False) -> str:
        with session_scope(self.runtime.engine) as session:
            created = create_key(session, role, now=self.now)
            if revoked:
                revoke_key(session, created.id, now=self.now)
        return created.key

    def auth(self, role: str, *, revoked: bool = False) -> dict[str, str]:
        return bearer(self.key(role, revoked=revoked))

    def bucket(self, name: str) -> int:
        return self.client.get("/v1/treasury").json()["buckets"][name]

    def execution(self) -> int:
        """A passed spend from ``development`` waiting for an external executor: its id."""
        spend = self.gov.proposal(self.alice, "TreasurySpend", bucket="development", amount=150_000)
        self.gov.advance(60)
        for w in (self.alice, self.bob):
            assert self.gov.vote(w, spend, 1).status_code == 201
        self.gov.advance(600)
        self.gov.tick()
        self.gov.advance(300)
        self.gov.tick()
        ready = self.client.get("/v1/executions", params={"status": "ready"}).json()["items"]
        assert [e["proposal_id"] for e in ready] == [spend]
        return ready[0]["id"]

    def claimed(self) -> tuple[int, str]:
        """An execution leased to an executor: its id and that executor's key."""
        ex, key = self.execution(), self.key("executor")
        assert self.client.post(f"/v1/executions/{ex}/claim", headers=bearer(key)).status_code == 200
        return ex, key

    def submit(self, path: str, env: dict[str, Any], status: int = 201) -> dict[str, Any]:
        r = self.client.post(path, json=env)
        assert r.status_code == status, r.text
        return r.json()


# --- signature surgery ----------------------------------------------------------------------

def high_s(sig: str) -> str:
    """The malleable twin of a low-s EVM signature: (r, n - s, v flipped) verifies too."""
    raw_sig = bytes.fromhex(sig[2:])
    s = int.from_bytes(raw_sig[32:64], "big")
    v = 27 + 28 - raw_sig[64]
    return "0x" + (raw_sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v])).hex()


def with_v(sig: str, v: int) -> str:
    """An EVM signature with its recovery byte replaced."""
    return sig[:-2] + f"{v:02x}"


def ed_flip(sig: str) -> str:
    """A 64-byte ed25519 signature with one bit changed."""
    b = bytearray(base58.b58decode(sig))
    b[10] ^= 0x01
    return base58.b58encode(bytes(b)).decode()


def ed_truncate(sig: str) -> str:
    return base58.b58encode(base58.b58decode(sig)[:-1]).decode()


def patched(env: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**env, **top}


def with_sig(env: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    return {**env, "signature": change(env["signature"])}


def patched_msg(env: dict[str, Any], drop: str | None = None, **fields: Any) -> dict[str, Any]:
    """The envelope with its message changed after signing (the schema check comes first)."""
    msg = {k: v for k, v in env["message"].items() if k != drop} | fields
    return {**env, "message": msg}


def other_domain(w: World, **change: Any) -> Domain:
    d = w.domain
    return Domain(**({"name": d.name, "version": d.version, "chain_id": d.chain_id, "salt": d.salt} | change))


def shares(pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"bucket": b, "bps": v} for b, v in pairs]


# --- builders that need a few steps ---------------------------------------------------------

def replayed_proposal(w: World, *, after: int = 0) -> Req:
    env = w.proposal_env(title="replayed")
    first = w.submit("/v1/proposals", env)
    w.gov.advance(after)
    return Req("/v1/proposals", env, same_as=first["id"])


def replayed_vote(w: World) -> Req:
    env = w.vote_env()
    return Req("/v1/votes", env, same_as=w.submit("/v1/votes", env)["id"])


def replayed_vote_other_v(w: World) -> Req:
    """The same EVM vote with v spelt 0/1 instead of 27/28: the same message, so the same id."""
    env = w.vote_env(w.alice)
    first = w.submit("/v1/votes", env)
    v = int(env["signature"][-2:], 16)
    return Req("/v1/votes", with_sig(env, lambda sig: with_v(sig, v - 27)), same_as=first["id"])


def high_s_twin_of_stored_vote(w: World) -> Req:
    env = w.vote_env(w.alice)
    w.submit("/v1/votes", env)
    return Req("/v1/votes", with_sig(env, high_s))


def older_vote_after_newer(w: World) -> Req:
    w.submit("/v1/votes", w.vote_env(choice=1))
    return Req("/v1/votes", w.vote_env(choice=0, timestamp=w.now - 10))


def replayed_cancel(w: World) -> Req:
    pid = w.pending()
    env = w.cancel_env(w.alice, pid)
    w.submit(f"/v1/proposals/{pid}/cancel", env, status=200)
    return Req(f"/v1/proposals/{pid}/cancel", env, same_as=pid)


def vote_after_end(w: World) -> Req:
    w.gov.advance(600)  # ends_at passed; not tallied yet
    return Req("/v1/votes", w.vote_env())


def vote_bought_after_snapshot(w: World) -> Req:
    dave = Wallet.evm()
    w.gov.buy(dave, 5000)
    return Req("/v1/votes", w.vote_env(dave))


def spend_over_cap(w: World) -> Req:
    cap = w.bucket("community") * w.runtime.settings.spend_cap_bps // 10_000
    return Req("/v1/proposals", w.proposal_env("TreasurySpend", amount=cap + 1))


def buyback_over_bucket(w: World) -> Req:
    body = {"seller": w.alice.address, "amount": w.bucket("buybacks") + 1, "tokens": str(TOKEN), "reference": "bb"}
    return Req("/v1/treasury/buybacks", body, headers=w.auth("operator"))


def purchase(w: World, headers: dict[str, str] | None = None, **body: Any) -> Req:
    """A purchase, by default well-formed and with a valid operator key."""
    return Req("/v1/treasury/purchases", {"buyer": w.alice.address, "payment": 100_000, "reference": "p-1"} | body,
               headers=w.auth("operator") if headers is None else headers)


def purchase_reference_reused(w: World) -> Req:
    key = w.key("operator")
    first = {"buyer": w.alice.address, "payment": 100_000, "reference": "once"}
    assert w.client.post("/v1/treasury/purchases", json=first, headers=bearer(key)).status_code == 201
    return Req("/v1/treasury/purchases", first | {"payment": 200_000}, headers=bearer(key))


def deeply_nested(w: World, depth: int = 30_000) -> bytes:
    """A signed-looking envelope whose title is ``depth`` nested arrays (just under 64 KiB)."""
    env = w.proposal_env()
    head = json.dumps(patched_msg(env, title="@@")).encode()
    return head.replace(b'"@@"', b"[" * depth + b"]" * depth)


def cancel_by_stranger(w: World) -> Req:
    pid = w.pending()
    return Req(f"/v1/proposals/{pid}/cancel", w.cancel_env(w.bob, pid))


def executor_call(w: World, action: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Req:
    """``action`` on an execution leased to an executor, by default with that executor's key."""
    ex, key = w.claimed()
    return Req(f"/v1/executions/{ex}/{action}", body, headers=bearer(key) if headers is None else headers)


def vote_body_with(w: World, reason: bytes) -> Req:
    """A vote whose raw body carries ``reason`` bytes as they are (the signature does not matter)."""
    body = json.dumps(w.vote_env(reason="@")).encode().replace(b"@", reason)
    return Req("/v1/votes", **raw(body))


def cancel_with(w: World, headers: dict[str, str]) -> Req:
    """A cancel of the active proposal with no body: only a guardian key could do it."""
    return Req(f"/v1/proposals/{w.active}/cancel", headers=headers)


def proposals_cursor_with_nul(w: World) -> Req:
    cursor = base64.urlsafe_b64encode(f"{w.now}:\x00".encode()).decode().rstrip("=")
    return Req(f"/v1/proposals?cursor={cursor}", method="GET")


def proposals_cursor(created: str) -> Req:
    """A cursor of the form the service issues (``created_at:id``), with ``created`` as given."""
    cursor = base64.urlsafe_b64encode(f"{created}:0x{'ab' * 32}".encode()).decode().rstrip("=")
    return Req(f"/v1/proposals?cursor={cursor}", method="GET")


def arabic_indic(n: int) -> str:
    """``n`` in Arabic-Indic digits: int() reads "١٢" as 12, str.isdigit says yes."""
    return "".join(chr(0x660 + int(d)) for d in str(n))


DEPOSIT = "/v1/treasury/deposits"
HOLDER_LISTS = "/v1/power/holder-lists"


def deposit(w: World, **body: Any) -> Req:
    """A deposit to ``community`` in ETH, by default well-formed."""
    return Req(DEPOSIT, {"bucket": "community", "asset": "ETH", "amount": str(TOKEN), "reference": "d-1"} | body,
               headers=w.auth("operator"))


def holder_list(w: World, balance: str = "1", **body: Any) -> Req:
    """A holder list of alice alone, by default well-formed."""
    return Req(HOLDER_LISTS, {"holders": [{"address": w.alice.address, "balance": balance}]} | body,
               headers=w.auth("operator"))


def recorded_then(w: World, req: Req, **change: Any) -> Req:
    """``req`` recorded once (201); then the same request again (a replay: 200 with the stored
    record), or, with ``change``, another body under the same reference (409)."""
    first = w.client.post(req.path, json=req.json, headers=req.headers)
    assert first.status_code == 201, first.text
    if change:
        return Req(req.path, req.json | change, headers=req.headers)
    return Req(req.path, req.json, headers=req.headers, same_as=first.json()["id"])


def deposit_past_uint256(w: World) -> Req:
    """A bucket already holding 2^256-1 of an asset: one more base unit is past its column."""
    recorded_then(w, deposit(w, amount=str(2**256 - 1), reference="full"))
    return deposit(w, amount="1", reference="one-more")


def claim_by_path(w: World, execution_id: str) -> Req:
    """A claim of a ready execution, its id spelt ``execution_id`` (the id is 1)."""
    assert w.execution() == 1
    return Req(f"/v1/executions/{execution_id}/claim", headers=w.auth("executor"))


# --- the catalogue --------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    status: int
    code: str | None  # None: a replay, answered 200 with the stored record
    build: Callable[[World], Req]


P, V = "/v1/proposals", "/v1/votes"
CASES = [
    # replays: the identical signed message again is the stored record, never a second effect
    Case("replay-proposal", 200, None, replayed_proposal),
    Case("replay-proposal-after-skew-window", 200, None, lambda w: replayed_proposal(w, after=3600)),
    Case("replay-vote", 200, None, replayed_vote),
    Case("replay-vote-with-v-as-0-or-1", 200, None, replayed_vote_other_v),
    Case("replay-cancel", 200, None, replayed_cancel),
    Case("replay-older-vote-after-newer", 409, "superseded", older_vote_after_newer),
    # another deployment's domain
    Case("proposal-other-salt", 403, "bad_signature",
         lambda w: Req(P, w.proposal_env(domain=other_domain(w, salt="0x" + "11" * 32)))),
    Case("proposal-other-chain-id", 403, "bad_signature",
         lambda w: Req(P, w.proposal_env(domain=other_domain(w, chain_id=1)))),
    Case("vote-other-salt-ed25519", 403, "bad_signature",
         lambda w: Req(V, w.vote_env(domain=other_domain(w, salt="0x" + "22" * 32)))),
    # signature forms
    Case("evm-high-s", 400, "high_s_signature", lambda w: Req(P, with_sig(w.proposal_env(), high_s))),
    Case("evm-high-s-twin-of-stored-vote", 400, "high_s_signature", high_s_twin_of_stored_vote),
    Case("evm-truncated-signature", 400, "malformed_signature",
         lambda w: Req(P, with_sig(w.proposal_env(), lambda sig: sig[:-2]))),
    Case("ed25519-truncated-signature", 400, "malformed_signature",
         lambda w: Req(V, with_sig(w.vote_env(), ed_truncate))),
    Case("ed25519-garbled-signature", 403, "bad_signature", lambda w: Req(V, with_sig(w.vote_env(), ed_flip))),
    Case("signature-over-edited-message", 403, "bad_signature",
         lambda w: Req(P, patched_msg(w.proposal_env(), title="edited after signing"))),
    # who signed, and how
    Case("proposer-field-names-another-holder", 403, "signer_mismatch",
         lambda w: Req(P, w.proposal_env(signer=w.carol, proposer=w.alice.address))),
    Case("signer-claims-a-holder-signed-by-another", 403, "bad_signature",
         lambda w: Req(P, patched(w.proposal_env(signer=w.carol, proposer=w.alice.address), signer=w.alice.address))),
    Case("vote-voter-field-names-another-holder", 403, "signer_mismatch",
         lambda w: Req(V, w.vote_env(w.bob, signer=w.alice))),
    Case("ed25519-vote-signed-by-another-key", 403, "bad_signature",
         lambda w: Req(V, patched(w.vote_env(w.bob, signer=Wallet.solana()), signer=w.bob.address))),
    Case("ed25519-scheme-with-evm-signer", 400, "invalid_address",
         lambda w: Req(P, patched(w.proposal_env(), scheme="ed25519"))),
    Case("eip712-scheme-with-solana-signer", 400, "invalid_address",
         lambda w: Req(V, patched(w.vote_env(), scheme="eip712"))),
    Case("evm-signer-not-checksummed", 400, "invalid_address",
         lambda w: Req(P, patched(w.proposal_env(), signer=w.alice.address.lower()))),
    Case("unknown-scheme", 400, "invalid_body", lambda w: Req(P, patched(w.proposal_env(), scheme="secp256r1"))),
    Case("vote-posted-as-proposal", 400, "wrong_message_type", lambda w: Req(P, w.vote_env())),
    # schema: unknown, missing and mistyped fields; numbers out of range
    Case("unknown-envelope-field", 400, "invalid_body", lambda w: Req(P, patched(w.proposal_env(), chainId=1))),
    Case("unknown-message-field", 400, "invalid_message",
         lambda w: Req(P, patched_msg(w.proposal_env(), quorum_bps=1))),
    Case("unknown-share-field", 400, "invalid_message",
         lambda w: Req(P, w.proposal_env("AllocationChange", shares=[{"bucket": "compute", "bps": 10_000, "x": 1}]))),
    Case("missing-signature", 400, "invalid_body",
         lambda w: Req(P, {k: v for k, v in w.proposal_env().items() if k != "signature"})),
    Case("missing-message-field", 400, "invalid_message", lambda w: Req(V, patched_msg(w.vote_env(), drop="reason"))),
    Case("price-as-json-number", 400, "invalid_message",
         lambda w: Req(P, patched_msg(w.proposal_env(), price=120_000))),
    Case("choice-as-string", 400, "invalid_message", lambda w: Req(V, patched_msg(w.vote_env(), choice="1"))),
    Case("price-over-uint256", 400, "invalid_message",
         lambda w: Req(P, patched_msg(w.proposal_env(), price=UINT256_OVER))),
    Case("spend-amount-over-uint256", 400, "invalid_message",
         lambda w: Req(P, patched_msg(w.proposal_env("TreasurySpend"), amount=UINT256_OVER))),
    Case("price-negative", 400, "invalid_message", lambda w: Req(P, patched_msg(w.proposal_env(), price="-1"))),
    Case("text-with-nul-character", 400, "nul_character", lambda w: Req(P, w.proposal_env(title="nul\x00title"))),
    # domain rules: signed properly, refused for what they say
    Case("price-uint256-max", 422, "price_change_too_large", lambda w: Req(P, w.proposal_env(price=2**256 - 1))),
    Case("allocation-sums-to-9999", 422, "allocation_not_100",
         lambda w: Req(P, w.proposal_env("AllocationChange", shares=shares([*SHARES[:-1], ("community", 499)])))),
    Case("allocation-sums-to-10001", 422, "allocation_not_100",
         lambda w: Req(P, w.proposal_env("AllocationChange", shares=shares([*SHARES[:-1], ("community", 501)])))),
    Case("allocation-duplicate-bucket", 422, "duplicate_bucket",
         lambda w: Req(P, w.proposal_env("AllocationChange", shares=shares([*SHARES, ("compute", 0)])))),
    Case("spend-over-cap", 422, "spend_over_cap", spend_over_cap),
    Case("spend-zero", 422, "invalid_amount", lambda w: Req(P, w.proposal_env("TreasurySpend", amount=0))),
    Case("title-too-long", 422, "title_too_long", lambda w: Req(P, w.proposal_env(title="t" * 201))),
    Case("description-too-long", 422, "description_too_long",
         lambda w: Req(P, w.proposal_env(description="d" * 20_001))),
    Case("reason-too-long", 422, "reason_too_long", lambda w: Req(V, w.vote_env(reason="r" * 1001))),
    Case("proposal-stale-timestamp", 422, "stale_timestamp", lambda w: Req(P, w.proposal_env(timestamp=w.now - 301))),
    Case("vote-future-timestamp", 422, "future_timestamp", lambda w: Req(V, w.vote_env(timestamp=w.now + 301))),
    Case("proposer-holds-nothing", 403, "below_proposal_threshold", lambda w: Req(P, w.proposal_env(signer=w.carol))),
    # votes
    Case("vote-before-start", 409, "voting_not_started", lambda w: Req(V, w.vote_env(proposal=w.pending()))),
    Case("vote-after-end", 409, "voting_closed", vote_after_end),
    Case("vote-zero-weight", 403, "no_voting_power", lambda w: Req(V, w.vote_env(w.carol))),
    Case("vote-bought-after-snapshot", 403, "no_voting_power", vote_bought_after_snapshot),
    Case("vote-choice-3", 422, "invalid_choice", lambda w: Req(V, w.vote_env(choice=3))),
    # cancel
    Case("cancel-by-stranger", 403, "not_allowed_to_cancel", cancel_by_stranger),
    Case("cancel-naming-another-proposal", 400, "proposal_mismatch",
         lambda w: Req(f"{P}/{w.pending()}/cancel", w.cancel_env(w.alice, w.active))),
    Case("cancel-by-proposer-once-active", 409, "wrong_state",
         lambda w: Req(f"{P}/{w.active}/cancel", w.cancel_env(w.alice, w.active))),
    Case("cancel-without-body-or-key", 400, "missing_body", lambda w: cancel_with(w, {})),
    Case("cancel-with-revoked-guardian-key", 401, "revoked_api_key",
         lambda w: cancel_with(w, w.auth("guardian", revoked=True))),
    Case("cancel-with-operator-key", 403, "wrong_role", lambda w: cancel_with(w, w.auth("operator"))),
    # operator endpoints
    Case("purchase-without-key", 401, "missing_api_key", lambda w: purchase(w, {})),
    Case("purchase-with-unknown-key", 401, "invalid_api_key", lambda w: purchase(w, bearer("dao_op_forged"))),
    Case("purchase-with-revoked-key", 401, "revoked_api_key",
         lambda w: purchase(w, w.auth("operator", revoked=True))),
    Case("purchase-with-executor-key", 403, "wrong_role", lambda w: purchase(w, w.auth("executor"))),
    Case("purchase-reference-with-trailing-space", 400, "invalid_reference",
         lambda w: purchase(w, reference="p-1 ")),
    Case("purchase-reference-fullwidth-letter", 400, "invalid_reference",
         lambda w: purchase(w, reference="\uff50-1")),
    Case("deposit-reference-with-newline", 400, "invalid_reference", lambda w: deposit(w, reference="d-1\n")),
    Case("purchase-buyer-lowercase-evm", 400, "invalid_address",
         lambda w: purchase(w, buyer=w.alice.address.lower())),
    Case("purchase-payment-zero", 422, "invalid_amount", lambda w: purchase(w, payment=0)),
    Case("purchase-payment-negative", 422, "invalid_amount", lambda w: purchase(w, payment=-100_000)),
    Case("purchase-payment-as-string", 400, "invalid_body", lambda w: purchase(w, payment="100000")),
    Case("purchase-payment-over-uint256", 400, "invalid_body", lambda w: purchase(w, payment=2**256)),
    Case("purchase-reference-with-nul", 400, "nul_character", lambda w: purchase(w, reference="p\x00")),
    Case("purchase-reference-reused", 409, "reference_conflict", purchase_reference_reused),
    Case("replay-purchase", 200, None, lambda w: recorded_then(w, purchase(w))),
    Case("buyback-over-bucket", 422, "insufficient_funds", buyback_over_bucket),
    Case("buyback-tokens-over-uint256", 400, "invalid_body",
         lambda w: Req("/v1/treasury/buybacks", {"seller": w.alice.address, "amount": 1, "tokens": UINT256_OVER,
                                                 "reference": "bb"}, headers=w.auth("operator"))),
    Case("buyback-reference-reused", 409, "reference_conflict",
         lambda w: recorded_then(w, Req("/v1/treasury/buybacks", {"seller": w.alice.address, "amount": 1,
                                                                   "tokens": str(TOKEN), "reference": "bb"},
                                        headers=w.auth("operator")), tokens=str(2 * TOKEN))),
    # deposits: amounts within uint256 and read as written; one deposit per reference
    Case("deposit-amount-over-uint256", 400, "invalid_body", lambda w: deposit(w, amount=UINT256_OVER)),
    Case("deposit-amount-78-nines", 400, "invalid_body", lambda w: deposit(w, amount="9" * 78)),
    Case("deposit-amount-with-trailing-newline", 400, "invalid_body", lambda w: deposit(w, amount="5\n")),
    Case("deposit-amount-in-arabic-indic-digits", 400, "invalid_body", lambda w: deposit(w, amount=arabic_indic(5))),
    Case("deposit-bucket-past-uint256", 422, "amount_too_large", deposit_past_uint256),
    Case("deposit-reference-reused-other-amount", 409, "reference_conflict",
         lambda w: recorded_then(w, deposit(w), amount=str(2 * TOKEN))),
    Case("deposit-reference-reused-other-bucket", 409, "reference_conflict",
         lambda w: recorded_then(w, deposit(w), bucket="compute")),
    Case("replay-deposit", 200, None, lambda w: recorded_then(w, deposit(w))),
    # holder lists: balances in ASCII digits, the label within its column, one list per reference
    Case("holder-list-balance-superscript-two", 400, "invalid_balance", lambda w: holder_list(w, "\u00b2")),
    Case("holder-list-balance-arabic-indic-digits", 400, "invalid_balance",
         lambda w: holder_list(w, arabic_indic(100))),
    Case("holder-list-balance-fullwidth-digits", 400, "invalid_balance",
         lambda w: holder_list(w, "\uff11\uff10\uff10")),
    Case("holder-list-balance-5000-digits", 400, "invalid_balance", lambda w: holder_list(w, "1" * 5000)),
    Case("holder-list-balance-over-uint256", 400, "invalid_balance", lambda w: holder_list(w, UINT256_OVER)),
    Case("holder-list-reference-with-trailing-space", 400, "invalid_reference",
         lambda w: holder_list(w, reference="snap ")),
    Case("holder-list-balance-leading-zeros", 400, "invalid_balance", lambda w: holder_list(w, "05")),
    Case("holder-list-total-over-uint256", 422, "amount_too_large",
         lambda w: Req(HOLDER_LISTS, {"holders": [{"address": w.alice.address, "balance": str(2**256 - 1)},
                                                  {"address": w.bob.address, "balance": "1"}]},
                       headers=w.auth("operator"))),
    Case("holder-list-label-over-column", 400, "invalid_body", lambda w: holder_list(w, label="l" * 201)),
    Case("holder-list-reference-reused", 409, "reference_conflict",
         lambda w: recorded_then(w, holder_list(w, reference="snap"), label="another")),
    Case("replay-holder-list", 200, None, lambda w: recorded_then(w, holder_list(w, reference="snap"))),
    # executor endpoints
    Case("claim-without-key", 401, "missing_api_key", lambda w: Req(f"/v1/executions/{w.execution()}/claim")),
    Case("claim-with-operator-key", 403, "wrong_role",
         lambda w: Req(f"/v1/executions/{w.execution()}/claim", headers=w.auth("operator"))),
    Case("complete-with-revoked-key", 401, "revoked_api_key",
         lambda w: executor_call(w, "complete", {"reference": "paid"}, w.auth("executor", revoked=True))),
    Case("complete-by-executor-without-lease", 409, "not_claimed",
         lambda w: executor_call(w, "complete", {"reference": "paid"}, w.auth("executor"))),
    Case("complete-without-reference", 422, "reference_required", lambda w: executor_call(w, "complete", {})),
    Case("complete-tx-hash-with-trailing-newline", 400, "invalid_body",
         lambda w: executor_call(w, "complete", {"tx_hash": "0x" + "ab" * 32 + "\n"})),
    # an execution id is ASCII digits: int() also reads "١", "+1" and "0_1" as 1
    Case("claim-execution-id-in-arabic-indic-digits", 400, "invalid_body", lambda w: claim_by_path(w, arabic_indic(1))),
    Case("claim-execution-id-with-plus-sign", 400, "invalid_body", lambda w: claim_by_path(w, "+1")),
    Case("claim-execution-id-with-underscore", 400, "invalid_body", lambda w: claim_by_path(w, "0_1")),
    # bodies that are not what they claim to be
    Case("body-over-size-limit", 413, "payload_too_large",
         lambda w: Req(P, w.proposal_env(description="d" * 70_000))),
    Case("invalid-utf8-body", 400, "invalid_json", lambda w: vote_body_with(w, b"\xff\xfe")),
    Case("lone-surrogate-escape", 400, "invalid_json", lambda w: vote_body_with(w, b"\\ud800")),
    Case("json-array-body", 400, "invalid_body", lambda w: Req(V, [w.vote_env()])),
    Case("deeply-nested-json", 400, "invalid_json", lambda w: Req(P, **raw(deeply_nested(w)))),
    # queries: read-only, but a hostile query must not be a 500 either
    Case("list-proposer-with-nul", 400, "nul_character", lambda w: Req(f"{P}?proposer=%00", method="GET")),
    Case("list-cursor-with-nul", 400, "invalid_cursor", proposals_cursor_with_nul),
    Case("list-cursor-created-at-past-bigint", 400, "invalid_cursor", lambda w: proposals_cursor(str(10**23))),
    Case("list-cursor-created-at-in-arabic-indic-digits", 400, "invalid_cursor",
         lambda w: proposals_cursor(arabic_indic(w.now))),
]


@pytest.fixture
def world(client, runtime, operator_key) -> World:
    tables = {t.name for t in SQLModel.metadata.sorted_tables}
    missing = set(inspect(runtime.engine).get_table_names()) - tables - {"alembic_version"}
    assert not missing, f"tables outside the snapshot: {missing}"
    return World(Gov(client, runtime, operator_key))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request_is_refused_and_stores_nothing(world: World, case: Case) -> None:
    req = case.build(world)
    before = database_state(world.runtime.engine)
    r = world.client.request(req.method, req.path, json=req.json, content=req.content, headers=req.headers)
    assert r.status_code == case.status, r.text
    body = r.json()
    if case.code is None:
        assert body["id"] == req.same_as
    else:
        assert body["error"] == case.code, body
        assert isinstance(body["detail"], str) and body["detail"]
    assert database_state(world.runtime.engine) == before, "a hostile request changed the database"


def test_the_catalogue_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
