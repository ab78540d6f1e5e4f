"""Run clauses against an adapter and turn what happens into verdicts.

Each clause gets its own Hypothesis run of its capability's machine, built for that
clause as target. The run's seed is derived from the run seed and the clause ID, so a
clause's verdict does not depend on which other clauses ran.

Verdicts (spec/README.md): passed, failed, errored (the adapter crashed or hung, or the
run could not be carried out), skipped (capability not declared, or the clause does not
hold for the adapter's version profile), known-failure, unexpected-pass.
"""

from __future__ import annotations

import re
import signal
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.errors import Flaky, HypothesisException
from hypothesis.reporting import with_reporter
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from .adapter import KnownFailure
from .chat_client import ChatHung
from .clauses import Clause
from .machines.base import ConformanceMachine, machine_class
from .machines.chat import ChatMachine
from .machines.contexts import ContextsMachine
from .machines.lifecycle import LifecycleMachine
from .machines.local import LocalMachine
from .machines.proxy import ProxyMachine
from .machines.stack import StackMachine
from .program import run_program
from .scheduler import ActorHung
from .violation import ClauseViolation

VERDICTS = ("passed", "failed", "errored", "skipped", "known-failure", "unexpected-pass")
BAD_VERDICTS = frozenset({"failed", "errored", "unexpected-pass"})

MACHINES: dict[str, type[ConformanceMachine]] = {
    "local": LocalMachine,
    "stack": StackMachine,
    "proxy": ProxyMachine,
    "contexts": ContextsMachine,
    "lifecycle": LifecycleMachine,
    "chat": ChatMachine,
}


@dataclass(frozen=True)
class Budget:
    """How hard to look: Hypothesis examples per clause and steps per example."""

    name: str
    examples: int
    steps: int


BUDGETS: Mapping[str, Budget] = {
    "dev": Budget("dev", examples=15, steps=15),
    "ci": Budget("ci", examples=30, steps=20),
    "thorough": Budget("thorough", examples=500, steps=40),
}


@dataclass
class Failure:
    clause: str  # the clause the observation broke
    message: str
    program: str = ""  # the shrunk program, as Hypothesis prints it
    reproduce: Optional[str] = None  # Hypothesis's @reproduce_failure blob, same version only


@dataclass
class ClauseResult:
    clause: Clause
    verdict: str
    seconds: float = 0.0
    reason: Optional[str] = None
    failure: Optional[Failure] = None


#: The default time limit of one example, in seconds (``RunOptions.timeout``). Examples take
#: well under a second on conforming code; a chat example with a flood, a few seconds.
DEFAULT_TIMEOUT = 60.0


@dataclass
class RunOptions:
    budget: Budget
    seed: int
    timeout: float = DEFAULT_TIMEOUT  # bounds one example, whatever the budget
    known_failures: Mapping[str, KnownFailure] = field(default_factory=dict)


class ClauseHung(BaseException):
    """An example of a clause's run exceeded the time limit (the harness's alarm).

    A BaseException, so that neither the implementation's ``except Exception`` nor
    Hypothesis (which treats only ``Exception`` as a test failure) mistakes it for
    behaviour: it goes straight up to ``check_clause``."""


class Watchdog:
    """Bounds each *example* of a clause's run (one program, its steps and teardown), not
    the whole search: a bigger budget runs more examples, each under the same limit.

    When an example overruns, the alarm raises ClauseHung in the main thread, wherever it
    is -- possibly inside the implementation, whose own handlers (Flask's teardown, say)
    may see it, record it, or turn it into something else. So once the alarm has fired,
    nothing the run produced afterwards is evidence about the implementation: ``fired``
    makes the verdict ``errored``, whatever the run raised, and every later example stops
    at once. Uses SIGALRM, which also interrupts a blocked lock or queue; where there is no
    SIGALRM (or off the main thread) only the actors' own bounded waits apply."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._usable = hasattr(signal, "setitimer")
        self._previous: Any = None
        self._closed = False

    def arm(self) -> None:
        """Start the limit for a new example (called as each example begins)."""
        if self.fired:  # an earlier example overran: stop this search now
            raise ClauseHung()
        if self._usable:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    #: Once fired, the alarm repeats this often until the run is back in the harness: an
    #: implementation that swallows one (a bare ``except:``) and blocks again is stopped too.
    REPEAT = 0.5

    def _alarm(self, signum: int, frame: Any) -> None:
        if self._closed:
            return
        self.fired = True
        signal.setitimer(signal.ITIMER_REAL, self.REPEAT)
        raise ClauseHung()

    def __enter__(self) -> Watchdog:
        self._closed = False
        if self._usable:
            try:
                self._previous = signal.signal(signal.SIGALRM, self._alarm)
            except ValueError:  # not the main thread
                self._usable = False
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True  # first: an alarm arriving from here on does nothing
        if self._usable:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)


def time_limit_reason(seconds: float) -> str:
    """Why a clause overrunning its time limit has no verdict of its own."""
    return (
        f"an example ran longer than the time limit ({seconds:g} s, --timeout): the"
        " implementation hung or is very slow; the harness stopped it, so the clause has no"
        " verdict (not a failure)"
    )


def clause_seed(seed: int, clause_id: str) -> int:
    return (seed ^ zlib.crc32(clause_id.encode())) & 0xFFFFFFFF


def skip_reason(adapter: Any, clause: Clause) -> Optional[str]:
    if clause.capability not in adapter.capabilities:
        return f"the adapter does not declare capability {clause.capability!r}"
    unavailable = getattr(adapter, "unavailable", {}).get(clause.capability)
    if unavailable:
        return f"capability {clause.capability!r} {unavailable}"
    if adapter.profile not in clause.holds_for:
        return f"holds for profiles {clause.profiles}, not {adapter.profile}"
    return None


#: Clauses about several actors get this many times the budget's examples: their bugs need
#: the right actors to meet, which takes more tries than a single actor's.
ACTOR_CLAUSE_EXAMPLES = 2


def check_clause(
    adapter: Any,
    clause: Clause,
    options: RunOptions,
    reproduce: Optional[tuple[str, bytes]] = None,
    shrink: bool = True,
    instrument: Optional[Callable[[type[ConformanceMachine]], type[ConformanceMachine]]] = None,
) -> ClauseResult:
    """Run one clause's machine and return its raw verdict (before known failures).

    ``shrink=False`` reports the first failing example as found (for declared failures in a
    quick budget: nobody needs their minimal form every run). ``instrument`` wraps the
    machine class (the benchmark counts steps with it)."""
    base = MACHINES[clause.capability]
    machine = machine_class(base, clause.id)
    if instrument is not None:
        machine = instrument(machine)
    # A machine that starts actors its own way (requests in flight) says so with
    # ``MANY_ACTORS``.
    with_actors = bool(getattr(base, "ACTOR_KINDS", {}).get(clause.id)) or getattr(
        machine, "MANY_ACTORS", False
    )
    examples = options.budget.examples * (ACTOR_CLAUSE_EXAMPLES if with_actors else 1)
    hang_timeout = min(10.0, options.timeout)

    guard = Watchdog(options.timeout)

    def factory() -> RuleBasedStateMachine:
        guard.arm()
        return machine(adapter, clause.id, hang_timeout)

    factory._hypothesis_internal_use_seed = clause_seed(options.seed, clause.id)  # type: ignore[attr-defined]
    if reproduce is not None:
        factory._hypothesis_internal_use_reproduce_failure = reproduce  # type: ignore[attr-defined]
    # Never Phase.explain: its notes are not part of a program, and on a failing clause it
    # can cost many times what shrinking does.
    skipped = {Phase.explain} if shrink else {Phase.explain, Phase.shrink}
    phases = [p for p in Phase if p not in skipped]
    run_settings = settings(
        phases=phases,
        max_examples=examples,
        stateful_step_count=options.budget.steps,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=True,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.normal,
    )
    lines: list[str] = []

    def report(value: object) -> None:
        lines.append(str(value))

    started = time.perf_counter()

    def result(
        verdict: str, reason: Optional[str] = None, failure: Optional[Failure] = None
    ) -> ClauseResult:
        return ClauseResult(clause, verdict, time.perf_counter() - started, reason, failure)

    try:
        try:
            with with_reporter(report), guard:
                # Typed as taking a class, but any factory of machines will do.
                run_state_machine_as_test(factory, settings=run_settings)  # type: ignore[arg-type]
        except BaseException as error:
            # Once the alarm has fired, what came out of the run is the harness's doing, even
            # if the implementation caught the alarm and turned it into a "violation" or
            # Hypothesis into a Flaky: never a verdict about the implementation.
            if guard.fired and not isinstance(_interruption(error), KeyboardInterrupt):
                return result("errored", time_limit_reason(options.timeout))
            raise
        if guard.fired:  # the alarm was swallowed, and the search went on
            return result("errored", time_limit_reason(options.timeout))
    except ClauseViolation as violation:
        program, blob = _program(lines, violation)
        return result("failed", failure=Failure(violation.clause, violation.detail, program, blob))
    except ClauseHung:
        return result("errored", time_limit_reason(options.timeout))
    except (ActorHung, ChatHung) as hung:
        return result("errored", f"an operation hung: {hung}")
    except Flaky as flaky:
        seen = _violation_in(flaky)
        if seen is None:
            return result(
                "errored", f"a failure did not reproduce (nondeterministic adapter?): {flaky}"
            )
        # The adapter did break the clause, once: that is a failure, not a crash of ours.
        # It did not happen again on replay, so its cause lies outside the schedule (which
        # thread ident the OS hands out, say), and the program may not show it every time.
        program, _ = _program(lines, seen)
        program = program or "# Hypothesis printed no program: the failure did not reproduce"
        detail = f"{seen.detail} [{NOT_REPRODUCED}]"
        return result("failed", failure=Failure(seen.clause, detail, program, None))
    except HypothesisException as error:
        return result("errored", f"Hypothesis: {type(error).__name__}: {error}")
    except Exception as error:  # the adapter crashed outside any checked operation
        # Hypothesis may wrap a Ctrl-C or our watchdog's alarm in an error of its own.
        cause = _interruption(error)
        if isinstance(cause, KeyboardInterrupt):
            raise cause from None
        if cause is not None:
            return result("errored", time_limit_reason(options.timeout))
        program, blob = _program(lines, error)
        return result(
            "errored",
            f"{type(error).__name__}: {error}",
            Failure(clause.id, f"{type(error).__name__}: {error}", program, blob),
        )
    return result("passed")


def replay_program(
    adapter: Any, clause: Clause, program: str, timeout: float = DEFAULT_TIMEOUT
) -> ClauseResult:
    """Run one printed failing program again, once, with no search (conformance/program.py):
    ``failed`` if it violates ``clause`` again, ``passed`` if it runs to its end without,
    ``errored`` if it could not be carried out. Raises ProgramError for a text that is not
    a program of the clause's machine."""
    guard = Watchdog(timeout)
    started = time.perf_counter()
    try:
        with guard:
            guard.arm()
            violation, trouble, _ = run_program(
                adapter, clause, program, MACHINES[clause.capability], min(10.0, timeout)
            )
    except ClauseHung:
        violation, trouble = None, time_limit_reason(timeout)
    if guard.fired:
        violation, trouble = None, time_limit_reason(timeout)
    seconds = time.perf_counter() - started
    if trouble is not None:
        return ClauseResult(clause, "errored", seconds, trouble)
    if violation is not None:
        failure = Failure(violation.clause, violation.detail, program.strip(), None)
        return ClauseResult(clause, "failed", seconds, None, failure)
    return ClauseResult(clause, "passed", seconds)


#: Appended to the message of a violation that did not happen again on replay.
NOT_REPRODUCED = "seen once; it did not happen again when the same program was replayed"


def _violation_in(error: BaseException) -> Optional[ClauseViolation]:
    """The ClauseViolation a Flaky (an exception group of what was seen) carries, if any."""
    if isinstance(error, ClauseViolation):
        return error
    for inner in getattr(error, "exceptions", ()):
        found = _violation_in(inner)
        if found is not None:
            return found
    cause = error.__cause__ or error.__context__
    return _violation_in(cause) if cause is not None else None


def _interruption(error: BaseException) -> Optional[BaseException]:
    """A KeyboardInterrupt or ClauseHung behind ``error``, if it has one."""
    seen: set[int] = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (KeyboardInterrupt, ClauseHung)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _program(lines: list[str], error: BaseException) -> tuple[str, Optional[str]]:
    """The shrunk program from Hypothesis's report, and its reproduce blob if printed."""
    text = [str(line) for line in lines]
    notes = getattr(error, "__notes__", [])
    text.extend(str(note) for note in notes)
    blob = None
    program: list[str] = []
    open_brackets = 0  # a step whose arguments Hypothesis spread over several lines
    for chunk in text:
        for line in chunk.splitlines():
            if open_brackets > 0:
                program.append(line)
                open_brackets += _bracket_balance(line)
            elif "@reproduce_failure(" in line:
                start = line.index("@reproduce_failure(")
                blob = line[start:].split(" as a decorator")[0].strip()
            elif PROGRAM_LINE.match(line):  # the program's own lines; the rest is commentary
                program.append(line)
                open_brackets = max(0, _bracket_balance(line))
    return "\n".join(program), blob


def _bracket_balance(line: str) -> int:
    """Brackets a line opens minus those it closes (outside string literals, roughly)."""
    balance, quote = 0, ""
    for char in line:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            balance += 1
        elif char in ")]}":
            balance -= 1
    return balance


#: A line of a printed state-machine program: ``state = M()``, ``state.rule(...)`` or
#: ``actors_0 = state.rule(...)``.
PROGRAM_LINE = re.compile(r"^\(?[\w, ]*\)?,?\s*=?\s*state( = |\.)")


def parse_blob(blob: str) -> tuple[str, bytes]:
    """Turn ``@reproduce_failure('6.1', b'...')`` into its arguments."""
    import ast

    inner = blob[len("@reproduce_failure(") : -1]
    version, data = ast.literal_eval(f"({inner})")
    return str(version), bytes(data)


def apply_known_failures(result: ClauseResult, known: Mapping[str, KnownFailure]) -> ClauseResult:
    """Turn a declared failure into known-failure, and a strictly declared one that passed
    into unexpected-pass. An errored clause stays errored: a crash is never expected."""
    declared = known.get(result.clause.id)
    if declared is None:
        return result
    if result.verdict == "failed":
        result.verdict = "known-failure"
        result.reason = declared.reason
    elif result.verdict == "passed" and declared.strict:
        result.verdict = "unexpected-pass"
        result.reason = f"declared as a known failure ({declared.reason}), but it passed"
    elif result.verdict == "passed":
        result.reason = f"declared as a failure that may not show ({declared.reason}); it did not"
    return result


def run_clauses(
    adapter: Any,
    clauses: list[Clause],
    options: RunOptions,
    on_start: Callable[[int, Clause], None] = lambda i, c: None,
    on_result: Callable[[int, ClauseResult], None] = lambda i, r: None,
) -> list[ClauseResult]:
    """Run every clause in order. KeyboardInterrupt propagates after the partial results
    have been handed to ``on_result``; the caller keeps them."""
    results = []
    for index, clause in enumerate(clauses):
        reason = skip_reason(adapter, clause)
        if reason is not None:
            result = ClauseResult(clause, "skipped", reason=reason)
        else:
            on_start(index, clause)
            # A declared failure is not shrunk in a quick budget; thorough shrinks everything.
            shrink = clause.id not in options.known_failures or options.budget.name == "thorough"
            result = check_clause(adapter, clause, options, shrink=shrink)
            result = apply_known_failures(result, options.known_failures)
        results.append(result)
        on_result(index, result)
    return results


def hypothesis_version() -> str:
    return hypothesis.__version__
