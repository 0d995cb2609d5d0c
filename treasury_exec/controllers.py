"""HTTP: the treasury's state, journal and parameter history; operator purchases and buybacks."""

from __future__ import annotations

import json
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter
from sqlmodel import Session

from governance.http import errors, require_role
from governance.runtime import Runtime
from treasury_exec import service
from treasury_exec.models import Buyback, ParameterVersion, Purchase
from treasury_exec.schemas import (
    BuybackCreate,
    BuybackRead,
    EntryRead,
    HistoryRead,
    LedgerPage,
    ParameterRead,
    PostingRead,
    PurchaseCreate,
    PurchaseRead,
    TreasuryRead,
)

OPERATOR = [{"operator": []}]


def _purchase(p: Purchase) -> PurchaseRead:
    return PurchaseRead(id=p.id or 0, reference=p.reference, buyer=p.buyer, payment=p.payment, tokens=str(p.tokens),
                        price=p.price, price_version=p.price_version, allocation_version=p.allocation_version,
                        split=json.loads(p.split), journal_seq=p.journal_seq, created_at=p.created_at)


def _buyback(b: Buyback) -> BuybackRead:
    return BuybackRead(id=b.id or 0, reference=b.reference, seller=b.seller, amount=b.amount, tokens=str(b.tokens),
                       journal_seq=b.journal_seq, created_at=b.created_at)


def parameter_read(v: ParameterVersion) -> ParameterRead:
    return ParameterRead(id=v.id or 0, kind=v.kind, value=json.loads(v.value), created_at=v.created_at,
                         origin=v.origin, proposal_id=v.proposal_id)


class TreasuryController(Controller):
    path = "/v1/treasury"
    tags = ["treasury"]

    @get("/", operation_id="getTreasury", sync_to_thread=True,
         summary="Price, allocation, bucket balances, token supply")
    def state(self, db: NamedDependency[Session], runtime: NamedDependency[Runtime]) -> TreasuryRead:
        s = service.treasury_state(db, runtime)
        s["assets"] = {a: {b.removeprefix("bucket:"): str(v) for b, v in m.items()} for a, m in s["assets"].items()}
        return TreasuryRead(**s)

    @get("/ledger", operation_id="listLedger", sync_to_thread=True,
         summary="Journal entries in order, with their postings and hash chain (cursor: last seq seen)",
         responses=errors(400))
    def ledger(self, db: NamedDependency[Session],
               cursor: Annotated[int, QueryParameter(ge=0)] = 0,
               limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100) -> LedgerPage:
        rows = service.ledger_page(db, after=cursor, limit=limit)
        items = [EntryRead(seq=e.seq, kind=e.kind, reference=e.reference, created_at=e.created_at, memo=e.memo,
                           prev_hash=e.prev_hash, hash=e.hash,
                           postings=[PostingRead(p.account, p.asset, str(p.amount)) for p in legs])
                 for e, legs in rows]
        return LedgerPage(items=items, next_cursor=str(items[-1].seq) if len(items) == limit else None)

    @get("/history", operation_id="listParameterHistory", sync_to_thread=True,
         summary="Every price and allocation version, with the proposal that set it", responses=errors(400))
    def history(self, db: NamedDependency[Session], kind: FromQuery[str | None] = None) -> HistoryRead:
        return HistoryRead(items=[parameter_read(v) for v in service.history(db, kind)])

    @post("/purchases", operation_id="recordPurchase", sync_to_thread=True, guards=[require_role("operator")],
          security=OPERATOR, summary="Record a paid purchase: mint tokens at the price in force, split revenue",
          description="201 when recorded; 200 with the first result when the reference was recorded before.",
          responses=errors(400, 401, 403, 409, 413, 422))
    def purchase(self, data: JSONBody[PurchaseCreate], db: NamedDependency[Session],
                 runtime: NamedDependency[Runtime]) -> Response[PurchaseRead]:
        row, created = service.record_purchase(db, runtime, buyer=data.buyer, payment=data.payment,
                                               reference=data.reference)
        return Response(_purchase(row), status_code=201 if created else 200)

    @post("/buybacks", operation_id="recordBuyback", sync_to_thread=True, guards=[require_role("operator")],
          security=OPERATOR, summary="Record a buyback: pay from the buybacks bucket, burn the tokens bought",
          responses=errors(400, 401, 403, 409, 413, 422))
    def buyback(self, data: JSONBody[BuybackCreate], db: NamedDependency[Session],
                runtime: NamedDependency[Runtime]) -> Response[BuybackRead]:
        row, created = service.record_buyback(db, runtime, seller=data.seller, amount=data.amount,
                                              tokens=int(data.tokens), reference=data.reference)
        return Response(_buyback(row), status_code=201 if created else 200)


ROUTES = [TreasuryController]
