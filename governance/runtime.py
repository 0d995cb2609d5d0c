"""What a running process shares: settings, the engine, the clock, the deployment's domain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, inspect
from sqlmodel import Session

from governance.clock import Clock, FileClock, SystemClock
from governance.db import create_engine
from governance.errors import NotInitialised
from governance.models import Deployment
from governance.ports import REQUIRED
from governance.settings import Settings, SettingsError

if TYPE_CHECKING:
    from governance.typed_data import Domain, TypedDataEncoder


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Clock
    salt: str = ""
    extras: dict[str, object] = field(default_factory=dict)  # per-domain caches
    ports: dict[str, Any] = field(default_factory=dict)  # see governance.ports
    closers: list[Callable[[], None]] = field(default_factory=list)  # run by close(), newest first
    _wired: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine | None = None,
                      clock: Clock | None = None) -> Runtime:
        if clock is None:
            clock = FileClock(settings.test_clock_file) if settings.test_clock_file else SystemClock()
        engine = engine or create_engine(settings.database_url, timeout=settings.database_timeout)
        return cls(settings=settings, engine=engine, clock=clock)

    def load_deployment(self) -> Runtime:
        """Read the deployment's salt; a database without one was never initialised."""
        with Session(self.engine) as session:
            migrated = inspect(self.engine).has_table(Deployment.__tablename__)
            row = session.get(Deployment, 1) if migrated else None
        if row is None:  # a start-up refusal, never a response: every process loads it before serving
            database = self.engine.url.render_as_string(hide_password=True)
            raise NotInitialised(f"the database {database} holds no deployment: run `dao init` first")
        self.salt = row.salt
        return self

    def close(self) -> None:
        """Stop what domains started for this runtime (threads), then release connections."""
        while self.closers:
            self.closers.pop()()
        self.engine.dispose()

    def wire(self) -> Runtime:
        """Have every domain register its ports (governance.ports), checking the settings they
        depend on, and make sure each port the service needs is there. Idempotent.

        ``create_app``, the scheduler and ``dao init`` call it before anything else, so that a
        setting the service cannot run with, or a missing piece of wiring, stops the process
        at start (:class:`SettingsError` naming the setting) instead of failing requests later.
        """
        if self._wired:
            return self
        from governance.domains import wire

        try:
            wire(self)
            missing = [name for name in REQUIRED if name not in self.ports]
            if missing:
                raise SettingsError(f"no domain provides the port(s) {', '.join(missing)} "
                                    f"(governance.ports.REQUIRED); the service cannot run without them")
        except BaseException:
            self.ports.clear()  # half-wired is not wired: a later attempt starts over
            raise
        self._wired = True
        return self

    def port(self, name: str) -> Any:
        """The implementation a domain registered for ``name`` (see governance.ports)."""
        if not self._wired:
            self.wire()
        try:
            return self.ports[name]
        except KeyError:
            raise LookupError(f"no domain provides the port {name!r}") from None

    @cached_property
    def domain(self) -> Domain:
        from governance.typed_data import Domain

        if not self.salt:
            self.load_deployment()
        return Domain(name=self.settings.dao_name, version="1", chain_id=self.settings.chain_id,
                      salt=self.salt)

    @cached_property
    def encoder(self) -> TypedDataEncoder:
        from governance.typed_data import TypedDataEncoder

        return TypedDataEncoder(self.domain)
