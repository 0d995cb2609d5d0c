"""HTTP: submit, list, read and cancel proposals."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlmodel import Session

from governance.db import session_scope
from governance.http import AppRuntime, ProposalId, api_key, errors, public, read
from governance.keys import Caller
from governance.runtime import Runtime
from governance.signatures import Envelope
from proposals import service
from proposals.schemas import ProposalPage, ProposalRead
from proposals.views import render


class ProposalController(Controller):
    path = "/v1/proposals"
    tags = ["proposals"]

    @post("/", operation_id="submitProposal", sync_to_thread=True, security=public(),
          summary="Submit a signed proposal (PriceChange, AllocationChange or TreasurySpend)",
          description="201 when accepted; 200 with the stored proposal when the identical signed "
                      "message was accepted before.",
          responses=errors(400, 403, 409, 413, 422, 429, 503))
    def submit(self, data: JSONBody[Envelope], db: NamedDependency[Session],
               runtime: AppRuntime) -> Response[ProposalRead]:
        proposal, created = service.submit_proposal(db, runtime, data)
        return Response(render(db, runtime, [proposal])[0], status_code=201 if created else 200)

    @get("/", operation_id="listProposals", summary="List proposals, newest first", security=public(),
         responses=errors(400))
    async def list(self, db: NamedDependency[Session], runtime: AppRuntime,
             state_filter: Annotated[str | None, QueryParameter(name="state", description="a lifecycle state")] = None,
             kind: FromQuery[str | None] = None,
             proposer: FromQuery[str | None] = None, cursor: FromQuery[str | None] = None,
             limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50) -> ProposalPage:
        def page() -> ProposalPage:
            rows, next_cursor = service.list_proposals(db, runtime, state=state_filter, kind=kind, proposer=proposer,
                                                       cursor=cursor, limit=limit)
            return ProposalPage(items=render(db, runtime, rows), next_cursor=next_cursor)

        return await read(runtime, page)

    @get("/{proposal_id:str}", operation_id="getProposal", security=public(),
         summary="One proposal: payload, state, timing, snapshot, live tally, result, execution",
         responses=errors(400, 404))
    async def one(self, proposal_id: FromPath[ProposalId], runtime: AppRuntime) -> ProposalRead:
        key = proposal_id.lower()
        return await runtime.view_cache.fetch(key, runtime.clock.now(),
                                               lambda: read(runtime, _render_one, runtime, key), _changes_at)

    @post("/{proposal_id:str}/cancel", operation_id="cancelProposal", sync_to_thread=True, status_code=200,
          summary="Cancel: a signed Cancel by the proposer (while pending) or a guardian address, "
                  "or a guardian API key (Authorization: Bearer) before executed",
          security=api_key("guardian", optional=True),
          responses=errors(400, 401, 403, 404, 409, 413, 422))
    def cancel(self, proposal_id: FromPath[ProposalId], db: NamedDependency[Session],
               runtime: AppRuntime, caller: NamedDependency[Caller | None],
               data: JSONBody[Envelope | None] = None) -> ProposalRead:
        proposal = service.cancel_proposal(db, runtime, proposal_id, envelope=data,
                                           guardian_key_id=caller.key_id if caller else None)
        return render(db, runtime, [proposal])[0]


def _changes_at(view: ProposalRead, now: int) -> int | None:
    """When the clock alone changes this view: voting opens at starts_at, closes at ends_at."""
    return min((t for t in (view.starts_at, view.ends_at) if t > now), default=None)


def _render_one(runtime: Runtime, proposal_id: str) -> ProposalRead:
    with session_scope(runtime.engine, write=False) as session:
        return render(session, runtime, [service.get_proposal(session, proposal_id)])[0]


ROUTES = [ProposalController]
