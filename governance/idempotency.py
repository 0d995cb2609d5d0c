"""Writes keyed by a client's reference (purchases, buybacks, deposits, holder lists).

A client that did not hear the answer sends the same request again. The reference makes that
safe: the same body again answers 200 with the record stored the first time, a different body
under the same reference answers 409 ``reference_conflict``, and only the first write has an
effect. The database holds one row per reference (a unique constraint); a caller looks the
reference up under the lock that serializes its writes where there is one (the journal head),
and an insert that still loses a race on the constraint becomes the replay, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from governance.errors import BadRequest, Conflict

# A reference is compared byte for byte, so it has one written form: visible ASCII, no spaces.
# Otherwise "r1 " or a full-width "ｒ1", sent by a client retrying "r1", would be a second record.
_REFERENCE = re.compile(r"[!-~]{1,200}")

T = TypeVar("T")


def record_once(session: Session, *, reference: str, what: str, find: Callable[[], T | None],
                create: Callable[[], T], same: Callable[[T], bool]) -> tuple[T, bool]:
    """``(row, True)`` when ``create`` stored the record; ``(stored row, False)`` when
    ``reference`` was recorded before with the same body (``same(stored)``); 409
    ``reference_conflict`` (nothing stored) when it was recorded with another body.

    ``create`` runs in a savepoint and must flush: if its insert collides with a row another
    transaction committed under the same reference meanwhile, only the savepoint is undone
    and that row is the answer.
    """
    if not _REFERENCE.fullmatch(reference):
        raise BadRequest(f"a reference is 1 to 200 visible ASCII characters without spaces, not {reference!r}",
                         code="invalid_reference")
    stored = find()
    if stored is None:
        try:
            with session.begin_nested():
                return create(), True
        except IntegrityError:
            stored = find()
            if stored is None:  # another constraint failed: a bug, not a race
                raise
    if not same(stored):
        raise Conflict(f"reference {reference!r} was used for another {what}", code="reference_conflict")
    return stored, False
