"""Unit tests of reference/proxy.py and its forwarding table (spec/localproxy.md)."""

from __future__ import annotations

import ast
import asyncio
import copy
import io
import math
import threading
import types
from pathlib import Path
from typing import Any, Callable

import pytest

from conformance.clauses import BY_ID
from reference import Local, LocalProxy
from reference.forwarding import (
    BY_NAME,
    FORWARDS,
    UNBOUND_MESSAGE,
    BodyError,
    enter,
    run,
    unbound_message,
)

ROOT = Path(__file__).resolve().parent.parent


def bound(value: Any) -> tuple[Local, Any]:
    local = Local()
    local.obj = value
    return local, LocalProxy(local, "obj")


def unbound() -> tuple[Local, Any]:
    local = Local()
    return local, LocalProxy(local, "obj")


# -- construction and lookup --------------------------------------------------------------


def test_attribute_proxy_reads_the_current_value() -> None:
    """A proxy of local.obj reads whatever local.obj is now."""
    local, p = bound([1, 2])
    assert p == [1, 2]
    local.obj = "ab"
    assert p.upper() == "AB"
    del local.obj
    with pytest.raises(RuntimeError):
        p.upper()


def test_callable_proxy_calls_the_function_on_every_access() -> None:
    """LocalProxy(function) calls the function once per operation."""
    calls = []

    def current() -> int:
        calls.append(1)
        return len(calls)

    p: Any = LocalProxy(current)
    assert p + 0 == 1
    assert p + 0 == 2
    assert str(p) == "3"


def test_callable_proxy_is_unbound_while_the_function_raises_runtime_error() -> None:
    """The function's RuntimeError is the proxy's: unbound, with its message."""

    def nothing() -> Any:
        raise RuntimeError("no current user")

    p = LocalProxy(nothing)
    assert not p
    assert repr(p) == "<LocalProxy unbound>"
    with pytest.raises(RuntimeError, match="no current user"):
        len(p)
    assert p.__wrapped__ is nothing


def test_other_errors_of_the_function_are_not_unbound() -> None:
    """Only RuntimeError means unbound; other errors propagate, even from bool()."""

    def broken() -> Any:
        raise KeyError("x")

    with pytest.raises(KeyError):
        bool(LocalProxy(broken))


def test_any_object_with_the_attribute_can_be_proxied() -> None:
    """LocalProxy(obj, name) works for any object, not only a reference Local."""
    namespace = types.SimpleNamespace(user="alice")
    p = LocalProxy(namespace, "user")
    assert p.upper() == "ALICE"
    del namespace.user
    with pytest.raises(RuntimeError, match=UNBOUND_MESSAGE):
        p.upper()


def test_unbound_message_can_be_replaced() -> None:
    """unbound_message is the text of the unbound RuntimeError."""
    p = LocalProxy(Local(), "request", unbound_message="Working outside of request context.")
    with pytest.raises(RuntimeError, match=r"^Working outside of request context\.$"):
        p.method  # noqa: B018


def test_a_local_needs_a_name() -> None:
    with pytest.raises(TypeError, match="'name' is required"):
        LocalProxy(Local())


def test_a_value_that_is_not_callable_cannot_be_proxied() -> None:
    with pytest.raises(TypeError, match="Don't know how to proxy"):
        LocalProxy(42)


def test_get_current_object_returns_the_object_itself() -> None:
    value = [1]
    _, p = bound(value)
    assert p._get_current_object() is value


def test_each_thread_sees_its_own_object() -> None:
    """One proxy serves every thread, each seeing its own value of the Local."""
    local, p = bound("main")
    seen: list[object] = []

    def worker() -> None:
        seen.append(bool(p))
        local.obj = "thread"
        seen.append(str(p))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [False, "thread"]
    assert str(p) == "main"


def test_each_task_sees_its_own_object() -> None:
    local, p = unbound()

    async def handle(name: str) -> str:
        local.obj = name
        await asyncio.sleep(0)
        return str(p)

    async def main() -> list[str]:
        return list(await asyncio.gather(handle("a"), handle("b")))

    assert asyncio.run(main()) == ["a", "b"]


# -- forwarding, bound --------------------------------------------------------------------


def test_attributes_are_read_set_and_deleted_on_the_object() -> None:
    obj = types.SimpleNamespace(a=1)
    _, p = bound(obj)
    assert p.a == 1
    p.b = 2
    assert obj.b == 2
    del p.a
    assert not hasattr(obj, "a")
    assert vars(p) is vars(obj)
    assert dir(p) == dir(obj)


def test_names_the_proxy_class_defines_are_the_proxys() -> None:
    """p.__module__ is the proxy's; p.__len__ is the proxy's method, which forwards."""
    _, p = bound([1, 2, 3])
    assert p.__module__ == "reference.proxy"
    assert p.__len__() == 3
    assert hasattr(p, "__len__")


def test_class_and_isinstance_see_the_object() -> None:
    _, p = bound(5)
    assert p.__class__ is int
    assert isinstance(p, int)
    assert type(p) is LocalProxy
    assert isinstance(p, LocalProxy)
    _, c = bound(int)
    assert isinstance(5, c)
    assert issubclass(bool, c)


def test_doc_and_wrapped_are_the_objects() -> None:
    def inner() -> None:
        """Inner."""

    wrapper = types.SimpleNamespace(__wrapped__=inner, __doc__="Wrapper.")
    _, p = bound(wrapper)
    assert p.__doc__ == "Wrapper."
    assert p.__wrapped__ is inner
    _, q = bound(5)
    with pytest.raises(AttributeError):
        q.__wrapped__  # noqa: B018


def test_text_and_containers_are_the_objects() -> None:
    _, p = bound({"a": 1})
    assert str(p) == repr(p) == "{'a': 1}"
    assert f"{p!s:>10}" == "  {'a': 1}"
    assert len(p) == 1 and list(p) == ["a"] and list(reversed(p)) == ["a"]
    assert "a" in p and p["a"] == 1
    p["b"] = 2
    del p["a"]
    assert p == {"b": 2}
    assert bool(p)


def test_numbers_forward_every_operator() -> None:
    _, p = bound(7)
    assert (p + 1, 1 + p, p - 1, 10 - p, p * 2, 2 * p) == (8, 8, 6, 3, 14, 14)
    assert (p / 2, 14 / p, p // 2, 15 // p, p % 4, 15 % p) == (3.5, 2.0, 3, 2, 3, 1)
    assert (divmod(p, 4), divmod(15, p), p**2, 2**p, pow(p, 2, 5)) == ((1, 3), (2, 1), 49, 128, 4)
    assert (p << 1, 1 << p, p >> 1, 256 >> p) == (14, 128, 3, 2)
    assert (p & 3, 3 & p, p | 8, 8 | p, p ^ 1, 1 ^ p) == (3, 3, 15, 15, 6, 6)
    assert (-p, +p, abs(p), ~p) == (-7, 7, 7, -8)
    assert (int(p), float(p), complex(p), round(p, -1)) == (7, 7.0, 7 + 0j, 10)
    assert (math.trunc(p), math.floor(p), math.ceil(p)) == (7, 7, 7)
    assert [0, 1, 2, 3, 4, 5, 6, 7][p] == 7
    assert (p < 8, p <= 7, p == 7, p != 7, p > 8, p >= 8) == (True, True, True, False, False, False)
    assert hash(p) == hash(7)
    assert bytes(bound(2)[1]) == b"\x00\x00"


def test_in_place_operators_never_rebind() -> None:
    """p += x changes a mutable object in place, leaves an immutable one alone, and
    p stays the proxy; the Local is not rebound."""
    local, p = bound([1])
    q = p
    q += [2]
    assert q is p and local.obj == [1, 2]
    local.obj = 5
    q += 1
    assert q is p and local.obj == 5
    with pytest.raises(TypeError):
        q += "x"


def test_calls_and_context_managers_reach_the_object() -> None:
    _, p = bound(lambda *args, **kwargs: (args, kwargs))
    assert p(1, k=2) == ((1,), {"k": 2})
    assert callable(bound(5)[1])  # a proxy always has __call__

    class Manager:
        def __init__(self) -> None:
            self.events: list[str] = []

        def __enter__(self) -> str:
            self.events.append("enter")
            return "value"

        def __exit__(self, *exc: Any) -> bool:
            self.events.append("exit")
            return True

    manager = Manager()
    _, m = bound(manager)
    assert enter(m, body_raises=True) is None  # swallowed by __exit__
    assert manager.events == ["enter", "exit"]


def test_await_and_async_iteration_reach_the_object() -> None:
    async def coroutine() -> int:
        return 5

    async def numbers() -> Any:
        yield 1
        yield 2

    async def main() -> tuple[int, list[int]]:
        _, p = bound(coroutine())
        _, q = bound(numbers())
        return await p, [x async for x in q]

    assert asyncio.run(main()) == (5, [1, 2])


def test_copies_are_copies_of_the_object() -> None:
    value = [[1]]
    _, p = bound(value)
    shallow, deep = copy.copy(p), copy.deepcopy(p)
    assert type(shallow) is list and shallow == value and shallow[0] is value[0]
    assert type(deep) is list and deep == value and deep[0] is not value[0]


# -- unbound --------------------------------------------------------------------------------


def test_unbound_fallbacks() -> None:
    """Unbound: false, says so in repr, no attributes, the proxy's class, doc and what it wraps."""
    local, p = unbound()
    assert bool(p) is False
    assert repr(p) == "<LocalProxy unbound>"
    assert dir(p) == []
    assert p.__class__ is LocalProxy
    assert p.__doc__ == LocalProxy.__doc__
    assert p.__wrapped__ is local
    assert not isinstance(p, int)


def test_unbound_operations_raise_runtime_error() -> None:
    _, p = unbound()
    operations: list[Callable[[Any], Any]] = [
        str,
        len,
        reversed,
        copy.copy,
        lambda p: p + 1,
        lambda p: 1 + p,
        lambda p: p.name,
        lambda p: hasattr(p, "name"),
        lambda p: p(),
        lambda p: 1 in p,
        lambda p: p[0],
        lambda p: format(p, ""),
    ]
    for operation in operations:
        with pytest.raises(RuntimeError, match=f"^{UNBOUND_MESSAGE}$"):
            operation(p)
    with pytest.raises(RuntimeError):
        enter(p, body_raises=False)


def test_unbound_operations_that_python_swallows() -> None:
    """==, !=, ordering, hash(), iter() and await behave as Werkzeug's do."""
    _, p = unbound()
    assert (p == 1, p != 1, p == p) == (False, True, True)
    with pytest.raises(TypeError):
        p < 1  # noqa: B015
    with pytest.raises(TypeError, match="unhashable"):
        hash(p)
    with pytest.raises(TypeError, match="not iterable"):
        iter(p)

    async def wait() -> Any:
        return await p

    with pytest.raises(AttributeError, match="__await__"):
        run(wait())


def test_unbound_in_place_operator_raises() -> None:
    _, p = unbound()
    with pytest.raises(RuntimeError):
        p += 1


# -- the table --------------------------------------------------------------------------------


def test_every_dunder_of_the_table_is_built_from_it() -> None:
    """Each dunder a row implements is the proxy's, and says which clause it serves."""
    for op in FORWARDS:
        for dunder in op.dunders:
            if op.via == "attribute":
                continue
            method = LocalProxy.__dict__[dunder]
            assert op.clause in method.__doc__, dunder


def test_every_clause_of_the_table_exists() -> None:
    for op in FORWARDS:
        assert op.clause in BY_ID, op.name
        assert op.unbound_clause in BY_ID, op.name
        for _, _, clause in op.legacy:
            assert clause in BY_ID, op.name


def test_the_table_knows_the_older_profiles() -> None:
    assert BY_NAME["wrapped"].unbound_for("2.0")[1] is None
    assert BY_NAME["wrapped"].unbound_for("2.2")[0] == "proxy.unbound.wrapped"
    assert BY_NAME["wrapped"].unbound_for() == BY_NAME["wrapped"].unbound_for("3.1")
    assert unbound_message("obj", "2.0") == "no object bound to obj"
    assert unbound_message("obj", "2.2") == unbound_message("obj") == UNBOUND_MESSAGE


def test_rows_call_python_operations() -> None:
    """A row's call is the operation: applied to a value it does what Python does."""
    assert BY_NAME["len"].call([1, 2]) == 2
    assert BY_NAME["rsub"].call(1, 10) == 9  # 10 - 1: the subject on the right
    assert BY_NAME["isub"].call({1, 2}, {2}) == {1}
    stream = io.StringIO()
    assert BY_NAME["with"].call(stream, False) is stream and stream.closed
    with pytest.raises(BodyError):
        enter(io.StringIO(), body_raises=True)


@pytest.mark.parametrize("path", ["reference/forwarding.py", "reference/proxy.py"])
def test_reference_imports_only_the_standard_library_and_itself(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"conformance", "flask", "werkzeug", "hypothesis"}
