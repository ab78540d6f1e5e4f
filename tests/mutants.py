"""Mutants: small, deliberately broken adapters that test the suite itself.

Each breaks exactly one rule of spec/local.md or spec/localstack.md, the way real
implementations have broken it, and ``MUTANTS`` says which clause must catch it and which
unrelated clause must still pass (a diagnosis that blamed everything would be useless).
``tests/test_mutants.py`` runs them.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Optional

import greenlet

import reference
from conformance.adapter import Adapter
from reference.local import LocalStack

# -- stacks -------------------------------------------------------------------------------


class StuckLastStack(LocalStack):
    """Popping the last item returns it but leaves it on the stack."""

    def pop(self) -> Optional[Any]:
        items = self._ctxspec_items.get(())
        if len(items) == 1:
            return items[0]
        return super().pop()


class HoardingStack:
    """An array and a size: pop moves the size down and never drops the reference."""

    def __init__(self) -> None:
        self._state: ContextVar[tuple[tuple[Any, ...], int]] = ContextVar("hoarding")

    def push(self, obj: Any) -> None:
        items, size = self._state.get(((), 0))
        self._state.set(((*items[:size], obj), size + 1))

    def pop(self) -> Optional[Any]:
        items, size = self._state.get(((), 0))
        if not size:
            return None
        self._state.set((items, size - 1))  # items[size - 1] stays referenced
        return items[size - 1]

    @property
    def top(self) -> Optional[Any]:
        items, size = self._state.get(((), 0))
        return items[size - 1] if size else None


class BottomPopStack(LocalStack):
    """Pop removes and returns the bottom item instead of the top one."""

    def pop(self) -> Optional[Any]:
        items = self._ctxspec_items.get(())
        if not items:
            return None
        self._ctxspec_items.set(items[1:])
        return items[0]


class RaisingEmptyStack(LocalStack):
    """Pop on an empty stack raises IndexError, as ``list.pop`` does."""

    def pop(self) -> Optional[Any]:
        if not len(self):
            raise IndexError("pop from empty stack")
        return super().pop()


# -- locals -------------------------------------------------------------------------------


class KeyedLocal:
    """A dict of per-flow dicts, keyed by whatever ``ident`` returns: the seeds' design."""

    __slots__ = ("_ident", "_storage")

    def __init__(self, ident: Callable[[], Any]) -> None:
        object.__setattr__(self, "_storage", {})
        object.__setattr__(self, "_ident", ident)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._storage[self._ident()][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._storage.setdefault(self._ident(), {})[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._storage[self._ident()][name]
        except KeyError:
            raise AttributeError(name) from None

    def __release_local__(self) -> None:
        self._storage.pop(self._ident(), None)


def thread_and_greenlet() -> tuple[int, Any]:
    return threading.get_ident(), greenlet.getcurrent()


class InPlaceLocal:
    """One dict per context in a ContextVar, mutated in place instead of copied on write.

    The dict is made when the Local is, so every task created from that context shares it."""

    __slots__ = ("_var",)

    def __init__(self) -> None:
        object.__setattr__(self, "_var", ContextVar("in-place"))
        self._values()

    def _values(self) -> dict[str, Any]:
        try:
            return self._var.get()
        except LookupError:
            values: dict[str, Any] = {}
            self._var.set(values)
            return values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._values()[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._values()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __release_local__(self) -> None:
        self._values().clear()


class CopyOnWriteLocal:
    """A correct copy-on-write Local, open to small changes by subclasses."""

    __slots__ = ("_epoch", "_var")

    def __init__(self) -> None:
        object.__setattr__(self, "_var", ContextVar("copy-on-write"))
        object.__setattr__(self, "_epoch", [0])

    def _values(self) -> dict[str, Any]:
        epoch, values = self._var.get((self._epoch[0], {}))
        return values if epoch == self._epoch[0] else {}

    def _store(self, values: dict[str, Any]) -> None:
        self._var.set((self._epoch[0], values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._store({**self._values(), name: value})

    def __delattr__(self, name: str) -> None:
        values = dict(self._values())
        try:
            del values[name]
        except KeyError:
            raise AttributeError(name) from None
        self._store(values)

    def __release_local__(self) -> None:
        self._store({})


class ReleaseAllLocal(CopyOnWriteLocal):
    """Releasing forgets the values of every context: it starts a new epoch for all."""

    __slots__ = ()

    def __release_local__(self) -> None:
        self._epoch[0] += 1


class SilentDeleteLocal(CopyOnWriteLocal):
    """Deleting a name that is not set passes silently."""

    __slots__ = ()

    def __delattr__(self, name: str) -> None:
        values = dict(self._values())
        values.pop(name, None)
        self._store(values)


class KeyErrorLocal(CopyOnWriteLocal):
    """Reading a name that is not set raises KeyError."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return self._values()[name]


# -- adapters -----------------------------------------------------------------------------


class StackMutant(Adapter):
    capabilities = frozenset({"stack"})

    def __init__(self, name: str, stack: Callable[[], Any]) -> None:
        self.name = name
        self._stack = stack

    def new_stack(self) -> Any:
        return self._stack()


class LocalMutant(Adapter):
    capabilities = frozenset({"local"})

    def __init__(self, name: str, local: Callable[[], Any]) -> None:
        self.name = name
        self._local = local

    def new_local(self) -> Any:
        return self._local()

    def release_local(self, local: Any) -> None:
        reference.release_local(local)


@dataclass(frozen=True)
class Mutant:
    adapter: Adapter
    catches: str  # the clause that must fail
    passes: str  # an unrelated clause that must still pass

    def __str__(self) -> str:
        return self.adapter.name


MUTANTS = [
    Mutant(StackMutant("stuck-last", StuckLastStack), "stack.pop.last", "stack.push.top"),
    Mutant(StackMutant("hoarding", HoardingStack), "stack.pop.release", "stack.pop.lifo"),
    Mutant(StackMutant("bottom-pop", BottomPopStack), "stack.pop.lifo", "stack.pop.empty"),
    Mutant(StackMutant("raising-empty", RaisingEmptyStack), "stack.pop.empty", "stack.pop.lifo"),
    Mutant(
        LocalMutant("thread-keyed", lambda: KeyedLocal(threading.get_ident)),
        "local.isolation.greenlet",
        "local.attr.roundtrip",
    ),
    Mutant(
        LocalMutant("greenlet-keyed", lambda: KeyedLocal(thread_and_greenlet)),
        "local.isolation.task",
        "local.isolation.greenlet",
    ),
    Mutant(
        LocalMutant("in-place", InPlaceLocal), "local.isolation.task", "local.isolation.greenlet"
    ),
    Mutant(
        LocalMutant("release-all", ReleaseAllLocal), "local.release", "local.isolation.greenlet"
    ),
    Mutant(
        LocalMutant("silent-delete", SilentDeleteLocal), "local.attr.delete", "local.attr.missing"
    ),
    Mutant(LocalMutant("key-error", KeyErrorLocal), "local.attr.missing", "local.attr.delete"),
]
