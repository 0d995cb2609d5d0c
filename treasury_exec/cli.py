"""``dao ledger verify``."""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable

import click

from governance.db import BIGINT_MAX, is_sqlite, session_scope
from governance.ports import RecordedHead
from governance.runtime import Runtime
from treasury_exec.journal import verify_chain

_POINT = re.compile(r"(0|[1-9][0-9]{0,18}):([0-9a-fA-F]{64})")


def _expected(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[RecordedHead]:
    out = []
    for value in values:
        m = _POINT.fullmatch(value)
        if m is None or int(m[1]) > BIGINT_MAX:
            raise click.BadParameter(f"{value!r} is not SEQ:HASH (a sequence number, a colon, 64 hex digits)")
        seq, digest = int(m[1]), m[2].lower()  # a hash has one canonical form: lowercase hex
        out.append(RecordedHead("expected", f"--expect {seq}:{digest}", seq, digest))
    return out


@click.group()
def ledger() -> None:
    """The treasury journal."""


@ledger.command("verify")
@click.option("--expect", "expected", multiple=True, callback=_expected, metavar="SEQ:HASH",
              help="a journal head published before (GET /v1/treasury `ledger_head`, a proposal's or result's "
                   "`ledger_head`): the chain must still hold entry SEQ with this hash. Repeatable.")
@click.pass_obj
def verify(make_runtime: Callable[[], Runtime], expected: list[RecordedHead]) -> None:
    """Check the journal's hash chain and recompute every table derived from it (balances, token
    checkpoints, the head); check every journal head recorded by proposals and tally results, and
    each --expect, against the chain. Names the first difference; exit status 1 if any."""
    rt = make_runtime().load_deployment()  # the journal starts with the deployment
    # one snapshot of the database for the whole check, however long it takes: rows another
    # process appends meanwhile are not half seen
    engine = rt.engine if is_sqlite(rt.engine) else rt.engine.execution_options(isolation_level="REPEATABLE READ")
    with session_scope(engine, write=False) as session:
        recorded = itertools.chain(expected, *(provider(session) for provider in rt.recorded_heads))
        report = verify_chain(session, token_asset=rt.settings.token_symbol, recorded=recorded)
    if report.ok:
        click.echo(f"journal ok: {report.entries} entries, head {report.entries}:{report.head_hash}; "
                   f"{report.balances} balances and {report.checkpoints} token checkpoints match the postings; "
                   f"{report.recorded} recorded heads are in the chain")
        return
    for problem in report.problems:
        click.echo(f"journal BROKEN at {problem}", err=True)
    sys.exit(1)


COMMANDS = [ledger]
