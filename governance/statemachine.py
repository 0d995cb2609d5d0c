"""Stored state machines: a status column that only its machine's transitions write.

A :class:`StateMachine` owns one column of one table (a proposal's ``state``, an execution's
``status``) and its transition table. :meth:`StateMachine.move` is the one way to change the
column: it checks the table (a move the table forbids is :class:`IllegalTransition`, a bug),
then runs a conditional ``UPDATE … WHERE id = :id AND <column> = :from`` (0 rows: the row left
``from`` since the caller read it, :class:`LostRace`).

The guard: every statement an engine runs is checked, and an ``UPDATE`` of a guarded table that
sets the guarded column outside :meth:`StateMachine.move` (an ORM attribute assignment flushed,
``update(...).values(...)`` on a session or a connection) is refused with
:class:`StateWriteRefused`, as is an ``INSERT`` of a row in any state but the machine's initial
one. So a hand-written state change fails the first test that runs it, instead of bypassing the
table. (Raw SQL text and DB-API cursors are not seen; nothing here writes state that way.)
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, Table, event, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import Insert, Update

from governance.errors import Conflict

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(Exception):
    """A move the transition table forbids: a bug in the caller, never a client's error, so it is
    not a :class:`~governance.errors.GovernanceError` and nothing maps it to a 4xx."""

    def __init__(self, what: str, ident: object, frm: str, to: str):
        super().__init__(f"{what} {ident}: {frm} -> {to} is not a transition")
        self.frm, self.to = frm, to


class LostRace(Conflict):
    """The conditional update found the row no longer in the state its caller read: another
    process moved it first. Nothing was written by the move."""

    def __init__(self, what: str, ident: object, frm: str, to: str):
        super().__init__(f"{what} {ident} is no longer {frm}: another process moved it first, not to {to}",
                         code="wrong_state")
        self.frm, self.to = frm, to


class StateWriteRefused(Exception):
    """A statement tried to write a guarded column outside its machine's transition function."""


_machines: dict[str, StateMachine[Any]] = {}  # table name -> machine
_moving: ContextVar[str | None] = ContextVar("governance_statemachine_moving", default=None)


class StateMachine(Generic[S]):
    """The transition table of ``table.column`` and the one function that writes the column."""

    def __init__(self, table: Table, column: str, transitions: Mapping[S, frozenset[S]], initial: S):
        self.table, self.column, self.transitions, self.initial = table, column, transitions, initial
        self._states = type(initial)
        (self._pk,) = table.primary_key.columns
        _machines[table.name] = self

    def allowed(self, frm: S | str, to: S) -> bool:
        return to in self.transitions[self._states(frm)]

    def move(self, session: Session, row: Any, to: S, **values: Any) -> None:
        """Move ``row`` (an ORM object of the table, as this unit of work read it) to ``to``,
        setting ``values`` with the state, by a conditional UPDATE on the state read. On success
        the object shows the new values."""
        ident, frm = getattr(row, self._pk.key), self._states(getattr(row, self.column))
        if to not in self.transitions[frm]:
            raise IllegalTransition(self.table.name, ident, frm.value, to.value)
        session.flush()  # whatever the caller changed by hand goes through the guard, outside the move
        values = {self.column: to.value, **values}
        statement = (update(self.table).where(self._pk == ident, self.table.c[self.column] == frm.value)
                     .values(values))
        token = _moving.set(self.table.name)
        try:
            moved = session.connection().execute(statement).rowcount
        finally:
            _moving.reset(token)
        if moved != 1:
            raise LostRace(self.table.name, ident, frm.value, to.value)
        for key, value in values.items():
            set_committed_value(row, key, value)


@event.listens_for(Engine, "before_execute")
def _guard(conn, statement, multiparams, params, execution_options) -> None:
    if not isinstance(statement, (Update, Insert)):
        return
    machine = _machines.get(getattr(statement.table, "name", None))  # type: ignore[arg-type]
    if machine is None or _moving.get() == machine.table.name:
        return
    column = machine.column
    written = [getattr(v, "value", v) for k, v in (statement._values or {}).items() if getattr(k, "key", k) == column]
    written += [p[column] for p in (*multiparams, params or {}) if isinstance(p, Mapping) and column in p]
    # an update may not set it at all; a row is born in the initial state
    born = isinstance(statement, Insert)
    refused = any(v != machine.initial.value for v in written) if born else bool(written)
    if refused:
        raise StateWriteRefused(f"{machine.table.name}.{column} is written only by its transition function "
                                f"(a {type(statement).__name__.upper()} set it to {written!r})")
