"""Run a failing program as printed, without Hypothesis.

A failure's program (``state = StackMachine()`` ... ``state.teardown()``) is Python: each
line calls one rule of the clause's machine with the arguments Hypothesis drew. Running it
again needs no search and no example database, and no particular Hypothesis version, so a
failure seen once can be checked again anywhere: ``ctxspec replay`` falls back to it when
the report's reproduce blob belongs to another Hypothesis, and the self-check pins each
mutant by its program (tests/pinned_programs.json).
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from types import CodeType
from typing import Any, Optional

from . import machines
from .chat_client import ChatHung
from .clauses import Clause
from .machines.base import machine_class
from .scheduler import ActorHung
from .violation import ClauseViolation


class ProgramError(ValueError):
    """The text is not a program of this clause's machine (a user mistake, not a verdict)."""


def _namespace() -> dict[str, Any]:
    """Every name a printed program may use: the machines' step and recipe classes."""
    names: dict[str, Any] = {}
    for info in pkgutil.iter_modules(machines.__path__):
        module = importlib.import_module(f"{machines.__name__}.{info.name}")
        names.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return names


def compile_program(program: str, machine_name: str) -> CodeType:
    """The program's steps, between its ``state = ...()`` and ``state.teardown()`` lines."""
    lines = [line for line in program.strip().splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("state = ") or lines[-1] != "state.teardown()":
        raise ProgramError("a program starts with 'state = ...()' and ends 'state.teardown()'")
    if lines[0] != f"state = {machine_name}()":
        raise ProgramError(f"this clause's program starts with 'state = {machine_name}()'")
    try:
        return compile("\n".join(lines[1:-1]), "<program>", "exec")
    except SyntaxError as error:
        raise ProgramError(f"the program is not Python: {error}") from None


def run_program(
    adapter: Any, clause: Clause, program: str, base: type[Any], hang_timeout: float = 10.0
) -> tuple[Optional[ClauseViolation], Optional[str], float]:
    """Run ``program`` against ``adapter`` once, as ``clause``'s machine (built on ``base``).

    Returns the violation of ``clause`` it produced (or None), the reason it could not be
    carried to the end (an operation hung, the adapter crashed), and the seconds taken.
    A program that names something the machine does not have raises ProgramError."""
    machine = machine_class(base, clause.id)
    steps = compile_program(program, base.__name__)
    started = time.perf_counter()
    state = machine(adapter, clause.id, hang_timeout)
    namespace = {**_namespace(), "state": state}
    first: Optional[BaseException] = None
    try:
        exec(steps, namespace)  # the program was printed by a run of this machine
    except (NameError, AttributeError, TypeError) as error:
        if not isinstance(error, ClauseViolation) and _is_program_mistake(error):
            state.teardown()
            raise ProgramError(f"the program does not fit {base.__name__}: {error}") from None
        first = error
    except BaseException as error:  # judged below, after the teardown
        first = error
    try:
        state.teardown()  # the ghost-keeping kind of bug shows only here
    except BaseException as error:
        first = first or error
    seconds = time.perf_counter() - started
    if first is None:
        return None, None, seconds
    if isinstance(first, ClauseViolation):
        return first, None, seconds
    if isinstance(first, (ActorHung, ChatHung)):
        return None, f"an operation hung: {first}", seconds
    if isinstance(first, Exception):
        return None, f"{type(first).__name__}: {first}", seconds
    raise first  # KeyboardInterrupt, the runner's time limit


def _is_program_mistake(error: BaseException) -> bool:
    """A name or rule the machine lacks (the program is from another version of it)."""
    # Raised by the program's own line, not inside a rule the line called.
    last = error.__traceback__
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    return last is not None and last.tb_frame.f_code.co_filename == "<program>"
