"""The lifecycle machine: Hypothesis draws an *app plan* (hooks at app and blueprint
level, each passing, answering or raising; error handlers), builds it twice -- with the
adapter's framework and with the reference, whose trace is the model -- and sends
requests to both. Every request's trace of events and its status code must agree.

A trace is the list of events the plan's functions record: ``before_request:bp1``,
``view``, ``errorhandler:app:Handled``, ``signal:request_finished``,
``teardown_request:app2(Unhandled)``. Each hook also checks that ``request`` and ``g``
are its own request's, and records ``context:...`` if not. The first event where the
traces part tells which clause is broken (``CLAUSE_OF_EVENT``).

For ``lifecycle.interleaved`` the requests to the adapter's app run in greenlet and thread
actors, and pause at every event they record: several are in flight at once and the
drawn program says which one goes on (at the end, those left go on in turn). Each must
still give the trace the reference gives for it alone. A trace that differs only when
interleaved (the same request, run alone, gives the right one) breaks
``lifecycle.interleaved``; one that differs alone too breaks the clause of its event, as
in the plain runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

import reference.lifecycle

from ..outcome import Outcome, Raised, Returned, capture
from ..profiles import since, until
from ..scheduler import PAUSED, Actor
from .base import ConformanceMachine, named_like

#: The scopes of a plan: the app, its blueprint ``bp`` at /bp, and ``bp``'s nested
#: blueprint ``child`` at /bp/c.
SCOPES = ("app", "bp", "child")
#: What a before_request function does.
BEFORE = ("pass", "respond", "raise", "abort403")
#: What an after_request or teardown function does.
AFTER = ("pass", "raise")
#: What the view does: return, raise, abort, render a template or flash a message. An
#: ``async:`` view does the same from an ``async def`` view (at ``.../a``, not ``.../v``).
SYNC_VIEWS = ("ok", "handled", "unhandled", "abort404", "abort403", "render", "flash")
VIEWS = (*SYNC_VIEWS, "async:ok", "async:handled", "async:unhandled", "async:render")
#: Where a request writes its number into the session: the view, its after_request and
#: teardown_request functions, and the request_finished signal. The next request reads
#: them back when it starts, to see which writes were saved.
SESSION_KEYS = ("view", "after_request", "request_finished", "teardown_request")
#: The views that stream their body with stream_with_context (the second raises midway).
#: Only the lifecycle.stream* runs send requests to them, with plans whose after_request
#: and teardown functions never raise: a streamed response dropped for a 500 is closed
#: whenever the garbage collector gets to it, which no trace can pin.
STREAM_VIEWS = ("stream", "stream_raise")
#: How stream_with_context keeps the body in its request, by version profile: the
#: reference's modes (reference.lifecycle.STREAM_CONTEXTS) and the clause that pins each.
STREAM_CONTEXTS: Mapping[str, tuple[str, str]] = {
    **{profile: ("held", "lifecycle.stream.held") for profile in until("3.0")},
    **{profile: ("pushed again", "lifecycle.stream.pushed-again") for profile in since("3.1")},
}
#: What a rendering view renders, and the value it passes itself.
TEMPLATE = "{{ who }}|{{ x }}"
#: Error handlers a scope may register: an exception class's name, or an HTTP code.
HANDLERS = ("Handled", "404", "403", "500")
PATHS = ("/v", "/bp/v", "/bp/c/v", "/nope")
SIGNALS = tuple(reference.lifecycle.SIGNALS)
#: Signals about templates: their events are of the kind "template", like the context
#: processors', so that a trace that parts there names lifecycle.templates.
TEMPLATE_SIGNALS = ("before_render_template", "template_rendered")
MARKER = "ctxspec_request"
#: How a recorded event shows that its function raises.
RAISES = "!raises"

#: Which clause an event belongs to, by its kind (the part before the first colon), most
#: telling first: where two traces part, the event of the earlier kind here names it.
CLAUSE_OF_EVENT: Mapping[str, str] = {
    "context": "lifecycle.context",
    "signal": "lifecycle.signals",
    "errorhandler": "lifecycle.errors",
    "stream": "lifecycle.stream",
    "session": "lifecycle.session",
    "template": "lifecycle.templates",
    "url_value_preprocessor": "lifecycle.url-values",
    "before_request": "lifecycle.before",
    "view": "lifecycle.before",
    "teardown_request": "lifecycle.teardown",
    "teardown_appcontext": "lifecycle.teardown",
    "after_this_request": "lifecycle.after",
    "after_request": "lifecycle.after",
}
#: Where traces part after a function that raises, the clause about such errors.
CLAUSE_AFTER_RAISING: Mapping[str, str] = {
    "after_request": "lifecycle.after.raises",
    "teardown_request": "lifecycle.teardown.raises",
    "teardown_appcontext": "lifecycle.teardown.raises",
}


class Handled(Exception):
    """An error the plan may register handlers for."""


class Unhandled(Exception):
    """An error no plan handles."""


@dataclass(frozen=True)
class ScopePlan:
    """What one scope registers: its url_value_preprocessor and context_processor functions
    (how many), and what each of its before_request, after_request and teardown_request
    functions does."""

    url_values: int
    context_processors: int
    before: tuple[str, ...]
    after: tuple[str, ...]
    teardown: tuple[str, ...]
    handlers: frozenset[str]

    def __repr__(self) -> str:
        return (
            f"ScopePlan(url_values={self.url_values}, "
            f"context_processors={self.context_processors}, before={self.before!r}, "
            f"after={self.after!r}, teardown={self.teardown!r}, "
            f"handlers={sorted(self.handlers)!r})"
        )


@dataclass(frozen=True)
class Plan:
    app: ScopePlan
    bp: ScopePlan
    child: ScopePlan
    teardown_appcontext: tuple[str, ...]

    def __repr__(self) -> str:  # one line, so that a printed program stays one step a line
        return (
            f"Plan(app={self.app!r}, bp={self.bp!r}, child={self.child!r}, "
            f"teardown_appcontext={self.teardown_appcontext!r})"
        )

    def scope(self, name: str) -> ScopePlan:
        plan: ScopePlan = getattr(self, name)
        return plan


def behaviours(of: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(of), max_size=2).map(tuple)


scope_plans = st.builds(
    ScopePlan,
    url_values=st.integers(0, 2),
    context_processors=st.integers(0, 2),
    before=behaviours(BEFORE),
    after=behaviours(AFTER),
    teardown=behaviours(AFTER),
    handlers=st.frozensets(st.sampled_from(HANDLERS)),
)
plans = st.builds(
    Plan, app=scope_plans, bp=scope_plans, child=scope_plans, teardown_appcontext=behaviours(AFTER)
)
never_raising = ("pass",)
stream_scope_plans = st.builds(
    ScopePlan,
    url_values=st.integers(0, 1),
    context_processors=st.just(0),
    before=behaviours(BEFORE),
    after=behaviours(never_raising),
    teardown=behaviours(never_raising),
    handlers=st.frozensets(st.sampled_from(HANDLERS)),
)
stream_plans = st.builds(
    Plan,
    app=stream_scope_plans,
    bp=stream_scope_plans,
    child=stream_scope_plans,
    teardown_appcontext=behaviours(never_raising),
)


#: The kinds of actor an interleaved run sends requests from.
ACTOR_KINDS = ("greenlet", "thread")
#: Most requests in flight at once in an interleaved run.
MAX_IN_FLIGHT = 3


@dataclass
class Request:
    """What a request does, as the recording functions read it. ``number`` goes in its
    query string (``?n=3``), so that a hook can tell its own request from another."""

    path: str
    view: str
    after_this_request: bool
    number: int

    @property
    def is_async(self) -> bool:
        return self.view.startswith("async:")

    @property
    def actual_path(self) -> str:
        """The path requested: an async view's is ``.../a`` where a sync one's is ``.../v``."""
        if self.is_async and self.path.endswith("/v"):
            return self.path[:-1] + "a"
        return self.path

    @property
    def url(self) -> str:
        return f"{self.actual_path}?n={self.number}"

    def describe(self) -> str:
        what = f"GET {self.url} (view: {self.view}"
        return what + (", after_this_request)" if self.after_this_request else ")")


class Dispatch:
    """One request sent to one built app: its own trace, and the token its g is marked
    with when it starts."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.trace: list[str] = []
        self.token = object()
        # While an async view runs, on the thread of the framework's event loop: that code
        # must not pause (only the actor's own flow of control can hand control back).
        self.in_async_view = False


class Built:
    """One app built from a plan with one framework, and the trace it records."""

    def __init__(self, api: Any, app: Any, plan: Plan, machine: LifecycleBase) -> None:
        self.api, self.app, self.machine = api, app, machine
        self.client = app.test_client()
        self.receivers: list[tuple[Any, Callable[..., Any]]] = []
        blueprint, child = api.Blueprint("bp", __name__), api.Blueprint("child", __name__)
        for scope, target in (("app", app), ("bp", blueprint), ("child", child)):
            scope_plan = plan.scope(scope)
            for n in range(1, scope_plan.url_values + 1):
                target.url_value_preprocessor(self.url_values(scope, n))
            for n in range(1, scope_plan.context_processors + 1):
                target.context_processor(self.context_processor(scope, n))
            for n, behaviour in enumerate(scope_plan.before, 1):
                target.before_request(self.before(scope, n, behaviour))
            for n, behaviour in enumerate(scope_plan.after, 1):
                target.after_request(self.after(scope, n, behaviour))
            for n, behaviour in enumerate(scope_plan.teardown, 1):
                target.teardown_request(self.teardown("teardown_request", scope, n, behaviour))
            for key in sorted(scope_plan.handlers):
                error: Any = Handled if key == "Handled" else int(key)
                target.errorhandler(error)(self.handler(scope, key))
            target.add_url_rule("/v", "v", self.view)
            target.add_url_rule("/a", "a", self.async_view)
        for n, behaviour in enumerate(plan.teardown_appcontext, 1):
            app.teardown_appcontext(self.teardown("teardown_appcontext", "app", n, behaviour))
        blueprint.register_blueprint(child, url_prefix="/c")  # before bp is registered
        app.register_blueprint(blueprint, url_prefix="/bp")
        for name in SIGNALS:
            receiver = self.signal(name)
            getattr(api.signals, name).connect(receiver, app)
            self.receivers.append((getattr(api.signals, name), receiver))

    def close(self) -> None:
        for signal, receiver in self.receivers:
            signal.disconnect(receiver, self.app)

    def dispatch(self, dispatch: Dispatch) -> Outcome:
        """Send the request and return its status code (or what it raised), in whichever
        actor calls this; the recording functions find ``dispatch`` as the machine's
        current one."""
        self.machine.current = dispatch
        # One client for all requests keeps the session from one to the next; requests in
        # flight at once get a client each.
        client = self.client if self.machine.keeps_session else self.app.test_client()

        def send() -> Any:
            response = client.get(dispatch.request.url)
            try:
                response.get_data()  # a streamed body runs now
            finally:
                response.close()
            return response.status_code

        outcome = capture(send)
        # Whatever happened, the request must leave no context behind in this actor.
        left = capture(lambda: self.api.has_request_context() or self.api.has_app_context())
        if left != Returned(False):
            dispatch.trace.append("context:left pushed after the request")
        if isinstance(outcome, Raised):  # compare the type, not the object
            return Returned(f"raised {outcome.type.__name__}")
        return outcome

    # -- what the plan's functions do -------------------------------------------------------
    def record(self, event: str, request_too: bool = True) -> None:
        """Record ``event``, and whether this function sees its own request's g (and
        request, where there is one); then let the machine pause this request."""
        current = self.machine.current
        current.trace.append(event)
        wanted, api = current.request, self.api
        seen_g = capture(lambda: api.g.get(MARKER))
        if not (isinstance(seen_g, Returned) and seen_g.value is current.token):
            current.trace.append(f"context:g in {event}")
        if request_too:
            seen = capture(lambda: (api.request.path, api.request.args.get("n")))
            if seen != Returned((wanted.actual_path, str(wanted.number))):
                current.trace.append(f"context:request in {event}")
        self.machine.checkpoint()

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

    def url_values(self, scope: str, n: int) -> Callable[[Any, Any], None]:
        def url_value_preprocessor(endpoint: Any, values: Any) -> None:
            self.record(f"url_value_preprocessor:{scope}{n}")

        return url_value_preprocessor

    def context_processor(self, scope: str, n: int) -> Callable[[], dict[str, str]]:
        def context_processor() -> dict[str, str]:
            self.record(f"template:context_processor:{scope}{n}")
            return {"who": f"{scope}{n}", "x": "processor"}  # the view's own x wins

        return context_processor

    def after(self, scope: str, n: int, behaviour: str) -> Callable[[Any], Any]:
        event = f"after_request:{scope}{n}" + (RAISES if behaviour == "raise" else "")

        def after_request(response: Any) -> Any:
            self.record(event)
            self.write_session("after_request")
            if behaviour == "raise":
                raise Unhandled(event)
            return response

        return after_request

    def teardown(self, kind: str, scope: str, n: int, behaviour: str) -> Callable[[Any], None]:
        def teardown(exc: Optional[BaseException]) -> None:
            got = "None" if exc is None else type(exc).__name__
            event = f"{kind}:{scope}{n}({got})" + (RAISES if behaviour == "raise" else "")
            self.record(event, request_too=kind == "teardown_request")
            if kind == "teardown_request":
                self.write_session(kind)
            if behaviour == "raise":
                raise Unhandled(event)

        return teardown

    def handler(self, scope: str, key: str) -> Callable[[Any], Any]:
        def errorhandler(error: Any) -> Any:
            self.record(f"errorhandler:{scope}:{key}")
            return f"handled by {scope}:{key}", 418 if key == "Handled" else int(key)

        return errorhandler

    def write_session(self, key: str) -> None:
        """Write this request's number into the session under ``key``."""
        number = self.machine.current.request.number
        written = capture(lambda: self.api.session.__setitem__(key, number))
        if not isinstance(written, Returned):
            self.machine.current.trace.append(f"session:{key} could not write ({written})")

    def read_session(self) -> None:
        """Record what the session holds of the writes of earlier requests."""
        seen = capture(lambda: [f"{key}={self.api.session.get(key)}" for key in SESSION_KEYS])
        shown = " ".join(seen.value) if isinstance(seen, Returned) else seen.describe()
        self.machine.current.trace.append(f"session:{shown}")

    def view(self) -> Any:
        request = self.machine.current.request
        self.record("view")
        self.write_session("view")
        if request.after_this_request:

            def after_this(response: Any) -> Any:
                self.record("after_this_request")
                return response

            self.api.after_this_request(after_this)
        what = request.view.split(":")[-1]
        if what == "handled":
            raise Handled()
        if what == "unhandled":
            raise Unhandled()
        if what.startswith("abort"):
            self.api.abort(int(what[len("abort") :]))
        if what == "render":
            self.record(f"template:rendered {self.api.render_template_string(TEMPLATE, x='view')}")
        if what == "flash":
            self.api.flash("flashed")
        if what in STREAM_VIEWS:
            return self.api.Response(self.api.stream_with_context(self.body(what)))
        return "ok"

    def body(self, what: str) -> Iterator[str]:
        """A streamed body: it records where it starts and ends, and may raise midway."""
        self.record("stream:start")
        yield "a"
        if what == "stream_raise":
            raise Unhandled("stream")
        self.record("stream:end")
        yield "b"

    async def async_view(self) -> Any:
        current = self.machine.current
        current.in_async_view = True
        try:
            return self.view()
        finally:
            current.in_async_view = False

    def signal(self, name: str) -> Callable[..., None]:
        def receiver(sender: Any, **kwargs: Any) -> None:
            current = self.machine.current
            kind = "template:signal" if name in TEMPLATE_SIGNALS else "signal"
            current.trace.append(f"{kind}:{name}{carried(name, kwargs)}")
            if name == "request_started":  # mark this request's g, for every later check
                setattr(self.api.g, MARKER, current.token)
                self.read_session()
            if name == "request_finished":
                self.write_session(name)
            self.machine.checkpoint()

        return receiver


def carried(name: str, kwargs: Mapping[str, Any]) -> str:
    """What a signal carries, as its event shows it: an error's type, a flashed message, a
    template context's two values; nothing for a response."""
    what = reference.lifecycle.SIGNALS[name]
    if what is None or what == "response":
        return ""
    value = kwargs.get(what)
    if what in ("exception", "exc"):
        return "(None)" if value is None else f"({type(value).__name__})"
    if what == "context":
        return f"(who={value.get('who')!r}, x={value.get('x')!r})" if value else "(no context)"
    return f"({value!r})"


class LifecycleBase(ConformanceMachine):
    """What both lifecycle machines share: the plan built twice (``build``, their first
    rule), the model's dispatch, and the comparison."""

    #: Does this run send requests to streaming views? Only then is the reference that
    #: streams the other way consulted.
    streams = False

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__(adapter, target, hang_timeout)
        self.current = Dispatch(Request("/", "ok", False, 0))
        self.running: Optional[Actor] = None  # the actor whose request runs now, if any
        self.keeps_session = True  # do requests share one client, and so its session?
        self.built: list[Built] = []
        self.numbers = itertools.count(1)

    @initialize(plan=plans)
    def build(self, plan: Plan) -> None:
        mode, self.stream_clause = STREAM_CONTEXTS[self.adapter.profile]
        self.model = self.reference_built(plan, mode)
        # The reference streaming the other way: a streamed request that matches it instead
        # of the model shows the other release line's behaviour.
        other = next(m for m in reference.lifecycle.STREAM_CONTEXTS if m != mode)
        self.other_model = self.reference_built(plan, other)
        self.actual = Built(
            self.adapter.lifecycle_api(), self.adapter.new_app("ctxspec"), plan, self
        )
        self.built = [self.model, self.other_model, self.actual]

    def reference_built(self, plan: Plan, stream_contexts: str) -> Built:
        app = reference.lifecycle.App("ctxspec", "ctxspec", stream_contexts)
        return Built(reference.lifecycle, app, plan, self)

    def new_request(self, path: str, view: str, after_this: bool) -> Request:
        return Request(path, view, after_this, next(self.numbers))

    def model_dispatch(self, request: Request) -> tuple[Dispatch, Outcome]:
        expected = Dispatch(request)
        return expected, self.model.dispatch(expected)

    def other_dispatch(self, request: Request) -> Optional[tuple[Dispatch, Outcome]]:
        """The request sent to the reference that streams the other way, in the runs that
        stream. Every request of such a run is, so that its session stays the model's."""
        if not self.streams:
            return None
        other = Dispatch(request)
        return other, self.other_model.dispatch(other)

    def checkpoint(self) -> None:
        """Called at every recorded event: pause the running request, if it runs in an
        actor that can pause (requests dispatched from main run straight through)."""
        if self.running is not None and not self.current.in_async_view:
            self.running.pause()

    def teardown(self) -> None:
        for built in self.built:
            built.close()
        super().teardown()

    # -- comparing --------------------------------------------------------------------------
    def compare(self, expected: tuple[Dispatch, Outcome], seen: Dispatch, status: Outcome) -> None:
        """Compare one request's trace and status with the model's, and report the clause
        they show broken, if any."""
        clause, message = self.difference(expected, seen, status)
        if clause is not None:
            self.violated(clause, message)

    def difference(
        self, expected: tuple[Dispatch, Outcome], seen: Dispatch, status: Outcome
    ) -> tuple[Optional[str], str]:
        """The clause the observed request breaks and why, or (None, "")."""
        model, model_status = expected
        want, got = model.trace, seen.trace
        what = seen.request.describe()
        raising = next((i for i, event in enumerate(want) if event.endswith(RAISES)), None)
        after_raising = (
            None if raising is None else CLAUSE_AFTER_RAISING[want[raising].split(":", 1)[0]]
        )
        if want != got:
            index = next(
                (i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got))
            )
            clause = clause_at(want[index : index + 1] + got[index : index + 1])
            if raising is not None and raising < index and after_raising is not None:
                clause = after_raising  # they part after a function raised
            elif seen.request.view in STREAM_VIEWS and "view" in want[:index]:
                clause = "lifecycle.stream"  # they part where the body is streamed
            return clause, (
                f"{what}: the trace parts at event {index + 1}\n"
                f"  expected: {' '.join(want)}\n  observed: {' '.join(got)}"
            )
        if model_status != status:  # the status of a request where a function raised?
            clause = after_raising or "lifecycle.errors"
            return clause, f"{what}: status {describe(status)}, expected {describe(model_status)}"
        return None, ""


class LifecycleMachine(LifecycleBase):
    """Requests sent one at a time from main: ``dispatch``."""

    @classmethod
    def for_target(cls, target: str) -> type[ConformanceMachine]:
        if target == "lifecycle.interleaved":
            return InterleavingLifecycleMachine
        if target.startswith("lifecycle.stream"):
            return StreamingLifecycleMachine
        return cls

    @rule(path=st.sampled_from(PATHS), view=st.sampled_from(VIEWS), after_this=st.booleans())
    def dispatch(self, path: str, view: str, after_this: bool) -> None:
        request = self.new_request(path, view, after_this)
        expected, other = self.model_dispatch(request), self.other_dispatch(request)
        seen = Dispatch(request)
        status = self.actual.dispatch(seen)
        clause, message = self.difference(expected, seen, status)
        if clause is not None and other and self.difference(other, seen, status)[0] is None:
            clause = self.stream_clause
            message += "\n  (this is how the other release line streams)"
        elif clause is not None and request.is_async:
            # Sent to the same view made sync, does the request give the expected trace?
            sync = self.new_request(path, view.split(":", 1)[1], after_this)
            sync_expected, sync_seen = self.model_dispatch(sync), Dispatch(sync)
            self.other_dispatch(sync)
            sync_status = self.actual.dispatch(sync_seen)
            if self.difference(sync_expected, sync_seen, sync_status)[0] is None:
                clause = "lifecycle.async"
                message += "\n  (the same request to a sync view gives the expected trace)"
        if clause is not None:
            self.violated(clause, message)


class StreamingLifecycleMachine(LifecycleMachine):
    """Requests to views that stream their body with stream_with_context, besides a plain
    one, against plans whose after_request and teardown functions never raise."""

    streams = True

    @initialize(plan=stream_plans)
    def build(self, plan: Plan) -> None:
        super().build(plan)

    @rule(
        path=st.sampled_from(PATHS),
        view=st.sampled_from((*STREAM_VIEWS, "ok")),
        after_this=st.booleans(),
    )
    def dispatch(self, path: str, view: str, after_this: bool) -> None:
        super().dispatch(path, view, after_this)


named_like(StreamingLifecycleMachine, LifecycleMachine)


@dataclass
class InFlight:
    """A request running in an actor, paused at one of its events."""

    actor: Actor
    seen: Dispatch
    expected: tuple[Dispatch, Outcome]


class InterleavingLifecycleMachine(LifecycleBase):
    """Requests begin in new greenlet or thread actors and go on event by event, in the
    order the program draws (``begin``, ``advance``). No request is sent from main: one
    that is (``run_alone``) runs only once every other has ended."""

    #: Its bugs need the right requests to meet: the runner gives it more examples.
    MANY_ACTORS = True

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__(adapter, target, hang_timeout)
        self.in_flight: list[InFlight] = []
        self.keeps_session = False

    # No preconditions: they misalign Hypothesis's shrinker, which then cannot delete
    # steps. A begin with too many in flight, or an advance with none, does nothing.
    @rule(
        kind=st.sampled_from(ACTOR_KINDS),
        path=st.sampled_from(PATHS),
        view=st.sampled_from(VIEWS),
        after_this=st.booleans(),
    )
    def begin(self, kind: str, path: str, view: str, after_this: bool) -> None:
        """Start a request in a new actor; it runs up to its first event."""
        if len(self.in_flight) >= MAX_IN_FLIGHT:
            return
        request = self.new_request(path, view, after_this)
        expected = self.model_dispatch(request)
        flight = InFlight(self.scheduler.spawn(kind), Dispatch(request), expected)
        self.in_flight.append(flight)
        self.go_on_once(flight, lambda: flight.actor.run(lambda: self.actual.dispatch(flight.seen)))

    @rule(index=st.integers(0, MAX_IN_FLIGHT - 1))
    def advance(self, index: int) -> None:
        """Let one of the requests in flight go on to its next event."""
        if not self.in_flight:
            return
        flight = self.in_flight[index % len(self.in_flight)]
        self.go_on_once(flight, flight.actor.resume)

    def go_on_once(self, flight: InFlight, step: Callable[[], Any]) -> None:
        """Run ``flight``'s request on to its next event, or to its end (then check it)."""
        self.running, self.current = flight.actor, flight.seen
        try:
            outcome = step()
        finally:
            self.running = None
        if outcome is not PAUSED:
            self.in_flight.remove(flight)
            self.scheduler.finish(flight.actor)
            # The actor's outcome is that of Built.dispatch, which captures its own.
            self.landed(flight, outcome.value if isinstance(outcome, Returned) else outcome)

    def landed(self, flight: InFlight, status: Outcome) -> None:
        clause, message = self.difference(flight.expected, flight.seen, status)
        if clause is None:
            return
        # Run alone, from main, with nothing else in flight: if the same request now gives
        # the expected trace, what went wrong came from running it in an actor beside others.
        alone = Dispatch(flight.seen.request)
        alone_status = self.run_alone(alone)
        if self.difference(flight.expected, alone, alone_status)[0] is None:
            clause = "lifecycle.interleaved"
            message += "\n  (run alone, the same request gives the expected trace)"
        self.violated(clause, message)

    def run_alone(self, alone: Dispatch) -> Outcome:
        """``alone`` sent from main once every other request has ended."""
        for other in list(self.in_flight):
            self.running, self.current = other.actor, other.seen
            try:
                other.actor.complete()
            finally:
                self.running = None
            self.in_flight.remove(other)
            self.scheduler.finish(other.actor)
        return self.actual.dispatch(alone)

    def teardown(self) -> None:
        # A request left paused still has its contexts pushed: finish them all, and check
        # them. One event each in turn, so that they interleave to the end: a short
        # program is then enough to show a leak.
        try:
            turn = 0
            while self.in_flight:
                flight = self.in_flight[turn % len(self.in_flight)]
                self.go_on_once(flight, flight.actor.resume)
                turn = turn + 1 if flight in self.in_flight else turn
        finally:
            super().teardown()


named_like(InterleavingLifecycleMachine, LifecycleMachine)


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
