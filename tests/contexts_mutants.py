"""Deliberately broken context machinery: each must be caught by the clause it breaks.

Reference mutants run on a private copy of ``reference.contexts`` (its own stacks), with
one piece replaced. Flask mutants patch real Flask while their test runs."""

from __future__ import annotations

import importlib.util
import threading
import types
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import reference.contexts
from conformance.adapters.reference import ReferenceAdapter


def fresh_contexts_module() -> types.ModuleType:
    """A separate instance of reference/contexts.py: same code, stacks of its own."""
    path = reference.contexts.__file__
    spec = importlib.util.spec_from_file_location("reference.ctxspec_mutant_contexts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ContextsMutantAdapter(ReferenceAdapter):
    """The reference, with its contexts module broken by ``breaks``."""

    capabilities = frozenset({"contexts"})

    def __init__(self, name: str, breaks: Callable[[types.ModuleType], None]) -> None:
        self.name = f"mutant-{name}"
        self.module = fresh_contexts_module()
        breaks(self.module)

    def new_app(self, name: str) -> Any:
        return self.module.App(name, secret_key="ctxspec")

    def context_api(self) -> Any:
        return self.module


# -- the breaks ---------------------------------------------------------------------------------


def always_brings_app_context(m: types.ModuleType) -> None:
    m.needs_app_context = lambda active_app, app: True


def pop_forgets_to_pop(m: types.ModuleType) -> None:
    def pop(self: Any) -> None:
        m._check_top(m._app_contexts.top, self, "app")

    m.AppContext.pop = pop


def pop_never_checks(m: types.ModuleType) -> None:
    m._check_top = lambda top, ctx, kind: None


def stacks_shared_by_everyone(m: types.ModuleType) -> None:
    """One plain list per stack, for every thread and greenlet (no context-locality)."""

    class SharedStack:
        def __init__(self) -> None:
            self.items: list[Any] = []

        def push(self, obj: Any) -> None:
            self.items.append(obj)

        def pop(self) -> Any:
            return self.items.pop() if self.items else None

        @property
        def top(self) -> Any:
            return self.items[-1] if self.items else None

    m._app_contexts = SharedStack()
    m._request_contexts = SharedStack()


def stacks_per_thread(m: types.ModuleType) -> None:
    """Stacks in a threading.local: shared between the greenlets of a thread."""
    store = threading.local()

    class ThreadStack:
        def _items(self) -> list[Any]:
            if not hasattr(store, self.key):
                setattr(store, self.key, [])
            items: list[Any] = getattr(store, self.key)
            return items

        def __init__(self, key: str) -> None:
            self.key = key

        def push(self, obj: Any) -> None:
            self._items().append(obj)

        def pop(self) -> Any:
            items = self._items()
            return items.pop() if items else None

        @property
        def top(self) -> Any:
            items = self._items()
            return items[-1] if items else None

    m._app_contexts = ThreadStack("app")
    m._request_contexts = ThreadStack("request")


def g_kept_on_the_app(m: types.ModuleType) -> None:
    """Every app context of an app shares one g."""
    original = m.AppContext.__init__
    shared: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def __init__(self: Any, app: Any) -> None:
        original(self, app)
        self.g = shared.setdefault(app, m.AppGlobals())

    m.AppContext.__init__ = __init__


def session_on_the_app(m: types.ModuleType) -> None:
    """Every request of an app shares one session."""
    original = m.RequestContext.__init__
    shared: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def __init__(self: Any, app: Any, request: Any, session: Any = None) -> None:
        original(self, app, request, session)
        self.session = shared.setdefault(app, self.session)

    m.RequestContext.__init__ = __init__


def copy_makes_new_session(m: types.ModuleType) -> None:
    def copy(self: Any) -> Any:
        return m.RequestContext(self.app, self.request)

    m.RequestContext.copy = copy


def copy_makes_new_request(m: types.ModuleType) -> None:
    """The copy gets a new request built from the same URL: equal, not the same object."""

    def copy(self: Any) -> Any:
        query = self.request.environ["QUERY_STRING"]
        url = self.request.path + (f"?{query}" if query else "")
        return m.RequestContext(self.app, m.Request(url), self.session)

    m.RequestContext.copy = copy


def copy_copies_session_contents(m: types.ModuleType) -> None:
    """The copy gets a session with the same contents, not the same session."""

    def copy(self: Any) -> Any:
        return m.RequestContext(self.app, self.request, m.Session(self.session))

    m.RequestContext.copy = copy


def _copying(m: types.ModuleType, run: Callable[[Any, Any, Callable[[], Any]], Any]) -> None:
    """copy_current_request_context whose wrapper calls ``run(copied, app_ctx, call)``:
    ``copied`` the copy of the active request context, ``app_ctx`` the app context active
    when it was made, ``call`` the function itself."""

    def copy_current_request_context(f: Any) -> Any:
        top = m._request_contexts.top
        if top is None:
            raise RuntimeError(m.COPY_OUTSIDE_MESSAGE)
        copied, app_ctx = top.copy(), m._app_contexts.top

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run(copied, app_ctx, lambda: f(*args, **kwargs))

        return wrapper

    m.copy_current_request_context = copy_current_request_context


def copy_carries_g(m: types.ModuleType) -> None:
    """The copy pushes the app context that was active where it was made: its g travels
    to other threads and greenlets."""

    def run(copied: Any, app_ctx: Any, call: Callable[[], Any]) -> Any:
        with app_ctx, copied:
            return call()

    _copying(m, run)


def copy_brings_no_app_context(m: types.ModuleType) -> None:
    """The copy pushes only the request context: elsewhere there is no app context."""

    def run(copied: Any, app_ctx: Any, call: Callable[[], Any]) -> Any:
        m._request_contexts.push(copied)
        try:
            return call()
        finally:
            m._request_contexts.pop()

    _copying(m, run)


def copy_always_brings_app_context(m: types.ModuleType) -> None:
    """The copy pushes a new app context even where one of its app is active."""

    def run(copied: Any, app_ctx: Any, call: Callable[[], Any]) -> Any:
        with copied.app.app_context(), copied:
            return call()

    _copying(m, run)


def copy_keeps_its_app_context(m: types.ModuleType) -> None:
    """The app context a call brings is kept for the next calls, with its g."""
    kept: dict[int, Any] = {}

    def run(copied: Any, app_ctx: Any, call: Callable[[], Any]) -> Any:
        active = m._app_contexts.top
        if not m.needs_app_context(active.app if active else None, copied.app):
            with copied:
                return call()
        own = kept.setdefault(id(copied), copied.app.app_context())
        with own, copied:
            return call()

    _copying(m, run)


def copy_binds_late(m: types.ModuleType) -> None:
    """The wrapper copies the request context active when it is called, not when made."""
    original = m.copy_current_request_context

    def copy_current_request_context(f: Any) -> Any:
        original(f)  # raises outside a request context, as it must

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            top = m._request_contexts.top
            if top is None:
                raise RuntimeError(m.COPY_OUTSIDE_MESSAGE)
            with top.copy():
                return f(*args, **kwargs)

        return wrapper

    m.copy_current_request_context = copy_current_request_context


def copy_outside_is_silent(m: types.ModuleType) -> None:
    original = m.copy_current_request_context

    def copy_current_request_context(f: Any) -> Any:
        if m._request_contexts.top is None:
            return f
        return original(f)

    m.copy_current_request_context = copy_current_request_context


def outside_gives_none(m: types.ModuleType) -> None:
    """current_app and g are None outside an app context, instead of raising."""

    def lookup(attribute: str) -> Callable[[], Any]:
        def find() -> Any:
            top = m._app_contexts.top
            return None if top is None else (top.app if attribute == "app" else top.g)

        return find

    m.current_app = m.LocalProxy(lookup("app"))
    m.g = m.LocalProxy(lookup("g"))


def current_app_is_the_first(m: types.ModuleType) -> None:
    """current_app is the app of the first app context pushed, not the latest."""

    def find() -> Any:
        items = m._app_contexts._ctxspec_items.get(())
        if not items:
            raise RuntimeError(m.OUTSIDE_MESSAGES["app"])
        return items[0].app

    m.current_app = m.LocalProxy(find)


def outside_request_gives_none(m: types.ModuleType) -> None:
    """request and session are None outside a request context, instead of raising."""

    def lookup(attribute: str) -> Callable[[], Any]:
        def find() -> Any:
            top = m._request_contexts.top
            return None if top is None else getattr(top, attribute)

        return find

    m.request = m.LocalProxy(lookup("request"))
    m.session = m.LocalProxy(lookup("session"))


def request_is_the_first(m: types.ModuleType) -> None:
    """request is the first request context pushed, not the latest."""

    def find() -> Any:
        items = m._request_contexts._ctxspec_items.get(())
        if not items:
            raise RuntimeError(m.OUTSIDE_MESSAGES["request"])
        return items[0].request

    m.request = m.LocalProxy(find)


@dataclass(frozen=True)
class ContextsMutant:
    name: str
    breaks: Callable[[types.ModuleType], None]
    catches: str  # the clause it must fail
    passes: str  # an unrelated clause it must still pass

    def adapter(self) -> ContextsMutantAdapter:
        return ContextsMutantAdapter(self.name, self.breaks)

    def __str__(self) -> str:
        return self.name


MUTANTS = [
    ContextsMutant(
        "first-app", current_app_is_the_first, "contexts.app.current", "contexts.request.current"
    ),
    ContextsMutant(
        "outside-request-none",
        outside_request_gives_none,
        "contexts.outside.request",
        "contexts.outside.app",
    ),
    ContextsMutant(
        "fresh-app-context",
        always_brings_app_context,
        "contexts.request.implicit-app",
        "contexts.outside.app",
    ),
    ContextsMutant(
        "pop-stays", pop_forgets_to_pop, "contexts.pop.restores", "contexts.copy.outside"
    ),
    ContextsMutant("pop-unchecked", pop_never_checks, "contexts.pop.wrong", "contexts.app.current"),
    ContextsMutant(
        "shared-stacks",
        stacks_shared_by_everyone,
        "contexts.isolation.thread",
        "contexts.app.current",
    ),
    ContextsMutant(
        "thread-local-stacks",
        stacks_per_thread,
        "contexts.isolation.greenlet",
        "contexts.isolation.thread",
    ),
    ContextsMutant("g-on-app", g_kept_on_the_app, "contexts.g.app-context", "contexts.outside.app"),
    ContextsMutant(
        "session-on-app",
        session_on_the_app,
        "contexts.session.request",
        "contexts.app.current",
    ),
    ContextsMutant(
        "copy-new-session",
        copy_makes_new_session,
        "contexts.copy.request",
        "contexts.session.request",
    ),
    ContextsMutant(
        "copy-new-request",
        copy_makes_new_request,
        "contexts.copy.request",
        "contexts.request.current",
    ),
    ContextsMutant(
        "copy-session-contents",
        copy_copies_session_contents,
        "contexts.copy.request",
        "contexts.session.request",
    ),
    ContextsMutant(
        "copy-carries-g", copy_carries_g, "contexts.copy.request", "contexts.g.app-context"
    ),
    ContextsMutant(
        "copy-no-app-context",
        copy_brings_no_app_context,
        "contexts.copy.request",
        "contexts.request.implicit-app",
    ),
    ContextsMutant(
        "copy-fresh-app-context",
        copy_always_brings_app_context,
        "contexts.copy.request",
        "contexts.request.implicit-app",
    ),
    ContextsMutant(
        "copy-keeps-app-context",
        copy_keeps_its_app_context,
        "contexts.copy.later",
        "contexts.copy.outside",
    ),
    ContextsMutant(
        "copy-binds-late", copy_binds_late, "contexts.copy.later", "contexts.copy.outside"
    ),
    ContextsMutant(
        "copy-outside-silent",
        copy_outside_is_silent,
        "contexts.copy.outside",
        "contexts.copy.request",
    ),
    ContextsMutant(
        "outside-none", outside_gives_none, "contexts.outside.app", "contexts.outside.request"
    ),
    ContextsMutant(
        "first-request", request_is_the_first, "contexts.request.current", "contexts.app.current"
    ),
]
