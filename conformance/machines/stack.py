"""The LocalStack machine: actors push, pop and read the top of one stack.

Clauses: spec/localstack.md. As in the Local machine, every item is a fresh Token that
remembers who pushed it, so a wrong observation names the clause it breaks.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any, Optional, Union

from hypothesis import strategies as st
from hypothesis.stateful import rule

from ..model import StackModel, Token, isolation_kind
from ..outcome import Outcome, Raised, Returned
from ..profiles import until
from ..scheduler import Actor
from .base import ConformanceMachine, any_actor, named_like


class StackMachine(ConformanceMachine):
    ACTOR_KINDS = {
        "stack.isolation.thread": ("thread",),
        "stack.isolation.greenlet": ("greenlet",),
        "stack.isolation.task": ("task",),
        "stack.isolation.task-shared-pop": ("task",),
    }

    @classmethod
    def for_target(cls, target: str) -> type[ConformanceMachine]:
        return CollectingStackMachine if target == "stack.pop.release" else cls

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__(adapter, target, hang_timeout)
        self.stack = adapter.new_stack()
        # Werkzeug 2.0/2.1 share a task's inherited stack list until it is pushed to.
        self.shared_pop = adapter.profile in until("2.0")
        self.model = StackModel(shared_pop=self.shared_pop)
        self.popped: list[weakref.ref[Token]] = []
        self.popped_by: dict[int, str] = {}  # id(token) -> the actor whose pop removed it

    def on_spawn(self, actor: Actor, parent: Actor) -> None:
        self.model.spawn(actor.name, actor.kind, parent.name)

    def on_finish(self, actor: Actor) -> None:
        self.model.finish(actor.name)

    # -- rules ----------------------------------------------------------------------------
    # One rule, the operation an argument: swarm testing disables whole rules per example.
    @rule(op=st.sampled_from(("push", "pop", "top")), actor=any_actor)
    def act(self, op: str, actor: Union[str, Actor]) -> None:
        getattr(self, op)(self.resolve(actor))

    def push(self, actor: Actor) -> None:
        token = Token(actor.name)
        outcome = actor.run(lambda: self.stack.push(token))
        if isinstance(outcome, Raised):
            self.violated("stack.push.top", f"{actor}: push {outcome.describe()}")
        self.model.push(actor.name, token)
        self.others_see_their_own_top(actor, "pushed")

    def top(self, actor: Actor, cause: str = "") -> None:
        outcome = actor.run(lambda: self.stack.top)
        expected = self.model.top(actor.name)
        if not self.matches(outcome, expected):
            clause, message = self.diagnose(actor, "top", expected, outcome)
            self.violated(clause, message + cause)
            self.adopt(actor, outcome, popped=False)

    def others_see_their_own_top(self, changer: Actor, what: str) -> None:
        """After ``changer`` pushed or popped, every other actor still sees its own top:
        isolation's postcondition, checked at the step that would break it."""
        if not self.target.startswith("stack.isolation."):
            return
        for other in self.live:
            if other is not changer:
                self.top(other, cause=f" (checked right after {changer} {what})")

    def pop(self, actor: Actor) -> None:
        outcome = actor.run(self.stack.pop)
        expected = self.model.top(actor.name)
        if self.matches(outcome, expected):
            self.model.pop(actor.name)
            if expected is not None:
                self.popped.append(weakref.ref(expected))
                self.popped_by[id(expected)] = actor.name
        else:
            self.violated(*self.diagnose(actor, "pop", expected, outcome))
            self.adopt(actor, outcome, popped=True)
        del outcome, expected  # the popped item must not be kept alive by this frame
        self.others_see_their_own_top(actor, "popped")

    # -- diagnosis ------------------------------------------------------------------------
    @staticmethod
    def matches(outcome: Outcome, expected: Optional[Token]) -> bool:
        return isinstance(outcome, Returned) and outcome.value is expected

    def diagnose(
        self, actor: Actor, op: str, expected: Optional[Token], outcome: Outcome
    ) -> tuple[str, str]:
        seen = f"{actor}: {op} {outcome.describe()}, expected {expected!r}"
        mine = self.model.stacks[actor.name]
        value = outcome.value if isinstance(outcome, Returned) else None
        if expected is None:
            if isinstance(value, Token) and value not in mine and value.writer != actor.name:
                return self.isolation(actor, value.writer), seen
            if isinstance(value, Token):
                return "stack.pop.last", seen + " (the stack should be empty)"
            return "stack.pop.empty", seen
        if isinstance(value, Token) and value.writer != actor.name and value not in mine:
            return self.isolation(actor, value.writer), seen
        popper = self.popped_by.get(id(value)) if isinstance(value, Token) else None
        if popper is not None and popper != actor.name and value not in mine:
            # Still here after another actor popped it: their pop should (or should not,
            # for shared-pop stacks) have reached this stack.
            return self.isolation(actor, popper), seen + f" ({popper} popped it)"
        if expected.writer != actor.name:  # an inherited item went missing: only tasks inherit
            return self.isolation(actor, expected.writer), seen
        if (
            isinstance(value, Token)
            and value not in mine
            and not any(value in stack for stack in self.model.stacks.values())
        ):
            return "stack.pop.lifo", seen + " (an item already popped)"
        return ("stack.pop.lifo" if op == "pop" else "stack.push.top"), seen

    def isolation(self, reader: Actor, other: str) -> str:
        kind = isolation_kind(reader.kind, self.model.kinds[other])
        if kind == "task" and self.shared_pop:
            return "stack.isolation.task-shared-pop"
        return f"stack.isolation.{kind}"

    def adopt(self, actor: Actor, outcome: Outcome, popped: bool) -> None:
        """Resynchronise this actor's model stack with what it observed."""
        value = outcome.value if isinstance(outcome, Returned) else None
        stack = self.model.stacks[actor.name]
        if isinstance(value, Token) and value in stack:
            stack = stack[: stack.index(value) + 1]
        elif isinstance(value, Token):
            stack = [*stack, value]
        else:
            stack = []
        self.model.stacks[actor.name] = stack[:-1] if popped and stack else stack


class CollectingStackMachine(StackMachine):
    """The machine of ``stack.pop.release``: it also checks that popped items are freed."""

    @rule()
    def collect(self) -> None:
        """Popped items that no stack holds any more must be freed."""
        live = self.model.live_tokens()
        if any(ref() is not None and id(ref()) not in live for ref in self.popped):
            gc.collect()  # only when something is suspect: a full collection is slow
        for ref in self.popped:
            token = ref()
            if token is not None and id(token) not in live:
                self.violated(
                    "stack.pop.release",
                    f"{token} was popped and is held by no stack, yet it is still alive",
                )


named_like(CollectingStackMachine, StackMachine)
