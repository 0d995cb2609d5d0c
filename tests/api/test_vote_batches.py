"""Group commit: a batch of votes is decided vote by vote, in order, exactly as single votes.

The vote writer hands :func:`voting.service.record_votes` everything that arrived during the
previous commit. Here a batch is built by hand, with the cases a batch can mix: new votes from
both schemes, the same signed vote twice, a voter changing their vote within the batch, an
older vote after a newer one, a voter without power, an unknown proposal. Each vote must get the
answer it would get alone, the refused ones must leave nothing behind, and the stored log and
running tally must be those of the votes applied one at a time.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from governance.db import session_scope
from governance.errors import Conflict, Forbidden, NotFound
from governance.signatures import Envelope, verify_accepted
from tests.support import TOKEN, Wallet, vote_message
from voting.models import Ballot
from voting.service import Accepted, record_votes
from voting.writer import VoteWriter


def test_a_mixed_batch_is_decided_vote_by_vote(gov, runtime) -> None:
    alice, bob, carol, nobody = Wallet.evm(), Wallet.solana(), Wallet.evm(), Wallet.solana()
    for w, n in ((alice, 30), (bob, 20), (carol, 10)):
        gov.buy(w, n)
    pid = gov.proposal(alice, "PriceChange", price=110_000)
    gov.advance(runtime.settings.voting_delay)  # voting opens
    now = gov.now
    unknown = "0x" + "ab" * 32

    def v(w: Wallet, choice: int, at: int = now, proposal: str = pid):
        envelope = w.sign(gov.domain, "Vote", vote_message(w.address, proposal, choice, at))
        return verify_accepted(Envelope(**envelope), runtime.encoder, ("Vote",))

    batch = [
        v(alice, 1),             # 0 new
        v(alice, 1),             # 1 the same signed vote again: a replay of 0
        v(bob, 0),               # 2 new (ed25519)
        v(bob, 2, now + 1),      # 3 bob changes his vote within the batch: replaces 2
        v(bob, 1, now - 1),      # 4 older than bob's counted vote: superseded
        v(nobody, 1),            # 5 no voting power
        v(carol, 0, proposal=unknown),  # 6 no such proposal
        v(carol, 0),             # 7 new
    ]
    with session_scope(runtime.engine) as session:
        out = record_votes(session, runtime, batch)

    assert [type(o).__name__ for o in out] == ["Accepted", "Accepted", "Accepted", "Accepted", "Conflict",
                                               "Forbidden", "NotFound", "Accepted"]
    first, replay, bob_first, bob_second = out[0], out[1], out[2], out[3]
    assert isinstance(first, Accepted) and first.created and first.receipt.seq == 1
    assert isinstance(replay, Accepted) and not replay.created and replay.receipt == first.receipt
    assert isinstance(bob_second, Accepted) and bob_second.receipt.replaces == bob_first.receipt.id
    assert isinstance(out[4], Conflict) and out[4].code == "superseded"
    assert isinstance(out[5], Forbidden) and out[5].code == "no_voting_power"
    assert isinstance(out[6], NotFound) and out[6].code == "proposal_not_found"
    assert [o.receipt.seq for o in out if isinstance(o, Accepted) and o.created] == [1, 2, 3, 4]

    with session_scope(runtime.engine, write=False) as session:
        log = {b.seq: b for b in session.exec(select(Ballot).where(Ballot.proposal_id == pid))}
    assert sorted(log) == [1, 2, 3, 4]  # nothing of the refused votes, the replay stored once
    assert log[2].superseded and not log[3].superseded and not log[1].superseded
    tally = gov.get(pid)["tally"]
    assert (tally["for"], tally["against"], tally["abstain"], tally["ballots"]) == (
        str(30 * TOKEN), str(10 * TOKEN), str(20 * TOKEN), 3)

    # the same batch again: every new vote is now a replay, every refusal the same refusal
    with session_scope(runtime.engine) as session:
        again = record_votes(session, runtime, batch)
    assert [isinstance(o, Accepted) and not o.created for o in again] == [True, True, True, True, False, False,
                                                                         False, True]
    assert gov.get(pid)["tally"] == tally


def test_the_writer_answers_only_after_the_commit(gov, runtime) -> None:
    """Every future resolves with its vote's own answer, and by then the ballot is readable
    from a fresh connection (it was committed)."""
    wallets = [Wallet.evm() if i % 2 else Wallet.solana() for i in range(12)]
    for w in wallets:
        gov.buy(w, 1)
    pid = gov.proposal(wallets[1], "PriceChange", price=110_000)
    gov.advance(runtime.settings.voting_delay)
    writer = VoteWriter(runtime, max_batch=5)
    try:
        futures = [writer.submit(verify_accepted(Envelope(**w.sign(gov.domain, "Vote",
                                                                   vote_message(w.address, pid, 1, gov.now))),
                                                 runtime.encoder, ("Vote",))) for w in wallets]
        receipts = [f.result(timeout=30).receipt for f in futures]
    finally:
        writer.stop()
    assert sorted(r.seq for r in receipts) == list(range(1, 13))
    with session_scope(runtime.engine, write=False) as session:
        stored = {b.id for b in session.exec(select(Ballot).where(Ballot.proposal_id == pid))}
    assert stored == {r.id for r in receipts}


def test_the_writer_outlives_a_batch_that_fails_outside_its_transaction(gov, runtime, monkeypatch) -> None:
    """A failure after the commit (here, dropping the cached views) is that batch's answer; the
    writer thread goes on, so the next vote is still written (it had died, and every later vote
    waited forever). A stopped writer starts again with the next vote."""
    a, b = Wallet.evm(), Wallet.evm()
    for w in (a, b):
        gov.buy(w, 1)
    pid = gov.proposal(a, "PriceChange", price=110_000)
    gov.advance(runtime.settings.voting_delay)

    def vote(w: Wallet):
        return verify_accepted(Envelope(**w.sign(gov.domain, "Vote", vote_message(w.address, pid, 1, gov.now))),
                               runtime.encoder, ("Vote",))

    writer = VoteWriter(runtime, max_batch=5)
    try:
        broken = RuntimeError("the view cache failed")
        monkeypatch.setattr(writer.views, "invalidate", lambda keys=None: (_ for _ in ()).throw(broken))
        with pytest.raises(RuntimeError, match="view cache failed"):
            writer.submit(vote(a)).result(timeout=30)
        monkeypatch.undo()
        assert writer.submit(vote(b)).result(timeout=30).created
        writer.stop()
        assert writer.submit(vote(a)).result(timeout=30).created is False  # a new thread: a's vote was stored
    finally:
        writer.stop()
