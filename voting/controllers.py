"""HTTP: cast votes, read ballots, export for offline verification, voting power."""

from __future__ import annotations

import json
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlmodel import Session

from governance.db import BIGINT_MAX
from governance.http import AppRuntime, ProposalId, api_key, errors, public
from governance.signatures import Envelope, verify_accepted
from voting import service
from voting.export import build_export
from voting.proofs import inclusion_proof
from voting.schemas import (
    BallotPage,
    BallotRead,
    HolderListRead,
    HolderListUpload,
    InclusionProof,
    PowerRead,
    ProposalExport,
    SnapshotRef,
    VoteReceipt,
)


class VoteController(Controller):
    tags = ["votes"]

    @post("/v1/votes", operation_id="castVote", security=public(),
          summary="Cast or change a signed, token-weighted vote",
          description="201 with a receipt when accepted; 200 with the stored receipt when the identical "
                      "signed vote was accepted before. 409 `superseded` when a newer vote of the voter "
                      "counts, `already_voted` under vote_change=forbid, `voting_not_started` / "
                      "`voting_closed` outside the window (the body names the state).",
          responses=errors(400, 403, 404, 409, 413, 422, 429, 503))
    async def cast(self, data: JSONBody[Envelope], runtime: AppRuntime) -> Response[VoteReceipt]:
        # The signature check is CPU work (~0.1 ms): done here, it needs no thread hop. The
        # vote then joins the next group commit; the answer comes once that commit is durable.
        verified = verify_accepted(data, runtime.encoder, ("Vote",))
        accepted = await runtime.vote_writer.submit_async(verified)
        return Response(accepted.receipt, status_code=201 if accepted.created else 200)

    @get("/v1/proposals/{proposal_id:str}/votes", operation_id="listVotes", sync_to_thread=True, security=public(),
         summary="The proposal's ballot log, in order (cursor: the last seq seen)",
         responses=errors(400, 404))
    def ballots(self, proposal_id: FromPath[ProposalId], db: NamedDependency[Session],
                cursor: Annotated[int, QueryParameter(ge=0, le=BIGINT_MAX)] = 0,
                limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100) -> BallotPage:
        rows = service.list_ballots(db, proposal_id.lower(), after=cursor, limit=limit)
        items = [BallotRead(id=b.id, proposal=b.proposal_id, seq=b.seq, voter=b.voter, choice=b.choice,
                            weight=str(b.weight), reason=b.reason, accepted_at=b.accepted_at, scheme=b.scheme,
                            signature=b.signature, message=json.loads(b.message), superseded=b.superseded)
                 for b in rows]
        return BallotPage(items=items, next_cursor=str(rows[-1].seq) if len(rows) == limit else None)

    @get("/v1/proposals/{proposal_id:str}/export", operation_id="exportProposal", sync_to_thread=True,
         security=public(),
         summary="Every signed message, the snapshot weights and the result, to verify offline "
                 "(`dao verify`)", responses=errors(400, 404))
    def export(self, proposal_id: FromPath[ProposalId], db: NamedDependency[Session],
               runtime: AppRuntime) -> ProposalExport:
        return build_export(db, runtime, proposal_id.lower())


    @get("/v1/proposals/{proposal_id:str}/proof", operation_id="getInclusionProof", sync_to_thread=True,
         security=public(),
         summary="One ballot's Merkle path to the proposal's result root, by voter or by vote id",
         description="Give exactly one of `voter` (the ballot that counts for that address) and `vote` (a "
                     "vote id). Check it as docs/protocol.md says: `h = keccak256(0x00 ‖ leaf)`, then "
                     "`h = keccak256(0x01 ‖ min(h, s) ‖ max(h, s))` for each `s` in `path`; it proves the "
                     "ballot was counted, with its weight, when `h` equals `merkle_root`. A superseded "
                     "ballot answers `counted: false` with `superseded_by` and no path. 409 `not_tallied` "
                     "before the tally (with `state`); 404 `ballot_not_found`; 400 `invalid_query` or "
                     "`invalid_address`.",
         responses=errors(400, 404, 409))
    def proof(self, proposal_id: FromPath[ProposalId], db: NamedDependency[Session], runtime: AppRuntime,
              voter: FromQuery[str | None] = None, vote: FromQuery[str | None] = None) -> InclusionProof:
        return inclusion_proof(db, proposal_id.lower(), runtime.clock.now(), voter=voter, vote=vote)


class PowerController(Controller):
    tags = ["power"]

    @get("/v1/power/{address:str}", operation_id="getPower", sync_to_thread=True, security=public(),
         summary="Voting power at a proposal's snapshot, or at a snapshot taken now",
         responses=errors(400, 404, 409, 503))
    def power(self, address: FromPath[str], db: NamedDependency[Session], runtime: AppRuntime,
              proposal: FromQuery[str | None] = None) -> PowerRead:
        weight, snap = service.power_of(db, runtime, address, proposal.lower() if proposal else None)
        return PowerRead(address=address, weight=str(weight), proposal=proposal.lower() if proposal else None,
                         snapshot=SnapshotRef(source=snap.source, ref=snap.ref, total=str(snap.total)))

    @post("/v1/power/holder-lists", operation_id="uploadHolderList", sync_to_thread=True,
          security=api_key("operator"),
          summary="Upload a holder list (source holders-file); proposals created from now on use it",
          description="201 when stored. With a `reference`: 200 with the stored list when the same list "
                      "(holders in any order, same label) was uploaded under it before; 409 "
                      "`reference_conflict` for another list under it.",
          responses=errors(400, 401, 403, 409, 413, 422))
    def upload(self, data: JSONBody[HolderListUpload], db: NamedDependency[Session],
               runtime: AppRuntime) -> Response[HolderListRead]:
        row, created = service.upload_holder_list(db, runtime, data)
        assert row.id is not None
        return Response(HolderListRead(id=row.id, merkle_root=row.merkle_root, total=str(row.total),
                                       holders=row.holders, label=row.label, uploaded_at=row.uploaded_at,
                                       reference=row.reference), status_code=201 if created else 200)


ROUTES = [VoteController, PowerController]
