"""The deterministic scheduler: actors of every kind, each in its own flow of control and
context, handing operations back in exactly the order the driver chose."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import threading
import weakref
from typing import Any, Callable

import greenlet
import pytest

from conformance.outcome import Raised, Returned, capture, unwrap
from conformance.scheduler import PAUSED, ActorHung, Scheduler

#: Read and written by actors; every test runs in a copy of the context, so what main sets
#: never outlives the test.
var: contextvars.ContextVar[str] = contextvars.ContextVar("test_scheduler.var")


@pytest.fixture
def scheduler():
    scheduler = Scheduler(hang_timeout=10)
    yield scheduler
    scheduler.close()


def in_fresh_context(test: Callable[..., None]) -> Callable[..., None]:
    """Run the test in a copy of the current context."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        contextvars.copy_context().run(test, *args, **kwargs)

    return wrapper


def read_var() -> str:
    return var.get("<empty>")


def set_var(value: str) -> Callable[[], None]:
    def operation() -> None:
        var.set(value)  # returns a contextvars.Token, which would keep the context alive

    return operation


class Box:
    """Something weak-referenceable to store."""


# -- contexts ---------------------------------------------------------------------------------


@in_fresh_context
def test_greenlet_starts_with_empty_context(scheduler):
    """A greenlet actor starts with an empty context, whoever creates it."""
    set_var("main")()
    first = scheduler.spawn("greenlet")
    first.run(set_var("first"))
    second = scheduler.spawn("greenlet", parent=first)
    assert unwrap(first.run(read_var)) == "first"
    assert unwrap(second.run(read_var)) == "<empty>"


@in_fresh_context
def test_thread_starts_with_empty_context(scheduler):
    """A thread actor starts with an empty context."""
    set_var("main")()
    thread = scheduler.spawn("thread")
    assert unwrap(thread.run(read_var)) == "<empty>"


@in_fresh_context
def test_task_copies_creators_context(scheduler):
    """A task actor starts with a copy of its creator's context."""
    set_var("main")()
    task = scheduler.spawn("task")
    assert unwrap(task.run(read_var)) == "main"


@in_fresh_context
def test_task_from_task_copies_that_tasks_context(scheduler):
    """A task spawned from a task copies that task's context, not main's."""
    set_var("main")()
    parent = scheduler.spawn("task")
    parent.run(set_var("parent"))
    child = scheduler.spawn("task", parent=parent)
    assert unwrap(child.run(read_var)) == "parent"
    assert unwrap(parent.run(read_var)) == "parent"
    assert read_var() == "main"


@in_fresh_context
def test_task_from_greenlet_copies_that_greenlets_context(scheduler):
    """A task spawned from a greenlet copies the greenlet's context."""
    glet = scheduler.spawn("greenlet")
    glet.run(set_var("greenlet"))
    task = scheduler.spawn("task", parent=glet)
    assert unwrap(task.run(read_var)) == "greenlet"


@in_fresh_context
@pytest.mark.parametrize("kind", ["greenlet", "thread", "task"])
def test_actor_writes_stay_in_actor(scheduler, kind):
    """What an actor sets is seen by it and by no one else."""
    set_var("main")()
    actor = scheduler.spawn(kind)
    other = scheduler.spawn(kind)
    actor.run(set_var(kind))
    assert unwrap(actor.run(read_var)) == kind
    assert unwrap(other.run(read_var)) != kind
    assert read_var() == "main"


@pytest.mark.parametrize("kind", ["main", "process", ""])
def test_spawn_rejects_unknown_kinds(scheduler, kind):
    """Only greenlets, threads and tasks can be spawned."""
    with pytest.raises(ValueError, match="cannot spawn"):
        scheduler.spawn(kind)


# -- flows of control -------------------------------------------------------------------------


def where() -> tuple[int, Any, Any]:
    """The thread, greenlet and asyncio task an operation runs in."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        task = None
    return threading.get_ident(), greenlet.getcurrent(), task


def test_operations_run_in_their_actors_flow_of_control(scheduler):
    """Each actor runs operations on its own thread, greenlet or task."""
    main_thread, main_greenlet, _ = where()
    glet, thread, task = (scheduler.spawn(kind) for kind in ("greenlet", "thread", "task"))

    assert unwrap(scheduler.main.run(where)) == (main_thread, main_greenlet, None)

    g_thread, g_greenlet, g_task = unwrap(glet.run(where))
    assert (g_thread, g_task) == (main_thread, None)
    assert g_greenlet is not main_greenlet
    assert unwrap(glet.run(where))[1] is g_greenlet  # the same greenlet every time

    t_thread, _, t_task = unwrap(thread.run(where))
    assert t_thread != main_thread and t_task is None
    assert unwrap(thread.run(where))[0] == t_thread

    k_thread, _, k_task = unwrap(task.run(where))
    assert k_thread == main_thread
    assert isinstance(k_task, asyncio.Task)
    assert unwrap(task.run(where))[2] is k_task


def test_handoffs_follow_the_drivers_order(scheduler):
    """Operations run in exactly the order the driver hands them out, run after run."""

    def one_run() -> list[str]:
        trace: list[str] = []
        actors = {"main": scheduler.main}
        for kind in ("greenlet", "thread", "task"):
            actors[kind] = scheduler.spawn(kind)
        order = ["task", "greenlet", "thread", "thread", "main", "task", "greenlet", "main"]
        for step, name in enumerate(order):
            actors[name].run(lambda step=step, name=name: trace.append(f"{step}:{name}"))
        for name in ("greenlet", "thread", "task"):
            scheduler.finish(actors[name])
        assert trace == [f"{step}:{name}" for step, name in enumerate(order)]
        return trace

    assert one_run() == one_run()


@pytest.mark.parametrize("kind", ["main", "greenlet", "thread", "task"])
def test_outcomes_record_returns_and_exceptions(scheduler, kind):
    """An operation's value or exception comes back as its outcome."""
    actor = scheduler.main if kind == "main" else scheduler.spawn(kind)
    assert actor.run(lambda: 42) == Returned(42)
    outcome = actor.run(lambda: {}["missing"])
    assert isinstance(outcome, Raised) and outcome.type is KeyError
    assert outcome.describe() == "raised KeyError: 'missing'"
    with pytest.raises(KeyError):
        unwrap(outcome)


# -- pausing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["greenlet", "thread"])
@in_fresh_context
def test_paused_operations_interleave_in_the_drivers_order(scheduler, kind):
    """Two operations that pause part-way go on exactly when the driver resumes them, each
    in its own context, and end with their own outcomes."""
    trace: list[str] = []
    first, second = scheduler.spawn(kind), scheduler.spawn(kind)

    def operation(actor: Any, name: str) -> Callable[[], str]:
        def run() -> str:
            var.set(name)
            for step in range(3):
                trace.append(f"{name}{step}:{read_var()}")
                actor.pause()
            return name

        return run

    assert first.run(operation(first, "a")) is PAUSED
    assert second.run(operation(second, "b")) is PAUSED
    assert first.paused and second.paused
    assert second.resume() is PAUSED
    assert first.resume() is PAUSED
    assert first.resume() is PAUSED
    assert first.resume() == Returned("a")
    assert not first.paused
    assert second.complete() == Returned("b")
    assert trace == ["a0:a", "b0:b", "b1:b", "a1:a", "a2:a", "b2:b"]
    assert read_var() == "<empty>"


@pytest.mark.parametrize("kind", ["greenlet", "thread"])
def test_finishing_a_paused_actor_completes_its_operation(scheduler, kind):
    """An actor finished while paused runs its operation to the end first, so that
    nothing it began (a pushed context) is left half done."""
    done: list[str] = []
    actor = scheduler.spawn(kind)

    def operation() -> None:
        actor.pause()
        done.append("ended")

    assert actor.run(operation) is PAUSED
    scheduler.finish(actor)
    assert done == ["ended"]


@pytest.mark.parametrize("kind", ["main", "task"])
def test_main_and_tasks_cannot_pause(scheduler, kind):
    """Only greenlets and threads can hand control back mid-operation."""
    actor = scheduler.main if kind == "main" else scheduler.spawn(kind)
    outcome = actor.run(actor.pause)
    assert isinstance(outcome, Raised) and "cannot pause" in str(outcome.error)
    with pytest.raises(RuntimeError, match="no paused operation"):
        actor.resume()


def test_capture_lets_base_exceptions_through():
    """capture records an Exception but lets KeyboardInterrupt stop the run."""

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        capture(interrupt)


# -- ending actors ----------------------------------------------------------------------------


@in_fresh_context
@pytest.mark.parametrize("kind", ["greenlet", "thread", "task"])
def test_finishing_an_actor_frees_what_it_stored(scheduler, kind):
    """Once an actor is finished, what it stored in its context is freed."""
    holder: contextvars.ContextVar[Box] = contextvars.ContextVar("holder")
    actor = scheduler.spawn(kind)

    def store() -> weakref.ref[Box]:
        box = Box()
        holder.set(box)
        return weakref.ref(box)

    ref = unwrap(actor.run(store))
    gc.collect()
    assert ref() is not None, "the actor's context should still hold it"
    scheduler.finish(actor)
    gc.collect()
    assert ref() is None
    assert actor.finished
    assert actor not in scheduler.actors


def test_finishing_an_unstarted_greenlet(scheduler):
    """A greenlet actor that never ran an operation finishes cleanly."""
    actor = scheduler.spawn("greenlet")
    scheduler.finish(actor)
    assert actor.finished
    assert scheduler.actors == [scheduler.main]


def test_close_ends_every_actor(scheduler):
    """close ends every greenlet, thread and task, and closes the event loop."""
    glet, thread, task = (scheduler.spawn(kind) for kind in ("greenlet", "thread", "task"))
    nested = scheduler.spawn("task", parent=task)
    flows = {
        "greenlet": unwrap(glet.run(greenlet.getcurrent)),
        "thread": unwrap(thread.run(threading.current_thread)),
        "task": unwrap(task.run(asyncio.current_task)),
        "nested": unwrap(nested.run(asyncio.current_task)),
    }
    loop = scheduler.loop
    assert not any((flows["greenlet"].dead, not flows["thread"].is_alive(), flows["task"].done()))

    scheduler.close()

    assert flows["greenlet"].dead
    assert not flows["thread"].is_alive()
    assert flows["task"].done() and flows["nested"].done()
    assert loop.is_closed()
    assert all(actor.finished for actor in (glet, thread, task, nested))
    assert scheduler.actors == [scheduler.main]
    scheduler.close()  # a second close is harmless


# -- hangs ------------------------------------------------------------------------------------


def test_blocked_thread_actor_is_declared_hung():
    """A thread actor whose operation blocks raises ActorHung after hang_timeout."""
    scheduler = Scheduler(hang_timeout=0.2)
    release = threading.Event()
    actor = scheduler.spawn("thread")
    try:
        with pytest.raises(ActorHung, match=r"thread1 gave no answer within 0\.2 s"):
            actor.run(release.wait)
    finally:
        release.set()  # let the thread finish its operation, then end it
        scheduler.close()
    assert actor.finished


def test_actor_hung_is_not_an_exception():
    """ActorHung is a BaseException, so neither an adapter nor Hypothesis swallows it."""
    assert issubclass(ActorHung, BaseException)
    assert not issubclass(ActorHung, Exception)
