"""Every normative clause of spec/, as data.

The spec's Markdown is the text of the law; this table is its index: ID, capability,
title, level and the version profiles a clause holds for. ``tests/test_spec_index.py``
checks the two agree heading by heading. An ID, once published, keeps its meaning: a
changed rule gets a new ID.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .profiles import ALL, describe, since, until

#: Where each capability's clauses are written down.
SPEC_FILES = {
    "local": "spec/local.md",
    "stack": "spec/localstack.md",
    "proxy": "spec/localproxy.md",
}


@dataclass(frozen=True)
class Clause:
    id: str
    capability: str
    title: str
    level: str = "MUST"
    holds_for: frozenset[str] = ALL

    @property
    def spec_file(self) -> str:
        return SPEC_FILES[self.capability]

    @property
    def anchor(self) -> str:
        """The Markdown anchor of the clause's heading."""
        return self.spec_file + "#" + self.id.replace(".", "")

    @property
    def profiles(self) -> str:
        return describe(self.holds_for)


def _clauses(capability: str, rows: Iterable[tuple[str, str]], **common: object) -> list[Clause]:
    return [Clause(cid, capability, title, **common) for cid, title in rows]  # type: ignore[arg-type]


LOCAL = _clauses(
    "local",
    [
        ("local.attr.roundtrip", "A value set is read back, the same object, until set again or deleted"),
        ("local.attr.missing", "Reading a name that is not set raises AttributeError naming it"),
        ("local.attr.delete", "Deleting unsets a name; deleting a name that is not set raises AttributeError"),
        ("local.isolation.thread", "Threads never see each other's values; a new thread starts empty"),
        ("local.isolation.greenlet", "Greenlets never see each other's values, without monkey-patching"),
        ("local.isolation.task", "A new asyncio task starts with a snapshot of its creator's values"),
        ("local.release", "Releasing forgets the current context's values, and only those"),
        ("local.lifetime.thread", "A value stored only by a thread that ended is not kept alive"),
        ("local.lifetime.greenlet", "A value stored only by a greenlet that ended is not kept alive"),
        ("local.lifetime.task", "A value stored only by an asyncio task that ended is not kept alive"),
        ("local.iter", "Iterating a Local yields the current context's (name, value) pairs"),
    ],
)

STACK = _clauses(
    "stack",
    [
        ("stack.push.top", "After push(x), top is x"),
        ("stack.pop.lifo", "pop removes and returns the top item"),
        ("stack.pop.empty", "On an empty stack, pop and top return None and change nothing"),
        ("stack.pop.last", "Popping the last item leaves the stack empty"),
        ("stack.pop.release", "A popped item is not kept alive by the stack"),
        ("stack.isolation.thread", "Each thread has its own stack; a new thread's stack is empty"),
        ("stack.isolation.greenlet", "Each greenlet has its own stack; a new greenlet's stack is empty"),
    ],
) + [
    Clause(
        "stack.isolation.task",
        "stack",
        "A new asyncio task starts with a snapshot of its creator's stack",
        holds_for=since("2.3"),
    ),
    Clause(
        "stack.isolation.task-shared-pop",
        "stack",
        "A task's pop may remove the item from the stack of the task that created it",
        level="DESCRIBES",
        holds_for=until("2.2"),
    ),
]

PROXY: list[Clause] = []

CLAUSES: tuple[Clause, ...] = tuple(LOCAL + STACK + PROXY)
BY_ID = {clause.id: clause for clause in CLAUSES}
