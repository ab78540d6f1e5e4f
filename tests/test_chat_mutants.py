"""The chat machine checks itself: the reference server with a broken router, or with its
own writing broken (one thing wrong each, ``chat_mutants.py``), is caught by the clause it
breaks, with a short program.

Slow: run with ``pytest -m slow`` (tox env ``mutants``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("geventwebsocket")
pytest.importorskip("websockets")

from chat_mutants import MUTANTS, SERVER_MUTANTS

from conformance.adapters.chat_servers import StartedServer
from conformance.clauses import BY_ID
from conformance.runner import BUDGETS, RunOptions, check_clause

pytestmark = pytest.mark.slow

#: The longest acceptable shrunk program, counting ``state = ...`` and ``state.teardown()``.
MAX_PROGRAM_LINES = 7
#: Longer for these: their programs keep leading ``Message('direct', 0, 0)`` steps (three,
#: nine) that the shrinker does not delete, though the program without them fails too
#: (why is not known yet).
LONGER = {"registers-on-first-frame": 13, "takes-names-over": 9}


class MutantServer:
    """A chat adapter whose server runs a broken router."""

    capabilities = frozenset({"chat"})
    profile = "3.1"
    grace = 0.2  # keeps-ghosts is caught when the grace period runs out: keep it short

    def __init__(self, name: str) -> None:
        self.name = f"chat mutant {name}"
        script = Path(__file__).with_name("chat_mutants.py")
        self.server = StartedServer([sys.executable, str(script), name])

    def chat_url(self) -> str:
        return self.server.start()


#: Every mutant, router or server: name -> the clause it breaks.
CLAUSE_OF = {name: clause for name, (_, clause) in {**MUTANTS, **SERVER_MUTANTS}.items()}


@pytest.mark.parametrize("name", sorted(CLAUSE_OF))
def test_broken_chat_is_caught_by_its_clause(name: str) -> None:
    clause = CLAUSE_OF[name]
    adapter: Any = MutantServer(name)
    try:
        result = check_clause(
            adapter, BY_ID[clause], RunOptions(BUDGETS["ci"], seed=0, timeout=120)
        )
    finally:
        adapter.server.stop()
    assert result.verdict == "failed", result.reason
    assert result.failure is not None
    assert result.failure.clause == clause, result.failure.message
    lines = result.failure.program.splitlines()
    assert lines[0] == "state = ChatMachine()"
    assert lines[-1] == "state.teardown()"
    assert len(lines) <= LONGER.get(name, MAX_PROGRAM_LINES), result.failure.program
