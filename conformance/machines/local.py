"""The Local machine: actors set, read, delete and release names on one Local.

Clauses: spec/local.md. Every value stored is a fresh Token that remembers who stored
it, so a wrong read tells its own story: another actor's token is an isolation leak, a
token this actor replaced is a lost write, nothing at all where the model has a value is
a lost value.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Sequence
from typing import Any, Optional, Union

from hypothesis import strategies as st
from hypothesis.stateful import rule

from ..model import LocalModel, Token, isolation_kind
from ..outcome import Outcome, Raised, Returned
from ..scheduler import Actor
from .base import ConformanceMachine, any_actor, named_like

#: Names the machine stores: ordinary identifiers that an implementation could shadow with
#: its own attributes or methods (spec: local.attr.roundtrip covers any name that does not
#: start with an underscore). Few of them, so that actors often touch the same name.
NAMES = ("ctx_alpha", "storage", "get")

names = st.sampled_from(NAMES)


class LocalMachine(ConformanceMachine):
    ACTOR_KINDS = {
        "local.isolation.thread": ("thread",),
        "local.isolation.greenlet": ("greenlet",),
        "local.isolation.task": ("task",),
        "local.release": ("greenlet", "thread", "task"),
        "local.lifetime.thread": ("thread",),
        "local.lifetime.greenlet": ("greenlet",),
        "local.lifetime.task": ("task",),
    }

    @classmethod
    def for_target(cls, target: str) -> type[ConformanceMachine]:
        return IteratingLocalMachine if target == "local.iter" else cls

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__(adapter, target, hang_timeout)
        self.local = adapter.new_local()
        self.model = LocalModel()
        # Weak references to every token stored, to check what ending an actor frees.
        self.stored: list[weakref.ref[Token]] = []

    # -- actors ---------------------------------------------------------------------------
    def on_spawn(self, actor: Actor, parent: Actor) -> None:
        self.model.spawn(actor.name, actor.kind, parent.name)

    def on_finish(self, actor: Actor) -> None:
        self.model.finish(actor.name)
        if not self.target.startswith("local.lifetime."):
            return
        live = self.model.live_tokens()
        if any(ref() is not None and id(ref()) not in live for ref in self.stored):
            gc.collect()  # only when something is suspect: a full collection is slow
        for ref in self.stored:
            token = ref()
            if token is None or id(token) in live or token.writer in self.model.storage:
                continue  # freed, still held by a live actor, or its writer still runs
            writer_kind = self.model.kinds[token.writer]
            self.violated(
                f"local.lifetime.{writer_kind}",
                f"{token} is still alive after {token.writer} ended, and no live actor "
                "holds it: the Local keeps it",
            )

    def teardown(self) -> None:
        """For a lifetime clause, every example ends by ending its actors and checking what
        they stored is freed: the check must not depend on a ``finish`` step being drawn."""
        try:
            if self.target.startswith("local.lifetime."):
                for actor in list(self.live[1:]):
                    self.finish_actor(actor)
        finally:
            super().teardown()

    # -- rules ----------------------------------------------------------------------------
    # One rule for every operation, the operation an argument: Hypothesis's swarm testing
    # disables whole rules per example, and these bugs need several operations together.
    @rule(op=st.sampled_from(("set", "get", "delete", "release")), actor=any_actor, name=names)
    def act(self, op: str, actor: Union[str, Actor], name: str) -> None:
        actor = self.resolve(actor)
        if op == "release":
            self.release(actor)
        else:
            getattr(self, op)(actor, name)

    def set(self, actor: Actor, name: str) -> None:
        token = Token(actor.name)
        self.stored.append(weakref.ref(token))
        outcome = actor.run(lambda: setattr(self.local, name, token))
        if isinstance(outcome, Raised):
            self.violated(
                "local.attr.roundtrip",
                f"{actor}: setting {name!r} {outcome.describe()}",
            )
        self.model.set(actor.name, name, token)
        self.others_still_see_their_own(actor, [name], f"set {name!r}")

    def get(self, actor: Actor, name: str, cause: str = "") -> None:
        outcome = actor.run(lambda: getattr(self.local, name))
        expected = self.model.get(actor.name, name)
        if isinstance(outcome, Returned) and expected is not None and outcome.value is expected:
            return
        if isinstance(outcome, Raised) and expected is None:
            if outcome.type is not AttributeError:
                self.violated(
                    "local.attr.missing",
                    f"{actor}: reading unset {name!r} {outcome.describe()}, "
                    "expected AttributeError",
                )
            elif name not in str(outcome.error):
                self.violated(
                    "local.attr.missing",
                    f"{actor}: the AttributeError for unset {name!r} does not name it: "
                    f"{outcome.error!s}",
                )
            return
        clause, message = self.diagnose_read(actor, name, expected, outcome)
        self.violated(clause, message + cause)
        self.adopt(actor, name, outcome)

    def others_still_see_their_own(self, writer: Actor, names: Sequence[str], what: str) -> None:
        """After ``writer`` changed something, every other actor still reads its own values:
        the postcondition of isolation and of release, checked at the step that breaks it.
        Only for those targets: adopting a leaked value would hide a lifetime failure."""
        if not self.target.startswith(("local.isolation.", "local.release")):
            return
        for other in self.live:
            if other is not writer:
                for name in names:
                    self.get(other, name, cause=f" (checked right after {writer} {what})")

    def delete(self, actor: Actor, name: str) -> None:
        outcome = actor.run(lambda: delattr(self.local, name))
        expected = self.model.get(actor.name, name)
        if expected is not None and isinstance(outcome, Raised):
            clause = self.diagnose_read(actor, name, expected, outcome)[0]
            self.violated(
                clause, f"{actor}: deleting {name!r} (set to {expected}) {outcome.describe()}"
            )
        elif expected is None and isinstance(outcome, Returned):
            other = self.model.last_change_by_other(actor.name, name)
            clause = (
                self.isolation_clause(actor, other.actor)
                if other is not None and other.action == "set"
                else "local.attr.delete"
            )
            self.violated(
                clause, f"{actor}: deleting unset {name!r} succeeded; expected AttributeError"
            )
        elif (
            expected is None and isinstance(outcome, Raised) and outcome.type is not AttributeError
        ):
            self.violated(
                "local.attr.delete",
                f"{actor}: deleting unset {name!r} {outcome.describe()}, expected AttributeError",
            )
        self.model.delete(actor.name, name)
        self.others_still_see_their_own(actor, [name], f"deleted {name!r}")

    def release(self, actor: Actor) -> None:
        outcome = actor.run(lambda: self.adapter.release_local(self.local))
        if isinstance(outcome, Raised):
            self.violated("local.release", f"{actor}: releasing {outcome.describe()}")
        self.model.release(actor.name)
        self.others_still_see_their_own(actor, NAMES, "released")
        if self.target == "local.release":  # and the releaser itself sees nothing
            for name in NAMES:
                self.get(actor, name, cause=f" (checked right after {actor} released)")

    # -- diagnosis ------------------------------------------------------------------------
    def isolation_clause(self, reader: Actor, other: str) -> str:
        return f"local.isolation.{isolation_kind(reader.kind, self.model.kinds[other])}"

    def diagnose_read(
        self, actor: Actor, name: str, expected: Optional[Token], outcome: Outcome
    ) -> tuple[str, str]:
        """Which clause a wrong read of ``name`` by ``actor`` breaks, and why."""
        seen = f"{actor}: reading {name!r} {outcome.describe()}, expected " + (
            f"{expected}" if expected is not None else "AttributeError"
        )
        value = outcome.value if isinstance(outcome, Returned) else None
        if isinstance(value, Token):
            if value.writer != actor.name:
                # Another actor's value. Inherited ones were in the model, so this is a leak.
                return self.isolation_clause(actor, value.writer), seen
            if expected is None:
                own = [
                    e for e in self.model.log if e.actor == actor.name and e.name in (name, None)
                ]
                if own and own[-1].action == "release":
                    return "local.release", seen
                return "local.attr.delete", seen
            return "local.attr.roundtrip", seen
        if expected is not None:
            other = self.model.last_change_by_other(actor.name, name)
            if other is not None and other.action == "release":
                return "local.release", seen + f" (after {other.actor} released)"
            if other is not None:
                return self.isolation_clause(actor, other.actor), seen + (
                    f" (after {other.actor} did {other.action})"
                )
            if expected.writer != actor.name:
                # An inherited value is missing: only a task inherits.
                return self.isolation_clause(actor, expected.writer), seen
            return "local.attr.roundtrip", seen
        return "local.attr.missing", seen

    def adopt(self, actor: Actor, name: str, outcome: Outcome) -> None:
        """Let the model follow an observation that another clause's run will judge."""
        storage = self.model.storage[actor.name]
        if isinstance(outcome, Returned) and isinstance(outcome.value, Token):
            storage[name] = outcome.value
        else:
            storage.pop(name, None)


class IteratingLocalMachine(LocalMachine):
    """The machine of ``local.iter``: it also iterates."""

    @rule(actor=any_actor)
    def iterate(self, actor: Union[str, Actor]) -> None:
        actor = self.resolve(actor)
        outcome = actor.run(lambda: list(iter(self.local)))
        expected = self.model.storage[actor.name]
        if isinstance(outcome, Raised):
            self.violated("local.iter", f"{actor}: iterating {outcome.describe()}")
            return
        pairs = outcome.value
        ok = (
            all(isinstance(p, tuple) and len(p) == 2 for p in pairs)
            and len(pairs) == len(expected)
            and all(expected.get(n) is v for n, v in pairs)
        )
        if not ok:
            self.violated(
                "local.iter",
                f"{actor}: iterating gave {pairs!r}, expected the pairs of "
                f"{dict(expected)!r} in any order",
            )


named_like(IteratingLocalMachine, LocalMachine)
