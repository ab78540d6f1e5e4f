"""What every machine shares: its adapter, its target clause, its actors.

A machine is built for one *target* clause. It runs only the actors and rules that clause
needs, and compares every observation with the model. A mismatch is *diagnosed*: the
machine works out which clause the observation breaks. A violation of the target clause
fails the run; any other clause is checked by its own run, so here the model just adopts
what was observed and goes on. That keeps every failure attributed to the right clause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

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

actor_index = st.integers(min_value=0, max_value=MAX_ACTORS)


class ConformanceMachine(RuleBasedStateMachine):
    """Base machine: actors, spawning and finishing, and the check/diagnose protocol."""

    #: Clause ID -> kinds of actor its runs spawn (absent: only the main actor).
    ACTOR_KINDS: Mapping[str, tuple[str, ...]] = {}

    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__()
        self.adapter = adapter
        self.target = target
        self.kinds: Sequence[str] = self.ACTOR_KINDS.get(target, ())
        self.scheduler = Scheduler(hang_timeout=hang_timeout)

    # -- actors ---------------------------------------------------------------------------
    @property
    def actors(self) -> list[Actor]:
        return self.scheduler.actors

    def pick(self, index: int) -> Actor:
        """Index 0 is the newest actor: where interleaving bugs live, and what shrinks."""
        return self.actors[-1 - index % len(self.actors)]

    def on_spawn(self, actor: Actor, parent: Actor) -> None:
        """Tell the model about a new actor."""

    def on_finish(self, actor: Actor) -> None:
        """Tell the model an actor ended, and check what ending it must free."""

    @initialize(kinds=st.lists(st.integers(0, 2), min_size=1, max_size=2))
    def start(self, kinds: list[int]) -> None:
        """Begin with actors already there: swarm testing may disable ``spawn`` itself."""
        if self.kinds:
            for kind in kinds:
                self.spawn(kind, parent=0)

    @precondition(lambda self: bool(self.kinds) and len(self.actors) <= MAX_ACTORS)
    @rule(kind=st.integers(0, 2), parent=actor_index)
    def spawn(self, kind: int, parent: int) -> None:
        chosen = self.kinds[kind % len(self.kinds)]
        creators = [a for a in self.actors if a.kind in SPAWNED_FROM[chosen]]
        creator = creators[parent % len(creators)]
        actor = self.scheduler.spawn(chosen, parent=creator)
        self.on_spawn(actor, creator)

    @precondition(lambda self: len(self.actors) > 1)
    @rule(index=actor_index)
    def finish(self, index: int) -> None:
        actor = self.actors[-1 - index % (len(self.actors) - 1)]
        self.scheduler.finish(actor)
        self.on_finish(actor)

    def teardown(self) -> None:
        self.scheduler.close()

    # -- checking -------------------------------------------------------------------------
    def violated(self, clause: str, message: str) -> bool:
        """Report a violation of ``clause``: fatal for the target, otherwise noted.

        Returns False so that callers can write ``if bad: self.violated(...)`` and then let
        the model adopt the observation."""
        if clause == self.target:
            raise ClauseViolation(clause, message)
        return False
