"""Domain errors and their one mapping to HTTP responses.

Every error the service reports is a :class:`GovernanceError` carrying an HTTP status, a
stable machine-readable ``code``, a human sentence and, for some, a field naming what the
client needs next (``vote``, ``state``, ``status``) or a header (``Retry-After``, ``Allow``).
Handlers, middleware and the framework's own errors never build error responses themselves:
they raise one of these, and ``governance.http.EXCEPTION_HANDLERS`` (registered on the app)
renders ``{"error": code, "detail": detail, ...}``, in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GovernanceError(Exception):
    """Base of every error a client may see. Subclasses fix the HTTP status."""

    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.code = code or self.default_code
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class BadRequest(GovernanceError):
    """Malformed input: wrong JSON form, unknown field, bad encoding (400)."""

    status_code = 400
    default_code = "bad_request"


class Unauthorized(GovernanceError):
    """Missing or invalid API key (401)."""

    status_code = 401
    default_code = "unauthorized"


class Forbidden(GovernanceError):
    """Authenticated or validly signed, but not allowed (403)."""

    status_code = 403
    default_code = "forbidden"


class NotFound(GovernanceError):
    status_code = 404
    default_code = "not_found"


class MethodNotAllowed(GovernanceError):
    """The path exists, the method does not (405, with ``Allow``)."""

    status_code = 405
    default_code = "method_not_allowed"


class Conflict(GovernanceError):
    """State conflict: duplicate, wrong state, superseded (409)."""

    status_code = 409
    default_code = "conflict"


class PayloadTooLarge(GovernanceError):
    status_code = 413
    default_code = "payload_too_large"


class Unprocessable(GovernanceError):
    """Well-formed but invalid for the domain: allocation not 100%, spend over cap (422)."""

    status_code = 422
    default_code = "unprocessable"


class RateLimited(GovernanceError):
    """Too many requests from one client (429); ``Retry-After`` says when to come back."""

    status_code = 429
    default_code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(GovernanceError):
    """A dependency (database, chain RPC) cannot be reached; nothing was stored (503).

    ``Retry-After``: outages are usually short, and a client should back off."""

    status_code = 503
    default_code = "unavailable"
    RETRY_AFTER = 5  # seconds

    def __init__(self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail, code=code, extra=extra, headers={"Retry-After": str(self.RETRY_AFTER)})


class InternalError(GovernanceError):
    """The service failed in a way no client input explains (500); the log has the cause.
    Raised by nobody: the catch-all handler answers with it."""

    status_code = 500
    default_code = "internal_error"


class NotInitialised(Exception):
    """The database holds no deployment (``dao init`` was never run). Never an HTTP response:
    a process refuses to start with it, naming the database, before it serves anything."""
