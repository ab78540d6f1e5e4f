"""Shrunk failing programs, pinned, and the replayer that runs them without Hypothesis.

A program is pasted exactly as ``ctxspec run`` printed it under "shrunk program:" (or as
the report's ``failure.program`` holds it). ``replay`` builds the machine for the target
clause, as the runner does, and runs the program's steps one by one: a regression that a
future change to the machines, the model or the diagnosis would let through fails at once,
whatever Hypothesis happens to find.

To pin one: copy the program from the report into ``PINNED`` below with the adapter, the
target clause and the clause it must violate (see tests/README.md).
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from textwrap import dedent
from typing import Any, Callable, Optional

from hypothesis.errors import HypothesisDeprecationWarning

from conformance.adapters.naive import NaiveAdapter
from conformance.adapters.reference import ReferenceAdapter
from conformance.adapters.threading_local import ThreadingLocalAdapter
from conformance.clauses import BY_ID
from conformance.machines.base import machine_class
from conformance.runner import MACHINES, PROGRAM_LINE
from conformance.violation import ClauseViolation

#: One step: ``state.rule(arg=value, ...)``, optionally bound to ``actors_N``.
STEP = re.compile(r"^(?:(?P<target>actors_\d+) = )?state\.(?P<rule>\w+)\((?P<args>.*)\)$")


def replay(program: str, adapter: Any, target: str) -> Optional[ClauseViolation]:
    """Run a printed program against ``adapter`` for ``target``; return the violation it
    raised, or None if every step passed."""
    lines = [line.strip() for line in dedent(program).strip().splitlines()]
    if not (lines and lines[0].startswith("state = ") and lines[-1] == "state.teardown()"):
        raise ValueError("a program starts with 'state = ...' and ends with 'state.teardown()'")
    machine = machine_class(MACHINES[BY_ID[target].capability], target)(adapter, target)
    names: dict[str, Any] = {"state": machine}
    try:
        with warnings.catch_warnings():
            # spawn_actor calls hypothesis.assume, which warns outside a Hypothesis test.
            warnings.simplefilter("ignore", HypothesisDeprecationWarning)
            for line in lines[1:-1]:
                step = STEP.match(line)
                if step is None or not PROGRAM_LINE.match(line):
                    raise ValueError(f"not a program step: {line!r}")
                rule = getattr(machine, step["rule"], None)
                if not callable(rule):
                    raise ValueError(f"{type(machine).__name__} for {target} has no {step['rule']}")
                result = rule(**arguments(step["args"], names))
                if step["target"]:
                    names[step["target"]] = result
    except ClauseViolation as violation:
        return violation
    finally:
        machine.teardown()
    return None


def arguments(text: str, names: dict[str, Any]) -> dict[str, Any]:
    """``actor=actors_0, op='push'`` -> keyword arguments: literals, or actors bound by an
    earlier step."""
    call = ast.parse(f"step({text})", mode="eval").body
    assert isinstance(call, ast.Call)
    if call.args:
        raise ValueError(f"steps take keyword arguments only: {text!r}")
    kwargs = {}
    for keyword in call.keywords:
        value = keyword.value
        if isinstance(value, ast.Name) and value.id in names:
            kwargs[keyword.arg] = names[value.id]
        else:
            try:
                kwargs[keyword.arg] = ast.literal_eval(value)
            except ValueError:
                raise ValueError(f"not a literal or a bound actor: {ast.dump(value)}") from None
    return kwargs


@dataclass(frozen=True)
class Pinned:
    """A shrunk program that violated ``violates`` when run for ``target`` on ``adapter``."""

    name: str
    adapter: Callable[[], Any]
    target: str
    violates: str
    program: str

    def __str__(self) -> str:
        return self.name


def reference_at(profile: str) -> Callable[[], Any]:
    def make() -> Any:
        adapter = ReferenceAdapter()
        adapter.profile = profile
        return adapter

    return make


PINNED = [
    Pinned(
        "threading-local shares values between greenlets",
        ThreadingLocalAdapter,
        "local.isolation.greenlet",
        "local.isolation.greenlet",
        """
        state = LocalMachine()
        actors_0 = state.start(kind='greenlet')
        state.act(actor='main', name='ctx_alpha', op='set')
        state.act(actor=actors_0, name='ctx_alpha', op='get')
        state.teardown()
        """,
    ),
    Pinned(
        "threading-local shares values between tasks",
        ThreadingLocalAdapter,
        "local.isolation.task",
        "local.isolation.task",
        """
        state = LocalMachine()
        actors_0 = state.start(kind='task')
        state.act(actor=actors_0, name='ctx_alpha', op='set')
        state.act(actor='main', name='ctx_alpha', op='get')
        state.teardown()
        """,
    ),
    Pinned(
        "naive keeps the values of an ended greenlet",
        NaiveAdapter,
        "local.lifetime.greenlet",
        "local.lifetime.greenlet",
        """
        state = LocalMachine()
        actors_0 = state.start(kind='greenlet')
        state.act(actor=actors_0, name='ctx_alpha', op='set')
        state.finish(actor=actors_0)
        state.teardown()
        """,
    ),
    Pinned(
        "naive shares a stack between a task and its creator",
        NaiveAdapter,
        "stack.isolation.task",
        "stack.isolation.task",
        """
        state = StackMachine()
        actors_0 = state.start(kind='task')
        state.act(actor=actors_0, op='push')
        state.act(actor='main', op='pop')
        state.teardown()
        """,
    ),
    Pinned(
        "a copy-on-write stack is not Werkzeug 2.0's shared-pop stack",
        reference_at("2.0"),
        "stack.isolation.task-shared-pop",
        "stack.isolation.task-shared-pop",
        """
        state = StackMachine()
        actors_0 = state.start(kind='task')
        state.act(actor='main', op='push')
        state.act(actor='main', op='push')
        actors_1 = state.spawn(kind='task', parent='main')
        state.act(actor='main', op='pop')
        state.teardown()
        """,
    ),
]
