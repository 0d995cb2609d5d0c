"""The application factory."""

from __future__ import annotations

from importlib.metadata import metadata
from typing import Any

import msgspec
from litestar import Controller, Litestar, get
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import License
from sqlalchemy import text

from governance.bootstrap import ROUTES, bootstrap
from governance.clock import Clock
from governance.db import session_scope
from governance.errors import ServiceUnavailable
from governance.http import (
    EXCEPTION_HANDLERS,
    SECURITY_COMPONENTS,
    AppRuntime,
    check_input,
    check_key_requirements,
    errors,
    provide_caller,
    provide_db,
    provide_runtime,
    public,
)
from governance.ratelimit import rate_limit_middleware
from governance.runtime import Runtime
from governance.settings import PROPOSAL_KINDS, Settings, load_settings

API_VERSION = "1"
# the license pyproject.toml declares (an SPDX expression), stated in the OpenAPI document
LICENSE = metadata("ast-governance")["License-Expression"]


class Health(msgspec.Struct):
    status: str
    database: str
    time: int


class KindRules(msgspec.Struct):
    quorum_bps: int
    approval_bps: int


class DaoInfo(msgspec.Struct):
    name: str
    chain_id: int
    token_symbol: str
    token_decimals: int
    buckets: list[str]
    rules: dict[str, KindRules]
    voting_delay: int
    voting_period: int
    timelock: int
    grace_period: int
    proposal_threshold: str
    max_price_change_bps: int
    spend_cap_bps: int
    title_max_chars: int
    description_max_chars: int
    reason_max_chars: int
    max_clock_skew: int
    vote_change: str
    power_source: str
    time: int


class CoreController(Controller):
    tags = ["service"]

    @get("/health", operation_id="health", summary="Liveness and database reachability", security=public(),
         responses=errors(400, 503), sync_to_thread=True)
    def health(self, runtime: AppRuntime) -> Health:
        try:
            with session_scope(runtime.engine, write=False) as session:
                session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        except Exception as exc:
            raise ServiceUnavailable("the database cannot be reached", code="database_unavailable") from exc
        return Health(status="ok", database="ok", time=runtime.clock.now())

    @get("/v1/dao", operation_id="getDao", summary="Deployment settings: token, buckets, rules, periods",
         security=public(), responses=errors(400, 429), sync_to_thread=False)
    def dao(self, runtime: AppRuntime) -> DaoInfo:
        s = runtime.settings
        return DaoInfo(
            name=s.dao_name, chain_id=s.chain_id, token_symbol=s.token_symbol,
            token_decimals=s.token_decimals, buckets=list(s.buckets),
            rules={k: KindRules(**vars(s.rules_for(k)))
                   for k in PROPOSAL_KINDS},
            voting_delay=s.voting_delay, voting_period=s.voting_period, timelock=s.timelock,
            grace_period=s.grace_period, proposal_threshold=str(s.proposal_threshold),
            max_price_change_bps=s.max_price_change_bps, spend_cap_bps=s.spend_cap_bps,
            title_max_chars=s.title_max_chars, description_max_chars=s.description_max_chars,
            reason_max_chars=s.reason_max_chars, max_clock_skew=s.max_clock_skew,
            vote_change=s.vote_change, power_source=s.power_source, time=runtime.clock.now(),
        )


    @get("/v1/signing", operation_id="getSigning", sync_to_thread=False, security=public(),
         summary="EIP-712 domain and types, and the ed25519 encoding, exactly as the server verifies",
         responses=errors(400, 429))
    def signing(self, runtime: AppRuntime) -> dict[str, Any]:
        from governance.typed_data import typed_data_document

        return typed_data_document(runtime.domain)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
               clock: Clock | None = None, extra_routes: list[Any] | None = None) -> Litestar:
    """Build the HTTP application for one deployment.

    ``runtime`` is the process's (:func:`~governance.bootstrap.bootstrap`); without one, the app
    bootstraps its own from ``settings``, so a setting the service cannot run with stops it
    now (:class:`SettingsError`), not at the first request that needs it.
    """
    if runtime is None:
        runtime = bootstrap(settings or load_settings(), clock=clock)
    settings = runtime.settings

    def _startup(app: Litestar) -> None:
        runtime.load_deployment()

    def _shutdown(app: Litestar) -> None:
        runtime.close()

    limiter = rate_limit_middleware(settings.rate_limit_per_minute, settings.rate_limit_burst)
    cors = CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None
    app = Litestar(
        route_handlers=[CoreController, *ROUTES, *(extra_routes or [])],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "db": Provide(provide_db),
            "caller": Provide(provide_caller, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=check_input,
        request_max_body_size=settings.max_body_bytes,
        middleware=[limiter] if limiter else [],
        cors_config=cors,
        openapi_config=OpenAPIConfig(
            title=f"{settings.dao_name} governance API",
            version=API_VERSION,
            description=(
                "Signed proposals, token-weighted signed votes, scheduled tallies and exactly-once "
                "execution for the AST token economy. Errors are JSON "
                '`{"error": "<code>", "detail": "<sentence>"}`; body validation reports the first '
                "problem found."
            ),
            license=License(name=LICENSE, identifier=LICENSE),
            path="/schema",
            components=SECURITY_COMPONENTS,
            render_plugins=[SwaggerRenderPlugin()],
        ),
        logging_config=None,  # the process configures logging (dao -v); Litestar must not add handlers
        on_startup=[_startup],
        on_shutdown=[_shutdown],
        debug=False,
    )
    check_key_requirements(app)
    app.state.runtime = runtime
    return app
