"""The lifecycle machine: Hypothesis draws an *app plan* (hooks at app and blueprint
level, each passing, answering or raising; error handlers), builds it twice -- with the
adapter's framework and with the reference, whose trace is the model -- and sends
requests to both. Every request's trace of events and its status code must agree.

A trace is the list of events the plan's functions record: ``before_request:bp1``,
``view``, ``errorhandler:app:Handled``, ``signal:request_finished``,
``teardown_request:app2(Unhandled)``. Each hook also checks that ``request`` and ``g``
are its own request's, and records ``context:...`` if not. The first event where the
traces part tells which clause is broken (``CLAUSE_OF_EVENT``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

import reference.lifecycle

from ..outcome import Outcome, Raised, Returned, capture
from .base import ConformanceMachine

SCOPES = ("app", "bp")
#: What a before_request function does.
BEFORE = ("pass", "respond", "raise", "abort403")
#: What the view does.
VIEWS = ("ok", "handled", "unhandled", "abort404", "abort403")
#: Error handlers a scope may register: an exception class's name, or an HTTP code.
HANDLERS = ("Handled", "404", "403", "500")
PATHS = ("/v", "/bp/v", "/nope")
SIGNALS = tuple(reference.lifecycle.SIGNALS)
MARKER = "ctxspec_request"

#: Which clause an event belongs to, by its kind (the part before the first colon), most
#: telling first: where two traces part, the event of the earlier kind here names it.
CLAUSE_OF_EVENT: Mapping[str, str] = {
    "context": "lifecycle.context",
    "signal": "lifecycle.signals",
    "errorhandler": "lifecycle.errors",
    "before_request": "lifecycle.before",
    "view": "lifecycle.before",
    "teardown_request": "lifecycle.teardown",
    "teardown_appcontext": "lifecycle.teardown",
    "after_this_request": "lifecycle.after",
    "after_request": "lifecycle.after",
}


class Handled(Exception):
    """An error the plan may register handlers for."""


class Unhandled(Exception):
    """An error no plan handles."""


@dataclass(frozen=True)
class ScopePlan:
    before: tuple[str, ...]
    after: int
    teardown: int
    handlers: frozenset[str]

    def __repr__(self) -> str:
        return (
            f"ScopePlan(before={self.before!r}, after={self.after}, teardown={self.teardown}, "
            f"handlers={sorted(self.handlers)!r})"
        )


@dataclass(frozen=True)
class Plan:
    app: ScopePlan
    bp: ScopePlan
    teardown_appcontext: int

    def __repr__(self) -> str:  # one line, so that a printed program stays one step a line
        teardown = self.teardown_appcontext
        return f"Plan(app={self.app!r}, bp={self.bp!r}, teardown_appcontext={teardown})"


scope_plans = st.builds(
    ScopePlan,
    before=st.lists(st.sampled_from(BEFORE), max_size=2).map(tuple),
    after=st.integers(0, 2),
    teardown=st.integers(0, 2),
    handlers=st.frozensets(st.sampled_from(HANDLERS)),
)
plans = st.builds(Plan, app=scope_plans, bp=scope_plans, teardown_appcontext=st.integers(0, 2))


@dataclass
class Request:
    """What the request being dispatched does, as the recording functions read it."""

    path: str
    view: str
    after_this_request: bool
    token: object


class Built:
    """One app built from a plan with one framework, and the trace it records."""

    def __init__(self, api: Any, app: Any, plan: Plan, machine: LifecycleMachine) -> None:
        self.api, self.app, self.machine = api, app, machine
        self.trace: list[str] = []
        self.receivers: list[tuple[Any, Callable[..., Any]]] = []
        blueprint = api.Blueprint("bp", __name__)
        for scope, target, scope_plan in (("app", app, plan.app), ("bp", blueprint, plan.bp)):
            for n, behaviour in enumerate(scope_plan.before, 1):
                target.before_request(self.before(scope, n, behaviour))
            for n in range(1, scope_plan.after + 1):
                target.after_request(self.after(scope, n))
            for n in range(1, scope_plan.teardown + 1):
                target.teardown_request(self.teardown("teardown_request", scope, n))
            for key in sorted(scope_plan.handlers):
                error: Any = Handled if key == "Handled" else int(key)
                target.errorhandler(error)(self.handler(scope, key))
        for n in range(1, plan.teardown_appcontext + 1):
            app.teardown_appcontext(self.teardown("teardown_appcontext", "app", n))
        app.add_url_rule("/v", "v", self.view)
        blueprint.add_url_rule("/v", "v", self.view)
        app.register_blueprint(blueprint, url_prefix="/bp")
        for name in SIGNALS:
            receiver = self.signal(name)
            getattr(api.signals, name).connect(receiver, app)
            self.receivers.append((getattr(api.signals, name), receiver))

    def close(self) -> None:
        for signal, receiver in self.receivers:
            signal.disconnect(receiver, self.app)

    def dispatch(self) -> Outcome:
        self.trace = []
        request = self.machine.request
        outcome = capture(lambda: self.app.test_client().get(request.path).status_code)
        if isinstance(outcome, Raised):  # compare the type, not the object
            return Returned(f"raised {outcome.type.__name__}")
        return outcome

    # -- what the plan's functions do -------------------------------------------------------
    def record(self, event: str, request_too: bool = True) -> None:
        """Record ``event``, and whether this function sees its own request's g (and
        request, where there is one)."""
        self.trace.append(event)
        wanted = self.machine.request
        api = self.api
        seen_g = capture(lambda: api.g.get(MARKER))
        if not (isinstance(seen_g, Returned) and seen_g.value is wanted.token):
            self.trace.append(f"context:g in {event}")
        if request_too:
            seen_path = capture(lambda: api.request.path)
            if not (isinstance(seen_path, Returned) and seen_path.value == wanted.path):
                self.trace.append(f"context:request in {event}")

    def before(self, scope: str, n: int, behaviour: str) -> Callable[[], Any]:
        def before_request() -> Any:
            self.record(f"before_request:{scope}{n}")
            if behaviour == "respond":
                return f"answered by before_request:{scope}{n}"
            if behaviour == "raise":
                raise Unhandled(f"before_request:{scope}{n}")
            if behaviour == "abort403":
                self.api.abort(403)
            return None

        return before_request

    def after(self, scope: str, n: int) -> Callable[[Any], Any]:
        def after_request(response: Any) -> Any:
            self.record(f"after_request:{scope}{n}")
            return response

        return after_request

    def teardown(self, kind: str, scope: str, n: int) -> Callable[[Any], None]:
        def teardown(exc: Optional[BaseException]) -> None:
            got = "None" if exc is None else type(exc).__name__
            self.record(f"{kind}:{scope}{n}({got})", request_too=kind == "teardown_request")

        return teardown

    def handler(self, scope: str, key: str) -> Callable[[Any], Any]:
        def errorhandler(error: Any) -> Any:
            self.record(f"errorhandler:{scope}:{key}")
            return f"handled by {scope}:{key}", 418 if key == "Handled" else int(key)

        return errorhandler

    def view(self) -> Any:
        request = self.machine.request
        self.record("view")
        if request.after_this_request:

            def after_this(response: Any) -> Any:
                self.record("after_this_request")
                return response

            self.api.after_this_request(after_this)
        if request.view == "handled":
            raise Handled()
        if request.view == "unhandled":
            raise Unhandled()
        if request.view.startswith("abort"):
            self.api.abort(int(request.view[len("abort") :]))
        return "ok"

    def signal(self, name: str) -> Callable[..., None]:
        def receiver(sender: Any, **kwargs: Any) -> None:
            carried = reference.lifecycle.SIGNALS[name]
            value = kwargs.get(carried) if carried else None
            shown = "" if carried in (None, "response") else f"({type(value).__name__})"
            if value is None and carried in ("exc",):
                shown = "(None)"
            self.trace.append(f"signal:{name}{shown}")
            if name == "request_started":  # mark this request's g, for every later check
                setattr(self.api.g, MARKER, self.machine.request.token)

        return receiver


class LifecycleMachine(ConformanceMachine):
    """Rules: ``build`` (once: the plan) and ``dispatch`` (a request through both)."""

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__(adapter, target, hang_timeout)
        self.request = Request("/", "ok", False, object())
        self.built: list[Built] = []
        self.numbers = itertools.count(1)

    @initialize(plan=plans)
    def build(self, plan: Plan) -> None:
        self.model = Built(reference.lifecycle, reference.lifecycle.App("ctxspec"), plan, self)
        self.actual = Built(
            self.adapter.lifecycle_api(), self.adapter.new_app("ctxspec"), plan, self
        )
        self.built = [self.model, self.actual]

    @rule(path=st.sampled_from(PATHS), view=st.sampled_from(VIEWS), after_this=st.booleans())
    def dispatch(self, path: str, view: str, after_this: bool) -> None:
        self.request = Request(path, view, after_this, object())
        expected = self.model.dispatch()
        seen = self.actual.dispatch()
        self.compare(expected, seen)

    def teardown(self) -> None:
        for built in self.built:
            built.close()
        super().teardown()

    # -- comparing --------------------------------------------------------------------------
    def compare(self, expected: Outcome, seen: Outcome) -> None:
        want, got = self.model.trace, self.actual.trace
        what = f"GET {self.request.path} (view: {self.request.view}"
        what += ", after_this_request)" if self.request.after_this_request else ")"
        if want != got:
            index = next(
                (i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got))
            )
            clause = clause_at(want[index : index + 1] + got[index : index + 1])
            self.violated(
                clause,
                f"{what}: the trace parts at event {index + 1}\n"
                f"  expected: {' '.join(want)}\n  observed: {' '.join(got)}",
            )
        elif expected != seen:
            self.violated(
                "lifecycle.errors",
                f"{what}: status {describe(seen)}, expected {describe(expected)}",
            )


def clause_at(events: Sequence[str]) -> str:
    """The clause of the most telling of the events where two traces part."""
    kinds = [event.split(":", 1)[0] for event in events]
    order = list(CLAUSE_OF_EVENT)
    known = [kind for kind in kinds if kind in CLAUSE_OF_EVENT]
    if not known:
        return "lifecycle.signals"
    return CLAUSE_OF_EVENT[min(known, key=order.index)]


def describe(outcome: Outcome) -> str:
    return str(outcome.value) if isinstance(outcome, Returned) else outcome.describe()
