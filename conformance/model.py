"""Pure models of Local and LocalStack: what each actor must observe.

A model knows nothing of threads or greenlets: an actor is a name with a kind, and each
actor has its own storage. What a new actor starts with is the one place kinds differ,
and it is a table (``INHERITS``). Values are ``Token``s, unique and weak-referenceable,
so that an observed value always tells who stored it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

#: Does an actor of this kind start with a copy of its creator's values?
#: (spec: local.isolation.task -- a task copies its creator's context; threads and
#: greenlets start with an empty one.)
INHERITS: Mapping[str, bool] = {"greenlet": False, "thread": False, "task": True}


class Token:
    """A stored value: unique, comparable by identity, weak-referenceable."""

    __slots__ = ("__weakref__", "number", "writer")
    _numbers = itertools.count(1)

    def __init__(self, writer: str) -> None:
        self.number = next(self._numbers)
        self.writer = writer

    def __repr__(self) -> str:
        return f"<value {self.number} stored by {self.writer}>"


def isolation_kind(reader_kind: str, other_kind: str) -> str:
    """Which isolation clause covers two actors of these kinds.

    Anything involving a task is task isolation; otherwise two flows in different threads
    are thread isolation; what remains runs on one thread as greenlets ("main" is the main
    greenlet of the main thread)."""
    kinds = {reader_kind, other_kind}
    if "task" in kinds:
        return "task"
    if "thread" in kinds:
        return "thread"
    return "greenlet"


@dataclass
class Event:
    actor: str
    action: str  # "set", "delete" or "release" (Local); "push" or "pop" (stack)
    name: Optional[str] = None


@dataclass
class LocalModel:
    """Each actor's storage of name -> Token, and the log of what changed it."""

    storage: dict[str, dict[str, Token]] = field(default_factory=lambda: {"main": {}})
    kinds: dict[str, str] = field(default_factory=lambda: {"main": "main"})
    log: list[Event] = field(default_factory=list)

    def spawn(self, actor: str, kind: str, parent: str) -> None:
        self.kinds[actor] = kind
        self.storage[actor] = dict(self.storage[parent]) if INHERITS[kind] else {}

    def finish(self, actor: str) -> None:
        del self.storage[actor]

    def set(self, actor: str, name: str, token: Token) -> None:
        self.storage[actor][name] = token
        self.log.append(Event(actor, "set", name))

    def delete(self, actor: str, name: str) -> None:
        self.storage[actor].pop(name, None)
        self.log.append(Event(actor, "delete", name))

    def release(self, actor: str) -> None:
        self.storage[actor].clear()
        self.log.append(Event(actor, "release"))

    def get(self, actor: str, name: str) -> Optional[Token]:
        return self.storage[actor].get(name)

    def live_tokens(self) -> frozenset[int]:
        """ids of the tokens some live actor still holds."""
        return frozenset(id(t) for values in self.storage.values() for t in values.values())

    def last_change_by_other(self, actor: str, name: str) -> Optional[Event]:
        """The latest set/delete of ``name`` or release by another actor, made since
        ``actor`` last changed ``name`` itself (what could explain a surprise now)."""
        for event in reversed(self.log):
            touches = event.name == name or event.action == "release"
            if not touches:
                continue
            if event.actor == actor:
                return None
            return event
        return None


@dataclass
class StackModel:
    """Each actor's stack of Tokens.

    ``shared_pop`` models Werkzeug 2.0/2.1 (spec: stack.isolation.task-shared-pop): a
    task inherits its creator's stack *list*; a push copies it, but a pop that leaves
    items behind removes the top from the list in place, so every task still sharing that
    list loses it too. Stacks are lists here so that sharing is modelled by identity."""

    shared_pop: bool = False
    stacks: dict[str, list[Token]] = field(default_factory=lambda: {"main": []})
    kinds: dict[str, str] = field(default_factory=lambda: {"main": "main"})

    def spawn(self, actor: str, kind: str, parent: str) -> None:
        self.kinds[actor] = kind
        inherited = self.stacks[parent] if INHERITS[kind] else []
        self.stacks[actor] = inherited if self.shared_pop else list(inherited)

    def finish(self, actor: str) -> None:
        del self.stacks[actor]

    def push(self, actor: str, token: Token) -> None:
        self.stacks[actor] = [*self.stacks[actor], token]

    def pop(self, actor: str) -> Optional[Token]:
        stack = self.stacks[actor]
        if not stack:
            return None
        if self.shared_pop and len(stack) > 1:
            return stack.pop()  # in place: whoever shares this list loses the item too
        self.stacks[actor] = stack[:-1]
        return stack[-1]

    def top(self, actor: str) -> Optional[Token]:
        stack = self.stacks[actor]
        return stack[-1] if stack else None

    def live_tokens(self) -> set[int]:
        return {id(t) for stack in self.stacks.values() for t in stack}
