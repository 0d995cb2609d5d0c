"""How the core finds the domains without importing them at import time.

Each domain package may expose, by convention:
- ``<domain>.controllers.ROUTES``: its HTTP route handlers;
- ``<domain>.jobs.JOBS``: ``(name, function(runtime) -> int)`` pairs the scheduler runs;
- ``<domain>.service.initialise(session, runtime)``: what ``dao init`` sets up (idempotent);
- ``<domain>.cli.COMMANDS``: click commands added to ``dao``;
- ``<domain>.wiring.wire(runtime)``: registers the ports it provides (governance.ports), after
  checking the settings they depend on (raising ``SettingsError`` naming the setting).
The scheduler and the app call them in the order below; ``Runtime.wire`` calls every ``wire``
once, when a process starts, and checks that each port in ``governance.ports.REQUIRED`` is there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

DOMAINS = ("treasury_exec", "proposals", "voting")


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (name, name.rsplit(".", 1)[0]):
            return None
        raise


def routes() -> list[Any]:
    out: list[Any] = []
    for d in DOMAINS:
        mod = _optional(f"{d}.controllers")
        if mod is not None:
            out.extend(getattr(mod, "ROUTES", []))
    return out


def jobs() -> list[tuple[str, Callable[..., Any]]]:
    out: list[tuple[str, Callable[..., Any]]] = []
    for d in DOMAINS:
        mod = _optional(f"{d}.jobs")
        if mod is not None:
            out.extend(getattr(mod, "JOBS", []))
    return out


def initialisers() -> list[Callable[..., Any]]:
    out = []
    for d in DOMAINS:
        mod = _optional(f"{d}.service")
        if mod is not None and hasattr(mod, "initialise"):
            out.append(mod.initialise)
    return out


def commands() -> list[Any]:
    out: list[Any] = []
    for d in DOMAINS:
        mod = _optional(f"{d}.cli")
        if mod is not None:
            out.extend(getattr(mod, "COMMANDS", []))
    return out


def wire(runtime: Any) -> None:
    for d in DOMAINS:
        mod = _optional(f"{d}.wiring")
        if mod is not None:
            mod.wire(runtime)
