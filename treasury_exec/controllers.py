"""HTTP: the treasury's state, journal and parameter history; operator purchases and buybacks."""

from __future__ import annotations

import json
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from sqlmodel import Session

from governance.db import BIGINT_MAX
from governance.http import AppRuntime, api_key, errors, public
from governance.keys import Caller
from treasury_exec import executions, external, reservations, service
from treasury_exec.models import Buyback, Deposit, ParameterVersion, Purchase
from treasury_exec.schemas import (
    BuybackCreate,
    BuybackRead,
    CompleteRequest,
    DepositCreate,
    DepositRead,
    EntryRead,
    ExecutionPage,
    ExecutionRead,
    FailRequest,
    HistoryRead,
    LedgerHead,
    LedgerPage,
    ParameterRead,
    PostingRead,
    PurchaseCreate,
    PurchaseRead,
    TreasuryRead,
)
from treasury_exec.views import execution_read, execution_reads


def _purchase(p: Purchase) -> PurchaseRead:
    return PurchaseRead(id=p.id or 0, reference=p.reference, buyer=p.buyer, payment=p.payment, tokens=str(p.tokens),
                        price=p.price, price_version=p.price_version, allocation_version=p.allocation_version,
                        split=json.loads(p.split), journal_seq=p.journal_seq, created_at=p.created_at)


def _buyback(b: Buyback) -> BuybackRead:
    return BuybackRead(id=b.id or 0, reference=b.reference, seller=b.seller, amount=b.amount, tokens=str(b.tokens),
                       journal_seq=b.journal_seq, created_at=b.created_at)


def _deposit(d: Deposit) -> DepositRead:
    return DepositRead(id=d.id or 0, reference=d.reference, journal_seq=d.journal_seq, bucket=d.bucket,
                       asset=d.asset, amount=str(d.amount), balance=str(d.balance), created_at=d.created_at)


IDEMPOTENT = ("201 when recorded. Idempotent by `reference`: 200 with the stored {what} when the same {what} "
              "was recorded under it before (nothing new is stored); 409 `reference_conflict` for another "
              "{what} under it.")


def parameter_read(v: ParameterVersion) -> ParameterRead:
    return ParameterRead(id=v.id or 0, kind=v.kind, value=json.loads(v.value), created_at=v.created_at,
                         origin=v.origin, proposal_id=v.proposal_id)


# Routes declare it `{execution_id:str}`: Litestar reads an `:int` path segment with int(), which
# takes "+1", "1_0", " 1" and other scripts' digits ("١" was execution 1); as a str it is
# converted like a query parameter, ASCII digits only.
ExecutionId = Annotated[int, PathParameter(ge=1, le=BIGINT_MAX, description="execution id")]


class TreasuryController(Controller):
    path = "/v1/treasury"
    tags = ["treasury"]

    @get("/", operation_id="getTreasury", sync_to_thread=True, security=public(), responses=errors(400, 429),
         summary="Price, allocation, bucket balances, token supply, the journal's head",
         description="`ledger_head` is the journal's last entry and its hash: a copy kept now lets "
                     "`dao ledger verify --expect SEQ:HASH` show later that the journal was not rewritten "
                     "or cut below it. `ledger_seq` is `ledger_head.seq`.")
    def state(self, db: NamedDependency[Session], runtime: AppRuntime) -> TreasuryRead:
        s = service.treasury_state(db, runtime)
        reserved = reservations.by_bucket(db, runtime.settings.fee_bucket)
        return TreasuryRead(
            price=s.price, price_version=s.price_version, allocation=s.allocation,
            allocation_version=s.allocation_version, buckets=s.buckets,
            assets={a: {b: str(v) for b, v in m.items()} for a, m in s.assets.items()}, supply=str(s.supply),
            ledger_seq=s.head.seq, ledger_head=LedgerHead(seq=s.head.seq, hash=s.head.hash),
            reserved={a: {b: str(v) for b, v in m.items()} for a, m in reserved.items()})

    @get("/ledger", operation_id="listLedger", sync_to_thread=True, security=public(),
         summary="Journal entries in order, with their postings and hash chain (cursor: last seq seen)",
         responses=errors(400))
    def ledger(self, db: NamedDependency[Session],
               cursor: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
               limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100) -> LedgerPage:
        rows = service.ledger_page(db, after=cursor, limit=limit)
        items = [EntryRead(seq=e.seq, kind=e.kind, reference=e.reference, created_at=e.created_at, memo=e.memo,
                           prev_hash=e.prev_hash, hash=e.hash,
                           postings=[PostingRead(p.account, p.asset, str(p.amount)) for p in legs])
                 for e, legs in rows]
        return LedgerPage(items=items, next_cursor=str(items[-1].seq) if len(items) == limit else None)

    @get("/history", operation_id="listParameterHistory", sync_to_thread=True, security=public(),
         summary="Every price and allocation version, with the proposal that set it", responses=errors(400))
    def history(self, db: NamedDependency[Session], kind: FromQuery[str | None] = None) -> HistoryRead:
        return HistoryRead(items=[parameter_read(v) for v in service.history(db, kind)])

    @post("/purchases", operation_id="recordPurchase", sync_to_thread=True, security=api_key("operator"),
          summary="Record a paid purchase: mint tokens at the price in force, split revenue",
          description=IDEMPOTENT.format(what="purchase"), responses=errors(400, 401, 403, 409, 413, 422))
    def purchase(self, data: JSONBody[PurchaseCreate], db: NamedDependency[Session],
                 runtime: AppRuntime) -> Response[PurchaseRead]:
        row, created = service.record_purchase(db, runtime, buyer=data.buyer, payment=data.payment,
                                               reference=data.reference)
        return Response(_purchase(row), status_code=201 if created else 200)

    @post("/buybacks", operation_id="recordBuyback", sync_to_thread=True, security=api_key("operator"),
          summary="Record a buyback: pay from the buybacks bucket, burn the tokens bought",
          description=IDEMPOTENT.format(what="buyback"), responses=errors(400, 401, 403, 409, 413, 422))
    def buyback(self, data: JSONBody[BuybackCreate], db: NamedDependency[Session],
                runtime: AppRuntime) -> Response[BuybackRead]:
        row, created = service.record_buyback(db, runtime, seller=data.seller, amount=data.amount,
                                              tokens=int(data.tokens), reference=data.reference)
        return Response(_buyback(row), status_code=201 if created else 200)

    @post("/deposits", operation_id="recordDeposit", sync_to_thread=True, security=api_key("operator"),
          summary="Credit on-chain funds the treasury received to a bucket",
          description=IDEMPOTENT.format(what="deposit"), responses=errors(400, 401, 403, 409, 413, 422))
    def deposit(self, data: JSONBody[DepositCreate], db: NamedDependency[Session],
                runtime: AppRuntime) -> Response[DepositRead]:
        row, created = service.record_deposit(db, runtime, bucket=data.bucket, asset=data.asset,
                                              amount=int(data.amount), reference=data.reference,
                                              assets=set(runtime.chain_assets))
        return Response(_deposit(row), status_code=201 if created else 200)


class ExecutionController(Controller):
    path = "/v1/executions"
    tags = ["executions"]

    @get("/", operation_id="listExecutions", sync_to_thread=True, security=public(),
         summary="Executions and their status (ready ones wait for an executor when mode is external)",
         description="`status` filters by one of ready, claimed, signed, done, expired, canceled, failed "
                     "(400 `invalid_filter` for any other); see ExecutionRead for what each means.",
         responses=errors(400))
    def list(self, db: NamedDependency[Session], status: FromQuery[str | None] = None,
             cursor: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
             limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100) -> ExecutionPage:
        rows = executions.list_executions(db, status=status, after=cursor, limit=limit)
        items = execution_reads(db, rows)
        return ExecutionPage(items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)

    @get("/{execution_id:str}", operation_id="getExecution", sync_to_thread=True, security=public(),
         summary="One execution: its mode, status, lease, amounts and every attempt", responses=errors(400, 404))
    def one(self, execution_id: FromPath[ExecutionId], db: NamedDependency[Session]) -> ExecutionRead:
        return execution_read(db, external.get_execution(db, execution_id))

    @post("/{execution_id:str}/claim", operation_id="claimExecution", sync_to_thread=True, status_code=200,
          security=api_key("executor"),
          summary="Lease an external execution and reserve its amount (an expired lease may be claimed again)",
          description="409 `not_claimable` when another executor holds it, `execution_expired` (with `status`) "
                      "after the proposal's deadline, `execution_changed` when it moved while the chain was read "
                      "(send again); 422 `insufficient_funds` when the bucket cannot cover it.",
          responses=errors(400, 401, 403, 404, 409, 422, 503))
    def claim(self, execution_id: FromPath[ExecutionId], db: NamedDependency[Session],
              runtime: AppRuntime, caller: NamedDependency[Caller]) -> ExecutionRead:
        # the node first, outside the unit of work (whose session has not touched the database yet)
        chain = external.read_chain(runtime, execution_id)
        ex = external.lease_to_executor(db, runtime, execution_id, _executor(caller), chain)
        return execution_read(db, ex)

    @post("/{execution_id:str}/complete", operation_id="completeExecution", sync_to_thread=True, status_code=200,
          security=api_key("executor"),
          summary="Report the transfer made (transaction hash, checked on chain) or a reference",
          description="200 when recorded, and again for the identical completion; 409 for a different one, "
                      "for a transaction that completed another execution (`tx_already_used`) and after the "
                      "proposal's deadline (`execution_expired`, with `status`). 422 when the transaction does "
                      "not pay this spend (`tx_mismatch`), pays from a sender the asset does not allow "
                      "(`sender_not_allowed`), was mined before the first claim (`tx_before_claim`) or lacks "
                      "confirmations (`tx_unconfirmed`), or when the node has no such transaction "
                      "(`tx_not_found`); each of these carries `retryable`: true for `tx_unconfirmed` and "
                      "`tx_not_found` (a node behind the others may not have seen it yet: report again "
                      "later), false for the rest. A transaction hash for an off-chain asset is 422 "
                      "`tx_hash_not_applicable` (give a `reference`); 409 `execution_changed` when the "
                      "execution moved while the chain was read (send again).",
          responses=errors(400, 401, 403, 404, 409, 413, 422, 503))
    def complete(self, execution_id: FromPath[ExecutionId], data: JSONBody[CompleteRequest],
                 db: NamedDependency[Session], runtime: AppRuntime,
                 caller: NamedDependency[Caller]) -> Response[ExecutionRead]:
        chain = external.read_chain(runtime, execution_id, tx_hash=data.tx_hash)  # before any lock, as claim
        ex, _ = external.complete(db, runtime, execution_id, _executor(caller), tx_hash=data.tx_hash,
                                  reference=data.reference, chain=chain)
        return Response(execution_read(db, ex), status_code=200)

    @post("/{execution_id:str}/fail", operation_id="failExecution", sync_to_thread=True, status_code=200,
          security=api_key("executor"),
          summary="Give up the lease with a reason; the reservation is released, the execution ready again",
          responses=errors(400, 401, 403, 404, 409, 413))
    def fail(self, execution_id: FromPath[ExecutionId], data: JSONBody[FailRequest],
             db: NamedDependency[Session], runtime: AppRuntime,
             caller: NamedDependency[Caller]) -> ExecutionRead:
        ex = external.fail(db, runtime, execution_id, _executor(caller), data.reason)
        return execution_read(db, ex)


def _executor(caller: Caller) -> str:
    """The executor's identity in leases and attempts: its key id."""
    return f"key:{caller.key_id}"


ROUTES = [TreasuryController, ExecutionController]
