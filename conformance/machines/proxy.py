"""The LocalProxy machine: bind a Local's attribute, apply operations to its proxy.

Clauses: spec/localproxy.md. The operations are the rows of the forwarding table
(``reference/forwarding.py``); the machine is the table's second reader. Each bound object
comes in two equal copies: one is bound to the Local behind the proxy, the other the
machine keeps for itself. An operation is applied to the proxy and, with equal arguments,
to the machine's copy, through the same ``call`` of the row; the two outcomes must agree
(the exception's type, or an equal value -- the very object, where Python returns the
object itself), and so must the two copies afterwards. An unbound proxy is compared with
the row's fallback for the adapter's version profile instead.

A proxy that caches its object (``proxy.lookup.every-access``) is caught by what it
leaves behind: objects bound earlier are remembered with a snapshot of their state, and
an operation that changes one of them, or returns one, reached a stale object.
"""

from __future__ import annotations

import copy
import functools
import math
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from reference.forwarding import FORWARDS, Op, unbound_message

from ..outcome import Outcome, Raised, Returned, capture
from ..profiles import until
from .base import ConformanceMachine, named_like

#: The attribute of the Local that the proxy proxies.
NAME = "obj"

EVERY_ACCESS = "proxy.lookup.every-access"
MESSAGE = "proxy.unbound.message"
MESSAGE_NAMES = "proxy.unbound.message-names"

#: Errors that both mean "the object does not support this protocol" (see Op.loose).
PROTOCOL_ERRORS = frozenset({TypeError, AttributeError})

#: How many objects bound earlier are watched for a stale proxy reaching them.
WATCHED = 3

_MISSING = object()


# -- the objects bound ----------------------------------------------------------------------


def _inner(*args: Any) -> tuple[Any, ...]:
    """What a Wrapper wraps."""
    return args


def _ready(value: Any) -> Any:
    """A generator that ends at once with ``value``: what ``__await__`` returns."""
    yield from ()
    return value


class Specimen:
    """The machine's own objects. Equal copies have equal reprs and hashes, and all their
    state is in ``vars()``, where the machine compares it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n})"

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.n))


class Recorder(Specimen):
    """Answers every special method of the table, and records each call in ``log``: a
    proxy that calls the wrong method, or the right one twice, leaves another log."""

    log: list[tuple[Any, ...]]

    def __init__(self, n: int) -> None:
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "log", [])

    def __setattr__(self, name: str, value: Any) -> None:
        self.log.append(("setattr", name, value))
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self.log.append(("delattr", name))
        object.__delattr__(self, name)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.log.append(("exit", exc_type))

    def __await__(self) -> Any:
        self.log.append(("await",))
        return _ready(self.n)

    def __aiter__(self) -> Recorder:
        self.log.append(("aiter",))
        return self

    async def __anext__(self) -> Any:
        self.log.append(("anext",))
        raise StopAsyncIteration

    async def __aenter__(self) -> Recorder:
        self.log.append(("aenter",))
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.log.append(("aexit", exc_type))
        return False


def _recording(name: str, answer: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Recorder, *args: Any, **kwargs: Any) -> Any:
        self.log.append((name, *args, *sorted(kwargs.items())))
        return answer(self, *args, **kwargs)

    method.__name__ = f"__{name}__"
    return method


def _tagged(name: str) -> Callable[..., Any]:
    return lambda self, *args: (name, *args)


def _n(self: Recorder, *args: Any) -> Any:
    return self.n


#: The answers of the Recorder's special methods, beyond those written out above.
_ANSWERS: dict[str, Callable[..., Any]] = {
    "bool": lambda self: self.n != 0,
    "len": _n,
    "length_hint": _n,
    "str": lambda self: f"recorder {self.n}",
    "bytes": lambda self: b"r%d" % self.n,
    "format": lambda self, spec: f"{self.n}:{spec}",
    "hash": lambda self: 42 + self.n,
    "iter": lambda self: iter(range(self.n)),
    "reversed": lambda self: reversed(range(self.n)),
    "next": _n,
    "contains": lambda self, item: item == self.n,
    "getitem": _tagged("getitem"),
    "setitem": lambda self, key, value: None,
    "delitem": lambda self, key: None,
    "call": lambda self, *args, **kwargs: ("call", args, sorted(kwargs.items())),
    "enter": lambda self: self,
    "dir": lambda self: ["log", "n"],
    "instancecheck": lambda self, obj: True,
    "subclasscheck": lambda self, cls: False,
    "int": _n,
    "index": _n,
    "round": _n,
    "trunc": _n,
    "floor": _n,
    "ceil": _n,
    "float": lambda self: float(self.n),
    "complex": lambda self: complex(self.n),
    "neg": _tagged("neg"),
    "pos": _tagged("pos"),
    "abs": _tagged("abs"),
    "invert": _tagged("invert"),
}
for _op in FORWARDS:
    if (
        _op.clause
        in ("proxy.forward.compare", "proxy.forward.arithmetic", "proxy.forward.reflected")
        and _op.dunders
    ):
        _ANSWERS[_op.name] = _tagged(_op.name)
    elif _op.via == "inplace":
        _ANSWERS[_op.name] = lambda self, other: self
for _name, _answer in _ANSWERS.items():
    setattr(Recorder, f"__{_name}__", _recording(_name, _answer))
del _op, _name, _answer


class Caller(Specimen):
    """A callable object."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return (self.n, args, sorted(kwargs.items()))


class Manager(Specimen):
    """A context manager, plain and async. An odd one swallows the body's exception."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.events: list[Any] = []

    def __enter__(self) -> int:
        self.events.append("enter")
        return self.n

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.events.append(("exit", exc_type))
        return self.n % 2 == 1

    async def __aenter__(self) -> int:
        self.events.append("aenter")
        return self.n

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.events.append(("aexit", exc_type))
        return self.n % 2 == 1


class Waiter(Specimen):
    """An awaitable: awaiting it gives n."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.awaited = 0

    def __await__(self) -> Any:
        self.awaited += 1
        return _ready(self.n)


class Ticker(Specimen):
    """An async iterator that counts n down to 0."""

    def __aiter__(self) -> Ticker:
        return self

    async def __anext__(self) -> int:
        if self.n > 0:
            self.n -= 1
            return self.n
        raise StopAsyncIteration


class Wrapper(Specimen):
    """What functools.wraps leaves: an object with __wrapped__ and its own docstring."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.__wrapped__ = _inner

    def __call__(self, *args: Any) -> Any:
        return _inner(*args)


SPECIMENS = (Recorder, Caller, Manager, Waiter, Ticker, Wrapper)


@dataclass(frozen=True)
class Recipe:
    """How to make an object to bind: ``make()`` gives a fresh copy, equal to every other."""

    label: str
    make: Callable[[], Any] = field(compare=False)

    def __repr__(self) -> str:
        return self.label

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _value(value: Any) -> Recipe:
    label = value.__name__ if isinstance(value, type) else repr(value)
    return Recipe(label, functools.partial(copy.deepcopy, value))


def _specimen(cls: type, n: int) -> Recipe:
    return Recipe(f"{cls.__name__}({n})", functools.partial(cls, n))


#: Python's own objects: immutable ones (one object serves both copies) and mutable ones.
builtin_values = [
    st.integers(-1000, 1000),
    st.sampled_from([None, True, False]),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.lists(st.integers(-3, 3), max_size=3),
    st.lists(st.integers(-3, 3), max_size=3).map(tuple),
    st.dictionaries(st.sampled_from("ab"), st.integers(0, 3), max_size=2),
    st.sets(st.integers(0, 3), max_size=3),
    st.sampled_from([int, str, list]),
]

#: What the machine binds: each kind of Python object, and each specimen, equally often.
recipes = st.one_of(
    *(kind.map(_value) for kind in builtin_values),
    *(st.builds(_specimen, st.just(cls), st.integers(0, 3)) for cls in SPECIMENS),
)
#: Under proxy.lookup.every-access, only Recorders: what a stale proxy does to them shows.
recorders = st.builds(_specimen, st.just(Recorder), st.integers(0, 3))


# -- the arguments of the operations ------------------------------------------------------

#: Operands: numbers drawn, and one or two of each other kind of value, sampled (drawing
#: those would cost more than it finds). Each side of a comparison gets a deep copy.
operands = st.one_of(
    st.integers(-3, 20),
    st.floats(-10, 10, allow_nan=False),
    st.sampled_from(
        [
            "",
            "ab",
            b"",
            b"x",
            [],
            [1, 2],
            (),
            (1,),
            None,
            True,
            False,
            {},
            {"a": 1},
            set(),
            {1, 2},
            frozenset({0}),
        ]
    ),
)
values = st.one_of(st.integers(0, 3), st.sampled_from(["x", ""]))
#: Attribute names: the objects' own, Python's, and missing ones. None of them is a name
#: the proxy's class defines (those belong to the proxy: spec proxy.forward.getattr).
names = st.sampled_from(["n", "value", "real", "append", "upper", "keys", "missing", "__name__"])

#: What an operation takes after its subject: positional and keyword arguments.
Arguments = tuple[tuple[Any, ...], dict[str, Any]]


def _args(*strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[Arguments]:
    return st.tuples(*strategies).map(lambda args: (args, {}))


#: The arguments each kind of operation takes after its subject (Op.takes).
ARGUMENTS: dict[str, st.SearchStrategy[Arguments]] = {
    "": _args(),
    "other": _args(operands),
    "other-not-text": _args(operands.filter(lambda x: not isinstance(x, (str, bytes)))),
    "pow3": _args(st.integers(-2, 5), st.integers(-3, 7)),
    "name": _args(names),
    "name_value": _args(names, values),
    "spec": _args(st.sampled_from(["", "d", ">6", "x", ".2f", "s", "^4", "+", "r"])),
    "item": _args(st.one_of(st.integers(-1, 3), st.sampled_from(["a", "b", ""]), st.none())),
    "key": _args(st.sampled_from([0, 1, -1, "a", "b", slice(0, 2), slice(None, None, -1)])),
    "key_value": _args(st.sampled_from([0, 1, -1, "a", slice(0, 1)]), values),
    "ndigits": st.one_of(_args(), _args(st.integers(-2, 3)), _args(st.none())),
    "call": st.tuples(
        st.lists(st.integers(0, 3), max_size=2).map(tuple),
        st.dictionaries(st.sampled_from(["k", "base"]), st.integers(0, 3), max_size=1),
    ),
    "class": _args(st.sampled_from([int, bool, str, list, object, type, Recorder])),
    "instance": _args(st.one_of(st.integers(0, 3), st.sampled_from(["a", None, True]))),
    "subclass": _args(st.sampled_from([int, bool, str, object, 5])),
    "body_raises": _args(st.booleans()),
}


@dataclass(frozen=True, eq=False)
class Step:
    """One row of the table with its arguments; shown as the Python it stands for."""

    op: Op
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __repr__(self) -> str:
        texts = [repr(a) for a in self.args]
        if self.op.takes in ("name", "name_value"):
            texts[0] = self.args[0]
        elif self.op.takes == "call":
            texts = [", ".join(texts + [f"{k}={v!r}" for k, v in self.kwargs.items()])]
        elif self.op.takes == "body_raises":
            texts = ["raise BodyError()" if self.args[0] else "pass"]
        elif self.op.takes == "ndigits":
            texts = ["".join(", " + text for text in texts)]
        return "<" + self.op.shows.format(*texts) + ">"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def arguments(self) -> Arguments:
        """A fresh deep copy of the arguments: each side gets its own."""
        return copy.deepcopy((self.args, self.kwargs))


def ops_for(target: str, profile: str) -> tuple[Op, ...]:
    """The rows whose outcomes a run for ``target`` judges."""
    if target == EVERY_ACCESS:
        return FORWARDS
    if target in (MESSAGE, MESSAGE_NAMES):
        return tuple(op for op in FORWARDS if op.unbound_for(profile)[1] is None)
    if target.startswith("proxy.unbound."):
        return tuple(op for op in FORWARDS if op.unbound_for(profile)[0] == target)
    return tuple(op for op in FORWARDS if op.clause == target)


@functools.cache
def steps_for(target: str, profile: str) -> st.SearchStrategy[Step]:
    ops = ops_for(target, profile)
    if not ops:
        raise ValueError(f"no operation of the forwarding table is judged by {target!r}")

    # One branch per row, rather than a row drawn and then its arguments (flatmap): the
    # shrinker moves between branches and deletes steps far more easily.
    return st.one_of(*(ARGUMENTS[op.takes].map(functools.partial(_step, op)) for op in ops))


def _step(op: Op, arguments: Arguments) -> Step:
    return Step(op, *arguments)


# -- comparing outcomes -------------------------------------------------------------------


class _Bare:
    """An object with no special methods of its own: what Python falls back on when an
    unbound proxy's comparison declines (returns NotImplemented)."""


def same(actual: Any, expected: Any, mine: Any = _MISSING, theirs: Any = _MISSING) -> bool:
    """Does ``actual`` (got through the proxy, whose object is ``mine``) match ``expected``
    (got directly from ``theirs``)? The object itself must come back as ``mine``; a bound
    method must be bound to the corresponding object; iterators are compared by what they
    yield; NaN matches NaN."""
    if expected is theirs:
        return actual is mine
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, Specimen):
        return vars(actual) == vars(expected)
    if isinstance(expected, (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType)):
        return actual.__name__ == expected.__name__ and same(
            actual.__self__, expected.__self__, mine, theirs
        )
    if isinstance(expected, Iterator):
        return same(list(actual), list(expected), mine, theirs)
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    if isinstance(expected, complex):
        return same(actual.real, expected.real) and same(actual.imag, expected.imag)
    if isinstance(expected, (list, tuple)):
        return len(actual) == len(expected) and all(
            same(a, e, mine, theirs) for a, e in zip(actual, expected)
        )
    try:
        return bool(actual == expected)
    except Exception:
        return False


def state(obj: Any) -> Any:
    """A snapshot of what an operation could change in ``obj``; None if it cannot change."""
    if isinstance(obj, Specimen):
        return copy.deepcopy(vars(obj))
    if isinstance(obj, (list, dict, set, bytearray)):
        return copy.deepcopy(obj)
    return None


def equal_state(mine: Any, theirs: Any) -> bool:
    if mine is theirs:
        return True
    if type(mine) is not type(theirs):
        return False
    if isinstance(mine, Specimen):
        return vars(mine) == vars(theirs)
    return same(mine, theirs)


# -- the machine ----------------------------------------------------------------------------


def unbinds(target: str) -> bool:
    """Runs about unbound proxies, and about stale objects, unbind; the others need not."""
    return target.startswith("proxy.unbound.") or target == EVERY_ACCESS


class ProxyMachine(ConformanceMachine):
    """Rules: ``bind`` (a fresh pair of copies), ``act`` (one row of the table), and for
    the targets that need it ``unbind`` (``UnbindingProxyMachine``)."""

    @classmethod
    def for_target(cls, target: str) -> type[ConformanceMachine]:
        return UnbindingProxyMachine if unbinds(target) else cls

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__(adapter, target, hang_timeout)
        self.profile: str = adapter.profile
        self.steps = steps_for(target, self.profile)
        self.recipes = recorders if target == EVERY_ACCESS else recipes
        self.message_clause = MESSAGE_NAMES if self.profile in until("2.0") else MESSAGE
        self.local = adapter.new_local()
        self.proxy = adapter.new_proxy(self.local, NAME)
        self.recipe: Optional[Recipe] = None  # what is bound now; None: unbound
        self.mine: Any = None  # the copy bound to the Local, behind the proxy
        self.theirs: Any = None  # the equal copy the machine operates on directly
        #: Objects bound earlier, each with a snapshot of its state when it was replaced.
        self.earlier: list[tuple[Any, Any]] = []

    # -- rules ----------------------------------------------------------------------------
    @initialize(recipe=st.runner().flatmap(lambda machine: machine.recipes))
    def bind_first(self, recipe: Recipe) -> None:
        self.bind(recipe)

    @rule(recipe=st.runner().flatmap(lambda machine: machine.recipes))
    def bind(self, recipe: Recipe) -> None:
        self.retire()
        self.recipe, self.mine, self.theirs = recipe, recipe.make(), recipe.make()
        setattr(self.local, NAME, self.mine)

    # One rule for every operation, the row an argument: swarm testing disables whole
    # rules per example.
    @rule(step=st.runner().flatmap(lambda machine: machine.steps))
    def act(self, step: Step) -> None:
        # Some rows are deprecated for some objects (~ on a bool, since Python 3.12). The
        # proxy must forward them all the same; the warning says nothing about forwarding.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.act_quietly(step)

    def act_quietly(self, step: Step) -> None:
        args, kwargs = step.arguments()
        seen = capture(lambda: step.op.call(self.proxy, *args, **kwargs))
        if self.reached_earlier(step, seen):
            return
        if self.recipe is None:
            self.check_unbound(step, seen)
        else:
            self.check_bound(step, seen)

    # -- bound ------------------------------------------------------------------------------
    def check_bound(self, step: Step, seen: Outcome) -> None:
        op = step.op
        if op.unspecified is not None and op.unspecified(self.theirs):
            return
        args, kwargs = step.arguments()
        expected = capture(lambda: op.call(self.theirs, *args, **kwargs))
        problem = self.compare(op, seen, expected) or self.compare_after(op)
        if problem:
            self.violated(op.clause, f"{step!r} with p bound to {self.recipe!r}: {problem}")
            self.resync()

    def compare(self, op: Op, seen: Outcome, expected: Outcome) -> Optional[str]:
        if isinstance(expected, Raised):
            if isinstance(seen, Raised) and (
                seen.type is expected.type
                or (op.loose and {seen.type, expected.type} <= PROTOCOL_ERRORS)
            ):
                return None
            return f"{seen.describe()}; on the object itself it {expected.describe()}"
        if op.via == "inplace":
            if isinstance(seen, Returned) and seen.value is self.proxy:
                return None
            return f"{seen.describe()}, expected the proxy itself (the name stays bound to it)"
        if isinstance(seen, Returned) and same(seen.value, expected.value, self.mine, self.theirs):
            return None
        return f"{seen.describe()}; on the object itself it {expected.describe()}"

    def compare_after(self, op: Op) -> Optional[str]:
        if not equal_state(self.mine, self.theirs):
            return (
                f"afterwards the object behind the proxy is {self.mine!r} "
                f"({state(self.mine)!r}), but {self.theirs!r} ({state(self.theirs)!r}) "
                "when done on the object itself"
            )
        if op.via == "inplace" and getattr(self.local, NAME, _MISSING) is not self.mine:
            return "the Local's attribute was rebound; an in-place operator must not rebind it"
        return None

    def resync(self) -> None:
        """After a violation that another clause's run judges, go on from what is there."""
        current = getattr(self.local, NAME, _MISSING)
        if current is _MISSING:
            self.recipe = self.mine = self.theirs = None
        else:
            self.mine, self.theirs = current, copy.deepcopy(current)

    # -- unbound ----------------------------------------------------------------------------
    def check_unbound(self, step: Step, seen: Outcome) -> None:
        op = step.op
        clause, fallback = op.unbound_for(self.profile)
        if fallback is None:
            if isinstance(seen, Raised) and isinstance(seen.error, RuntimeError):
                self.check_message(step, seen.error)
                return
            problem: Optional[str] = f"{seen.describe()}, expected RuntimeError"
        else:
            args, kwargs = step.arguments()
            expected = capture(lambda: fallback(self.proxy, self.local, *args, **kwargs))
            if isinstance(expected, Returned) and expected.value is NotImplemented:
                # The proxy declines; Python goes on as for an object without the method.
                expected = capture(lambda: op.call(_Bare(), *args, **kwargs))
            problem = self.compare_unbound(seen, expected)
        if problem:
            self.violated(clause, f"{step!r} with p unbound: {problem}")

    @staticmethod
    def compare_unbound(seen: Outcome, expected: Outcome) -> Optional[str]:
        if isinstance(expected, Raised):
            if isinstance(seen, Raised) and seen.type is expected.type:
                return None
            return f"{seen.describe()}, expected {expected.describe()}"
        if isinstance(seen, Returned) and same(seen.value, expected.value):
            return None
        return f"{seen.describe()}, expected it to return {expected.value!r}"

    def check_message(self, step: Step, error: RuntimeError) -> None:
        expected = unbound_message(NAME, self.profile)
        if str(error) != expected:
            self.violated(
                self.message_clause,
                f"{step!r} with p unbound raised RuntimeError({str(error)!r}), "
                f"expected RuntimeError({expected!r})",
            )

    # -- a stale object ---------------------------------------------------------------------
    def retire(self) -> None:
        """The bound object is being replaced: watch it, from its state now."""
        if self.recipe is not None:
            self.earlier = [*self.earlier, (self.mine, state(self.mine))][-WATCHED:]

    def reached_earlier(self, step: Step, seen: Outcome) -> bool:
        """Did the operation reach an object bound earlier: change it, or return it?"""
        value = seen.value if isinstance(seen, Returned) else None
        bound_to = getattr(value, "__self__", None) if callable(value) else None
        for obj, snapshot in self.earlier:
            if obj is self.mine or snapshot is None:
                continue  # the same object again, or one whose identity means nothing (5)
            changed = state(obj) != snapshot
            if changed or value is obj or bound_to is obj:
                how = "changed" if changed else "returned"
                self.violated(
                    EVERY_ACCESS,
                    f"{step!r} {how} {obj!r}, an object the Local held earlier; the proxy "
                    + (f"is bound to {self.recipe!r} now" if self.recipe else "is unbound now"),
                )
                self.earlier = [(o, state(o)) for o, _ in self.earlier]
                self.resync()
                return True
        return False


class UnbindingProxyMachine(ProxyMachine):
    """The machine of the unbound clauses and of proxy.lookup.every-access. It may start
    unbound: swarm testing disables ``unbind`` in some examples, and with a budget of a
    few dozen examples a seed can miss it in all of them."""

    @initialize(recipe=st.runner().flatmap(lambda machine: machine.recipes), unbound=st.booleans())
    def bind_first(self, recipe: Recipe, unbound: bool = False) -> None:
        self.bind(recipe)
        if unbound:
            self.unbind()

    @rule()
    def unbind(self) -> None:
        if self.recipe is not None:  # unbinding twice changes nothing (no precondition)
            self.retire()
            self.recipe = self.mine = self.theirs = None
            delattr(self.local, NAME)


named_like(UnbindingProxyMachine, ProxyMachine)
