"""Pinned shrunk programs (tests/regressions.py) still fail where they failed, for the
clause they failed, and pass on the reference."""

from __future__ import annotations

import pytest
from regressions import PINNED, Pinned, replay

from conformance.adapters.reference import ReferenceAdapter


@pytest.mark.parametrize("pinned", PINNED, ids=str)
def test_pinned_program_still_violates_its_clause(pinned: Pinned):
    """The pinned program raises ClauseViolation for its clause on its adapter."""
    violation = replay(pinned.program, pinned.adapter(), pinned.target)
    assert violation is not None, f"{pinned.name}: the program no longer fails"
    assert violation.clause == pinned.violates
    assert str(violation).startswith(f"[{pinned.violates}] ")


@pytest.mark.parametrize("pinned", PINNED, ids=str)
def test_pinned_program_passes_on_reference(pinned: Pinned):
    """The same program passes on the reference at its own profile."""
    assert replay(pinned.program, ReferenceAdapter(), pinned.target) is None


@pytest.mark.parametrize(
    "program",
    [
        "",
        "state.act(actor='main', op='push')",
        "state = StackMachine()\nstate.act(actor='main', op='push')",
        "state = StackMachine()\nimport os\nstate.teardown()",
        "state = StackMachine()\nstate.act(actor=__import__('os'))\nstate.teardown()",
        "state = StackMachine()\nstate.act(actor=actors_9, op='push')\nstate.teardown()",
        "state = StackMachine()\nactors_0 = state.start(kind='task')\nstate.teardown()",
    ],
)
def test_replay_rejects_what_is_not_a_program(program):
    """replay accepts only 'state = ...', state steps, and 'state.teardown()'."""
    with pytest.raises(ValueError):
        replay(program, ReferenceAdapter(), "stack.push.top")
