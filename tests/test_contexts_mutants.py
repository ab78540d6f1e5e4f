"""The contexts machine checks itself: broken context machinery -- a private copy of the
reference with one piece replaced, or real Flask patched while the test runs -- is caught
by the clause it breaks, with a short shrunk program.

Slow: run with ``pytest -m slow`` (tox env ``mutants``)."""

from __future__ import annotations

import threading
import weakref
from typing import Any

import pytest
from contexts_mutants import MUTANTS, ContextsMutant

from conformance.clauses import BY_ID
from conformance.runner import BUDGETS, ClauseResult, RunOptions, check_clause

pytestmark = pytest.mark.slow

#: The longest acceptable shrunk program, counting ``state = ...`` and ``state.teardown()``.
MAX_PROGRAM_LINES = 8


def check(adapter: Any, clause: str) -> ClauseResult:
    return check_clause(adapter, BY_ID[clause], RunOptions(BUDGETS["ci"], seed=0, timeout=60))


def assert_caught(result: ClauseResult, clause: str) -> None:
    assert result.verdict == "failed", result.reason
    assert result.failure is not None
    assert result.failure.clause == clause, result.failure.message
    lines = result.failure.program.splitlines()
    assert lines[0].startswith("state = ContextsMachine()")
    assert lines[-1] == "state.teardown()"
    assert len(lines) <= MAX_PROGRAM_LINES, result.failure.program


@pytest.mark.parametrize("mutant", MUTANTS, ids=str)
def test_mutant_is_caught_by_its_clause(mutant: ContextsMutant) -> None:
    assert_caught(check(mutant.adapter(), mutant.catches), mutant.catches)


@pytest.mark.parametrize("mutant", MUTANTS, ids=str)
def test_mutant_passes_an_unrelated_clause(mutant: ContextsMutant) -> None:
    """The diagnosis does not blame everything: an unrelated clause passes."""
    result = check(mutant.adapter(), mutant.passes)
    assert result.verdict == "passed", result.failure or result.reason


def test_every_clause_has_a_mutant() -> None:
    caught = {mutant.catches for mutant in MUTANTS}
    every = {clause.id for clause in BY_ID.values() if clause.capability == "contexts"}
    assert every - caught == set()


# -- real Flask, patched ------------------------------------------------------------------------


@pytest.fixture
def flask_adapter() -> Any:
    pytest.importorskip("flask")
    from conformance.adapters.flask import FlaskAdapter

    return FlaskAdapter()


def test_flask_request_context_that_always_brings_an_app_context(flask_adapter, monkeypatch):
    """A request context that pushes a fresh app context even inside one of its own app:
    its g is not the app context's g."""
    import flask.ctx

    push, pop = flask.ctx.RequestContext.push, flask.ctx.RequestContext.pop

    def always_push(self: Any) -> None:
        extra = self.app.app_context()
        extra.push()
        self._ctxspec_extra = [*getattr(self, "_ctxspec_extra", []), extra]
        push(self)  # finds an app context of its app active, so brings none itself

    def pop_both(self: Any, *args: Any, **kwargs: Any) -> None:
        pop(self, *args, **kwargs)
        self._ctxspec_extra.pop().pop()

    monkeypatch.setattr(flask.ctx.RequestContext, "push", always_push)
    monkeypatch.setattr(flask.ctx.RequestContext, "pop", pop_both)
    assert_caught(
        check(flask_adapter, "contexts.request.implicit-app"), "contexts.request.implicit-app"
    )


def test_flask_g_shared_between_the_greenlets_of_a_thread(flask_adapter, monkeypatch):
    """g kept per thread and app, as a threading.local would without gevent's patching."""
    import flask
    from werkzeug.local import LocalProxy

    per_thread = threading.local()

    def shared_g() -> Any:
        app = flask.current_app._get_current_object()  # RuntimeError outside, as before
        if not hasattr(per_thread, "gs"):
            per_thread.gs = weakref.WeakKeyDictionary()
        return per_thread.gs.setdefault(app, flask.ctx._AppCtxGlobals())

    monkeypatch.setattr(flask, "g", LocalProxy(shared_g))
    assert_caught(
        check(flask_adapter, "contexts.isolation.greenlet"), "contexts.isolation.greenlet"
    )


# -- real Flask, its copy_current_request_context patched -----------------------------------------


def _active_flask_app_context() -> Any:
    """The active app context, on Flask 2.0 (a LocalStack) and 2.2 and later (a ContextVar)."""
    import flask.globals

    proxy = getattr(flask.globals, "app_ctx", None)
    if proxy is not None:
        return proxy._get_current_object()
    return flask.globals._app_ctx_stack.top


def test_flask_copy_with_a_new_request_from_the_environ(flask_adapter, monkeypatch):
    """The copy builds its own request from the copied request's environ: same path and
    arguments, another object."""
    import flask.ctx

    def copy(self: Any) -> Any:
        return self.__class__(self.app, environ=self.request.environ, session=self.session)

    monkeypatch.setattr(flask.ctx.RequestContext, "copy", copy)
    assert_caught(check(flask_adapter, "contexts.copy.request"), "contexts.copy.request")


def test_flask_copy_with_the_session_contents_copied(flask_adapter, monkeypatch):
    """The copy gets a new session holding what the copied one held."""
    import flask.ctx

    def copy(self: Any) -> Any:
        session = self.session.__class__(dict(self.session))
        return self.__class__(
            self.app, environ=self.request.environ, request=self.request, session=session
        )

    monkeypatch.setattr(flask.ctx.RequestContext, "copy", copy)
    assert_caught(check(flask_adapter, "contexts.copy.request"), "contexts.copy.request")


def test_flask_copy_that_carries_the_app_context_and_its_g(flask_adapter, monkeypatch):
    """The copy also pushes the app context active where it was made, so g goes with it to
    other threads and greenlets."""
    import flask

    original = flask.copy_current_request_context

    def carrying_g(f: Any) -> Any:
        copied, app_ctx = original(f), _active_flask_app_context()

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with app_ctx:
                return copied(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(flask, "copy_current_request_context", carrying_g)
    assert_caught(check(flask_adapter, "contexts.copy.request"), "contexts.copy.request")


def test_flask_copy_that_keeps_its_app_context_between_calls(flask_adapter, monkeypatch):
    """The app context a call brings is kept for the next call, with what it set on g."""
    import flask

    original = flask.copy_current_request_context

    def keeping(f: Any) -> Any:
        app = flask.current_app._get_current_object()
        copied, kept = original(f), app.app_context()

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if flask.has_app_context() and flask.current_app._get_current_object() is app:
                return copied(*args, **kwargs)
            with kept:
                return copied(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(flask, "copy_current_request_context", keeping)
    assert_caught(check(flask_adapter, "contexts.copy.later"), "contexts.copy.later")
