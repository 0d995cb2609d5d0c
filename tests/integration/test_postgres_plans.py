"""PostgreSQL plans every statement for its own parameters (governance.db.create_engine).

psycopg prepares a statement server-side from its sixth run, and PostgreSQL then settles on a
generic plan. For the vote writer's lookup of a proposal's counted ballots by voter, on a
ballot table grown since it was last analyzed, that plan reads every ballot of the proposal and
filters them: a cost that grows with each vote (bench/README.md). No statement may end up
prepared on the server, however often it runs.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from governance.db import session_scope
from voting.service import _statements


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_no_statement_is_prepared_on_the_server(runtime) -> None:
    with session_scope(runtime.engine) as session:
        conn = session.connection()
        for _ in range(12):  # twice psycopg's default threshold
            conn.execute(_statements.counted, {"proposal": "0x" + "00" * 32, "voters": ["a", "b"]}).all()
            conn.execute(text("SELECT count(*) FROM ballot WHERE proposal_id = :p"), {"p": "x"}).scalar()
        prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()
    assert prepared == 0
