"""Core of the AST governance service: settings, storage, errors, signatures, scheduler, CLI.

This package imports no domain package; the domains import it.
"""
