"""LocalProxy: a stand-in for "the current object", as specified in spec/localproxy.md.

A proxy holds no object. It holds a *lookup*: a zero-argument function that returns the
current object, or raises RuntimeError when there is none (the proxy is *unbound*). Every
operation on the proxy runs the lookup again and forwards the operation to what it
returns (spec: proxy.lookup.every-access), so one module-level proxy serves every thread,
greenlet and task, each seeing its own object.

Which operations are forwarded, and how, is not written out here: it is the table in
``reference/forwarding.py``, and the dunders below are built from it. What this file
writes by hand is the one operation too hot for a table: reading an attribute.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .forwarding import FORWARDS, UNBOUND_MESSAGE, Op
from .local import _EMPTY, _LOCAL_OWN_NAMES, Local, _local_storage

Lookup = Callable[[], Any]


class LocalProxy:
    """A proxy to the object bound to a context-local name. Every operation on the proxy
    is forwarded to that object, looked up anew each time. If no object is bound, most
    operations raise ``RuntimeError``.

    ``LocalProxy(local, name)`` proxies ``local.<name>``; it is unbound while the
    attribute is not set. ``LocalProxy(function)`` proxies ``function()``; it is unbound
    while the function raises ``RuntimeError``. ``unbound_message`` replaces the text of
    the RuntimeError of an unbound ``LocalProxy(local, name)``.

    ``type(p)`` is the proxy's class, but ``p.__class__`` is the object's, so
    ``isinstance(p, cls)`` sees the object. Use ``issubclass(type(p), LocalProxy)`` to tell
    a proxy from its object, and ``p._get_current_object()`` to get the object itself.
    """

    __slots__ = ("_ctxspec_lookup", "_ctxspec_wrapped")

    def __init__(
        self, local: Any, name: Optional[str] = None, *, unbound_message: Optional[str] = None
    ) -> None:
        message = UNBOUND_MESSAGE if unbound_message is None else unbound_message
        if name is not None:
            lookup = _attribute_lookup(local, name, message)
        elif isinstance(local, Local):
            raise TypeError("'name' is required when proxying a 'Local' object.")
        elif callable(local):
            lookup = local  # its RuntimeError is the proxy's "unbound"
        else:
            raise TypeError(f"Don't know how to proxy {type(local)!r}.")
        # Our own __setattr__ forwards; the slots are set through their descriptors.
        _set_lookup(self, lookup)
        _set_wrapped(self, local)

    # An override of __getattribute__ rather than a __getattr__ fallback: __getattr__ runs
    # only after the normal lookup on the proxy has failed and raised AttributeError, which
    # more than doubles the cost of every proxied attribute read.
    def __getattribute__(self, name: str) -> Any:
        if name in _OWN_NAMES:  # the proxy's own methods: _get_current_object, dunders
            return _object_getattribute(self, name)
        try:
            obj = _lookup_of(self)()
        except RuntimeError:
            fallback = _UNBOUND_ATTRIBUTES.get(name)
            if fallback is None:
                raise
            return fallback(self, _wrapped_of(self))
        return getattr(obj, name)

    def _get_current_object(self) -> Any:
        """The object the proxy stands for now; RuntimeError if unbound. Pass this, not
        the proxy, to code that checks exact types (``json``, ``str.join``) or that uses
        the object many times."""
        return _lookup_of(self)()


_lookup_of = LocalProxy._ctxspec_lookup.__get__  # type: ignore[attr-defined]
_set_lookup = LocalProxy._ctxspec_lookup.__set__  # type: ignore[attr-defined]
_wrapped_of = LocalProxy._ctxspec_wrapped.__get__  # type: ignore[attr-defined]
_set_wrapped = LocalProxy._ctxspec_wrapped.__set__  # type: ignore[attr-defined]
_object_getattribute = object.__getattribute__


def _attribute_lookup(local: Any, name: str, message: str) -> Lookup:
    """The lookup of ``local.<name>``: AttributeError there is "unbound" here."""
    if type(local) is Local and name not in _LOCAL_OWN_NAMES:
        # A reference Local: read its ContextVar directly. Same answer as getattr(local,
        # name), without a second Python-level __getattribute__ on every operation.
        storage = _local_storage(local)

        def lookup() -> Any:
            try:
                return storage.get(_EMPTY)[name]
            except KeyError:
                raise RuntimeError(message) from None

        return lookup

    def lookup_attribute() -> Any:
        try:
            return getattr(local, name)
        except AttributeError:
            raise RuntimeError(message) from None

    return lookup_attribute


# -- the dunders, built from the forwarding table ----------------------------------------


def _forwarder(op: Op, dunder: str) -> Callable[..., Any]:
    """The proxy's ``dunder``: find the current object, then do ``op`` to it."""
    fallback = op.unbound
    call = op.call

    if op.via == "call":  # redo the operation on the object: len(p) is len(obj)

        def forward(self: LocalProxy, *args: Any, **kwargs: Any) -> Any:
            try:
                obj = _lookup_of(self)()
            except RuntimeError:
                if fallback is None:
                    raise
                return fallback(self, _wrapped_of(self), *args)
            return call(obj, *args, **kwargs)

    elif op.via == "method":  # call the object's own method: __enter__, __await__, ...

        def forward(self: LocalProxy, *args: Any, **kwargs: Any) -> Any:
            try:
                obj = _lookup_of(self)()
            except RuntimeError:
                if fallback is None:
                    raise
                return fallback(self, _wrapped_of(self), *args)
            return getattr(obj, dunder)(*args, **kwargs)

    elif op.via == "inplace":  # p += x: update the object if it can, keep the proxy

        def forward(self: LocalProxy, *args: Any, **kwargs: Any) -> Any:
            call(_lookup_of(self)(), *args)
            return self

    else:
        raise ValueError(f"{op.name}: a proxy cannot build a dunder via {op.via!r}")
    forward.__name__ = dunder
    forward.__qualname__ = f"LocalProxy.{dunder}"
    forward.__doc__ = f"Forward ``{op.shows}`` (spec: {op.clause})."
    return forward


for _op in FORWARDS:
    if _op.via != "attribute":
        for _dunder in _op.dunders:
            setattr(LocalProxy, _dunder, _forwarder(_op, _dunder))

#: What an unbound proxy answers for the attributes that have a fallback (__class__,
#: __doc__, __wrapped__); reading any other attribute raises RuntimeError.
_UNBOUND_ATTRIBUTES = {
    dunder: op.unbound
    for op in FORWARDS
    if op.via == "attribute" and op.unbound is not None
    for dunder in op.dunders
}

#: Names the proxy answers itself instead of forwarding: what its class defines, as in
#: Werkzeug (``p.__module__`` is the proxy's module; ``p.__len__`` the proxy's method,
#: which forwards when called). __class__ and __doc__ are forwarded.
_OWN_NAMES = frozenset(dir(LocalProxy)) - {"__class__", "__doc__"}

del _op, _dunder
