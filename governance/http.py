"""HTTP plumbing shared by every controller: the error mapping, the unit of work per
request, API-key guards and the documented error responses.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import anyio
import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from sqlmodel import Session

from governance.db import session_scope
from governance.errors import BadRequest, GovernanceError
from governance.keys import authenticate
from governance.runtime import Runtime

log = logging.getLogger("governance.http")


class ErrorBody(msgspec.Struct):
    """Every error response: a stable machine code and a human sentence."""

    error: str
    detail: str


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    503: "unavailable",
}


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


def governance_error_handler(_: Request, exc: GovernanceError) -> Response:
    return _json(exc.status_code, exc.body())


def validation_error_handler(_: Request, exc: ValidationException) -> Response:
    # msgspec stops at the first problem; the detail names it (documented in the README).
    detail = exc.detail
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict) and item.get("message"):
            key = item.get("key")
            detail = f"{item['message']}" + (f" (at {key})" if key else "")
            break
    return _json(400, {"error": "invalid_body", "detail": str(detail)})


def http_error_handler(_: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    if status == 413:
        detail = "the request body is larger than the service accepts"
    elif isinstance(exc, NotFoundException):
        detail = "no such resource"
    else:
        detail = str(exc.detail)
    return _json(status, {"error": code, "detail": detail}, headers=exc.headers)


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(500, {"error": "internal_error", "detail": "the service failed; nothing was stored"})


EXCEPTION_HANDLERS: dict = {
    GovernanceError: governance_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}


def runtime_of(request_or_conn: ASGIConnection) -> Runtime:
    return request_or_conn.app.state.runtime


def provide_runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def provide_db(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed if the handler returns, rolled back if it raises.

    Handlers are synchronous and run in worker threads; the commit, which waits for the disk
    or the network, runs in a worker thread too, never on the event loop. Services call
    ``session.flush()`` so that constraint violations surface inside the handler (as 409).
    """
    scope = session_scope(runtime_of(request).engine, write=request.method != "GET")
    session = await anyio.to_thread.run_sync(scope.__enter__)
    try:
        yield session
    except BaseException as exc:
        await anyio.to_thread.run_sync(scope.__exit__, type(exc), exc, exc.__traceback__)
        raise
    else:
        await anyio.to_thread.run_sync(scope.__exit__, None, None, None)


async def strict_body(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Decode every JSON body strictly before the handler's own (lenient) parsing.

    Litestar converts bodies with msgspec's ``strict=False``, which turns ``"100"`` into
    ``100``; for money and signed messages a wrong JSON type must be a 400, not a guess.
    Registered app-wide as a guard; the body it reads is cached for the handler.
    """
    field = getattr(handler, "parsed_data_field", None)
    if field is None or not isinstance(connection, Request):
        return
    raw = await connection.body()
    if not raw.strip() and field.is_optional:
        return
    try:
        msgspec.json.decode(raw, type=field.annotation, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc), code="invalid_body") from exc
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid UTF-8 JSON: {exc}", code="invalid_json") from exc


def _bearer(connection: ASGIConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def require_role(role: str) -> Callable[[ASGIConnection, BaseRouteHandler], None]:
    """A guard admitting only an active API key of ``role`` (401 / 403 otherwise)."""

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        with session_scope(runtime_of(connection).engine, write=False) as session:
            authenticate(session, _bearer(connection), role)

    guard.__name__ = f"require_{role}"
    return guard


SECURITY_COMPONENTS = Components(
    security_schemes={
        role: SecurityScheme(type="http", scheme="bearer", description=f"an API key of role {role}")
        for role in ("operator", "executor", "guardian")
    }
)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the error responses an operation may give."""
    descriptions = {
        400: "malformed input (error codes: invalid_body, invalid_message, invalid_address, …)",
        401: "missing, unknown or revoked API key",
        403: "valid but not allowed",
        404: "no such resource",
        409: "state conflict: duplicate, wrong state, superseded",
        413: "request body too large",
        422: "well-formed but invalid for the domain",
        429: "rate limited; see Retry-After",
        503: "a dependency (database, chain RPC) is unavailable; nothing was stored",
    }
    return {
        s: ResponseSpec(data_container=ErrorBody, description=descriptions[s], generate_examples=False)
        for s in statuses
    }
