"""The forwarding table: every Python data-model operation a LocalProxy forwards.

Rules of this file
------------------
* One row (an ``Op``) per operation Python can perform on an object. A row says which
  clause of spec/localproxy.md it belongs to, which dunders of the proxy implement it,
  how Python performs it on a subject (``call``), and what an *unbound* proxy does.
* Three readers, one table. ``reference/proxy.py`` builds its methods from the rows;
  ``conformance/machines/proxy.py`` applies each row's ``call`` to a proxy and to the
  object behind it and compares the two; spec/localproxy.md shows it.
* This module imports only the standard library: never ``conformance``, Flask or Werkzeug.

Theory of operation
-------------------
A proxy stands in for "the current object". For most operations forwarding means doing
the same thing again on that object: ``len(proxy)`` is ``len(obj)``, ``1 + proxy`` is
``1 + obj``. So a row's ``call`` serves twice: applied to a subject it *is* the operation
(``call(proxy)`` is what a user writes, ``call(obj)`` what must happen), and applied to
the current object inside a dunder it *forwards* the operation (``via="call"``). Where
redoing the operation is not possible from inside a dunder (``with``, ``await``), the dunder
calls the object's own method of that name (``via="method"``). Attribute reads are served
by the proxy's attribute lookup (``via="attribute"``). In-place operators apply the
operation to the object, discard its result and return the proxy (``via="inplace"``), so
that ``p += x`` never rebinds ``p``: an immutable object is left as it was, a mutable one is
changed in place.

A row without dunders is another way Python reaches dunders of other rows (``hasattr``
reads an attribute); the proxy builds nothing from it, and the model checks it.

Unbound proxies
---------------
``unbound`` is what a dunder does when the lookup of the current object raises
RuntimeError: ``None`` means the RuntimeError propagates; otherwise it is a fallback
``fallback(proxy, wrapped, *args)``, where ``wrapped`` is what the proxy was built from.
The fallbacks copy what Werkzeug's proxy does, including what CPython makes of a failing
special-method lookup there (the ``_swallowed_*`` fallbacks): ``==`` falls back to
identity, ``hash()`` and ``iter()`` raise TypeError, ``await`` raises AttributeError. Where
an older release line did something else, ``legacy`` says so, by the last profile that did.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

#: What an unbound ``LocalProxy(local, name)`` raises, unless told otherwise.
UNBOUND_MESSAGE = "object is not bound"
#: The same, in the release lines up to and including profile 2.0.
LEGACY_UNBOUND_MESSAGE = "no object bound to {name}"

#: ``fallback(proxy, wrapped, *args)``: an unbound proxy's answer instead of RuntimeError.
Fallback = Callable[..., Any]


@dataclass(frozen=True)
class Op:
    """One operation a proxy forwards."""

    name: str  # stable short name
    clause: str  # the clause of spec/localproxy.md that a bound proxy obeys here
    dunders: tuple[str, ...]  # the proxy's dunders that implement it (none: see above)
    call: Callable[..., Any]  # how Python performs it on a subject: call(subject, *args)
    shows: str  # how it looks in Python, the proxy written p and arguments {0}, {1}
    takes: str = ""  # the kind of arguments after the subject (the model draws them)
    via: str = "call"  # how a dunder reaches the object: call, method, inplace, attribute
    unbound: Optional[Fallback] = None  # None: an unbound proxy raises RuntimeError
    unbound_clause: str = "proxy.unbound.raises"
    #: Older behaviour when unbound: (last profile, fallback, clause), oldest first.
    legacy: tuple[tuple[str, Optional[Fallback], str], ...] = ()
    #: The object may lack the protocol, and a proxy cannot tell: then TypeError and
    #: AttributeError both count as "not supported" (Python itself changed from one to
    #: the other for ``with`` in 3.11).
    loose: bool = False
    #: Objects for which the outcome is left unspecified (see the row).
    unspecified: Optional[Callable[[Any], bool]] = None

    def unbound_for(self, profile: Optional[str] = None) -> tuple[str, Optional[Fallback]]:
        """The clause and fallback of an unbound proxy in ``profile`` (default: newest)."""
        for last, fallback, clause in self.legacy:
            if profile is not None and _version(profile) <= _version(last):
                return clause, fallback
        return self.unbound_clause, self.unbound

    def __repr__(self) -> str:
        return f"<op {self.name}: {self.shows}>"


def unbound_message(name: str, profile: Optional[str] = None) -> str:
    """The text of the RuntimeError an unbound ``LocalProxy(local, name)`` raises."""
    if profile is not None and _version(profile) <= _version("2.0"):
        return LEGACY_UNBOUND_MESSAGE.format(name=name)
    return UNBOUND_MESSAGE


def _version(profile: str) -> tuple[int, ...]:
    return tuple(int(part) for part in profile.split("."))


# -- how Python performs the operations that are statements ------------------------------


class BodyError(Exception):
    """Raised inside a ``with`` body, to see what ``__exit__`` makes of it."""


#: What ``anext`` gives for an exhausted async iterator.
EXHAUSTED = "<exhausted>"


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that waits on no event loop, and return its result."""
    for _ in range(100):
        try:
            coroutine.send(None)
        except StopIteration as finished:
            return finished.value
    coroutine.close()
    raise TimeoutError("the awaitable kept suspending")


def enter(subject: Any, body_raises: bool) -> Any:
    """``with subject as value: ...``; the value, or None if __exit__ swallowed BodyError."""
    with subject as value:
        if body_raises:
            raise BodyError()
        return value
    return None  # __exit__ suppressed the BodyError


async def _async_enter(subject: Any, body_raises: bool) -> Any:
    async with subject as value:
        if body_raises:
            raise BodyError()
        return value
    return None


async def _await(subject: Any) -> Any:
    return await subject


async def _async_for(subject: Any) -> list[Any]:
    return [item async for item in subject]


class _Hands:
    """An async iterable whose iterator is the subject: ``async for`` over it calls the
    subject's ``__anext__`` through its type slot, as ``anext()`` does (Python >= 3.10)."""

    def __init__(self, subject: Any) -> None:
        self.subject = subject

    def __aiter__(self) -> Any:
        return self.subject


async def _anext(subject: Any) -> Any:
    async for item in _Hands(subject):
        return item
    return EXHAUSTED


def _reflected(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``other <op> subject``: the operation that reaches the subject's reflected dunder."""

    def reflected(subject: Any, other: Any) -> Any:
        return op(other, subject)

    reflected.__name__ = f"reflected_{op.__name__}"
    return reflected


def _call(subject: Any, *args: Any, **kwargs: Any) -> Any:
    return subject(*args, **kwargs)


# -- fallbacks of an unbound proxy --------------------------------------------------------


def _false(proxy: Any, wrapped: Any) -> bool:
    return False


def _unbound_repr(proxy: Any, wrapped: Any) -> str:
    return f"<{type(proxy).__name__} unbound>"


def _no_attributes(proxy: Any, wrapped: Any) -> list[str]:
    return []


def _proxy_class(proxy: Any, wrapped: Any) -> type:
    return type(proxy)


def _is_proxy_instance(proxy: Any, wrapped: Any, cls: Any) -> bool:
    return issubclass(type(proxy), cls)


def _proxy_doc(proxy: Any, wrapped: Any) -> Optional[str]:
    return type(proxy).__doc__


def _what_it_wraps(proxy: Any, wrapped: Any) -> Any:
    return wrapped


def _swallowed_compare(proxy: Any, wrapped: Any, other: Any) -> Any:
    # CPython treats a failing lookup of a comparison dunder as "not implemented": == and
    # != end at identity, ordering raises TypeError.
    return NotImplemented


def _swallowed_hash(proxy: Any, wrapped: Any) -> int:
    raise TypeError(f"unhashable type: {type(proxy).__name__!r}")


def _swallowed_iter(proxy: Any, wrapped: Any) -> Any:
    raise TypeError(f"{type(proxy).__name__!r} object is not iterable")


def _swallowed_async(dunder: str) -> Fallback:
    def fallback(proxy: Any, wrapped: Any) -> Any:
        raise AttributeError(f"object {type(proxy).__name__} does not have {dunder} method")

    return fallback


def _is_none(obj: Any) -> bool:
    return obj is None


def _is_class(obj: Any) -> bool:
    return isinstance(obj, type)


# -- the table ----------------------------------------------------------------------------


def _binary(name: str, clause: str, dunder: str, call: Callable[..., Any], shows: str) -> Op:
    return Op(name, clause, (dunder,), call, shows, takes="other")


_ARITHMETIC = (  # name, operator function, symbol (or builtin)
    ("add", operator.add, "+"),
    ("sub", operator.sub, "-"),
    ("mul", operator.mul, "*"),
    ("matmul", operator.matmul, "@"),
    ("truediv", operator.truediv, "/"),
    ("floordiv", operator.floordiv, "//"),
    ("mod", operator.mod, "%"),
    ("divmod", divmod, "divmod"),
    ("pow", pow, "**"),
    ("lshift", operator.lshift, "<<"),
    ("rshift", operator.rshift, ">>"),
    ("and", operator.and_, "&"),
    ("xor", operator.xor, "^"),
    ("or", operator.or_, "|"),
)

_INPLACE = (
    ("iadd", operator.iadd, "+="),
    ("isub", operator.isub, "-="),
    ("imul", operator.imul, "*="),
    ("imatmul", operator.imatmul, "@="),
    ("itruediv", operator.itruediv, "/="),
    ("ifloordiv", operator.ifloordiv, "//="),
    ("imod", operator.imod, "%="),
    ("ipow", operator.ipow, "**="),
    ("ilshift", operator.ilshift, "<<="),
    ("irshift", operator.irshift, ">>="),
    ("iand", operator.iand, "&="),
    ("ixor", operator.ixor, "^="),
    ("ior", operator.ior, "|="),
)


def _shows(symbol: str, left: str, right: str) -> str:
    return f"{symbol}({left}, {right})" if symbol.isalpha() else f"{left} {symbol} {right}"


def _rows() -> Iterable[Op]:
    # Attributes. The proxy's own attribute lookup serves these (via="attribute").
    yield Op(
        "getattr",
        "proxy.forward.getattr",
        ("__getattribute__",),
        getattr,
        "p.{0}",
        takes="name",
        via="attribute",
    )
    yield Op("hasattr", "proxy.forward.getattr", (), hasattr, "hasattr(p, {0})", takes="name")
    yield Op("vars", "proxy.forward.getattr", (), vars, "vars(p)")
    yield Op(
        "setattr",
        "proxy.forward.setattr",
        ("__setattr__",),
        setattr,
        "p.{0} = {1}",
        takes="name_value",
    )
    yield Op(
        "delattr", "proxy.forward.delattr", ("__delattr__",), delattr, "del p.{0}", takes="name"
    )
    yield Op(
        "dir",
        "proxy.forward.dir",
        ("__dir__",),
        dir,
        "dir(p)",
        unbound=_no_attributes,
        unbound_clause="proxy.unbound.dir",
    )
    yield Op(
        "class",
        "proxy.forward.class",
        ("__class__",),
        lambda s: s.__class__,
        "p.__class__",
        via="attribute",
        unbound=_proxy_class,
        unbound_clause="proxy.unbound.class",
    )
    yield Op(
        "isinstance",
        "proxy.forward.class",
        (),
        isinstance,
        "isinstance(p, {0})",
        takes="class",
        unbound=_is_proxy_instance,
        unbound_clause="proxy.unbound.class",
    )
    yield Op(
        "instancecheck",
        "proxy.forward.class",
        ("__instancecheck__",),
        lambda s, obj: isinstance(obj, s),
        "isinstance({0}, p)",
        takes="instance",
    )
    yield Op(
        "subclasscheck",
        "proxy.forward.class",
        ("__subclasscheck__",),
        lambda s, cls: issubclass(cls, s),
        "issubclass({0}, p)",
        takes="subclass",
    )
    yield Op(
        "doc",
        "proxy.forward.doc",
        ("__doc__",),
        lambda s: s.__doc__,
        "p.__doc__",
        via="attribute",
        unbound=_proxy_doc,
        unbound_clause="proxy.unbound.doc",
    )
    # Until 2.2, __wrapped__ was an ordinary forwarded attribute of a Local's proxy.
    yield Op(
        "wrapped",
        "proxy.forward.wrapped",
        ("__wrapped__",),
        lambda s: s.__wrapped__,
        "p.__wrapped__",
        via="attribute",
        unbound=_what_it_wraps,
        unbound_clause="proxy.unbound.wrapped",
        legacy=(("2.0", None, "proxy.unbound.wrapped-raises"),),
    )

    # Text.
    yield Op("str", "proxy.forward.str", ("__str__",), str, "str(p)")
    yield Op(
        "repr",
        "proxy.forward.repr",
        ("__repr__",),
        repr,
        "repr(p)",
        unbound=_unbound_repr,
        unbound_clause="proxy.unbound.repr",
    )
    # Werkzeug's proxy calls the object's own __format__ attribute; for a class that is
    # an unbound method (int.__format__), so format() of a proxy to a class is unspecified.
    yield Op(
        "format",
        "proxy.forward.format",
        ("__format__",),
        format,
        "format(p, {0})",
        takes="spec",
        unspecified=_is_class,
    )

    # Truth, size, iteration, membership, items.
    yield Op(
        "bool",
        "proxy.forward.bool",
        ("__bool__",),
        bool,
        "bool(p)",
        unbound=_false,
        unbound_clause="proxy.unbound.bool",
    )
    yield Op("len", "proxy.forward.len", ("__len__",), len, "len(p)")
    yield Op(
        "length_hint",
        "proxy.forward.len",
        ("__length_hint__",),
        operator.length_hint,
        "operator.length_hint(p)",
    )
    yield Op(
        "iter",
        "proxy.forward.iter",
        ("__iter__",),
        iter,
        "iter(p)",
        unbound=_swallowed_iter,
        unbound_clause="proxy.unbound.iter",
    )
    yield Op("reversed", "proxy.forward.iter", ("__reversed__",), reversed, "reversed(p)")
    yield Op("next", "proxy.forward.iter", ("__next__",), next, "next(p)")
    yield Op(
        "contains",
        "proxy.forward.contains",
        ("__contains__",),
        lambda s, item: item in s,
        "{0} in p",
        takes="item",
    )
    yield Op(
        "getitem", "proxy.forward.items", ("__getitem__",), operator.getitem, "p[{0}]", takes="key"
    )
    yield Op(
        "setitem",
        "proxy.forward.items",
        ("__setitem__",),
        operator.setitem,
        "p[{0}] = {1}",
        takes="key_value",
    )
    yield Op(
        "delitem",
        "proxy.forward.items",
        ("__delitem__",),
        operator.delitem,
        "del p[{0}]",
        takes="key",
    )

    # Comparison and hashing.
    for name, symbol in (
        ("lt", "<"),
        ("le", "<="),
        ("eq", "=="),
        ("ne", "!="),
        ("gt", ">"),
        ("ge", ">="),
    ):
        yield Op(
            name,
            "proxy.forward.compare",
            (f"__{name}__",),
            getattr(operator, name),
            f"p {symbol} {{0}}",
            takes="other",
            unbound=_swallowed_compare,
            unbound_clause="proxy.unbound.compare",
        )
    yield Op(
        "hash",
        "proxy.forward.hash",
        ("__hash__",),
        hash,
        "hash(p)",
        unbound=_swallowed_hash,
        unbound_clause="proxy.unbound.hash",
    )

    # Numbers: binary, reflected, in-place, unary, conversions.
    for name, function, symbol in _ARITHMETIC:
        yield _binary(
            name, "proxy.forward.arithmetic", f"__{name}__", function, _shows(symbol, "p", "{0}")
        )
    yield Op("pow3", "proxy.forward.arithmetic", (), pow, "pow(p, {0}, {1})", takes="pow3")
    for name, function, symbol in _ARITHMETIC:
        row = _binary(
            f"r{name}",
            "proxy.forward.reflected",
            f"__r{name}__",
            _reflected(function),
            _shows(symbol, "{0}", "p"),
        )
        if name == "mod":  # str % p and bytes % p format, never asking p for __rmod__
            row = replace(row, takes="other-not-text")
        yield row
    for name, function, symbol in _INPLACE:
        yield Op(
            name,
            "proxy.forward.inplace",
            (f"__{name}__",),
            function,
            f"p {symbol} {{0}}",
            takes="other",
            via="inplace",
        )
    yield Op("neg", "proxy.forward.unary", ("__neg__",), operator.neg, "-p")
    yield Op("pos", "proxy.forward.unary", ("__pos__",), operator.pos, "+p")
    yield Op("abs", "proxy.forward.unary", ("__abs__",), abs, "abs(p)")
    yield Op("invert", "proxy.forward.unary", ("__invert__",), operator.invert, "~p")
    conversions: tuple[tuple[str, Callable[..., Any], str], ...] = (
        ("int", int, "int(p)"),
        ("float", float, "float(p)"),
        ("complex", complex, "complex(p)"),
        ("index", operator.index, "operator.index(p)"),
        ("trunc", math.trunc, "math.trunc(p)"),
        ("floor", math.floor, "math.floor(p)"),
        ("ceil", math.ceil, "math.ceil(p)"),
        ("bytes", bytes, "bytes(p)"),
    )
    for name, function, shows in conversions:
        yield Op(name, "proxy.forward.convert", (f"__{name}__",), function, shows)
    yield Op(
        "round", "proxy.forward.convert", ("__round__",), round, "round(p{0})", takes="ndigits"
    )

    # Calling, context managers, coroutines, async iteration.
    yield Op("call", "proxy.forward.call", ("__call__",), _call, "p({0})", takes="call")
    yield Op(
        "with",
        "proxy.forward.with",
        ("__enter__", "__exit__"),
        enter,
        "with p: {0}",
        takes="body_raises",
        via="method",
        loose=True,
    )
    yield Op(
        "async-with",
        "proxy.forward.with",
        ("__aenter__", "__aexit__"),
        lambda s, body_raises: run(_async_enter(s, body_raises)),
        "async with p: {0}",
        takes="body_raises",
        via="method",
        loose=True,
    )
    yield Op(
        "await",
        "proxy.forward.await",
        ("__await__",),
        lambda s: run(_await(s)),
        "await p",
        via="method",
        loose=True,
        unbound=_swallowed_async("__await__"),
        unbound_clause="proxy.unbound.await",
    )
    yield Op(
        "async-for",
        "proxy.forward.async-iter",
        ("__aiter__",),
        lambda s: run(_async_for(s)),
        "[x async for x in p]",
        via="method",
        loose=True,
        unbound=_swallowed_async("__aiter__"),
        unbound_clause="proxy.unbound.await",
    )
    yield Op(
        "anext",
        "proxy.forward.async-iter",
        ("__anext__",),
        lambda s: run(_anext(s)),
        "await anext(p)",
        via="method",
        loose=True,
        unbound=_swallowed_async("__anext__"),
        unbound_clause="proxy.unbound.await",
    )

    # Copies: of the object, never of the proxy. Werkzeug's proxy cannot copy None (it
    # binds copy.copy to the object, and binding to None gives the plain function), so a
    # proxy bound to None is left unspecified.
    yield Op(
        "copy", "proxy.forward.copy", ("__copy__",), copy.copy, "copy.copy(p)", unspecified=_is_none
    )
    yield Op(
        "deepcopy",
        "proxy.forward.copy",
        ("__deepcopy__",),
        copy.deepcopy,
        "copy.deepcopy(p)",
        unspecified=_is_none,
    )


#: Every row, in the order of spec/localproxy.md.
FORWARDS: tuple[Op, ...] = tuple(_rows())
BY_NAME: dict[str, Op] = {op.name: op for op in FORWARDS}

#: What a proxy deliberately does not forward, and why.
NOT_FORWARDED: dict[str, str] = {
    "type(p)": "type() is not an operation of the object: it is the proxy's class, so "
    "issubclass(type(p), LocalProxy) tells a proxy from its object",
    "callable(p)": "a proxy has __call__, so callable(p) is always True",
    "__get__, __set__, __delete__, __set_name__": "a proxy is not a descriptor",
    "__init_subclass__, __class_getitem__, __prepare__": "proxying a class's creation is "
    "not supported",
    "__reduce__, __reduce_ex__, __getstate__, __setstate__, __getnewargs__": "pickling "
    "through a proxy is not supported: pickle the object",
    "__slots__, __module__, and other names the proxy's class defines": "these belong to the proxy",
}

assert len(BY_NAME) == len(FORWARDS), "row names must be unique"
assert len({d for op in FORWARDS for d in op.dunders}) == sum(len(op.dunders) for op in FORWARDS), (
    "each dunder belongs to one row"
)
