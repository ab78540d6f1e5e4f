"""What one operation did: returned a value or raised an exception.

Machines compare outcomes, never bare values, so that "raised AttributeError" is an
observation the model can predict like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union


@dataclass(frozen=True)
class Returned:
    value: Any

    def describe(self) -> str:
        return f"returned {self.value!r}"


@dataclass(frozen=True)
class Raised:
    error: BaseException

    @property
    def type(self) -> type[BaseException]:
        return type(self.error)

    def describe(self) -> str:
        return f"raised {type(self.error).__name__}: {self.error}"


Outcome = Union[Returned, Raised]


def capture(fn: Callable[[], Any]) -> Outcome:
    """Run ``fn`` and record what it did. Only ``Exception`` is captured: a
    ``BaseException`` such as KeyboardInterrupt or our hang alarm must still stop the run."""
    try:
        return Returned(fn())
    except Exception as error:
        return Raised(error)


def unwrap(outcome: Outcome) -> Any:
    """Return the value, or re-raise the recorded exception."""
    if isinstance(outcome, Raised):
        raise outcome.error
    return outcome.value


def raised_type(outcome: Outcome) -> Optional[type[BaseException]]:
    return outcome.type if isinstance(outcome, Raised) else None
