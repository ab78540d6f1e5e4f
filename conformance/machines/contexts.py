"""The contexts machine: two apps, their app and request contexts pushed and popped by
several actors, and what ``current_app``, ``g``, ``request`` and ``session`` say in each.

After every push, pop or write, the actor looks at everything (a *view*: six
observations) and the model predicts each one. Runs about isolation also make every
other actor look, right after the change that could leak into them.

The copy machines also make functions with ``copy_current_request_context`` and call them
in any actor, right away or later: inside, every observation of a view is checked, and so
are the objects behind ``request``, its ``environ``, ``session`` and ``g``; afterwards the
caller and the copy's origin look again, since the copy wrote to the session and to ``g``.

Operations of the main actor run inside a ``contextvars.Context`` of this machine's own,
so nothing an example pushes can leak into the next one, even from a broken adapter.
"""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from hypothesis import strategies as st
from hypothesis.stateful import rule

from reference.contexts import OUTSIDE_MESSAGES

from ..contexts_model import ContextsModel, Frame, RequestFrame
from ..model import Token, isolation_kind
from ..outcome import Outcome, Raised, Returned, capture
from ..scheduler import Actor
from .base import ConformanceMachine, any_actor, named_like

#: How many apps the machine runs: two, so that contexts of different apps nest.
APPS = 2
#: The one name the machine stores under, in g and in the session.
NAME = "ctxspec_token"
#: What a view looks at, and which context each observation needs.
LOOKS = {
    "current_app": "app",
    "g": "app",
    "has_app_context": "app",
    "request": "request",
    "session": "request",
    "has_request_context": "request",
}
#: What a copied function's body also checks: the objects behind the globals, each of which
#: must be the one copied (for g: the caller's, or a new one; spec: contexts.copy.request).
COPY_IDENTITIES = ("request_object", "environ", "session_object", "g_object")
OPS = ("push_app", "push_request", "pop", "write_g", "write_session", "look")

apps = st.integers(min_value=0, max_value=APPS - 1)

Changed = str  # what an actor last did to its contexts: "push_app", "push_request", "pop"


class ContextsMachine(ConformanceMachine):
    ACTOR_KINDS = {
        "contexts.isolation.greenlet": ("greenlet",),
        "contexts.isolation.thread": ("thread",),
        "contexts.copy.request": ("greenlet", "thread"),
        "contexts.copy.later": ("greenlet", "thread"),
        "contexts.pop.wrong": ("greenlet", "thread"),
    }

    @classmethod
    def for_target(cls, target: str) -> type[ConformanceMachine]:
        if target == "contexts.copy.later":
            return LaterCopyingContextsMachine
        if target.startswith("contexts.copy."):
            return CopyingContextsMachine
        if target == "contexts.pop.wrong":
            return WrongPoppingContextsMachine
        return cls

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__(adapter, target, hang_timeout)
        self.api = adapter.context_api()
        self.apps = [adapter.new_app(f"ctxspec_app{i}") for i in range(APPS)]
        self.model = ContextsModel()
        self.main_context = contextvars.Context()
        # The context objects each actor pushed itself, with their frames, in order.
        self.pushed: dict[str, list[tuple[Any, Frame]]] = {"main": []}
        self.changed: dict[str, Changed] = {"main": "none"}
        self.lost: set[str] = set()  # actors whose contexts the model no longer knows
        self.path_owner: dict[str, str] = {}
        self.paths: Iterator[int] = itertools.count(1)
        # The copy machines' own: what each copy's body writes, and the copies kept.
        self.holders: dict[int, dict[str, Any]] = {}
        self.kept: list[Any] = []

    # -- actors -----------------------------------------------------------------------------
    def on_spawn(self, actor: Actor, parent: Actor) -> None:
        self.model.spawn(actor.name, actor.kind)
        self.pushed[actor.name] = []
        self.changed[actor.name] = "none"

    def on_finish(self, actor: Actor) -> None:
        self.model.finish(actor.name)
        del self.pushed[actor.name], self.changed[actor.name]
        self.lost.discard(actor.name)

    def run(self, actor: Actor, operation: Callable[[], Any]) -> Outcome:
        if actor is self.scheduler.main:
            return actor.run(lambda: self.main_context.run(operation))
        return actor.run(operation)

    def teardown(self) -> None:
        # Pop what main still has pushed: an implementation that does not keep its
        # contexts in a ContextVar would otherwise hand them to the next example.
        if "main" not in self.lost:
            for ctx, _ in reversed(self.pushed["main"]):
                self.run(self.scheduler.main, ctx.pop)
        super().teardown()

    # -- rules ------------------------------------------------------------------------------
    # One rule, the operation an argument: swarm testing disables whole rules per example.
    @rule(op=st.sampled_from(OPS), actor=any_actor, app=apps)
    def act(self, op: str, actor: Union[str, Actor], app: int) -> None:
        resolved = self.resolve(actor)
        if resolved.name in self.lost:
            return
        if op in ("push_app", "push_request"):
            self.push(resolved, op, app)
        elif op == "pop":
            self.pop(resolved)
        elif op == "look":
            self.look(resolved, "")
        else:
            self.write(resolved, op.split("_", 1)[1])

    def push(self, actor: Actor, op: str, app: int) -> None:
        if op == "push_app":
            make: Callable[[], Any] = self.apps[app].app_context
        else:
            path = f"/r{next(self.paths)}"
            self.path_owner[path] = actor.name
            make = lambda: self.apps[app].test_request_context(path)  # noqa: E731

        def push() -> Any:
            ctx = make()
            ctx.push()
            return ctx

        outcome = self.run(actor, push)
        if isinstance(outcome, Raised):
            clause = "contexts.app.current" if op == "push_app" else "contexts.request.current"
            self.violated(clause, f"{actor}: pushing a context of app{app} {outcome.describe()}")
            self.lost.add(actor.name)
            return
        if op == "push_app":
            frame: Frame = self.model.push_app(actor.name, app)
        else:
            frame = self.model.push_request(actor.name, app, path)
        self.pushed[actor.name].append((outcome.value, frame))
        self.changed[actor.name] = op
        self.look(actor, f" (right after {actor} pushed {frame!r})")
        self.others_look(actor, f"pushed {frame!r}")

    def pop(self, actor: Actor) -> None:
        if not self.pushed[actor.name]:
            return
        ctx, frame = self.pushed[actor.name].pop()
        outcome = self.run(actor, ctx.pop)
        if isinstance(outcome, Raised):
            self.violated(
                "contexts.pop.restores",
                f"{actor}: popping {frame!r}, the active one, {outcome.describe()}",
            )
            self.lost.add(actor.name)
            return
        popped = self.model.pop(actor.name)
        assert popped is frame, (popped, frame)
        self.changed[actor.name] = "pop"
        self.look(actor, f" (right after {actor} popped {frame!r})")
        self.others_look(actor, f"popped {frame!r}")

    def write(self, actor: Actor, where: str) -> None:
        token = Token(actor.name)
        if where == "g":
            outcome = self.run(actor, lambda: setattr(self.api.g, NAME, token))
            frame: Optional[Any] = self.model.app_frame(actor.name)
            clause = "contexts.g.app-context"
        else:
            outcome = self.run(actor, lambda: self.api.session.__setitem__(NAME, token))
            frame = self.model.request_frame(actor.name)
            clause = "contexts.session.request"
        if frame is None:
            self.expect_outside(actor, where, outcome, f"{actor}: setting {where}.{NAME}")
            return
        if isinstance(outcome, Raised):
            self.violated(clause, f"{actor}: setting {where}.{NAME} {outcome.describe()}")
            return
        (frame.g if where == "g" else frame.session)[NAME] = token
        self.look(actor, f" (right after {actor} set {where}.{NAME})")
        self.others_look(actor, f"set {where}.{NAME}")

    # -- looking ----------------------------------------------------------------------------
    def view(self) -> dict[str, Outcome]:
        """Everything an actor can see of its contexts (run inside the actor)."""
        api = self.api
        return {
            "current_app": capture(lambda: api.current_app._get_current_object()),
            "g": capture(lambda: api.g.get(NAME)),
            "has_app_context": capture(api.has_app_context),
            "request": capture(lambda: api.request.path),
            "session": capture(lambda: api.session.get(NAME)),
            "has_request_context": capture(api.has_request_context),
        }

    def expected_view(self, actor: str) -> dict[str, Optional[Outcome]]:
        """What the model says each look gives; None for "raises RuntimeError outside"."""
        app_frame = self.model.app_frame(actor)
        request_frame = self.model.request_frame(actor)
        inside_app, inside_request = app_frame is not None, request_frame is not None
        return {
            "current_app": Returned(self.apps[app_frame.app]) if app_frame else None,
            "g": Returned(app_frame.g.get(NAME)) if app_frame else None,
            "has_app_context": Returned(inside_app),
            "request": Returned(request_frame.path) if request_frame else None,
            "session": Returned(request_frame.session.get(NAME)) if request_frame else None,
            "has_request_context": Returned(inside_request),
        }

    def look(
        self,
        actor: Actor,
        cause: str,
        reason: Optional[str] = None,
        blame: Optional[Mapping[str, str]] = None,
    ) -> None:
        """``actor`` looks at everything; each observation must be the model's. ``reason``
        names the clause any mismatch breaks; ``blame`` the clause of some observations."""
        outcome = self.run(actor, self.view)
        if isinstance(outcome, Raised):  # the view itself captures; only a crash lands here
            self.violated("contexts.app.current", f"{actor}: looking {outcome.describe()}")
            return
        expected = self.expected_view(actor.name)
        for what, seen in outcome.value.items():
            problem = self.mismatch(what, expected[what], seen)
            if problem:
                clause = reason or (blame or {}).get(what) or self.diagnose(actor, what, seen)
                self.violated(clause, f"{actor}: {what} {problem}{cause}")

    def others_look(self, changer: Actor, what: str) -> None:
        """After ``changer`` changed its contexts, every other actor still sees its own:
        isolation's postcondition, checked at the step that would break it."""
        if not self.target.startswith("contexts.isolation."):
            return
        for other in self.live:
            if other is not changer and other.name not in self.lost:
                kind = isolation_kind(other.kind, changer.kind)
                clause = f"contexts.isolation.{kind}"
                self.look(other, f" (right after {changer} {what})", reason=clause)

    def mismatch(self, what: str, expected: Optional[Outcome], seen: Outcome) -> str:
        """How ``seen`` differs from ``expected``; empty if it does not."""
        if expected is None:
            message = OUTSIDE_MESSAGES[LOOKS[what]]
            if isinstance(seen, Raised) and seen.type is RuntimeError:
                if str(seen.error).startswith(message):
                    return ""
                return f"{seen.describe()}, expected a message starting {message!r}"
            return f"{seen.describe()}, expected RuntimeError: {message}"
        assert isinstance(expected, Returned)
        if isinstance(seen, Raised):
            return f"{seen.describe()}, expected it to return {expected.value!r}"
        same = seen.value == expected.value if what == "request" else seen.value is expected.value
        return "" if same else f"is {seen.value!r}, expected {expected.value!r}"

    def expect_outside(self, actor: Actor, where: str, outcome: Outcome, doing: str) -> None:
        needs = LOOKS[where]
        problem = self.mismatch(where, None, outcome)
        if problem:
            self.violated(f"contexts.outside.{needs}", f"{doing} {problem}")

    # -- diagnosis --------------------------------------------------------------------------
    def diagnose(self, actor: Actor, what: str, seen: Outcome) -> str:
        """Which clause a wrong observation of ``what`` by ``actor`` breaks."""
        other = self.owner(seen)
        if other is not None and other != actor.name:
            return f"contexts.isolation.{isolation_kind(actor.kind, self.model.kinds[other])}"
        needs = LOOKS[what]
        frame = (self.model.app_frame if needs == "app" else self.model.request_frame)(actor.name)
        changed = self.changed[actor.name]
        if changed == "pop":
            return "contexts.pop.restores"
        if frame is None:
            if changed == "none" and actor.kind != "main" and isinstance(seen, Returned):
                return f"contexts.isolation.{isolation_kind(actor.kind, 'main')}"
            return f"contexts.outside.{needs}"
        if what == "session":
            return "contexts.session.request"
        if needs == "app":
            if changed == "push_request":
                return "contexts.request.implicit-app"
            return "contexts.g.app-context" if what == "g" else "contexts.app.current"
        return "contexts.request.current"

    def owner(self, seen: Outcome) -> Optional[str]:
        """The actor a seen token or request path belongs to, if it tells."""
        if not isinstance(seen, Returned):
            return None
        owner = None
        if isinstance(seen.value, Token):
            owner = self.model.owner_of_token(seen.value) or seen.value.writer
        elif isinstance(seen.value, str):
            owner = self.path_owner.get(seen.value)
        return owner if owner in self.model.kinds else None  # not from an earlier example


@dataclass(eq=False)
class Copied:
    """A function made by copy_current_request_context, and what it was copied from: the
    objects its calls must see again (spec: contexts.copy.request)."""

    origin: str
    frame: RequestFrame
    function: Callable[[], dict[str, Outcome]]
    request: Any
    session: Any
    g: Any  # the g of the app context active where it was made
    calls: int = 0


class CopyingContextsMachine(ContextsMachine):
    """The machine of the copy_current_request_context clauses: it also copies, and calls
    what it copied in any actor, right away (contexts.copy.request)."""

    @rule(source=any_actor, caller=any_actor)
    def copy_and_call(self, source: Union[str, Actor], caller: Union[str, Actor]) -> None:
        copied = self.make(self.resolve(source))
        if copied is not None:
            self.call(copied, self.resolve(caller))

    def make(self, origin: Actor) -> Optional[Copied]:
        """``origin`` copies its request context; None if it has none (or cannot)."""
        if origin.name in self.lost:
            return None
        api = self.api
        holder: dict[str, Any] = {}

        def body() -> dict[str, Outcome]:
            seen = self.view()
            seen.update(self.identities())
            # Both are written, so that the caller and the origin can be asked afterwards
            # whose session and whose g the copy had.
            api.session[NAME] = holder["session_token"]
            setattr(api.g, NAME, holder["g_token"])
            return seen

        def make() -> tuple[Any, dict[str, Outcome]]:
            function = api.copy_current_request_context(body)
            # What the copy must share: the objects active where it was made.
            return function, self.identities()

        made = self.run(origin, make)
        frame = self.model.request_frame(origin.name)
        if frame is None:
            # The type, not the message: Flask 2.0's says "This decorator can only be used".
            if not (isinstance(made, Raised) and made.type is RuntimeError):
                self.violated(
                    "contexts.copy.outside",
                    f"{origin}: copy_current_request_context outside a request "
                    f"{made.describe()}, expected RuntimeError",
                )
            return None
        if isinstance(made, Raised):
            self.violated("contexts.copy.request", f"{origin}: copying {made.describe()}")
            return None
        function, objects = made.value
        request, session, g = (
            _value(objects[what]) for what in ("request_object", "session_object", "g_object")
        )
        copied = Copied(origin.name, frame, function, request, session, g)
        holder["copied"] = copied
        self.holders[id(copied)] = holder
        return copied

    def identities(self) -> dict[str, Any]:
        """The objects behind the globals, where they are bound (run inside the actor)."""
        api = self.api
        return {
            "request_object": capture(lambda: api.request._get_current_object()),
            "environ": capture(lambda: api.request.environ),
            "session_object": capture(lambda: api.session._get_current_object()),
            "g_object": capture(lambda: api.g._get_current_object()),
        }

    def clause_of_call(self, copied: Copied) -> str:
        """A first call while the copied context is still pushed is contexts.copy.request's;
        a call after it was popped, or a call again, is contexts.copy.later's."""
        frames = self.model.frames.get(copied.origin, [])
        first_while_pushed = copied.calls == 0 and any(f is copied.frame for f in frames)
        return "contexts.copy.request" if first_while_pushed else "contexts.copy.later"

    def call(self, copied: Copied, runner: Actor) -> None:
        if runner.name in self.lost:
            return
        clause = self.clause_of_call(copied)
        holder = self.holders[id(copied)]
        holder["session_token"] = session_token = Token(runner.name)
        holder["g_token"] = g_token = Token(runner.name)
        before = self.run(runner, lambda: self.api.g._get_current_object())
        called = self.run(runner, copied.function)
        copied.calls += 1
        # The copy is pushed like any request context, then popped again.
        frame = copied.frame
        caller_app = self.model.app_frame(runner.name)
        copy = self.model.push_request(runner.name, frame.app, frame.path, frame.session)
        expected = self.expected_view(runner.name)
        used_callers = copy.brought is None  # it used the caller's app context and g
        self.model.pop(runner.name)
        where = f"{runner}, in a function copied from {copied.origin}'s {frame!r}"
        if isinstance(called, Raised):
            self.violated(clause, f"{where}: calling it {called.describe()}")
            return
        for what, seen in called.value.items():
            if what in COPY_IDENTITIES:
                problem = self.identity_mismatch(what, seen, copied, before, used_callers)
            else:
                problem = self.mismatch(what, expected[what], seen)
            if problem:
                self.violated(clause, f"{where}: {what} {problem}")
        copy.session[NAME] = session_token
        if used_callers and caller_app is not None:
            caller_app.g[NAME] = g_token  # otherwise the copy's own g was popped with it
        # What the copy wrote must have reached the session it shares and the g it used,
        # and nothing else: the caller and the origin look, blaming the copy for that.
        blame = {"session": clause, "g": clause}
        self.look(
            runner, f" (after {runner} called the copy and set session and g in it)", blame=blame
        )
        if copied.origin != runner.name and copied.origin in self.model.frames:
            origin = next(a for a in self.live if a.name == copied.origin)
            if origin.name not in self.lost:
                self.look(origin, f" (after {runner} set session.{NAME} in the copy)", blame=blame)

    def identity_mismatch(
        self, what: str, seen: Outcome, copied: Copied, before: Outcome, used_callers: bool
    ) -> str:
        """How an object seen in the copy differs from the one it must be; empty if not."""
        if isinstance(seen, Raised):
            return f"{seen.describe()}, expected the object copied"
        if what == "g_object":
            callers = _value(before)
            if used_callers:
                ok = seen.value is callers
                return "" if ok else "is not the caller's g, though the copy used its app context"
            if seen.value is copied.g or (callers is not None and seen.value is callers):
                whose = "the copying context's" if seen.value is copied.g else "the caller's"
                return f"is {whose} g, expected a new one for the copy's own app context"
            return ""
        if what == "environ":
            ok = seen.value is getattr(copied.request, "environ", None)
            return "" if ok else "is not the copied request's environ"
        original = copied.request if what == "request_object" else copied.session
        thing = "request" if what == "request_object" else "session"
        ok = original is not None and seen.value is original
        return "" if ok else f"is not the {thing} object copied (a new one with equal contents)"


def _value(outcome: Outcome) -> Any:
    """What an operation returned; None if it raised."""
    return outcome.value if isinstance(outcome, Returned) else None


class LaterCopyingContextsMachine(CopyingContextsMachine):
    """The machine of contexts.copy.later: copies are kept, and called later (after the
    copied context was popped, or its actor ended) and again."""

    #: Most copies kept at once.
    KEPT = 3

    @rule(source=any_actor, app=apps, end=st.booleans())
    def copy_and_keep(self, source: Union[str, Actor], app: int, end: bool) -> None:
        """``source`` copies its request context (pushing one of ``app`` first if it has
        none), keeps the copy, and with ``end`` pops its latest context right away: one
        step to a copy whose request has ended, which a search must otherwise stumble on."""
        origin = self.resolve(source)
        if origin.name in self.lost:
            return
        if self.model.request_frame(origin.name) is None:
            self.push(origin, "push_request", app)
        copied = self.make(origin)
        if copied is not None:
            self.kept = [*self.kept, copied][-self.KEPT :]
            if end:
                self.pop(origin)

    @rule(caller=any_actor, which=st.integers(min_value=0, max_value=KEPT - 1))
    def call_kept(self, caller: Union[str, Actor], which: int) -> None:
        if self.kept:
            self.call(self.kept[which % len(self.kept)], self.resolve(caller))


class WrongPoppingContextsMachine(ContextsMachine):
    """The machine of contexts.pop.wrong: an actor pops a context that is not the active
    one. What is left of its contexts then is unspecified, so the actor is done with."""

    @rule(actor=any_actor, which=st.integers(min_value=0, max_value=7))
    def pop_wrong(self, actor: Union[str, Actor], which: int) -> None:
        actor = self.resolve(actor)
        if actor.name in self.lost:
            return
        candidates = [
            (ctx, frame)
            for index, (ctx, frame) in enumerate(self.pushed[actor.name])
            if any(type(later) is type(frame) for _, later in self.pushed[actor.name][index + 1 :])
        ]
        if not candidates:
            return
        ctx, frame = candidates[which % len(candidates)]
        outcome = self.run(actor, ctx.pop)
        self.lost.add(actor.name)
        if not (isinstance(outcome, Raised) and outcome.type is AssertionError):
            self.violated(
                "contexts.pop.wrong",
                f"{actor}: popping {frame!r}, which is not the active one, "
                f"{outcome.describe()}; expected AssertionError",
            )


named_like(CopyingContextsMachine, ContextsMachine)
named_like(LaterCopyingContextsMachine, ContextsMachine)
named_like(WrongPoppingContextsMachine, ContextsMachine)
