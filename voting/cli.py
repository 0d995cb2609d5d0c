"""``dao verify``: re-check a proposal's export offline."""

from __future__ import annotations

import json
import sys
import urllib.request

import click

from voting.export import verify_export


@click.command("verify")
@click.argument("source")
def verify(source: str) -> None:
    """Verify an export (a file, or the URL of GET /v1/proposals/{id}/export) offline:
    signatures, weights, tally, outcome and Merkle root."""
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=60) as resp:
            doc = json.load(resp)
    else:
        with open(source, encoding="utf-8") as fh:
            doc = json.load(fh)
    total = len(doc.get("ballots", []))
    with click.progressbar(length=total, label="checking ballots", file=sys.stderr,
                           show_pos=True) as bar:
        last = [0]

        def advance(i: int) -> None:
            bar.update(i - last[0])
            last[0] = i

        report = verify_export(doc, progress=advance)
    if report.ok:
        click.echo(f"OK: {report.ballots} ballots verified; outcome {report.outcome}")
        return
    click.echo(f"FAILED: {len(report.problems)} problem(s)", err=True)
    for p in report.problems:
        click.echo(f"  - {p}", err=True)
    sys.exit(1)


COMMANDS = [verify]
