"""What every machine shares: its adapter, its target clause, its actors.

A machine is built for one *target* clause. It runs only the actors and rules that clause
needs, and compares every observation with the model. A mismatch is *diagnosed*: the
machine works out which clause the observation breaks. A violation of the target clause
fails the run; any other clause is checked by its own run, so here the model just adopts
what was observed and goes on. That keeps every failure attributed to the right clause.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    precondition,
    rule,
)

from ..scheduler import Actor, Scheduler
from ..violation import ClauseViolation

#: Most actors alive at once besides main: enough for every interleaving of three.
MAX_ACTORS = 4

#: Which kinds of actor may create an actor of each kind. A greenlet must be created on the
#: main thread; a task on the event loop's thread.
SPAWNED_FROM: Mapping[str, tuple[str, ...]] = {
    "greenlet": ("main", "greenlet"),
    "thread": ("main", "greenlet", "thread", "task"),
    "task": ("main", "greenlet", "task"),
}

#: The driver's own actor, as it appears in programs.
MAIN = "main"

#: Actors are a Bundle, so a shrunk program names them (``actors_0``) and deleting a step
#: never changes which actor a later step means.
actors = Bundle("actors")

#: Any live actor: main, or one spawned and not yet finished.
any_actor = st.just(MAIN) | actors

#: Kept for machines with a single actor: index into the live actors, 0 the newest.
actor_index = st.integers(min_value=0, max_value=MAX_ACTORS)


class ConformanceMachine(RuleBasedStateMachine):
    """Base machine: the adapter, the target clause, the actors, and the check protocol."""

    #: Clause ID -> kinds of actor its runs spawn (absent: only the main actor).
    ACTOR_KINDS: Mapping[str, tuple[str, ...]] = {}

    @classmethod
    def for_target(cls, target: str) -> type[ConformanceMachine]:
        """The class whose rules a run about ``target`` uses: ``cls``, or a subclass with rules
        only that clause needs. A rule whose precondition is false for a whole run must not
        exist at all: it makes Hypothesis's shrinker misalign the steps it deletes."""
        return cls

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__()
        self.adapter = adapter
        self.target = target
        self.scheduler = Scheduler(hang_timeout=hang_timeout)

    # -- actors ---------------------------------------------------------------------------
    @property
    def live(self) -> list[Actor]:
        return self.scheduler.actors

    def resolve(self, actor: Union[str, Actor]) -> Actor:
        return self.scheduler.main if actor == MAIN else actor  # type: ignore[return-value]

    def pick(self, index: int) -> Actor:
        return self.live[-1 - index % len(self.live)]

    def on_spawn(self, actor: Actor, parent: Actor) -> None:
        """Tell the model about a new actor."""

    def on_finish(self, actor: Actor) -> None:
        """Tell the model an actor ended, and check what ending it must free."""

    def spawn_actor(self, kind: str, parent: Union[str, Actor]) -> Actor:
        creator = self.resolve(parent)
        # A greenlet cannot be created on another thread, nor a task off the loop's thread.
        assume(creator.kind in SPAWNED_FROM[kind])
        actor = self.scheduler.spawn(kind, parent=creator)
        self.on_spawn(actor, creator)
        return actor

    def finish_actor(self, actor: Actor) -> None:
        self.scheduler.finish(actor)
        self.on_finish(actor)

    def teardown(self) -> None:
        self.scheduler.close()

    # -- checking -------------------------------------------------------------------------
    def violated(self, clause: str, message: str) -> bool:
        """Report a violation of ``clause``: fatal for the target, otherwise noted.

        Returns False so that callers can go on and let the model adopt the observation."""
        if clause == self.target:
            raise ClauseViolation(clause, message)
        return False


def machine_class(base: type[ConformanceMachine], target: str) -> type[ConformanceMachine]:
    """The machine for one target clause: ``base`` plus the rules that create and end the
    kinds of actor the clause is about (none, if it needs only main)."""
    base = base.for_target(target)
    kinds = base.ACTOR_KINDS.get(target, ())
    if not kinds:
        return base
    kind = st.sampled_from(kinds)

    class Targeted(base):  # type: ignore[valid-type,misc]
        @initialize(target=actors, kind=kind)
        def start(self, kind: str) -> Actor:
            """Begin with an actor already there: swarm testing may disable ``spawn``."""
            return self.spawn_actor(kind, MAIN)

        @precondition(lambda self: len(self.live) <= MAX_ACTORS)
        @rule(target=actors, kind=kind, parent=any_actor)
        def spawn(self, kind: str, parent: Union[str, Actor]) -> Actor:
            return self.spawn_actor(kind, parent)

        @rule(actor=consumes(actors))
        def finish(self, actor: Actor) -> None:
            self.finish_actor(actor)

    return named_like(Targeted, base)


def named_like(cls: type, base: type) -> type:
    """Give a per-target subclass its base's name, which is what shrunk programs print
    (``state = LocalMachine()``)."""
    cls.__name__ = cls.__qualname__ = base.__name__
    return cls
