"""A tiny Flask: applications, their app and request contexts, and the globals that find
them (``current_app``, ``g``, ``request``, ``session``), as specified in spec/contexts.md.

Each context lives on a LocalStack, so every thread, greenlet and task has its own stacks;
each global is a LocalProxy that looks at the top of one of them. A request context
brings its app context along only when the active one is of another app (or there is
none): that rule is ``needs_app_context`` below, which the conformance model uses too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import parse_qsl

from .local import LocalStack
from .proxy import LocalProxy

F = TypeVar("F", bound=Callable[..., Any])

#: The first line of the RuntimeError each global raises outside its context.
OUTSIDE_MESSAGES = {
    "app": "Working outside of application context.",
    "request": "Working outside of request context.",
}
#: Which context each global needs.
NEEDS = {"current_app": "app", "g": "app", "request": "request", "session": "request"}
COPY_OUTSIDE_MESSAGE = (
    "'copy_current_request_context' can only be used when a request context is active,"
    " such as in a view function."
)
#: The start of the AssertionError for popping a context that is not the active one.
WRONG_POP_MESSAGES = {
    "app": "Popped wrong app context.",
    "request": "Popped wrong request context.",
}

_app_contexts: LocalStack[AppContext] = LocalStack()
_request_contexts: LocalStack[RequestContext] = LocalStack()


def needs_app_context(active_app: Optional[object], app: object) -> bool:
    """Does pushing a request context of ``app`` also push an app context, when
    ``active_app`` is the app of the active app context (None: there is none)?"""
    return active_app is None or active_app != app


class App:
    """An application: a name and a secret key are all contexts need of it."""

    def __init__(self, name: str, secret_key: Optional[str] = None) -> None:
        self.name = name
        self.secret_key = secret_key

    def app_context(self) -> AppContext:
        return AppContext(self)

    def test_request_context(self, path: str = "/") -> RequestContext:
        """A request context for a GET of ``path`` (which may carry a query string)."""
        return RequestContext(self, Request(path))

    # What pushing and popping contexts tells the app. Here, nothing happens; the
    # lifecycle's app (reference/lifecycle.py) sends signals and runs teardown functions.
    def app_context_pushed(self) -> None:
        """Just after an app context of this app was pushed."""

    def do_teardown_appcontext(self, exc: Optional[BaseException]) -> None:
        """Just before an app context of this app is popped."""

    def app_context_popped(self) -> None:
        """Just after an app context of this app was popped."""

    def do_teardown_request(self, exc: Optional[BaseException]) -> None:
        """Just before a request context of this app is popped."""

    def __repr__(self) -> str:
        return f"<App {self.name!r}>"


class Request:
    """The parts of a request contexts care about: its path and query arguments, and the
    WSGI-style ``environ`` they come from (a copied context shares it, spec:
    contexts.copy.request)."""

    def __init__(self, url: str) -> None:
        path, _, query = url.partition("?")
        self.path = path or "/"
        self.args = dict(parse_qsl(query))
        self.method = "GET"
        self.environ = {"REQUEST_METHOD": "GET", "PATH_INFO": self.path, "QUERY_STRING": query}


class Session(dict):  # type: ignore[type-arg,unused-ignore]
    """A request's session: a dict that notes whether it was changed."""

    modified = False
    new = True

    def __setitem__(self, key: Any, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self.modified = True
        super().__delitem__(key)


class NullSession(Session):
    """The session of an app without a secret key: readable, never writable."""

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("The session is unavailable because no secret key was set.")

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail  # type: ignore[assignment,unused-ignore]


class AppGlobals:
    """``g``: a namespace for the app context's data."""

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def pop(self, name: str, *default: Any) -> Any:
        return self.__dict__.pop(name, *default)

    def setdefault(self, name: str, default: Any = None) -> Any:
        return self.__dict__.setdefault(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __repr__(self) -> str:
        return f"<g of {current_app.name!r}>" if has_app_context() else object.__repr__(self)


class AppContext:
    """An app context: the app, and a fresh ``g`` for as long as the context lasts."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.g = AppGlobals()
        self._pushes = 0  # how many times this context is pushed now (it may be nested)

    def push(self) -> None:
        _app_contexts.push(self)
        self._pushes += 1
        self.app.app_context_pushed()

    def pop(self, exc: Optional[BaseException] = None) -> None:
        """Pop this context, which must be the active one; if it is not, raise
        AssertionError and change nothing. ``exc`` is the error that ends it, if any. Its
        teardown runs when its last push is popped."""
        _check_top(_app_contexts.top, self, "app")
        try:
            if self._pushes == 1:
                self.app.do_teardown_appcontext(exc)
        finally:  # a teardown function that raises still leaves the context popped
            _app_contexts.pop()
            self._pushes -= 1
        self.app.app_context_popped()

    def __enter__(self) -> AppContext:
        self.push()
        return self

    def __exit__(self, kind: object, exc: Optional[BaseException], tb: object) -> None:
        self.pop(exc)


class RequestContext:
    """A request context: the request, its session, and (while pushed) the app context
    it brought along, if it had to."""

    def __init__(self, app: App, request: Request, session: Optional[Session] = None) -> None:
        self.app = app
        self.request = request
        if session is None:
            session = Session() if app.secret_key else NullSession()
        self.session = session
        # One entry per push of this context: the app context that push brought along.
        self._brought: list[Optional[AppContext]] = []
        # Functions registered by after_this_request (reference/lifecycle.py).
        self.after_this_request: list[Callable[[Any], Any]] = []

    def push(self) -> None:
        active = _app_contexts.top
        brought = None
        if needs_app_context(active.app if active else None, self.app):
            brought = self.app.app_context()
            brought.push()
        self._brought.append(brought)
        _request_contexts.push(self)

    def pop(self, exc: Optional[BaseException] = None) -> None:
        """Pop this context and the app context it brought along. It must be the active
        one; if it is not, raise AssertionError and change nothing. ``exc`` is the error
        that ends the request, if any: teardown functions receive it. A context pushed
        more than once (``stream_with_context`` does that) is torn down when its last
        push is popped."""
        _check_top(_request_contexts.top, self, "request")
        try:
            if len(self._brought) == 1:  # teardown when the last push is popped
                self.app.do_teardown_request(exc)
        finally:  # a teardown function that raises still leaves the context popped
            _request_contexts.pop()
            brought = self._brought.pop()
            if brought is not None:
                brought.pop(exc)

    def copy(self) -> RequestContext:
        """A new context for the same request and session objects, to push somewhere else:
        it finds its app context when pushed, like any request context, so it never carries
        this one's ``g`` (spec: contexts.copy.request)."""
        return RequestContext(self.app, self.request, self.session)

    def __enter__(self) -> RequestContext:
        self.push()
        return self

    def __exit__(self, kind: object, exc: Optional[BaseException], tb: object) -> None:
        self.pop(exc)


def _check_top(top: object, ctx: object, kind: str) -> None:
    if top is not ctx:
        raise AssertionError(f"{WRONG_POP_MESSAGES[kind]} ({top!r} instead of {ctx!r})")


def _active_app_context() -> AppContext:
    top = _app_contexts.top
    if top is None:
        raise RuntimeError(OUTSIDE_MESSAGES["app"])
    return top


def _active_request_context() -> RequestContext:
    top = _request_contexts.top
    if top is None:
        raise RuntimeError(OUTSIDE_MESSAGES["request"])
    return top


current_app: Any = LocalProxy(lambda: _active_app_context().app)
g: Any = LocalProxy(lambda: _active_app_context().g)
request: Any = LocalProxy(lambda: _active_request_context().request)
session: Any = LocalProxy(lambda: _active_request_context().session)


def has_app_context() -> bool:
    return _app_contexts.top is not None


def has_request_context() -> bool:
    return _request_contexts.top is not None


def copy_current_request_context(f: F) -> F:
    """``f``, made to run inside a copy of the active request context wherever it is
    called: same request, same session; the app context is found as on any push."""
    top = _request_contexts.top
    if top is None:
        raise RuntimeError(COPY_OUTSIDE_MESSAGE)
    ctx = top.copy()

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with ctx:
            return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
