"""A deterministic scheduler for actors: greenlets, threads and asyncio tasks.

Theory of operation
-------------------
A state machine (the *driver*) owns a set of actors. Each actor is a flow of control
of one kind -- the driver itself ("main"), a greenlet, an OS thread, or an asyncio
task -- with its own context (greenlet context, thread state, task context). The driver
hands an actor one operation at a time; the actor runs it *in its own flow of control*
and hands the outcome back. Nothing else runs meanwhile, so which actor runs next is
chosen only by the driver's rules, which Hypothesis draws. An interleaving bug therefore
shrinks to a minimal schedule and replays identically: there are no sleeps and no races
between actors, only handoffs.

* Greenlet actors switch back to the driver after each operation.
* Thread actors take operations from a queue; the driver blocks on the reply. A reply
  that does not come within ``hang_timeout`` seconds is declared a hang (the only
  clock in here, and it never decides an ordering).
* Task actors wait on an asyncio queue; the driver runs the event loop until the reply
  arrives. Only the addressed task has work, so the loop's choice is forced.

An operation run by a greenlet or thread actor may *pause* part-way (``Actor.pause``,
called from inside the operation): control goes back to the driver, which later
``resume``s it. The lifecycle machine pauses a request at every hook, so several requests
are in flight at once and the driver chooses, step by step, which one moves on.

Actors are spawned *from* another actor (``spawn(kind, parent=...)``), which matters
for what they inherit: a task copies its creator's context; a greenlet or a thread
starts with an empty one.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Callable, Optional

import greenlet

from .outcome import Outcome, Raised, Returned, capture

KINDS = ("main", "greenlet", "thread", "task")


class Paused:
    """What ``run`` or ``resume`` returns when the operation paused instead of ending."""

    def __repr__(self) -> str:
        return "PAUSED"


#: The one Paused value.
PAUSED = Paused()

#: What a paused thread actor is handed to go on.
_RESUME = object()


class ActorHung(BaseException):
    """An actor did not hand back an operation's outcome in time.

    A BaseException so that neither the adapter nor Hypothesis swallows it."""


class Actor:
    """One flow of control that runs operations handed to it by the driver."""

    kind = "abstract"

    def __init__(self, name: str) -> None:
        self.name = name
        self.finished = False

    def run(self, operation: Callable[[], Any]) -> Any:
        """Run ``operation`` in this actor and return its outcome (an ``Outcome``), or
        ``PAUSED`` if the operation paused (greenlet and thread actors only)."""
        raise NotImplementedError

    @property
    def paused(self) -> bool:
        """Is an operation of this actor paused, waiting for ``resume``?"""
        return False

    def pause(self) -> None:
        """Called from inside this actor's running operation: hand control back to the
        driver until it calls ``resume``."""
        raise RuntimeError(f"a {self.kind} actor cannot pause")

    def resume(self) -> Any:
        """Go on with the paused operation: its outcome, or ``PAUSED`` again."""
        raise RuntimeError(f"{self.name} has no paused operation")

    def complete(self) -> Outcome:
        """Resume the paused operation until it ends (a paused request must not be left
        half done: its contexts would stay pushed)."""
        outcome = self.resume()
        while outcome is PAUSED:
            outcome = self.resume()
        assert isinstance(outcome, (Returned, Raised))
        return outcome

    def finish(self) -> None:
        """End this actor's flow of control, so that what it owns can be freed."""
        self.finished = True

    def __repr__(self) -> str:
        return self.name


class MainActor(Actor):
    """The driver's own flow of control."""

    kind = "main"

    def run(self, operation: Callable[[], Any]) -> Outcome:
        return capture(operation)


class GreenletActor(Actor):
    """A greenlet that runs each operation, then switches back to whoever asked."""

    kind = "greenlet"

    def __init__(self, name: str, driver: greenlet.greenlet) -> None:
        super().__init__(name)
        # The parent is the driver, not the creating actor: when this greenlet ends, control
        # must return to the driver, never resume an actor suspended mid-handoff.
        self._greenlet: Optional[greenlet.greenlet] = greenlet.greenlet(self._serve, parent=driver)
        self._caller: Optional[greenlet.greenlet] = None
        self._paused = False

    def _serve(self, operation: Optional[Callable[[], Any]]) -> None:
        # No local variable may hold an outcome between operations: it would keep the
        # returned value alive and make a lifetime check blame the implementation.
        while operation is not None:
            assert self._caller is not None
            operation = self._caller.switch(capture(operation))

    def run(self, operation: Callable[[], Any]) -> Any:
        assert self._greenlet is not None, f"{self.name} has finished"
        assert not self._paused, f"{self.name} has a paused operation"
        self._caller = greenlet.getcurrent()
        return self._greenlet.switch(operation)

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        assert greenlet.getcurrent() is self._greenlet, f"pause called outside {self.name}"
        assert self._caller is not None
        self._paused = True
        self._caller.switch(PAUSED)  # back here when resumed

    def resume(self) -> Any:
        if not self._paused or self._greenlet is None:
            return super().resume()
        self._paused = False
        self._caller = greenlet.getcurrent()
        return self._greenlet.switch()

    def finish(self) -> None:
        if self._paused:
            self.complete()
        if self._greenlet is not None and not self._greenlet.dead:
            if self._greenlet:  # started: let it leave its loop
                self._caller = greenlet.getcurrent()
                self._greenlet.switch(None)
            else:  # never started: nothing to unwind
                self._greenlet.throw(greenlet.GreenletExit)
        self._greenlet = None  # drop the greenlet, and with it its context
        super().finish()


class ThreadActor(Actor):
    """An OS thread fed through a queue."""

    kind = "thread"

    def __init__(self, name: str, hang_timeout: float) -> None:
        super().__init__(name)
        self._hang_timeout = hang_timeout
        self._inbox: queue.Queue[Optional[Callable[[], Any]]] = queue.Queue()
        self._outbox: queue.Queue[Any] = queue.Queue()
        self._paused = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            operation = self._inbox.get()
            if operation is None:
                return
            self._outbox.put(capture(operation))

    def run(self, operation: Callable[[], Any]) -> Any:
        assert not self._paused, f"{self.name} has a paused operation"
        self._inbox.put(operation)
        return self._reply()

    def _reply(self) -> Any:
        try:
            return self._outbox.get(timeout=self._hang_timeout)
        except queue.Empty:
            raise ActorHung(f"{self.name} gave no answer within {self._hang_timeout:g} s") from None

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        assert threading.current_thread() is self._thread, f"pause called outside {self.name}"
        self._paused = True
        self._outbox.put(PAUSED)
        handed = self._inbox.get()  # nothing runs here until the driver resumes us
        assert handed is _RESUME

    def resume(self) -> Any:
        if not self._paused:
            return super().resume()
        self._paused = False
        self._inbox.put(_RESUME)  # type: ignore[arg-type]
        return self._reply()

    def finish(self) -> None:
        if self._paused:
            self.complete()
        if not self.finished:
            self._inbox.put(None)
            self._thread.join(self._hang_timeout)
            if self._thread.is_alive():
                raise ActorHung(f"{self.name} did not end within {self._hang_timeout:g} s")
        super().finish()


class TaskActor(Actor):
    """An asyncio task on the scheduler's event loop.

    Created while its parent runs, so the task copies the parent's context, as any task
    created by that code would. Handoffs use bare futures of the scheduler's loop (an
    ``asyncio.Queue`` made outside a running loop binds the wrong loop on Python 3.9)."""

    kind = "task"

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop, hang_timeout: float) -> None:
        super().__init__(name)
        self._loop = loop
        self._hang_timeout = hang_timeout
        self._wakeup: asyncio.Future[Optional[Callable[[], Any]]] = loop.create_future()
        self._done: Optional[asyncio.Future[Outcome]] = None
        self._task: Optional[asyncio.Task[None]] = loop.create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            operation = await self._wakeup
            if operation is None:
                return
            done, self._wakeup = self._done, self._loop.create_future()
            assert done is not None
            done.set_result(capture(operation))  # held by no local variable afterwards
            del done, operation

    def run(self, operation: Callable[[], Any]) -> Outcome:
        self._done = self._loop.create_future()
        self._wakeup.set_result(operation)
        outcome: Outcome = self._wait(self._done)
        self._done = None
        return outcome

    def _wait(self, awaitable: Any) -> Any:
        try:
            return self._loop.run_until_complete(asyncio.wait_for(awaitable, self._hang_timeout))
        except asyncio.TimeoutError:
            raise ActorHung(f"{self.name} gave no answer within {self._hang_timeout:g} s") from None

    def finish(self) -> None:
        if self._task is not None:
            self._wakeup.set_result(None)
            self._wait(self._task)
            self._task = None  # a finished task holds its context until it is dropped
        super().finish()


class Scheduler:
    """Owns the actors of one state-machine run, and ends them all on ``close``."""

    def __init__(self, hang_timeout: float = 10.0) -> None:
        self.hang_timeout = hang_timeout
        self.driver = greenlet.getcurrent()
        self.main = MainActor("main")
        self.actors: list[Actor] = [self.main]
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._counts: dict[str, int] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def spawn(self, kind: str, parent: Optional[Actor] = None) -> Actor:
        """Create an actor of ``kind``, created from inside ``parent`` (default: main)."""
        if kind not in KINDS[1:]:
            raise ValueError(f"cannot spawn an actor of kind {kind!r}")
        self._counts[kind] = self._counts.get(kind, 0) + 1
        name = f"{kind}{self._counts[kind]}"
        creator = parent or self.main

        def create() -> Actor:
            if kind == "greenlet":
                return GreenletActor(name, self.driver)
            if kind == "thread":
                return ThreadActor(name, self.hang_timeout)
            return TaskActor(name, self.loop, self.hang_timeout)

        # Created in the creator's flow of control, so it inherits what such code would.
        outcome = creator.run(create)
        if not isinstance(outcome, Returned):
            raise RuntimeError(f"could not spawn {kind} from {creator}: {outcome.describe()}")
        actor: Actor = outcome.value
        self.actors.append(actor)
        return actor

    def finish(self, actor: Actor) -> None:
        actor.finish()
        self.actors.remove(actor)

    def close(self) -> None:
        for actor in reversed(self.actors[1:]):
            actor.finish()
        self.actors = [self.main]
        if self._loop is not None:
            self._loop.close()
            self._loop = None
