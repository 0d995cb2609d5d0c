"""Proposals: the three kinds, their validation and the lifecycle state machine."""
