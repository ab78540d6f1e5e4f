"""The seeds' dict-based Local, keyed by ``_thread.get_ident()``: a nonconforming example.

This is the Local of ../shared/seeds/local-localstack-localproxy.txt in the form it takes
when greenlet is not installed (its fallback identity function), with its LocalStack,
changed only enough to run. One dict maps a thread's ident to that thread's values, so:
greenlets and asyncio tasks of one thread share values, values outlive the thread that
stored them, and a new thread can inherit the values of a dead one whose ident it reuses.
Its known failures are declared in naive.known-failures.json."""

from __future__ import annotations

from _thread import get_ident
from typing import Any, Optional

from ..adapter import Adapter, shipped_known_failures


class NaiveLocal:
    __slots__ = ("__ident_func__", "__storage__")

    def __init__(self) -> None:
        object.__setattr__(self, "__storage__", {})
        object.__setattr__(self, "__ident_func__", get_ident)

    def __release_local__(self) -> None:
        self.__storage__.pop(self.__ident_func__(), None)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__storage__[self.__ident_func__()][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        ident = self.__ident_func__()
        storage = self.__storage__
        try:
            storage[ident][name] = value
        except KeyError:
            storage[ident] = {name: value}

    def __delattr__(self, name: str) -> None:
        try:
            del self.__storage__[self.__ident_func__()][name]
        except KeyError:
            raise AttributeError(name) from None


class NaiveLocalStack:
    def __init__(self) -> None:
        self._local = NaiveLocal()

    def __release_local__(self) -> None:
        self._local.__release_local__()

    def push(self, obj: Any) -> list[Any]:
        rv = getattr(self._local, "stack", None)
        if rv is None:
            self._local.stack = rv = []
        rv.append(obj)
        return rv

    def pop(self) -> Optional[Any]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            return None
        elif len(stack) == 1:
            self._local.__release_local__()
            return stack[-1]
        else:
            return stack.pop()

    @property
    def top(self) -> Optional[Any]:
        try:
            return self._local.stack[-1]
        except (AttributeError, IndexError):
            return None


class NaiveAdapter(Adapter):
    name = "naive"
    capabilities = frozenset({"local", "stack"})
    known_failures = shipped_known_failures(__file__, "naive")

    def versions(self) -> dict[str, str]:
        return {"naive": "the seeds' Local, bundled with ctxspec"}

    def new_local(self) -> Any:
        return NaiveLocal()

    def release_local(self, local: Any) -> None:
        local.__release_local__()

    def new_stack(self) -> Any:
        return NaiveLocalStack()
