"""Voting: power sources at a snapshot, signed ballots and the tally."""
