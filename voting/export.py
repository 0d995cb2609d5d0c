"""The export of a proposal — every signed message as received, the snapshot weights and the
result — and its offline verification (``dao verify``), which trusts nothing in it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from governance.errors import GovernanceError
from governance.runtime import Runtime
from governance.signatures import Envelope, verify_envelope
from governance.typed_data import TYPES, Domain, TypedDataEncoder
from governance.types import parse_uint
from proposals.service import get_proposal
from proposals.views import ledger_head
from voting.models import TallyResult
from voting.schemas import (
    ExportBallot,
    ExportProposal,
    ExportResult,
    ExportRules,
    ExportSnapshot,
    ProposalExport,
    SignedEnvelope,
)
from voting.service import iter_ballots
from voting.tally import BallotRecord, count, decide, effective_ballots

FORMAT = "ast-governance-export/1"


def build_export(session: Session, runtime: Runtime, proposal_id: str) -> ProposalExport:
    p = get_proposal(session, proposal_id)
    ballots = []
    weights: dict[str, str] = {}
    for b in iter_ballots(session, proposal_id):
        ballots.append(ExportBallot(seq=b.seq, accepted_at=b.accepted_at, weight=str(b.weight),
                                    envelope=SignedEnvelope(type="Vote", scheme=b.scheme, signer=b.voter,
                                                            signature=b.signature, message=json.loads(b.message))))
        weights[b.voter] = str(b.weight)
    r = session.get(TallyResult, proposal_id)
    # the treasury journal's heads recorded with the snapshot and the result: a copy published
    # here is checked later with `dao ledger verify --expect SEQ:HASH`
    result = None if r is None else ExportResult(
        outcome=r.outcome, for_=str(r.for_votes), against=str(r.against_votes), abstain=str(r.abstain_votes),
        voters=r.voters, quorum=str(r.quorum), quorum_reached=r.quorum_reached, merkle_root=r.merkle_root,
        tallied_at=r.tallied_at, ledger_head=ledger_head(r.journal_seq, r.journal_hash))
    return ProposalExport(
        format=FORMAT, domain=runtime.domain.as_json(), types=TYPES,
        proposal=ExportProposal(
            id=p.id, state=p.state,
            envelope=SignedEnvelope(type=p.kind, scheme=p.scheme, signer=p.proposer, signature=p.signature,
                                    message=json.loads(p.message)),
            created_at=p.created_at, starts_at=p.starts_at, ends_at=p.ends_at,
            rules=ExportRules(quorum_bps=p.quorum_bps, approval_bps=p.approval_bps)),
        snapshot=ExportSnapshot(source=p.snapshot_source, ref=p.snapshot_ref, total=str(p.snapshot_total),
                                ledger_head=ledger_head(p.journal_seq, p.journal_hash), weights=weights),
        ballots=ballots, result=result)


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    ballots: int = 0
    outcome: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_export(doc: dict[str, Any], progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Re-check every signature and id, every ballot weight against the snapshot weights,
    the effective ballots, the totals, the outcome and the Merkle root. Names what disagrees."""
    report = VerifyReport()
    if doc.get("format") != FORMAT:
        report.problems.append(f"unknown export format {doc.get('format')!r}")
        return report
    d = doc["domain"]
    encoder = TypedDataEncoder(Domain(name=d["name"], version=d["version"], chain_id=d["chainId"], salt=d["salt"]))
    prop = doc["proposal"]
    try:
        pv = verify_envelope(_envelope(prop["envelope"]), encoder)
        if "0x" + pv.digest.hex() != prop["id"]:
            report.problems.append(f"proposal id {prop['id']} is not the hash of its message")
    except GovernanceError as exc:
        report.problems.append(f"proposal signature: {exc.code}: {exc.detail}")
    weights: dict[str, int] = {}
    for voter, text in doc["snapshot"]["weights"].items():
        weights[voter] = _amount(text, f"snapshot weight of {voter}", report)
    supply = _amount(doc["snapshot"]["total"], "snapshot total", report)
    records: list[BallotRecord] = []
    for i, b in enumerate(doc["ballots"], 1):
        env = b["envelope"]
        label = f"ballot #{b.get('seq', i)} (voter {env.get('signer')})"
        try:
            v = verify_envelope(_envelope(env), encoder)
        except GovernanceError as exc:
            report.problems.append(f"{label}: signature does not verify ({exc.code})")
            continue
        msg = v.message_json
        if msg["proposal"] != prop["id"]:
            report.problems.append(f"{label}: votes on another proposal {msg['proposal']}")
            continue
        weight = _amount(b["weight"], f"{label}: weight", report)
        if weights.get(v.signer) != weight:
            report.problems.append(f"{label}: weight {weight} differs from the snapshot weight "
                                   f"{weights.get(v.signer)}")
        records.append(BallotRecord("0x" + v.digest.hex(), v.signer, msg["choice"], weight, int(msg["timestamp"])))
        if progress:
            progress(i)
    report.ballots = len(records)
    totals, root = count(effective_ballots(records))
    rules = prop["rules"]
    outcome = decide(totals, supply=supply, quorum_bps=rules["quorum_bps"],
                     approval_bps=rules["approval_bps"])
    report.outcome = outcome.name
    result = doc.get("result")
    if result is None:
        return report
    mine = {"for": str(totals.for_votes), "against": str(totals.against_votes),
            "abstain": str(totals.abstain_votes), "voters": totals.voters, "outcome": outcome.name,
            "quorum_reached": outcome.quorum_reached, "merkle_root": "0x" + root.hex()}
    for key, value in mine.items():
        if result.get(key) != value:
            report.problems.append(f"result {key}: the export says {result.get(key)!r}, recomputed {value!r}")
    return report


def _amount(text: Any, what: str, report: VerifyReport) -> int:
    """A weight or total as the service writes it: a decimal string of ASCII digits. Anything
    else is named as a problem (and counts 0): int() would read "١٠٠" as 100, and an export
    the service never wrote would verify as if it had."""
    value = parse_uint(text) if isinstance(text, str) else None
    if value is None:
        report.problems.append(f"{what} is {text!r}, not a decimal string of a uint256")
        return 0
    return value


def _envelope(raw: dict[str, Any]) -> Envelope:
    import msgspec

    return msgspec.convert(raw, Envelope)
