"""A tiny Flask's request lifecycle: hooks, error handlers and signals around a view, in
the order spec/lifecycle.md gives.

The order is data: ``HOOK_ORDER`` says, for each kind of hook, whose functions run first
and in which order they were registered; ``SIGNALS`` names the signals and what each
carries. The dispatcher below reads both, and so do the spec's examples.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, Optional, Union

from . import contexts
from .contexts import (
    _active_request_context,
    current_app,
    g,
    has_app_context,
    has_request_context,
    request,
    session,
)

__all__ = [
    "App",
    "Blueprint",
    "Response",
    "abort",
    "after_this_request",
    "flash",
    "g",
    "has_app_context",
    "has_request_context",
    "render_template_string",
    "request",
    "session",
    "signals",
    "stream_with_context",
]

Hook = Callable[..., Any]
ErrorKey = Union[int, type]

# -- the order, as data ---------------------------------------------------------------------

#: For each kind of hook: whose functions run first ("app": the app, then the request's
#: blueprints from the outermost in; "blueprint": the innermost blueprint out to the app),
#: and whether each scope's functions run in registration order or reversed.
HOOK_ORDER: Mapping[str, tuple[str, bool]] = {
    "url_value_preprocessor": ("app", False),
    "before_request": ("app", False),
    "context_processor": ("app", False),
    "after_request": ("blueprint", True),
    "teardown_request": ("blueprint", True),
    "teardown_appcontext": ("app", True),
}

#: The signals, each with the keyword argument it carries (None: only the sender).
SIGNALS: Mapping[str, Optional[str]] = {
    "appcontext_pushed": None,
    "request_started": None,
    "before_render_template": "context",
    "template_rendered": "context",
    "message_flashed": "message",
    "got_request_exception": "exception",
    "request_finished": "response",
    "request_tearing_down": "exc",
    "appcontext_tearing_down": "exc",
    "appcontext_popped": None,
}


# -- signals --------------------------------------------------------------------------------


class Signal:
    """A named signal: receivers connected for one sender (or all) get every send."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._receivers: list[tuple[Callable[..., Any], Optional[object]]] = []

    def connect(
        self, receiver: Callable[..., Any], sender: Optional[object] = None, **_: Any
    ) -> Any:
        self._receivers.append((receiver, sender))
        return receiver

    def disconnect(self, receiver: Callable[..., Any], sender: Optional[object] = None) -> None:
        self._receivers = [(r, s) for r, s in self._receivers if (r, s) != (receiver, sender)]

    def send(self, sender: object, **kwargs: Any) -> None:
        for receiver, wanted in list(self._receivers):
            if wanted is None or wanted is sender:
                receiver(sender, **kwargs)


class _Signals:
    def __init__(self, names: Iterable[str]) -> None:
        for name in names:
            setattr(self, name, Signal(name))


signals: Any = _Signals(SIGNALS)


# -- HTTP errors ----------------------------------------------------------------------------


class HTTPException(Exception):
    code = 500
    name = "Internal Server Error"

    def __init__(self, original_exception: Optional[BaseException] = None) -> None:
        super().__init__(self.name)
        self.original_exception = original_exception


class Forbidden(HTTPException):
    code, name = 403, "Forbidden"


class NotFound(HTTPException):
    code, name = 404, "Not Found"


class InternalServerError(HTTPException):
    code, name = 500, "Internal Server Error"


HTTP_ERRORS: Mapping[int, type[HTTPException]] = {
    cls.code: cls for cls in (Forbidden, NotFound, InternalServerError)
}


def abort(code: int) -> None:
    raise HTTP_ERRORS[code]()


class Response:
    """A status and a body: a string, or an iterable of strings that is sent as it is
    produced (a streamed response), read by ``get_data``."""

    def __init__(self, body: Union[str, Iterable[str]], status_code: int = 200) -> None:
        self.body = body
        self.status_code = status_code
        # The session as saved into this response (its cookie), if it was saved.
        self.session_cookie: Optional[dict[str, Any]] = None

    def get_data(self, as_text: bool = False) -> Union[str, bytes]:
        if not isinstance(self.body, str):
            self.body = "".join(self.body)
        return self.body if as_text else self.body.encode()

    def close(self) -> None:
        """Done with the response: end a streamed body that was not read to its end."""
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


def make_response(rv: Any) -> Response:
    """A view's or handler's return value as a response: a Response, a string, a
    ``(body, status)`` pair, or an HTTPException."""
    if isinstance(rv, Response):
        return rv
    if isinstance(rv, HTTPException):
        return Response(rv.name, rv.code)
    if isinstance(rv, tuple):
        body, status = rv
        return Response(body, status)
    return Response(str(rv))


# -- apps and blueprints --------------------------------------------------------------------


class Scope:
    """What apps and blueprints share: hooks, error handlers and views."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hooks: dict[str, list[Hook]] = {kind: [] for kind in HOOK_ORDER}
        self.error_handlers: dict[ErrorKey, Hook] = {}
        self.views: dict[str, Hook] = {}
        self.blueprints: dict[str, tuple[Blueprint, str]] = {}

    def _register(self, kind: str) -> Callable[[Hook], Hook]:
        def register(f: Hook) -> Hook:
            self.hooks[kind].append(f)
            return f

        return register

    def url_value_preprocessor(self, f: Hook) -> Hook:
        return self._register("url_value_preprocessor")(f)

    def before_request(self, f: Hook) -> Hook:
        return self._register("before_request")(f)

    def context_processor(self, f: Hook) -> Hook:
        return self._register("context_processor")(f)

    def after_request(self, f: Hook) -> Hook:
        return self._register("after_request")(f)

    def teardown_request(self, f: Hook) -> Hook:
        return self._register("teardown_request")(f)

    def errorhandler(self, key: ErrorKey) -> Callable[[Hook], Hook]:
        def register(f: Hook) -> Hook:
            self.error_handlers[key] = f
            return f

        return register

    def add_url_rule(self, rule: str, endpoint: str, view: Hook) -> None:
        self.views[rule] = view

    def register_blueprint(self, blueprint: Blueprint, url_prefix: str = "") -> None:
        """Serve ``blueprint``'s views under ``url_prefix`` (blueprints nest)."""
        self.blueprints[blueprint.name] = (blueprint, url_prefix)

    def match(self, path: str) -> tuple[list[Blueprint], Optional[Hook]]:
        """The chain of blueprints (outermost first) and the view ``path`` leads to, under
        this scope; ([], None) if it leads nowhere."""
        if path in self.views:
            return [], self.views[path]
        for blueprint, prefix in self.blueprints.values():
            if path.startswith(prefix):
                chain, view = blueprint.match(path[len(prefix) :])
                if view is not None:
                    return [blueprint, *chain], view
        return [], None


class Blueprint(Scope):
    def __init__(self, name: str, import_name: str = "") -> None:
        super().__init__(name)


#: How ``stream_with_context`` keeps a streamed body inside its request (spec/lifecycle.md,
#: lifecycle.stream.*): "held", the request's contexts stay pushed until the body ends and
#: the request is torn down once, after it (Flask 3.0 and earlier); "pushed again", the
#: request is torn down as usual when the view's response is made, and its contexts are
#: pushed again around the body and torn down again after it (Flask 3.1).
STREAM_CONTEXTS = ("held", "pushed again")


class App(contexts.App, Scope):
    """An app that answers requests: ``app.test_client().get(path)``."""

    def __init__(
        self, name: str, secret_key: Optional[str] = None, stream_contexts: str = "pushed again"
    ) -> None:
        contexts.App.__init__(self, name, secret_key)
        Scope.__init__(self, name)
        if stream_contexts not in STREAM_CONTEXTS:
            raise ValueError(
                f"stream_contexts is one of {STREAM_CONTEXTS}, not {stream_contexts!r}"
            )
        self.stream_contexts = stream_contexts

    def teardown_appcontext(self, f: Hook) -> Hook:
        return self._register("teardown_appcontext")(f)

    def test_client(self) -> Client:
        return Client(self)

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, path: str, cookie: Optional[dict[str, Any]] = None) -> Response:
        """Answer a GET of ``path``, the way Flask's ``wsgi_app`` does, with the session a
        client's ``cookie`` holds."""
        ctx = self.test_request_context(path)
        if cookie is not None and self.secret_key:
            ctx.session = contexts.Session(cookie)
        error: Optional[BaseException] = None
        try:
            ctx.push()
            try:
                return self.full_dispatch_request()
            except Exception as e:
                error = e
                return self.handle_exception(e)
        finally:
            ctx.pop(error)

    def full_dispatch_request(self) -> Response:
        try:
            self.send("request_started")
            self.run_hooks("url_value_preprocessor", None, None)
            rv = self.run_hooks("before_request", stop_on_value=True)
            if rv is None:
                rv = self.dispatch_request()
        except Exception as e:
            rv = self.handle_user_exception(e)
        return self.finalize_request(rv)

    def dispatch_request(self) -> Any:
        view = self.match(_active_request_context().request.path)[1]
        if view is None:
            raise NotFound()
        rv = view()
        if inspect.iscoroutine(rv):  # an async view: run it to its end, in this context
            rv = asyncio.run(rv)
        return rv

    def handle_user_exception(self, e: Exception) -> Any:
        """A handled error's response; an unhandled one is raised again."""
        handler = self.find_error_handler(e)
        if handler is not None:
            return handler(e)
        if isinstance(e, HTTPException):
            return e
        raise e

    def handle_exception(self, e: Exception) -> Response:
        """An unhandled error: told to got_request_exception, answered with a 500."""
        self.send("got_request_exception", exception=e)
        server_error = InternalServerError(original_exception=e)
        handler = self.find_error_handler(server_error)
        rv = handler(server_error) if handler is not None else server_error
        return self.finalize_request(rv, from_error_handler=True)

    def finalize_request(self, rv: Any, from_error_handler: bool = False) -> Response:
        """Make the response and process it. An error raised while processing the 500 of an
        unhandled error is swallowed: that response is sent as it was made."""
        response = make_response(rv)
        try:
            response = self.process_response(response)
            self.send("request_finished", response=response)
        except Exception:
            if not from_error_handler:
                raise
        return response

    def process_response(self, response: Response) -> Response:
        for f in _active_request_context().after_this_request:
            response = f(response)
        result: Response = self.run_hooks("after_request", response)
        self.save_session(_active_request_context().session, result)
        return result

    def save_session(self, session: contexts.Session, response: Response) -> None:
        """Save a changed session into the response: what it holds now is what the next
        request of the same client gets. Changes made after this are lost."""
        if session.modified and not isinstance(session, contexts.NullSession):
            response.session_cookie = dict(session)

    # -- hooks and handlers -----------------------------------------------------------------
    def scopes(self, first: str) -> list[Scope]:
        """The app and the current request's blueprints, in ``HOOK_ORDER``'s sense of
        ``first``: "app" is the app, then the blueprints from the outermost in."""
        chain: list[Scope] = [self]
        if contexts.has_request_context():
            chain += self.match(_active_request_context().request.path)[0]
        return chain if first == "app" else chain[::-1]

    def functions(self, kind: str) -> list[Hook]:
        """Every function of one kind of hook, in the order ``HOOK_ORDER`` gives."""
        first, reverse = HOOK_ORDER[kind]
        scopes = [self] if kind == "teardown_appcontext" else self.scopes(first)
        found: list[Hook] = []
        for scope in scopes:
            found += reversed(scope.hooks[kind]) if reverse else scope.hooks[kind]
        return found

    def run_hooks(self, kind: str, *args: Any, stop_on_value: bool = False) -> Any:
        """Run every function of one kind of hook in ``HOOK_ORDER``. Before-request
        functions stop at the first that returns a value; after-request functions pass
        the response along; the others get ``args`` and return nothing. An error raised
        by one stops the rest."""
        value = args[0] if args else None
        for f in self.functions(kind):
            if kind == "after_request":
                value = f(value)
            elif stop_on_value:
                rv = f()
                if rv is not None:
                    return rv
            else:
                f(*args)
        return value if kind == "after_request" else None

    def find_error_handler(self, e: Exception) -> Optional[Hook]:
        """The handler for ``e``: by HTTP code first, then by class; in each, the
        innermost blueprint's first, out to the app's, and the closest class in ``e``'s
        MRO."""
        code = e.code if isinstance(e, HTTPException) else None
        for key_kind in ("code", "class"):
            if key_kind == "code" and code is None:
                continue
            for scope in self.scopes("blueprint"):
                if key_kind == "code" and code in scope.error_handlers:
                    return scope.error_handlers[code]
                if key_kind == "class":
                    for cls in type(e).__mro__:
                        if cls in scope.error_handlers:
                            return scope.error_handlers[cls]
        return None

    # -- what contexts tell the app ---------------------------------------------------------
    def send(self, name: str, **kwargs: Any) -> None:
        getattr(signals, name).send(self, **kwargs)

    def app_context_pushed(self) -> None:
        self.send("appcontext_pushed")

    def do_teardown_request(self, exc: Optional[BaseException]) -> None:
        self.run_hooks("teardown_request", exc)
        self.send("request_tearing_down", exc=exc)

    def do_teardown_appcontext(self, exc: Optional[BaseException]) -> None:
        self.run_hooks("teardown_appcontext", exc)
        self.send("appcontext_tearing_down", exc=exc)

    def app_context_popped(self) -> None:
        self.send("appcontext_popped")


class Client:
    """Sends requests to an app, and keeps the session the last response saved, as a
    browser keeps a cookie."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.cookie: Optional[dict[str, Any]] = None

    def get(self, path: str) -> Response:
        response = self.app.handle(path, self.cookie)
        if response.session_cookie is not None:
            self.cookie = response.session_cookie
        return response


#: A template's fields: ``{{ name }}``.
FIELD = re.compile(r"{{\s*(\w+)\s*}}")


def render_template_string(source: str, **context: Any) -> str:
    """Render ``source``, whose only syntax is ``{{ name }}``. The context is what the
    context processors return (app first, then blueprints from the outermost in, a later
    one's value winning), then ``context`` itself, which wins over them all."""
    app = current_app._get_current_object()
    full: dict[str, Any] = {}
    for processor in app.functions("context_processor"):
        full.update(processor())
    full.update(context)
    app.send("before_render_template", template=source, context=full)
    rendered = FIELD.sub(lambda field: str(full.get(field[1], "")), source)
    app.send("template_rendered", template=source, context=full)
    return rendered


def flash(message: str, category: str = "message") -> None:
    """Keep ``message`` in the session for the next request, and tell message_flashed."""
    session["_flashes"] = [*session.get("_flashes", []), (category, message)]
    current_app.send("message_flashed", message=message, category=category)


def stream_with_context(body: Iterable[str]) -> Iterator[str]:
    """``body``, made to run inside the active request's contexts when it is streamed,
    after the view has returned; the request's teardown functions get its error."""
    ctx = _active_request_context()
    app_ctx = contexts._app_contexts.top
    assert app_ctx is not None  # a request context always has an app context under it
    held = ctx.app.stream_contexts == "held"  # type: ignore[attr-defined]
    if held:
        ctx.push()  # a second push: the request's own pop is then not its last one

    def streamed() -> Iterator[str]:
        error: Optional[BaseException] = None
        if not held:
            app_ctx.push()
            ctx.push()
        try:
            yield from body
        except BaseException as e:  # GeneratorExit too: the teardown functions get it
            error = e
            raise
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            try:
                ctx.pop(error)
            finally:
                if not held:
                    app_ctx.pop(error)

    return streamed()


def after_this_request(f: Hook) -> Hook:
    """Run ``f`` on this request's response, before the after_request functions."""
    _active_request_context().after_this_request.append(f)
    return f
