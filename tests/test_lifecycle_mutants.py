"""The lifecycle machine checks itself: real Flask, patched while the test runs so that
one part of the lifecycle goes wrong, is caught by that part's clause with a short
shrunk program. (The reference is the machine's model, so it cannot be the mutant.)

Slow: run with ``pytest -m slow`` (tox env ``mutants``)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
import types
from importlib import metadata
from typing import Any, Callable

import pytest

from conformance.clauses import BY_ID
from conformance.runner import BUDGETS, RunOptions, check_clause

pytestmark = pytest.mark.slow

flask = pytest.importorskip("flask")
if int(metadata.version("flask").split(".")[0]) < 3:
    pytest.skip("the patches below follow Flask 3's internals", allow_module_level=True)

from conformance.adapters.flask import FlaskAdapter  # noqa: E402

#: The longest acceptable shrunk program, counting ``state = ...`` and ``state.teardown()``.
MAX_PROGRAM_LINES = 6

Patch = Callable[[Any], None]


class PatchedFlaskAdapter(FlaskAdapter):
    """Real Flask, with each new app changed by ``patch``."""

    def __init__(self, patch: Patch) -> None:
        super().__init__()
        self.patch = patch

    def new_app(self, name: str) -> Any:
        app = super().new_app(name)
        self.patch(app)
        return app


class RegistrationOrder(list):  # type: ignore[type-arg]
    """A list whose reversed() is its own order: "newest first" becomes "oldest first"."""

    def __reversed__(self) -> Any:
        return iter(list(self))


def after_request_in_registration_order(app: Any) -> None:
    original = app.process_response

    def process_response(response: Any) -> Any:
        saved = dict(app.after_request_funcs)
        app.after_request_funcs.update({k: RegistrationOrder(v) for k, v in saved.items()})
        try:
            return original(response)
        finally:
            app.after_request_funcs.update(saved)

    app.process_response = process_response


def teardown_skips_blueprints(app: Any) -> None:
    original = app.do_teardown_request

    def do_teardown_request(*args: Any) -> None:
        saved = {k: v for k, v in app.teardown_request_funcs.items() if k is not None}
        for key in saved:
            del app.teardown_request_funcs[key]
        try:
            original(*args)
        finally:
            app.teardown_request_funcs.update(saved)

    app.do_teardown_request = do_teardown_request


def request_finished_before_after_request(app: Any) -> None:
    original = app.process_response

    def process_response(response: Any) -> Any:
        flask.signals.request_finished.send(app, response=response)
        return original(response)

    app.process_response = process_response


def before_request_never_stops(app: Any) -> None:
    def preprocess_request() -> Any:
        answer = None
        names = (None, *reversed(flask.request.blueprints))
        for name in names:
            for function in app.url_value_preprocessors.get(name, ()):
                function(flask.request.endpoint, flask.request.view_args)
        for name in names:
            for function in app.before_request_funcs.get(name, ()):
                rv = function()
                answer = rv if answer is None else answer
        return answer

    app.preprocess_request = preprocess_request


def app_handlers_first(app: Any) -> None:
    original = app._find_error_handler

    def find_error_handler(error: Any, blueprints: Any) -> Any:
        return original(error, []) or original(error, blueprints)

    app._find_error_handler = find_error_handler


def url_values_after_before_request(app: Any) -> None:
    original = app.preprocess_request
    preprocessors = app.url_value_preprocessors

    def preprocess_request() -> Any:
        saved = dict(preprocessors)
        preprocessors.clear()
        try:
            rv = original()  # the before_request functions, without the preprocessors
        finally:
            preprocessors.update(saved)
        for name in (None, *reversed(flask.request.blueprints)):
            for function in preprocessors.get(name, ()):
                function(flask.request.endpoint, flask.request.view_args)
        return rv

    app.preprocess_request = preprocess_request


def nested_blueprints_innermost_first(app: Any) -> None:
    """before_request functions of nested blueprints run from the innermost out."""

    def preprocess_request() -> Any:
        names = (None, *flask.request.blueprints)
        for name in names:
            for function in app.url_value_preprocessors.get(name, ()):
                function(flask.request.endpoint, flask.request.view_args)
        for name in names:
            for function in app.before_request_funcs.get(name, ()):
                rv = function()
                if rv is not None:
                    return rv
        return None

    app.preprocess_request = preprocess_request


def errors_processing_the_500_propagate(app: Any) -> None:
    """An after_request function that raises while the 500 is processed is not swallowed."""
    original = app.finalize_request

    def finalize_request(rv: Any, from_error_handler: bool = False) -> Any:
        return original(rv, from_error_handler=False)

    app.finalize_request = finalize_request


def teardown_errors_swallowed(app: Any) -> None:
    """Each teardown_request function's error is swallowed, and the others run."""

    def guarded(function: Any) -> Any:
        def teardown(exc: Any) -> None:
            with contextlib.suppress(Exception):
                function(exc)

        return teardown

    original = app.do_teardown_request

    def do_teardown_request(*args: Any) -> None:
        saved = {k: list(v) for k, v in app.teardown_request_funcs.items()}
        for key, functions in saved.items():
            app.teardown_request_funcs[key] = [guarded(f) for f in functions]
        try:
            original(*args)
        finally:
            app.teardown_request_funcs.update(saved)

    app.do_teardown_request = do_teardown_request


def session_saved_before_after_request(app: Any) -> None:
    """The session is saved before the after_request functions run: their changes are lost."""
    from flask.sessions import SecureCookieSessionInterface

    class SavesNothing(SecureCookieSessionInterface):
        def save_session(self, *args: Any) -> None:
            pass

    original = app.process_response

    def process_response(response: Any) -> Any:
        interface = app.session_interface
        interface.save_session(app, flask.session._get_current_object(), response)
        app.session_interface = SavesNothing()
        try:
            return original(response)
        finally:
            app.session_interface = interface

    app.process_response = process_response


def context_processors_win_over_the_view(app: Any) -> None:
    """The render's own values are overwritten by the context processors'."""

    def update_template_context(context: dict[str, Any]) -> None:
        for name in (None, *reversed(flask.request.blueprints)):
            for function in app.template_context_processors.get(name, ()):
                context.update(function())

    app.update_template_context = update_template_context


def async_views_run_in_a_fresh_context(app: Any) -> None:
    """An async view run in a new, empty context: it sees no request and no g."""
    original = app.ensure_sync

    def ensure_sync(function: Any) -> Any:
        if not inspect.iscoroutinefunction(function):
            return original(function)

        def run(*args: Any, **kwargs: Any) -> Any:
            return contextvars.Context().run(asyncio.run, function(*args, **kwargs))

        return run

    app.ensure_sync = ensure_sync


def g_per_thread(app: Any) -> None:
    """g kept per thread (a threading.local): the greenlets of one thread share it."""
    original = app.app_ctx_globals_class
    per_thread = threading.local()

    def globals_of_this_thread() -> Any:
        if not hasattr(per_thread, "g"):
            per_thread.g = original()
        return per_thread.g

    app.app_ctx_globals_class = globals_of_this_thread


def g_shared_by_every_request(app: Any) -> None:
    """One g for the app, in every thread and greenlet."""
    shared = app.app_ctx_globals_class()
    app.app_ctx_globals_class = lambda: shared


MUTANTS = [
    pytest.param(after_request_in_registration_order, "lifecycle.after", id="after-in-order"),
    pytest.param(teardown_skips_blueprints, "lifecycle.teardown", id="teardown-skips-bp"),
    pytest.param(
        request_finished_before_after_request, "lifecycle.signals", id="finished-too-early"
    ),
    pytest.param(before_request_never_stops, "lifecycle.before", id="before-never-stops"),
    pytest.param(app_handlers_first, "lifecycle.errors", id="app-handlers-first"),
    pytest.param(url_values_after_before_request, "lifecycle.url-values", id="url-values-late"),
    pytest.param(nested_blueprints_innermost_first, "lifecycle.before", id="nested-inside-out"),
    pytest.param(
        errors_processing_the_500_propagate, "lifecycle.after.raises", id="500-errors-propagate"
    ),
    pytest.param(teardown_errors_swallowed, "lifecycle.teardown.raises", id="teardown-swallows"),
    pytest.param(session_saved_before_after_request, "lifecycle.session", id="session-saved-early"),
    pytest.param(context_processors_win_over_the_view, "lifecycle.templates", id="processors-win"),
    pytest.param(async_views_run_in_a_fresh_context, "lifecycle.async", id="async-fresh-context"),
    pytest.param(g_per_thread, "lifecycle.interleaved", id="g-per-thread"),
    pytest.param(g_shared_by_every_request, "lifecycle.interleaved", id="g-shared"),
]


def check(adapter: Any, clause: str) -> Any:
    return check_clause(adapter, BY_ID[clause], RunOptions(BUDGETS["ci"], seed=0, timeout=60))


@pytest.mark.parametrize(("patch", "clause"), MUTANTS)
def test_patched_flask_is_caught_by_its_clause(patch: Patch, clause: str) -> None:
    result = check(PatchedFlaskAdapter(patch), clause)
    assert result.verdict == "failed", result.reason
    assert result.failure is not None
    assert result.failure.clause == clause, result.failure.message
    lines = result.failure.program.splitlines()
    assert lines[0] == "state = LifecycleMachine()"
    assert lines[-1] == "state.teardown()"
    assert len(lines) <= MAX_PROGRAM_LINES, result.failure.program


class StreamWithoutContextAdapter(FlaskAdapter):
    """Real Flask, whose stream_with_context keeps nothing: the body runs outside any
    request, once the request has been torn down."""

    def lifecycle_api(self) -> Any:
        api = types.SimpleNamespace(**vars(flask))
        api.stream_with_context = lambda body: body
        return api


def test_stream_without_its_request_is_caught() -> None:
    result = check(StreamWithoutContextAdapter(), "lifecycle.stream")
    assert result.verdict == "failed", result.reason
    assert result.failure is not None and result.failure.clause == "lifecycle.stream"
    assert len(result.failure.program.splitlines()) <= MAX_PROGRAM_LINES, result.failure.program


def test_request_that_is_not_its_own_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """request stuck on the first request it ever saw: hooks see another request."""
    from werkzeug.local import LocalProxy

    first: dict[str, Any] = {}
    real = flask.globals.request
    monkeypatch.setattr(
        flask, "request", LocalProxy(lambda: first.setdefault("r", real._get_current_object()))
    )
    result = check(FlaskAdapter(), "lifecycle.context")
    assert result.verdict == "failed", result.reason
    assert result.failure is not None and result.failure.clause == "lifecycle.context"


def test_every_clause_has_a_mutant() -> None:
    # and the two tests above, and the DESCRIBES clauses of streaming, which
    # test_wrong_profile.py checks by forcing the other release line's profile.
    others = {"lifecycle.context", "lifecycle.stream"}
    others |= {"lifecycle.stream.held", "lifecycle.stream.pushed-again"}
    caught = {param.values[1] for param in MUTANTS} | others
    every = {clause.id for clause in BY_ID.values() if clause.capability == "lifecycle"}
    assert every - caught == set()
