"""Local and LocalStack: per-context storage, as specified in spec/local.md and
spec/localstack.md.

Each Local owns one ``ContextVar``. A ContextVar is private to the running thread, to
the running greenlet (greenlet >= 0.4.17 gives each greenlet its own context) and to the
running asyncio task, so one mechanism covers all three without asking which one runs.

The value in the ContextVar is never mutated, only replaced (copy on write). A task
starts with a *copy* of its creator's context, so both see the same stored object; if we
mutated it, a child task's writes would leak into its parent (spec: local.isolation.task).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Generic, Optional, TypeVar

T = TypeVar("T")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Local:
    """Attributes whose values belong to the current thread, greenlet or task."""

    __slots__ = ("_ctxspec_storage",)
    _ctxspec_storage: ContextVar[Mapping[str, Any]]

    def __init__(self) -> None:
        object.__setattr__(self, "_ctxspec_storage", ContextVar("ctxspec.Local"))

    # Reads override __getattribute__ rather than __getattr__: a __getattr__ fallback runs
    # only after the normal lookup has failed and raised, which triples the cost of a read.
    def __getattribute__(self, name: str) -> Any:
        if name in _LOCAL_OWN_NAMES:
            return object.__getattribute__(self, name)
        values = _local_storage(self).get(_EMPTY)
        try:
            return values[name]
        except KeyError:
            raise AttributeError(f"{name!r} is not set in this context") from None

    def __setattr__(self, name: str, value: Any) -> None:
        storage = _local_storage(self)
        values = dict(storage.get(_EMPTY))
        values[name] = value
        storage.set(values)

    def __delattr__(self, name: str) -> None:
        storage = _local_storage(self)
        values = dict(storage.get(_EMPTY))
        try:
            del values[name]
        except KeyError:
            raise AttributeError(f"{name!r} is not set in this context") from None
        storage.set(values)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """The ``(name, value)`` pairs of the current context."""
        return iter(list(_local_storage(self).get(_EMPTY).items()))

    def __release_local__(self) -> None:
        """Forget every value of the current context (and only of it)."""
        _local_storage(self).set(_EMPTY)


_local_storage = Local._ctxspec_storage.__get__  # type: ignore[attr-defined,misc]
_LOCAL_OWN_NAMES = frozenset(dir(Local))


def release_local(local: Any) -> None:
    """Release the current context's values of a Local or LocalStack."""
    local.__release_local__()


class LocalStack(Generic[T]):
    """A stack of objects per thread, greenlet or task.

    The stack is a tuple in a ContextVar: immutable, so copy on write comes for free and a
    task's pushes and pops never reach the task that created it."""

    __slots__ = ("_ctxspec_items",)

    def __init__(self) -> None:
        self._ctxspec_items: ContextVar[tuple[T, ...]] = ContextVar("ctxspec.LocalStack")

    def push(self, obj: T) -> None:
        """Put ``obj`` on top of the current context's stack."""
        self._ctxspec_items.set((*self._ctxspec_items.get(()), obj))

    def pop(self) -> Optional[T]:
        """Remove and return the top item; ``None`` if the stack is empty."""
        items = self._ctxspec_items.get(())
        if not items:
            return None
        self._ctxspec_items.set(items[:-1])
        return items[-1]

    @property
    def top(self) -> Optional[T]:
        """The top item, or ``None`` if the stack is empty."""
        items = self._ctxspec_items.get(())
        return items[-1] if items else None

    def __len__(self) -> int:
        return len(self._ctxspec_items.get(()))

    def __release_local__(self) -> None:
        self._ctxspec_items.set(())
