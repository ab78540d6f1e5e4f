"""The proxy clauses catch broken proxies, and pass real ones.

Each mutant is the reference adapter with a proxy broken in one way that real proxies
have been broken: it caches its object, or lacks a forwarded operation. Its clause must
fail, the failure must name that clause, and Hypothesis must shrink it to a short program.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.adapters.reference import ReferenceAdapter
from conformance.clauses import BY_ID, PROXY
from conformance.runner import BUDGETS, RunOptions, check_clause, skip_reason
from reference.forwarding import FORWARDS, UNBOUND_MESSAGE
from reference.proxy import LocalProxy

pytestmark = pytest.mark.slow

#: The most lines a shrunk failing program may have (``state = ...`` to ``teardown``).
SHORT_PROGRAM = 6


def options() -> RunOptions:
    return RunOptions(BUDGETS["ci"], seed=0, timeout=60)


class CachingAdapter(ReferenceAdapter):
    """Its proxy looks the object up once and keeps it."""

    name = "mutant-caching-proxy"

    def new_proxy(self, local: Any, name: str) -> Any:
        cache: list[Any] = []

        def lookup() -> Any:
            if not cache:
                try:
                    cache.append(getattr(local, name))
                except AttributeError:
                    raise RuntimeError(UNBOUND_MESSAGE) from None
            return cache[0]

        return LocalProxy(lookup)


class NoBoolProxy(LocalProxy):
    """Does not forward the truth value: true, as any object without __bool__."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return True


class NoLenProxy(LocalProxy):
    """Has no __len__: what Python raises without one."""

    __slots__ = ()

    def __len__(self) -> int:
        raise TypeError(f"object of type {type(self).__name__!r} has no len()")


class NoReflectedProxy(LocalProxy):
    """Has no reflected operators (__radd__ and the rest): they decline."""

    __slots__ = ()


for _op in FORWARDS:
    if _op.clause == "proxy.forward.reflected":
        for _dunder in _op.dunders:
            setattr(NoReflectedProxy, _dunder, lambda self, other: NotImplemented)


def adapter_with(proxy_class: type) -> ReferenceAdapter:
    class MutantAdapter(ReferenceAdapter):
        name = f"mutant-{proxy_class.__name__}"

        def new_proxy(self, local: Any, name: str) -> Any:
            return proxy_class(local, name)

    return MutantAdapter()


MUTANTS = [
    pytest.param(CachingAdapter(), "proxy.lookup.every-access", id="caches"),
    pytest.param(adapter_with(NoBoolProxy), "proxy.forward.bool", id="no-bool"),
    pytest.param(adapter_with(NoLenProxy), "proxy.forward.len", id="no-len"),
    pytest.param(adapter_with(NoReflectedProxy), "proxy.forward.reflected", id="no-reflected"),
]


@pytest.mark.parametrize(("adapter", "clause_id"), MUTANTS)
def test_mutant_fails_its_clause_with_a_short_program(adapter: Any, clause_id: str) -> None:
    result = check_clause(adapter, BY_ID[clause_id], options())
    assert result.verdict == "failed", result.reason
    assert result.failure is not None
    assert result.failure.clause == clause_id
    lines = [line for line in result.failure.program.splitlines() if line.startswith("state")]
    assert 3 <= len(lines) <= SHORT_PROGRAM, result.failure.program


def real_adapters() -> list[Any]:
    adapters: list[Any] = [pytest.param(ReferenceAdapter(), id="reference")]
    try:
        from conformance.adapters.werkzeug import WerkzeugAdapter

        adapters.append(pytest.param(WerkzeugAdapter(), id="werkzeug"))
    except ImportError:
        adapters.append(pytest.param(None, id="werkzeug", marks=pytest.mark.skip("no werkzeug")))
    return adapters


@pytest.mark.parametrize("adapter", real_adapters())
@pytest.mark.parametrize("clause_id", [clause.id for clause in PROXY])
def test_real_proxies_pass_every_proxy_clause(adapter: Any, clause_id: str) -> None:
    """The reference, and Werkzeug's proxy as its installed release's profile."""
    clause = BY_ID[clause_id]
    reason = skip_reason(adapter, clause)
    if reason is not None:
        pytest.skip(reason)
    result = check_clause(adapter, clause, options())
    assert result.verdict == "passed", (
        result.reason or (result.failure and result.failure.message),
        result.failure and result.failure.program,
    )
