"""Machine throughput: how many steps per second a conformance machine runs.

A *step* is one rule a machine executes (an operation by an actor, a spawn, a finish).
The time is the whole run of a clause: Hypothesis drawing the program, the machine and
its model, the scheduler's handoffs and the implementation under test. That is what
sets how long ``ctxspec run`` takes, so it is the throughput worth watching.

How steps are counted: ``check_clause`` -- the very function ``ctxspec run`` calls --
takes an ``instrument`` that wraps the machine class. The wrapper here overrides
``check_invariants``, which Hypothesis calls once when a machine starts and once after
every step it completes, so ``steps = calls - machines``. The override adds one Python
call per step, next to steps that cost hundreds of microseconds.

Because the clause's seed fixes the programs Hypothesis draws, two adapters that both
pass run the very same steps, and their steps per second compare directly.

Steps per second are given per wall second and per CPU second (this process, every
thread). Wall time is what a user waits; CPU time leaves out the time the process was
not running at all -- descheduled on a busy machine, or waiting for a thread actor to
wake up -- and so is the steadier figure for comparing two adapters.
``ctxspec run`` itself, unmodified, is timed separately (``cirun``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.clauses import CLAUSES, Clause
from conformance.machines.base import ConformanceMachine
from conformance.runner import Budget, RunOptions, check_clause, skip_reason

#: The CLI's default --timeout.
RUN_TIMEOUT = 120.0


@dataclass
class StepCounter:
    checks: int = 0  # calls of check_invariants
    machines: int = 0  # machines built (one per example Hypothesis runs)

    @property
    def steps(self) -> int:
        return self.checks - self.machines


@dataclass
class ClauseRun:
    clause: str
    outcome: str  # "passed", "failed: ..." or "errored: ..."
    steps: int
    examples: int
    seconds: float
    cpu_seconds: float


@dataclass
class MachineRun:
    """One machine (capability) against one adapter: every clause it applies to."""

    capability: str
    adapter: str
    runs: list[ClauseRun] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(run.steps for run in self.runs)

    @property
    def seconds(self) -> float:
        return sum(run.seconds for run in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return sum(run.cpu_seconds for run in self.runs)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    @property
    def steps_per_cpu_second(self) -> float:
        return self.steps / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def problems(self) -> list[str]:
        return [f"{run.clause}: {run.outcome}" for run in self.runs if run.outcome != "passed"]


def counting(machine: type[ConformanceMachine], counter: StepCounter) -> type[ConformanceMachine]:
    """``machine`` with every start and step it runs counted in ``counter``."""

    class Counted(machine):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            counter.machines += 1

        def check_invariants(self, *args: Any, **kwargs: Any) -> None:
            counter.checks += 1
            super().check_invariants(*args, **kwargs)

    Counted.__name__ = Counted.__qualname__ = machine.__name__
    return Counted


def run_clause(adapter: Any, clause: Clause, budget: Budget, seed: int) -> ClauseRun:
    """One clause's run, exactly as ``ctxspec run`` does it, with its steps counted."""
    counter = StepCounter()
    options = RunOptions(budget, seed, timeout=RUN_TIMEOUT)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = check_clause(
        adapter, clause, options, instrument=lambda machine: counting(machine, counter)
    )
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    outcome = result.verdict
    if result.verdict == "failed" and result.failure is not None:
        outcome = f"failed: {result.failure.clause}"
    elif result.verdict == "errored":
        outcome = f"errored: {result.reason}"
    return ClauseRun(clause.id, outcome, counter.steps, counter.machines, seconds, cpu_seconds)


def run_machines(
    adapters: Mapping[str, Any], capability: str, budget: Budget, seed: int, repeats: int = 1
) -> dict[str, MachineRun]:
    """Every clause of ``capability``, against every adapter that declares it.

    The runs are interleaved -- each clause against each adapter in turn, ``repeats``
    times over -- so that a slow minute on a shared machine falls on both adapters rather
    than on one. A clause's figures are its fastest repeat (wall and CPU separately):
    the programs are the same every time, and noise only adds time."""
    results = {
        name: MachineRun(capability, name)
        for name, adapter in adapters.items()
        if capability in adapter.capabilities
    }
    for clause in CLAUSES:
        if clause.capability != capability:
            continue
        best: dict[str, ClauseRun] = {}
        for _ in range(repeats):
            for name, result in results.items():
                adapter = adapters[name]
                if skip_reason(adapter, clause) is not None:
                    if clause.id not in result.skipped:
                        result.skipped.append(clause.id)
                    continue
                run = run_clause(adapter, clause, budget, seed)
                if name in best:
                    kept = best[name]
                    run.seconds = min(run.seconds, kept.seconds)
                    run.cpu_seconds = min(run.cpu_seconds, kept.cpu_seconds)
                best[name] = run
        for name, run in best.items():
            results[name].runs.append(run)
    return results
