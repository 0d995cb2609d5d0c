"""The tally, pure: integers only, rules as frozen on the proposal.

- quorum reached ⇔ for + abstain ≥ ceil(quorum_bps × supply / 10000)
- passed ⇔ quorum reached ∧ for × 10000 > approval_bps × (for + against)
- per voter only the effective ballot counts: under ``latest`` the one with the newest signed
  timestamp (equal timestamps: the greater vote id); under ``forbid`` the only one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from governance.types import BPS
from voting import merkle

AGAINST, FOR, ABSTAIN = 0, 1, 2
CHOICES = {AGAINST: "against", FOR: "for", ABSTAIN: "abstain"}


class BallotRecord(NamedTuple):
    """What the tally needs of a ballot (a database row or a line of an export). A tuple:
    finalizing builds a million of them."""

    id: str
    voter: str
    choice: int
    weight: int
    signed_at: int


@dataclass(frozen=True)
class Totals:
    for_votes: int = 0
    against_votes: int = 0
    abstain_votes: int = 0
    voters: int = 0

    def add(self, choice: int, weight: int, sign: int = 1) -> Totals:
        w = sign * weight
        return Totals(
            self.for_votes + (w if choice == FOR else 0),
            self.against_votes + (w if choice == AGAINST else 0),
            self.abstain_votes + (w if choice == ABSTAIN else 0),
            self.voters + sign,
        )

    def __add__(self, other: Totals) -> Totals:
        """These totals moved by ``other`` (a change, whose fields may be negative)."""
        return Totals(self.for_votes + other.for_votes, self.against_votes + other.against_votes,
                      self.abstain_votes + other.abstain_votes, self.voters + other.voters)


@dataclass(frozen=True)
class Outcome:
    quorum: int
    quorum_reached: bool
    passed: bool

    @property
    def name(self) -> str:
        return "succeeded" if self.passed else "defeated"


def quorum_needed(quorum_bps: int, supply: int) -> int:
    """ceil(quorum_bps × supply / 10000), in integers."""
    return -(-quorum_bps * supply // BPS)


def decide(totals: Totals, *, supply: int, quorum_bps: int, approval_bps: int) -> Outcome:
    quorum = quorum_needed(quorum_bps, supply)
    reached = totals.for_votes + totals.abstain_votes >= quorum
    approve = totals.for_votes * BPS > approval_bps * (totals.for_votes + totals.against_votes)
    return Outcome(quorum=quorum, quorum_reached=reached, passed=reached and approve)


def newer(a: BallotRecord, b: BallotRecord) -> bool:
    """Whether ballot ``a`` replaces ballot ``b`` under ``latest``."""
    return (a.signed_at, a.id) > (b.signed_at, b.id)


def effective_ballots(ballots: Iterable[BallotRecord]) -> dict[str, BallotRecord]:
    """The ballot that counts for each voter (the newest one; see :func:`newer`)."""
    best: dict[str, BallotRecord] = {}
    for b in ballots:
        cur = best.get(b.voter)
        if cur is None or newer(b, cur):
            best[b.voter] = b
    return best


def count(effective: dict[str, BallotRecord]) -> tuple[Totals, bytes]:
    """Totals and the Merkle root over counted ballots (leaf: vote id and weight, by voter)."""
    return count_by_voter(effective[voter] for voter in sorted(effective))


def count_by_voter(ballots: Iterable[BallotRecord]) -> tuple[Totals, bytes]:
    """:func:`count` over the whole ballot log streamed in voter order (each voter's ballots
    together, in any order among themselves): the effective ballot of each voter is picked on
    the fly, so memory stays flat however long the log. Raises ``ValueError`` if the voters
    are not in ascending order (the Merkle root depends on it)."""
    for_v = against = abstain = voters = 0
    tree = merkle.RootBuilder()
    best: BallotRecord | None = None

    def settle(b: BallotRecord) -> None:
        nonlocal for_v, against, abstain, voters
        voters += 1
        if b.choice == FOR:
            for_v += b.weight
        elif b.choice == AGAINST:
            against += b.weight
        else:
            abstain += b.weight
        tree.add(merkle.ballot_leaf(b.id, b.weight))

    for b in ballots:
        if best is None or b.voter != best.voter:
            if best is not None:
                if b.voter < best.voter:
                    raise ValueError(f"ballots out of voter order: {b.voter} after {best.voter}")
                settle(best)
            best = b
        elif newer(b, best):
            best = b
    if best is not None:
        settle(best)
    return Totals(for_v, against, abstain, voters), tree.root()
