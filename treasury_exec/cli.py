"""``dao ledger verify``."""

from __future__ import annotations

import sys

import click

from governance.db import session_scope
from governance.runtime import Runtime
from governance.settings import load_settings
from treasury_exec.journal import verify_chain


@click.group()
def ledger() -> None:
    """The treasury journal."""


@ledger.command("verify")
def verify() -> None:
    """Check the journal's hash chain, balances and token checkpoints; name the first broken entry."""
    rt = Runtime.from_settings(load_settings())
    with session_scope(rt.engine, write=False) as session:
        report = verify_chain(session)
    if report.ok:
        click.echo(f"journal ok: {report.entries} entries, head {report.head_hash}")
        return
    where = f"entry {report.broken_at}" if report.broken_at is not None else "balances"
    click.echo(f"journal BROKEN at {where}: {report.reason}", err=True)
    sys.exit(1)


COMMANDS = [ledger]
