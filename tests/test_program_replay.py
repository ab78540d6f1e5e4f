"""A failing program, as printed, runs again with no search (conformance/program.py)."""

from __future__ import annotations

import pytest
from mutants import MUTANTS

from conformance.adapters.reference import ReferenceAdapter
from conformance.clauses import BY_ID
from conformance.program import ProgramError
from conformance.runner import replay_program

STUCK_LAST = next(m for m in MUTANTS if str(m) == "stuck-last")
PROGRAM = """state = StackMachine()
state.act(actor='main', op='push')
state.act(actor='main', op='pop')
state.act(actor='main', op='pop')
state.teardown()"""


def test_the_program_fails_the_mutant_with_its_clause() -> None:
    result = replay_program(STUCK_LAST.adapter, BY_ID[STUCK_LAST.catches], PROGRAM)
    assert result.verdict == "failed", result.reason
    assert result.failure is not None and result.failure.clause == STUCK_LAST.catches


def test_the_same_program_passes_the_reference() -> None:
    """The program tells the mutant from conforming code: it is not a failure by itself."""
    result = replay_program(ReferenceAdapter(), BY_ID[STUCK_LAST.catches], PROGRAM)
    assert result.verdict == "passed", result.failure or result.reason


@pytest.mark.parametrize(
    "text",
    [
        PROGRAM.replace("state.act(", "state.nope(", 1),
        PROGRAM.replace("StackMachine", "LocalMachine", 1),
        PROGRAM.replace("state.teardown()", ""),
        PROGRAM.replace("op='pop')", "op='pop'", 1),
    ],
    ids=["unknown-rule", "other-machine", "no-teardown", "not-python"],
)
def test_a_text_that_is_not_its_program_is_a_usage_error(text: str) -> None:
    with pytest.raises(ProgramError):
        replay_program(ReferenceAdapter(), BY_ID[STUCK_LAST.catches], text)
