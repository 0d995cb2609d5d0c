"""HTTP plumbing shared by every controller: the error mapping, the unit of work per
request, the input checks, API keys and the documented error responses.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeAlias, TypeVar

import anyio
import msgspec
from litestar import Litestar, Request, Response
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, ImproperlyConfiguredException, ValidationException
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme
from litestar.params import PathParameter, SkipValidation
from msgspec import UNSET, Meta
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from governance.db import session_scope, unavailable
from governance.errors import (
    BadRequest,
    GovernanceError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)
from governance.keys import ROLES, Caller, authenticate
from governance.runtime import Runtime

log = logging.getLogger("governance.http")


class ErrorBody(msgspec.Struct):
    """Every error response: a stable machine code and a human sentence; a few errors add a
    field naming what the client needs next. It documents the body (the body itself is
    ``GovernanceError.body()``): a field left UNSET is absent, never null."""

    error: Annotated[str, Meta(description="a stable machine-readable code, e.g. invalid_body, superseded")]
    detail: Annotated[str, Meta(description="a human sentence saying what was wrong")]
    vote: Annotated[str, Meta(
        description="409 superseded / already_voted: the id of the voter's vote that counts")] = UNSET
    state: Annotated[str, Meta(
        description="409 voting_not_started, voting_closed; wrong_state, execution_in_flight from a cancel: "
                    "the proposal's state")] = UNSET
    status: Annotated[str, Meta(
        description="409 not_claimable, not_claimed, lease_expired, execution_expired, wrong_state from an "
                    "execution's claim, complete or fail: the execution's status")] = UNSET


T = TypeVar("T")


def governance_error_handler(_: Request, exc: GovernanceError) -> Response:
    """The one rendering of an error: its status, ``{"error", "detail", ...}``, its headers."""
    return Response(content=exc.body(), status_code=exc.status_code, media_type="application/json",
                    headers=exc.headers or None)


def validation_error_handler(request: Request, exc: ValidationException) -> Response:
    # msgspec stops at the first problem; the detail names it (documented in the README).
    detail = exc.detail
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict) and item.get("message"):
            key = item.get("key")
            detail = f"{item['message']}" + (f" (at {key})" if key else "")
            break
    return governance_error_handler(request, BadRequest(str(detail), code="invalid_body"))


# Litestar's own errors, as the service's: (error type, the sentence; None: Litestar's detail).
_FRAMEWORK_ERRORS: dict[int, tuple[type[GovernanceError], str | None]] = {
    400: (BadRequest, None),
    404: (NotFound, "no such resource"),
    405: (MethodNotAllowed, None),
    413: (PayloadTooLarge, "the request body is larger than the service accepts"),
}


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    """An error Litestar raised (routing, body size, parameters) as one of the service's types;
    any other is a failure of the service (500)."""
    if exc.status_code not in _FRAMEWORK_ERRORS:
        return internal_error_handler(request, exc)
    error_type, detail = _FRAMEWORK_ERRORS[exc.status_code]
    return governance_error_handler(request, error_type(detail or str(exc.detail), headers=exc.headers))


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return governance_error_handler(request, InternalError("the service failed; nothing was stored"))


def database_error_handler(request: Request, exc: DBAPIError) -> Response:
    """A database error raised inside a handler: 503 when the database is out of reach or
    busy past the timeout (the request's transaction was rolled back), 500 otherwise."""
    mapped = unavailable(exc)
    if mapped is None:
        return internal_error_handler(request, exc)
    log.warning("%s %s: %s", request.method, request.url.path, mapped.detail)
    return governance_error_handler(request, mapped)


EXCEPTION_HANDLERS: dict = {
    GovernanceError: governance_error_handler,
    DBAPIError: database_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}


# How a handler asks for the process's runtime. Not validated: it is the object provide_runtime
# returns, and validating it would make msgspec evaluate every field's annotation.
AppRuntime: TypeAlias = NamedDependency[SkipValidation[Runtime]]


# a proposal id in a path: bytes32 as 0x and 64 hex digits (compared lower-case)
ProposalId = Annotated[str, PathParameter(pattern=r"^0x[0-9a-fA-F]{64}$", description="proposal id (bytes32)")]


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
    # A read's session opens without I/O and ends without a disk sync: run both ends here and
    # spare the request two thread hops (a third of a proposal read's cost). Writes commit in
    # a worker thread.
    inline = request.method == "GET"

    async def call(fn: Any, *args: Any) -> Any:
        return fn(*args) if inline else await anyio.to_thread.run_sync(fn, *args)

    session = await call(scope.__enter__)
    try:
        yield session
    except BaseException as exc:
        try:
            await call(scope.__exit__, type(exc), exc, exc.__traceback__)
        except ServiceUnavailable as mapped:
            # Litestar turns a new exception raised while a dependency handles the handler's
            # own into a 500 (ExceptionGroup); re-raise the original, which
            # database_error_handler maps to the same 503.
            if mapped.__cause__ is not exc:
                raise
        raise
    else:
        await call(scope.__exit__, None, None, None)
    finally:
        if not inline:  # a write request may have changed any proposal's view
            runtime_of(request).view_cache.invalidate()


async def read(runtime: Runtime, fn: Callable[..., T], *args: Any) -> T:
    """Run a read-only unit of work for a hot GET endpoint.

    On SQLite the read is a few local B-tree lookups (WAL readers never wait for the writer):
    it runs right here, on the event loop. Sent to a worker thread instead, each of its
    statements releases and re-takes the GIL against the loop and the other workers, and
    measured throughput fell from ~900 to 230–630 requests/s, flipping between the two from
    run to run (bench/README.md). On PostgreSQL a query is a network round trip that an outage
    could stretch to the connect timeout, so it stays in a worker thread (one of a few).
    """
    if runtime.engine.dialect.name == "sqlite":
        return fn(*args)
    return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=_read_limiter())


_READ_THREADS = 4
_read_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary())


def _read_limiter() -> anyio.CapacityLimiter:
    """At most a few threads run reads at once: more only fight over the GIL (on PostgreSQL,
    4 threads: ~400 req/s; the default 40: 155–300, bimodal). One limiter per event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _read_limiters:
        _read_limiters[loop] = anyio.CapacityLimiter(_READ_THREADS)
    return _read_limiters[loop]


# The deepest body the API takes (an allocation's shares) nests 4 levels.
MAX_JSON_DEPTH = 32
# "\u0000" in a JSON string is NUL unless its backslash is itself escaped ("\\u0000" is text).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects in the JSON text ``raw`` nest deeper than ``limit``.

    msgspec decodes recursively, and the recursion limit is high once py_ecc (imported with
    eth-account) has raised it: 64 KiB of ``[`` overflow the C stack and kill the process.
    So the depth is checked before decoding: in one pass, skipping strings.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the usual case: nothing to scan
        return False
    depth, in_string, escaped = 0, False, False
    for c in raw:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif c in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


async def check_input(request: Request) -> None:
    """The app-wide ``before_request`` hook: :func:`authenticate_caller`, then
    :func:`strict_body`, then :func:`reject_nul`.

    A hook, not guards: Litestar copies the route handler for every guard it calls and runs a
    synchronous guard in a worker thread, which on the hottest routes cost more than the
    checks themselves. It runs before the handler's arguments are parsed and its dependencies
    resolved, so an API key is checked before the body is read: a caller without a valid key
    learns nothing about what the body should be.
    """
    await authenticate_caller(request)
    handler = request.route_handler
    await strict_body(request, handler)
    reject_nul(request, handler)


async def strict_body(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Decode every JSON body strictly before the handler's own (lenient) parsing.

    Litestar converts bodies with msgspec's ``strict=False``, which turns ``"100"`` into
    ``100``; for money and signed messages a wrong JSON type must be a 400, not a guess.
    It also refuses bodies nested deeper than ``MAX_JSON_DEPTH`` and strings holding NUL.
    Runs in the app-wide hook :func:`check_input`; the body it reads is cached for the handler.
    """
    field = getattr(handler, "parsed_data_field", None)
    if field is None or not isinstance(connection, Request):
        return
    raw = await connection.body()
    if not raw.strip() and field.is_optional:
        return
    if nests_deeper_than(raw, MAX_JSON_DEPTH):
        raise BadRequest(f"the body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels",
                         code="invalid_json")
    try:
        msgspec.json.decode(raw, type=field.annotation, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc), code="invalid_body") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter inside strings
        raise BadRequest(f"the body is not valid UTF-8 JSON: {exc}", code="invalid_json") from exc
    if b"\\u0000" in raw and _JSON_NUL.search(raw):  # the regex costs ~14 µs a body: only when it may match
        raise BadRequest("a string in the body contains the NUL character (\\u0000)", code="nul_character")


def reject_nul(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Refuse NUL in the path and the query (400 ``nul_character``); :func:`strict_body`
    refuses it in JSON bodies. PostgreSQL cannot store NUL in text, or even compare with it,
    while SQLite can: without this check the two databases would disagree, one with a 500."""
    if "\x00" in connection.scope["path"] or b"%00" in connection.scope.get("query_string", b""):
        raise BadRequest("the path or the query contains the NUL character (%00)", code="nul_character")


# --- API keys --------------------------------------------------------------------------------
#
# Every operation says once, in its OpenAPI security requirement, whether it takes an API key:
# ``security=public()`` (anyone may call it, without a key), ``security=api_key("operator")``
# (a key of that role is required) or ``api_key("guardian", optional=True)`` (a key is one way
# of calling it). check_input enforces exactly what the document declares, before the body is
# read; a handler that needs to know who called asks for the ``caller`` dependency
# (``NamedDependency[Caller]``, or ``NamedDependency[Caller | None]`` where the key is optional).


def public() -> list[SecurityRequirement]:
    """The security requirement of an operation anyone may call without a key: the empty
    requirement, OpenAPI's "no credentials needed". (Litestar leaves an empty ``security``
    list out of the document, so ``security=[]`` would say nothing.)"""
    return [{}]


def api_key(role: str, *, optional: bool = False) -> list[SecurityRequirement]:
    """The security requirement of an operation a key of ``role`` may call: the OpenAPI
    document's declaration, and what :func:`authenticate_caller` enforces."""
    if role not in ROLES:
        raise ValueError(f"no API key role {role!r} (roles: {', '.join(ROLES)})")
    return [*public(), {role: []}] if optional else [{role: []}]


def key_requirement(handler: BaseRouteHandler) -> tuple[str, bool] | None:
    """The role an operation's security requirement names and whether the key is optional;
    None for an operation that takes no key."""
    security = handler.resolve_security() if isinstance(handler, HTTPRouteHandler) else []
    if not security or security == public():
        return None
    named = [requirement for requirement in security if requirement]
    anonymous = len(security) - len(named)  # an empty requirement: callable without a key
    if len(named) != 1 or len(named[0]) != 1 or anonymous > 1 or next(iter(named[0])) not in ROLES:
        raise ImproperlyConfiguredException(
            f"{handler}: security {security!r} is neither public() nor one API key role (api_key())")
    return next(iter(named[0])), anonymous == 1


def check_key_requirements(app: Litestar) -> None:
    """Refuse, at start, an operation whose security the service cannot enforce, or a handler
    that asks for the caller without declaring which key it takes."""
    for route in app.routes:
        for handler in route.route_handlers:
            if key_requirement(handler) is None and "caller" in handler.parsed_fn_signature.parameters:
                raise ImproperlyConfiguredException(
                    f"{handler}: asks for the caller but declares no API key (security=api_key(...))")


_CALLER = "governance.caller"  # where authenticate_caller keeps the caller in the request's state


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _authenticate(runtime: Runtime, presented: str | None, role: str) -> Caller:
    with session_scope(runtime.engine, write=False) as session:
        return authenticate(session, presented, role)


async def authenticate_caller(request: Request) -> None:
    """Check the API key of an operation that takes one (401 missing, unknown or revoked key;
    403 a key of another role) and keep the caller for :func:`provide_caller`. An optional key
    is checked when an ``Authorization`` header is sent at all."""
    requirement = key_requirement(request.route_handler)
    if requirement is None:
        return
    role, optional = requirement
    sent = request.headers.getall("authorization", [])
    if len(sent) > 1:  # which one counts would be a guess, and a proxy in front may guess otherwise
        raise Unauthorized("send one Authorization header, not several", code="invalid_api_key")
    header = sent[0] if sent else ""
    caller = None
    if header or not optional:
        runtime = runtime_of(request)
        caller = await read(runtime, _authenticate, runtime, _bearer(header), role)
    request.state[_CALLER] = caller


def provide_caller(request: Request) -> Caller | None:
    """The ``caller`` dependency: who called this operation (:func:`authenticate_caller`)."""
    return request.state.get(_CALLER)


SECURITY_COMPONENTS = Components(
    security_schemes={
        role: SecurityScheme(type="http", scheme="bearer", description=f"an API key of role {role}")
        for role in ROLES
    }
)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the error responses an operation may give."""
    descriptions = {
        400: "malformed input (error codes: invalid_body, invalid_message, invalid_address, nul_character, …)",
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
