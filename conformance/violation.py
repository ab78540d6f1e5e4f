"""The one exception a machine raises: a clause was violated."""

from __future__ import annotations


class ClauseViolation(AssertionError):
    """An observation contradicts the model; ``clause`` names the rule it breaks."""

    def __init__(self, clause: str, message: str) -> None:
        super().__init__(f"[{clause}] {message}")
        self.clause = clause
        self.detail = message
