"""Core of the AST governance service: settings, storage, errors, signatures, scheduler, CLI.

This package imports no domain package, except its composition root (``governance.bootstrap``),
which builds every process's runtime; the domains import the rest of it.
"""
