"""The ``dao`` command."""

from __future__ import annotations

import gc
import json
import logging

import click

from governance.bootstrap import COMMANDS, bootstrap, check_chain
from governance.db import session_scope
from governance.errors import GovernanceError, NotInitialised
from governance.runtime import Runtime
from governance.settings import SettingsError, load_settings


def _runtime(*, runs_service: bool = False) -> Runtime:
    """The process's runtime, from the settings (the composition root). A setting it cannot run
    with stops the command with one message naming the setting (exit status 1), before anything
    is served or written. ``runs_service``: the process serves or runs the jobs, so the chain
    its settings point at must be there too (:func:`~governance.bootstrap.check_chain`)."""
    try:
        rt = bootstrap(load_settings())
        if runs_service:
            check_chain(rt)
        return rt
    except SettingsError as exc:
        raise click.ClickException(f"settings: {exc}") from None


class _Dao(click.Group):
    """A command whose database holds no deployment (:class:`NotInitialised`, from
    ``Runtime.load_deployment``) stops with one message naming the database, exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except NotInitialised as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Dao)
@click.option("-v", "--verbose", is_flag=True, help="log at INFO level")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Governance backend for the AST token economy. Settings come from DAO_* variables."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = _runtime  # how the domains' commands get the process's runtime (click.pass_obj)


@main.command()
def init() -> None:
    """Create the database schema, the deployment's EIP-712 salt and the default parameters."""
    from governance.setup import initialise

    rt = _runtime(runs_service=True)  # checked before the database is touched
    row, created = initialise(rt)
    state = "initialised" if created else "already initialised (salt kept)"
    click.echo(f"{rt.settings.dao_name}: {state}")
    click.echo(f"  database  {rt.settings.database_url}")
    click.echo(f"  chain id  {rt.settings.chain_id}")
    click.echo(f"  salt      {row.salt}")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the alembic migrations."""
    from governance.migrations import upgrade

    upgrade(load_settings().database_url, revision)
    click.echo(f"database at {revision}")


@main.group()
def keys() -> None:
    """API keys for operators, executors and guardians."""


@keys.command("create")
@click.option("--role", type=click.Choice(["operator", "executor", "guardian"]), required=True)
@click.option("--label", default="")
def keys_create(role: str, label: str) -> None:
    """Create a key. It is shown once: store it now."""
    from governance.keys import LABEL_MAX, create_key

    if len(label) > LABEL_MAX:  # the column's length: PostgreSQL refused it with a traceback
        raise click.BadParameter(f"at most {LABEL_MAX} characters", param_hint="--label")
    rt = _runtime()
    with session_scope(rt.engine) as session:
        made = create_key(session, role, label=label, now=rt.clock.now())
    click.echo(f"id {made.id}  role {made.role}")
    click.echo(made.key)


@keys.command("list")
@click.option("--role", type=click.Choice(["operator", "executor", "guardian"]))
def keys_list(role: str | None) -> None:
    """List keys (prefixes only; secrets are never stored)."""
    from governance.keys import list_keys

    rt = _runtime()
    with session_scope(rt.engine, write=False) as session:
        rows = list_keys(session, role)
    for k in rows:
        status = "revoked" if k.revoked_at else "active"
        click.echo(f"{k.id:>4}  {k.role:<9} {k.prefix}…  {status:<8} {k.label}")


@keys.command("revoke")
@click.argument("key_id", type=int)
def keys_revoke(key_id: int) -> None:
    """Revoke a key by id; it stops working at once."""
    from governance.keys import revoke_key

    rt = _runtime()
    try:
        with session_scope(rt.engine) as session:
            revoke_key(session, key_id, now=rt.clock.now())
    except GovernanceError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"key {key_id} revoked")


@main.command()
@click.option("--host", default=None, help="default: DAO_HOST")
@click.option("--port", type=int, default=None, help="default: DAO_PORT")
@click.option("--no-scheduler", is_flag=True, help="do not run the scheduler in this process")
def serve(host: str | None, port: int | None, no_scheduler: bool) -> None:
    """Serve the HTTP API (and, unless told otherwise, the scheduler in-process)."""
    _serve(_runtime(runs_service=True), host, port, scheduler=not no_scheduler)


def _serve(rt: Runtime, host: str | None, port: int | None, *, scheduler: bool) -> None:
    import uvicorn

    from governance.app import create_app
    from governance.scheduler import start_background

    rt.load_deployment()
    app = create_app(runtime=rt)
    sched = start_background(rt) if scheduler and rt.settings.run_scheduler_in_server else None
    # Everything made so far (modules, the app, SQLAlchemy's metadata: ~130,000 objects) lives as
    # long as the process: out of the collector's sight, a full collection no longer walks it.
    # Under load those collections had paused the process for tens of milliseconds: vote p99
    # 107-140 ms -> 48-64 ms, and reads during ingestion likewise (bench/README.md).
    gc.collect()
    gc.freeze()
    # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: any local client,
    # or any client behind a local proxy, would name its own address and get a fresh rate-limit
    # bucket. Only the proxies the operator names are believed (DAO_TRUSTED_PROXIES).
    trusted = list(rt.settings.trusted_proxies)
    try:
        uvicorn.run(app, host=host or rt.settings.host, port=port or rt.settings.port,
                    log_level="info", access_log=False,
                    proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None)
    finally:
        if sched is not None:
            sched.shutdown(wait=False)


@main.command("scheduler")
@click.option("--once", is_flag=True, help="run every job one time and exit")
def scheduler_cmd(once: bool) -> None:
    """Run the scheduler as its own process (deployments with several API processes)."""
    from governance.scheduler import run_forever, run_once

    rt = _runtime(runs_service=True)
    rt.load_deployment()
    if once:
        click.echo(json.dumps(run_once(rt)))
        return
    run_forever(rt)


@main.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.option("--no-serve", is_flag=True, help="set up the demo data and exit")
def demo(host: str | None, port: int | None, no_serve: bool) -> None:
    """Initialise a demo DAO with holders who bought tokens, print their keys, and serve."""
    from governance.demo import setup_demo

    rt = _runtime(runs_service=True)
    setup_demo(rt, echo=click.echo, base_url=f"http://{host or rt.settings.host}:{port or rt.settings.port}")
    if not no_serve:
        _serve(rt, host, port, scheduler=True)


for _command in COMMANDS:  # the domains' own commands (``dao ledger verify``, ``dao verify``)
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
