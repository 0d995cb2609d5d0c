"""The token economy: token ledger, revenue buckets, journal, parameters, executors."""
