"""Domain errors and their one mapping to HTTP responses.

Every error the service reports is a :class:`GovernanceError` carrying an HTTP status, a
stable machine-readable ``code`` and a human sentence. Handlers never build error responses
themselves: they raise, and :func:`error_response` (registered on the app) renders
``{"error": code, "detail": detail}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GovernanceError(Exception):
    """Base of every error a client may see. Subclasses fix the HTTP status."""

    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.code = code or self.default_code
        self.detail = detail
        self.extra = extra or {}

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
    status_code = 429
    default_code = "rate_limited"


class ServiceUnavailable(GovernanceError):
    """A dependency (database, chain RPC) cannot be reached; nothing was stored (503)."""

    status_code = 503
    default_code = "unavailable"
