"""What the scheduler runs for the voting domain."""

from voting.finalize import finalize_due

JOBS = [("finalize", finalize_due)]
