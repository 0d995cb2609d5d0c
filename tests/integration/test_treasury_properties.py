"""For any sequence of purchases and buybacks: the buckets hold exactly the payments taken in
less what buybacks spent, nothing goes negative, and the journal verifies."""

from __future__ import annotations

import shutil
from pathlib import Path

from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from governance.bootstrap import bootstrap
from governance.clock import SettableClock
from governance.db import session_scope
from governance.errors import Unprocessable
from governance.settings import load_settings
from governance.setup import create_deployment
from tests.support import START
from treasury_exec import journal, service
from treasury_exec.journal import verify_chain
from treasury_exec.models import AccountBalance

HOLDERS = [to_checksum_address("0x" + f"{i:040x}") for i in range(1, 4)]

op = st.one_of(
    st.tuples(st.just("buy"), st.integers(0, 2), st.integers(1, 10**12)),
    st.tuples(st.just("buyback"), st.integers(0, 2), st.integers(1, 10**11), st.integers(1, 10**24)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=25))
def test_buckets_balance_for_any_sequence(ops, sqlite_template: Path, tmp_path_factory) -> None:
    holders = HOLDERS
    path = tmp_path_factory.mktemp("prop") / "dao.db"
    shutil.copyfile(sqlite_template, path)
    rt = bootstrap(load_settings(env={}, database_url=f"sqlite:///{path}"), clock=SettableClock(START))
    create_deployment(rt)
    taken_in = spent = 0
    for i, o in enumerate(ops):
        try:
            with session_scope(rt.engine) as s:
                if o[0] == "buy":
                    service.record_purchase(s, rt, buyer=holders[o[1]], payment=o[2], reference=f"p{i}")
                    taken_in += o[2]
                else:
                    service.record_buyback(s, rt, seller=holders[o[1]], amount=o[2], tokens=o[3], reference=f"b{i}")
                    spent += o[2]
        except Unprocessable as exc:
            assert exc.code in ("insufficient_funds", "insufficient_tokens", "payment_too_small")
    with session_scope(rt.engine, write=False) as s:
        buckets = sum(service.bucket_balance(s, b) for b in rt.settings.buckets)
        assert buckets == taken_in - spent
        for row in s.exec(select(AccountBalance)).all():
            assert row.balance >= 0 or journal.may_go_negative(row.account), row
        assert verify_chain(s).ok
    rt.engine.dispose()
