"""API keys for operators, executors and guardians.

A key is shown once, when created; the database keeps only its SHA-256, so a leaked
database does not leak working keys. Keys are long random strings, so a plain hash (not a
slow password hash) is the right tool: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import msgspec
from sqlmodel import Session, select

from governance.errors import BadRequest, Forbidden, NotFound, Unauthorized
from governance.models import ApiKey

ROLES = ("operator", "executor", "guardian")
_ROLE_TAG = {"operator": "op", "executor": "ex", "guardian": "gd"}


@dataclass(frozen=True)
class CreatedKey:
    id: int
    role: str
    key: str  # the secret, shown once
    prefix: str


class Caller(msgspec.Struct, frozen=True):
    """Who called a protected operation: the API key that authenticated the request."""

    key_id: int
    role: str
    prefix: str  # the key's first characters, as ``dao keys list`` shows them
    label: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


LABEL_MAX = 200  # ApiKey.label's column


def create_key(session: Session, role: str, *, label: str = "", now: int) -> CreatedKey:
    """Make a new key for ``role``; the returned secret is never stored."""
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    if len(label) > LABEL_MAX:
        raise BadRequest(f"a key's label is at most {LABEL_MAX} characters", code="invalid_label")
    key = f"dao_{_ROLE_TAG[role]}_{secrets.token_urlsafe(32)}"
    row = ApiKey(role=role, key_hash=_hash(key), prefix=key[:14], label=label, created_at=now)
    session.add(row)
    session.flush()
    assert row.id is not None
    return CreatedKey(id=row.id, role=role, key=key, prefix=row.prefix)


def list_keys(session: Session, role: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if role:
        query = query.where(ApiKey.role == role)
    return list(session.exec(query))


def revoke_key(session: Session, key_id: int, *, now: int) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id}", code="key_not_found")
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        session.flush()
    return row


def _a(role: str) -> str:
    return f"{'an' if role[0] in 'aeiou' else 'a'} {role}"


def authenticate(session: Session, presented: str | None, role: str) -> Caller:
    """The caller presenting the active key ``presented``, if the key belongs to ``role``.

    Missing, unknown and revoked keys are 401; a valid key of another role is 403.
    """
    if not presented:
        raise Unauthorized(
            f"this operation needs {_a(role)} key: send 'Authorization: Bearer <key>'",
            code="missing_api_key",
        )
    digest = _hash(presented)
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    # compare_digest keeps the check constant-time even though the lookup is by hash
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Unauthorized("the API key is not valid", code="invalid_api_key")
    if row.revoked_at is not None:
        raise Unauthorized("the API key was revoked", code="revoked_api_key")
    if row.role != role:
        raise Forbidden(f"this operation needs {_a(role)} key, not {_a(row.role)} key", code="wrong_role")
    assert row.id is not None
    return Caller(key_id=row.id, role=row.role, prefix=row.prefix, label=row.label)
