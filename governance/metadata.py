"""Where the migrations find every table.

The core imports no domain at import time; this module loads the domain model modules by
name only when the full schema is wanted (alembic, the schema test).
"""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "governance.models",
    "treasury_exec.models",
    "proposals.models",
    "voting.models",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module
                raise
