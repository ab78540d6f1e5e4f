"""The reference Local, LocalStack and release_local, one behaviour of spec/ at a time.

The conformance machines check the reference too; these tests pin each sentence of the
clauses with a plain example, so that a regression in the reference names itself."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from typing import Any, Callable

import greenlet
import pytest

from reference import Local, LocalStack, release_local


class Payload:
    """A weak-referenceable value."""


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a new thread and return what it returned."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join()
    return result[0]


def in_greenlet(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a new greenlet and return what it returned."""
    return greenlet.greenlet(fn).switch()


def in_task(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a new asyncio task created here (copying this context)."""

    async def body() -> Any:
        return fn()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(loop.create_task(body()))
    finally:
        loop.close()


@pytest.fixture
def local() -> Local:
    return Local()


@pytest.fixture
def stack() -> LocalStack:
    return LocalStack()


# -- local.attr.* ---------------------------------------------------------------------------


def test_set_value_reads_back_itself(local):
    """A value set is read back as the same object, on every read."""
    value = Payload()
    local.user = value
    assert local.user is value
    assert local.user is value


def test_setting_again_replaces(local):
    """Setting a name again replaces its value."""
    local.user = "first"
    local.user = "second"
    assert local.user == "second"


@pytest.mark.parametrize("name", ["storage", "get", "values", "pop", "release"])
def test_any_public_name_is_ordinary(local, name):
    """Names an implementation might use for itself are ordinary names."""
    setattr(local, name, name.upper())
    assert getattr(local, name) == name.upper()
    assert dict(local) == {name: name.upper()}


def test_missing_name_raises_attribute_error_naming_it(local):
    """Reading an unset name raises AttributeError whose message names it."""
    with pytest.raises(AttributeError, match="user"):
        local.user  # noqa: B018


def test_missing_name_works_with_hasattr_and_getattr_default(local):
    """hasattr and getattr with a default work on unset names."""
    assert not hasattr(local, "user")
    assert getattr(local, "user", "anonymous") == "anonymous"


def test_delete_unsets_only_that_name(local):
    """Deleting unsets the name; other names keep their values."""
    local.user = "alice"
    local.request_id = 7
    del local.user
    assert not hasattr(local, "user")
    assert local.request_id == 7


def test_delete_missing_name_raises_attribute_error(local):
    """Deleting an unset name raises AttributeError naming it."""
    with pytest.raises(AttributeError, match="user"):
        del local.user
    local.user = 1
    del local.user
    with pytest.raises(AttributeError, match="user"):
        del local.user


def test_iter_yields_current_pairs(local):
    """Iterating yields the current context's (name, value) pairs and nothing else."""
    assert list(local) == []
    local.user = "alice"
    local.request_id = 7
    assert sorted(local) == [("request_id", 7), ("user", "alice")]
    assert in_thread(lambda: list(local)) == []


def test_iter_is_a_snapshot(local):
    """Changing the Local while iterating does not disturb the iteration."""
    local.a, local.b = 1, 2
    seen = []
    for name, value in local:
        seen.append((name, value))
        local.c = 3
    assert sorted(seen) == [("a", 1), ("b", 2)]


# -- local.isolation.* ----------------------------------------------------------------------


def test_new_thread_starts_empty(local):
    """A new thread sees none of its creator's values."""
    local.user = "main"
    assert in_thread(lambda: getattr(local, "user", None)) is None


def test_thread_writes_stay_in_thread(local):
    """What a thread sets, deletes or releases does not reach the main thread."""
    local.user = "main"
    local.request_id = 7

    def work() -> list[tuple[str, Any]]:
        local.user = "thread"
        local.request_id = 8
        del local.request_id
        release_local(local)
        local.extra = "x"
        return list(local)

    assert in_thread(work) == [("extra", "x")]
    assert sorted(local) == [("request_id", 7), ("user", "main")]


def test_new_greenlet_starts_empty(local):
    """A new greenlet sees none of the main greenlet's values."""
    local.user = "main"
    assert in_greenlet(lambda: getattr(local, "user", None)) is None


def test_greenlets_interleaved_keep_their_own_values(local):
    """Two greenlets switching back and forth each keep their own values."""
    main = greenlet.getcurrent()
    seen = []

    def handle(name: str) -> None:
        local.user = name
        main.switch()
        seen.append(local.user)

    first, second = greenlet.greenlet(handle), greenlet.greenlet(handle)
    first.switch("first")
    second.switch("second")
    local.user = "main"
    first.switch()
    second.switch()
    assert seen == ["first", "second"]
    assert local.user == "main"


def test_task_starts_with_snapshot_of_creator(local):
    """A new task starts with its creator's values, the same objects."""
    value = Payload()
    local.user = value
    assert in_task(lambda: local.user) is value


def test_task_changes_do_not_reach_creator(local):
    """Setting, deleting and releasing in a task leave its creator's values alone."""
    local.user = "parent"
    local.request_id = 7

    def work() -> list[tuple[str, Any]]:
        local.user = "child"
        del local.request_id
        snapshot = sorted(local)
        release_local(local)
        return snapshot

    assert in_task(work) == [("user", "child")]
    assert sorted(local) == [("request_id", 7), ("user", "parent")]


def test_creator_changes_after_creation_do_not_reach_task(local):
    """What the creator sets after creating a task does not reach the task."""
    local.user = "before"
    seen = []

    async def child() -> None:
        seen.append(local.user)

    async def main() -> None:
        task = asyncio.create_task(child())
        local.user = "after"
        await task

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen == ["before"]
    assert local.user == "before"  # main() ran as a task: its write stayed there


def test_sibling_tasks_are_independent(local):
    """Two tasks of one creator do not see each other's writes."""
    seen = []

    async def writer() -> None:
        local.user = "writer"
        await asyncio.sleep(0)  # yield to the reader, which runs in between
        seen.append(("writer", local.user))

    async def reader() -> None:
        seen.append(("reader", getattr(local, "user", None)))

    async def main() -> None:
        await asyncio.gather(writer(), reader())

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert sorted(seen) == [("reader", None), ("writer", "writer")]


# -- local.release --------------------------------------------------------------------------


def test_release_forgets_current_context(local):
    """Releasing unsets every name of the current context."""
    local.user = "alice"
    local.request_id = 7
    release_local(local)
    assert list(local) == []
    assert not hasattr(local, "user")


def test_release_keeps_other_threads_values(local):
    """Releasing in one thread leaves another thread's values alone."""
    ready, released = threading.Event(), threading.Event()
    seen = []

    def worker() -> None:
        local.user = "worker"
        ready.set()
        released.wait(timeout=10)  # bounded: the main thread releases right away
        seen.append(getattr(local, "user", None))

    local.user = "main"
    thread = threading.Thread(target=worker)
    thread.start()
    assert ready.wait(timeout=10)
    release_local(local)
    released.set()
    thread.join()
    assert seen == ["worker"]
    assert not hasattr(local, "user")


def test_release_in_greenlet_keeps_main_values(local):
    """Releasing in a greenlet leaves the main greenlet's values alone."""
    local.user = "main"

    def work() -> None:
        local.user = "greenlet"
        release_local(local)

    in_greenlet(work)
    assert local.user == "main"


def test_release_of_empty_local_does_nothing(local):
    """Releasing a Local with no values does nothing, and it works as before."""
    release_local(local)
    release_local(local)
    local.user = "again"
    assert local.user == "again"


# -- local.lifetime.* -----------------------------------------------------------------------


def store_payload(local: Local, refs: list[weakref.ref[Payload]]) -> None:
    local.payload = Payload()
    refs.append(weakref.ref(local.payload))


def test_thread_values_freed_after_thread_ends(local):
    """A value stored only by an ended thread is freed."""
    refs: list[weakref.ref[Payload]] = []
    in_thread(lambda: store_payload(local, refs))
    gc.collect()
    assert refs[0]() is None


def test_greenlet_values_freed_after_greenlet_is_dropped(local):
    """A value stored only by an ended, dropped greenlet is freed."""
    refs: list[weakref.ref[Payload]] = []
    glet = greenlet.greenlet(lambda: store_payload(local, refs))
    glet.switch()
    assert glet.dead
    del glet  # an ended greenlet may hold its context until it is dropped
    gc.collect()
    assert refs[0]() is None


def test_task_values_freed_after_task_ends(local):
    """A value stored only by an ended task is freed."""
    refs: list[weakref.ref[Payload]] = []
    in_task(lambda: store_payload(local, refs))
    gc.collect()
    assert refs[0]() is None
    assert not hasattr(local, "payload")


def test_local_keeps_values_still_referenced_elsewhere(local):
    """A value something else refers to stays alive after its thread ends."""
    keep: list[Payload] = []

    def work() -> None:
        local.payload = Payload()
        keep.append(local.payload)

    in_thread(work)
    gc.collect()
    assert isinstance(keep[0], Payload)


def test_released_values_are_freed(local):
    """A released value is no longer held by the Local."""
    refs: list[weakref.ref[Payload]] = []
    store_payload(local, refs)
    release_local(local)
    gc.collect()
    assert refs[0]() is None


# -- stack.* --------------------------------------------------------------------------------


def test_push_then_top(stack):
    """After push(x), top is x itself."""
    first, second = Payload(), Payload()
    stack.push(first)
    assert stack.top is first
    stack.push(second)
    assert stack.top is second


def test_push_accepts_any_object(stack):
    """push accepts any object, None included."""
    for item in (None, 0, "", [], Payload):
        stack.push(item)
        assert stack.top is item
    assert len(stack) == 5


def test_pop_is_lifo(stack):
    """pop returns items in the reverse of the order they were pushed."""
    items = [Payload() for _ in range(3)]
    for item in items:
        stack.push(item)
    assert [stack.pop() for _ in items] == items[::-1]


def test_pop_makes_item_below_the_top(stack):
    """After a pop, the item below becomes the top."""
    below, above = Payload(), Payload()
    stack.push(below)
    stack.push(above)
    assert stack.pop() is above
    assert stack.top is below
    assert len(stack) == 1


def test_empty_stack_pop_and_top_return_none(stack):
    """On an empty stack, pop and top return None and change nothing."""
    assert stack.top is None
    assert stack.pop() is None
    assert stack.pop() is None
    assert len(stack) == 0
    item = Payload()
    stack.push(item)
    assert stack.pop() is item


def test_popping_last_item_leaves_stack_empty(stack):
    """Popping the only item leaves the stack empty; the item does not come back."""
    item = Payload()
    stack.push(item)
    assert stack.pop() is item
    assert stack.top is None
    assert stack.pop() is None
    assert len(stack) == 0


@pytest.mark.parametrize("depth", [1, 2])
def test_popped_item_is_not_kept_alive(stack, depth):
    """A popped item that nothing else refers to is freed."""
    for _ in range(depth - 1):
        stack.push(Payload())
    stack.push(Payload())
    ref = weakref.ref(stack.top)
    stack.pop()
    gc.collect()
    assert ref() is None


def test_release_local_empties_stack(stack):
    """release_local empties the current context's stack."""
    stack.push(Payload())
    stack.push(Payload())
    release_local(stack)
    assert stack.top is None
    assert len(stack) == 0


def test_new_thread_stack_is_empty(stack):
    """A new thread's stack is empty, and its pushes stay in it."""
    item = Payload()
    stack.push(item)

    def work() -> Any:
        top = stack.top
        stack.push(Payload())
        return top

    assert in_thread(work) is None
    assert stack.top is item
    assert len(stack) == 1


def test_new_greenlet_stack_is_empty(stack):
    """A new greenlet's stack is empty, and its pops do not reach main."""
    item = Payload()
    stack.push(item)

    def work() -> Any:
        popped = stack.pop()
        stack.push(Payload())
        return popped

    assert in_greenlet(work) is None
    assert stack.top is item


def test_task_stack_is_an_independent_snapshot(stack):
    """A task starts with its creator's items; its pops and pushes stay in the task."""
    bottom, top = Payload(), Payload()
    stack.push(bottom)
    stack.push(top)

    def work() -> list[Any]:
        popped = [stack.pop()]
        stack.push(Payload())
        stack.pop()
        popped.append(stack.pop())
        return popped

    assert in_task(work) == [top, bottom]
    assert stack.top is top
    assert len(stack) == 2
