"""Money in flight: a spend that may still leave the treasury holds its amount apart.

When an on-chain transfer is signed, or an external executor claims a spend, the amount moves
in the journal from ``bucket:<b>`` to ``reserved:execution:<id>`` (entry kind ``reserve``).
Every later balance check (other spends, buybacks, the spend cap of a new proposal) reads
the bucket and so sees only what is left: available = balance - reserved, without a second
place to forget. The transfer, once journaled, is paid from the reservation; a transfer that
can never land, an executor that gives up, an execution that expires or is canceled moves it
back (``release``). Reservation accounts are bounded at zero like buckets, so the journal
refuses to pay or release one twice, and the hash chain covers every move.

Fees: when the chain's native coin is a journaled asset the service sends itself (a native
asset with mode ``chain`` in ``DAO_CHAIN_ASSETS``), the treasury account's fees are that coin
leaving the treasury, and the journal must say so or its balance drifts above the account's.
Signing then also reserves the most the transfer may burn (gas limit × max fee per gas) from
``DAO_FEE_BUCKET`` into ``reserved:fee:<id>``; a transaction that lands (whether it paid or
reverted) pays its actual fee from there to ``external:network-fees`` (entry kind ``fee``) and
returns the rest; one that never lands returns it all.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select as sa_select
from sqlmodel import Session

from governance.runtime import Runtime
from treasury_exec import journal
from treasury_exec.journal import Posting
from treasury_exec.models import AccountBalance, Execution

PREFIX = "reserved:execution:"
FEE_PREFIX = "reserved:fee:"
NETWORK_FEES = "external:network-fees"  # where the fees the treasury account burns go


def account(ex_id: int) -> str:
    """The journal account holding what execution ``ex_id`` reserved."""
    return f"{PREFIX}{ex_id}"


def _reference(ex: Execution) -> str:
    # one reservation per attempt: a release ends the attempt (it is counted right after)
    return f"execution:{ex.id}:attempt:{ex.attempts + 1}"


def fee_account(ex_id: int) -> str:
    """The journal account holding the fee execution ``ex_id`` may burn."""
    return f"{FEE_PREFIX}{ex_id}"


def fee_asset(runtime: Runtime) -> str | None:
    """The asset fees are journaled in: the native coin, when the service sends it (None: fees
    are not the journal's business; the treasury account's native coin only pays for gas)."""
    return next((s for s, a in runtime.chain_assets.items() if a.native and a.mode == "chain"), None)


def held(session: Session, ex: Execution) -> int:
    """What ``ex`` holds reserved now (0 for none)."""
    if ex.id is None or ex.asset is None:
        return 0
    return held_by(session, [ex.id]).get(ex.id, 0)


def held_by(session: Session, ids: list[int]) -> dict[int, int]:
    """Reserved amounts of many executions at once (executions holding nothing are left out).
    Core rows: a reservation read must never leave a stale balance in the session's identity
    map for a later journal append to trust."""
    if not ids:
        return {}
    t = AccountBalance.__table__  # type: ignore[attr-defined]
    rows = session.execute(sa_select(t.c.account, t.c.balance).where(t.c.account.in_([account(i) for i in ids])))
    return {int(a.removeprefix(PREFIX)): int(b) for a, b in rows if int(b)}


def bucket_available(session: Session, bucket: str, asset: str) -> int:
    """What a bucket can still pay (reservations are already out of it)."""
    return _balance(session, f"bucket:{bucket}", asset)


def _balance(session: Session, account_name: str, asset: str) -> int:
    """An account's balance, read as a Core row (see :func:`held_by`)."""
    t = AccountBalance.__table__  # type: ignore[attr-defined]
    value = session.execute(sa_select(t.c.balance).where(t.c.account == account_name, t.c.asset == asset)).scalar()
    return int(value) if value is not None else 0


def reserve(session: Session, runtime: Runtime, ex: Execution, now: int, *, fee: int = 0) -> None:
    """Move the spend's amount from its bucket to its reservation, and ``fee`` (the most an
    on-chain transfer may burn, when fees are journaled) from the fee bucket to the execution's
    fee reservation, in one entry under the journal head's lock (which serializes this check
    against every other writer). Raises 422 ``insufficient_funds`` and stores nothing when a
    bucket holds less."""
    assert ex.id is not None and ex.asset is not None and ex.amount is not None
    postings = [Posting(f"bucket:{ex.bucket}", ex.asset, -ex.amount), Posting(account(ex.id), ex.asset, ex.amount)]
    native = fee_asset(runtime)
    if fee and native:
        postings += [Posting(f"bucket:{runtime.settings.fee_bucket}", native, -fee),
                     Posting(fee_account(ex.id), native, fee)]
    with session.begin_nested():
        journal.append_entry(session, kind="reserve", reference=_reference(ex), now=now,
                             token_asset=runtime.settings.token_symbol, memo=f"proposal {ex.proposal_id}",
                             postings=postings)


def pay_fee(session: Session, runtime: Runtime, ex: Execution, paid: int, now: int, *, tx_hash: str) -> None:
    """Journal the fee transaction ``tx_hash`` of ``ex`` burned (``paid``, in the native coin; its
    own transfer, or another that took its nonce): from
    its fee reservation, the rest of which goes back to the fee bucket (a transfer signed before
    fees were reserved, or a rollup's data fee past the reservation, takes the difference from
    the fee bucket). Nothing when fees are not journaled. Raises 422 when the fee bucket cannot
    cover a difference, storing nothing."""
    native = fee_asset(runtime)
    assert ex.id is not None
    if native is None or not paid:
        return
    held_fee = _balance(session, fee_account(ex.id), native)
    postings = [Posting(NETWORK_FEES, native, paid), Posting(f"bucket:{runtime.settings.fee_bucket}", native,
                                                              held_fee - paid)]
    if held_fee:
        postings.append(Posting(fee_account(ex.id), native, -held_fee))
    with session.begin_nested():
        journal.append_entry(session, kind="fee", reference=_reference(ex), now=now,
                             token_asset=runtime.settings.token_symbol, memo=f"network fee, tx {tx_hash}",
                             postings=postings)


def release(session: Session, runtime: Runtime, ex: Execution, now: int) -> int:
    """Move whatever ``ex`` holds reserved back to its bucket; returns the amount (0: none).
    Call it only after a conditional status change took the execution, so that one process
    releases it."""
    amount = held(session, ex)
    postings = [Posting(account(ex.id), ex.asset, -amount), Posting(f"bucket:{ex.bucket}", ex.asset, amount)] \
        if amount else []
    native = fee_asset(runtime)
    held_fee = _balance(session, fee_account(ex.id), native) if native and ex.id is not None else 0
    if held_fee:
        postings += [Posting(fee_account(ex.id), native, -held_fee),
                     Posting(f"bucket:{runtime.settings.fee_bucket}", native, held_fee)]
    if postings:
        journal.append_entry(session, kind="release", reference=_reference(ex), now=now,
                             token_asset=runtime.settings.token_symbol, memo=f"proposal {ex.proposal_id}",
                             postings=postings)
    return amount


def debit_account(session: Session, ex: Execution) -> str:
    """Where a settled spend is paid from: its reservation, or (an execution claimed or signed
    before reservations existed) its bucket."""
    assert ex.id is not None and ex.amount is not None
    return account(ex.id) if held(session, ex) >= ex.amount else f"bucket:{ex.bucket}"


def by_bucket(session: Session, fee_bucket: str = "") -> dict[str, dict[str, int]]:
    """Everything reserved now, as asset -> bucket -> amount (fee reservations under
    ``fee_bucket``, where they came from)."""
    t = AccountBalance.__table__  # type: ignore[attr-defined]
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for asset, amount in session.execute(sa_select(t.c.asset, t.c.balance).where(t.c.account.like(f"{FEE_PREFIX}%"))):
        if int(amount):
            out[asset][fee_bucket] = out[asset].get(fee_bucket, 0) + int(amount)
    rows = [(int(a.removeprefix(PREFIX)), asset, int(b)) for a, asset, b in session.execute(
        sa_select(t.c.account, t.c.asset, t.c.balance).where(t.c.account.like(f"{PREFIX}%")))]
    rows = [r for r in rows if r[2]]
    if not rows:
        return dict(out)
    ex = Execution.__table__  # type: ignore[attr-defined]
    query = sa_select(ex.c.id, ex.c.bucket).where(ex.c.id.in_([r[0] for r in rows]))
    buckets = {i: b for i, b in session.execute(query)}
    for ex_id, asset, amount in rows:
        bucket = buckets.get(ex_id) or "?"
        out[asset][bucket] = out[asset].get(bucket, 0) + amount
    return dict(out)
