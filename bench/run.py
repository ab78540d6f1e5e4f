"""ctxspec's benchmark. It measures and reports; it is not a test.

    python bench/run.py [--quick] [--check] [--json FILE]

1. Micro costs of Local and LocalProxy operations, as multiples of a bare
   ``ContextVar.get()`` timed in the same process (``micro``).
2. Steps per second of each conformance machine against the reference and Werkzeug
   adapters (``throughput``).
3. The suite's cost per step against the raw Flask operation it exercises (``flaskops``).
4. How long ``ctxspec run --profile ci`` takes for one adapter (``cirun``).
5. Chat servers under load: the reference's deliveries per second and latency against a
   ``websockets`` relay, and its memory per connection (``chat``).

Each target is reported PASS, MISS or n/a. The exit status is 0 whatever the figures,
unless ``--check`` is given: then a MISS exits 1. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Optional

import hypothesis
from cirun import CiRun, time_ctxspec_run
from flaskops import measure_flask_ops
from micro import MicroResult, build_cases, measure
from throughput import MachineRun, run_machines

from conformance.adapter import AdapterError, load_adapter
from conformance.adapters.chat_servers import chat_packages_missing
from conformance.runner import BUDGETS, MACHINES

ADAPTERS = ("reference", "werkzeug", "flask")
#: Capabilities whose machines section 2 runs.
CAPABILITIES = ("local", "stack", "proxy", "contexts", "lifecycle")
SEED = 0  # the CLI's default seed: section 2 runs the programs section 3 runs

#: Reference cost at most this multiple of Werkzeug's, for a Local get and a proxied read.
TARGET_RATIO = 0.5
#: A micro figure whose drift exceeds this is flagged as unsteady.
UNSTEADY = 0.10
#: ``ctxspec run --profile ci``: which adapter, which capabilities, how long at most.
CI_TARGETS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("reference", ("local", "stack", "proxy"), 20.0),
    ("werkzeug", ("local", "stack", "proxy"), 20.0),
    ("flask", CAPABILITIES, 60.0),
)
#: The suite's cost per step, at most this multiple of the raw Flask operation it exercises.
TARGET_STEP_RATIO = 3.0
#: The machine whose steps exercise each raw Flask operation.
STEP_OPERATIONS = {"contexts": "push_pop", "lifecycle": "request"}


@dataclass(frozen=True)
class Mode:
    name: str
    rounds: int  # micro: rounds of interleaved samples
    sample_seconds: float  # micro: about how long one sample runs
    budget: str  # machines and ctxspec run: the Hypothesis budget
    machine_repeats: int  # machines: runs of each clause per adapter (the fastest counts)
    chat: str  # chat: which of chat.py's modes


# Many short samples rather than a few long ones: see micro's module docstring.
QUICK = Mode(
    "quick", rounds=60, sample_seconds=0.001, budget="dev", machine_repeats=1, chat="quick"
)
FULL = Mode("full", rounds=200, sample_seconds=0.002, budget="ci", machine_repeats=3, chat="full")


@dataclass
class Target:
    name: str
    goal: str
    figure: Optional[float]
    status: str  # PASS, MISS or n/a
    note: str = ""


def say(*parts: Any) -> None:
    print(*parts, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="ctxspec benchmark (reports; never a test)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few repeats and the dev budget: a smoke run of well under a minute",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL

    print_environment(mode)
    micro = section_micro(mode)
    targets = micro_targets(micro)
    print_targets(targets)
    machines = section_machines(mode)
    step_targets = section_flask_steps(mode, machines)
    print_targets(step_targets)
    targets += step_targets
    ci_runs = section_ci(mode)
    ci_targets = ci_run_targets(ci_runs, mode)
    print_targets(ci_targets)
    targets += ci_targets
    chat, chat_targets = section_chat(mode)
    print_targets(chat_targets)
    targets += chat_targets

    counts = {s: sum(t.status == s for t in targets) for s in ("PASS", "MISS", "n/a")}
    say()
    say("targets: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    if args.json:
        write_json(args.json, mode, micro, machines, ci_runs, chat, targets)
        say(f"figures written to {args.json}")
    return 1 if args.check and counts["MISS"] else 0


# -- environment ----------------------------------------------------------------------------
def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "hypothesis": hypothesis.__version__}
    try:
        found["werkzeug"] = metadata.version("werkzeug")
    except metadata.PackageNotFoundError:
        found["werkzeug"] = "not installed"
    return found


def load_average() -> Optional[tuple[float, float, float]]:
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def print_environment(mode: Mode) -> None:
    found = ", ".join(f"{name} {version}" for name, version in versions().items())
    load = load_average()
    load_text = f", load average {load[0]:.2f}" if load else ""
    say(f"ctxspec benchmark ({mode.name}): {found}; {os.cpu_count()} CPUs{load_text}")


# -- 1. micro costs -------------------------------------------------------------------------
def section_micro(mode: Mode) -> MicroResult:
    say()
    say(
        f"1. micro costs: fastest of {mode.rounds} interleaved samples of "
        f"~{mode.sample_seconds * 1000:g} ms each, as multiples of ContextVar.get()"
    )
    yardstick, cases, unavailable = build_cases()
    result = measure(yardstick, cases, unavailable, mode.rounds, mode.sample_seconds)
    width = max(len(t.label) for t in [result.yardstick, *result.cases]) + 2
    say(f"  {'operation':<{width}}{'ns/op':>8}{'x get':>8}{'drift':>8}{'spread':>8}")
    for timing in [result.yardstick, *result.cases]:
        ratio = timing.best / result.yardstick.best
        say(
            f"  {timing.label:<{width}}{timing.best:8.1f}{ratio:8.2f}{timing.drift:+8.1%}"
            f"{timing.spread:8.0%}"
        )
    for key, reason in result.unavailable.items():
        label = "reference proxy" if key == "reference.proxy.read" else key
        say(f"  {label}: {reason}")
    say(
        "  (drift: fastest sample of the run's second half against the first half's; "
        "spread: median sample against the fastest)"
    )
    return result


def ratio_target(micro: MicroResult, name: str, ours: str, theirs: str, what: str) -> Target:
    goal = f"<= {TARGET_RATIO:.2f} x {what}"
    mine, other = micro.ratio(ours), micro.ratio(theirs)
    if mine is None or other is None:
        missing = ours if mine is None else theirs
        return Target(name, goal, None, "n/a", micro.unavailable.get(missing, "not measured"))
    figure = mine / other
    timings = [micro.yardstick, micro.timing(ours), micro.timing(theirs)]
    worst = max(abs(t.drift) for t in timings if t is not None)
    note = f"unsteady: a drift of {worst:.0%}, run again" if worst > UNSTEADY else ""
    return Target(name, goal, figure, "PASS" if figure <= TARGET_RATIO else "MISS", note)


def micro_targets(micro: MicroResult) -> list[Target]:
    return [
        ratio_target(
            micro,
            "reference Local get",
            "reference.local.get",
            "werkzeug.local.get",
            "Werkzeug Local get",
        ),
        ratio_target(
            micro,
            "reference proxied read",
            "reference.proxy.read",
            "werkzeug.proxy.read",
            "Werkzeug proxied read",
        ),
    ]


# -- 2. machine throughput ------------------------------------------------------------------
def section_machines(mode: Mode) -> list[MachineRun]:
    budget = BUDGETS[mode.budget]
    say()
    say(
        f"2. machine throughput: budget {budget.name} ({budget.examples} examples x "
        f"{budget.steps} steps per clause), seed {SEED}, fastest of {mode.machine_repeats} "
        "interleaved run(s) per clause"
    )
    adapters: dict[str, Any] = {}
    for name in ADAPTERS:
        try:
            adapters[name] = load_adapter(name)
        except AdapterError as error:
            say(f"  {name}: not available ({error})")
    for capability in CAPABILITIES:
        if capability not in MACHINES:
            say(f"  {capability} machine: not available (conformance.runner.MACHINES has none)")

    runs: list[MachineRun] = []
    say(
        f"  {'machine':<10}{'adapter':<11}{'clauses':>8}{'steps':>8}{'wall s':>8}{'cpu s':>8}"
        f"{'steps/s':>9}{'/cpu-s':>8}   werkzeug/reference: wall, cpu"
    )
    for capability in (c for c in CAPABILITIES if c in MACHINES):
        for name, adapter in adapters.items():
            if capability not in adapter.capabilities:
                say(f"  {capability:<10}{name:<11}does not declare {capability!r}")
        by_adapter = run_machines(adapters, capability, budget, SEED, mode.machine_repeats)
        base = by_adapter.get("reference")
        for name, run in by_adapter.items():
            runs.append(run)
            ratios = ""
            if name == "werkzeug" and base is not None and base.steps and run.steps:
                ratios = (
                    f"{run.steps_per_second / base.steps_per_second:.2f}, "
                    f"{run.steps_per_cpu_second / base.steps_per_cpu_second:.2f}"
                )
            say(
                f"  {capability:<10}{name:<11}{len(run.runs):>8}{run.steps:>8}{run.seconds:8.2f}"
                f"{run.cpu_seconds:8.2f}{run.steps_per_second:9.0f}"
                f"{run.steps_per_cpu_second:8.0f}   {ratios}"
            )
            for problem in run.problems:
                say(f"    {problem}")
        if len({run.steps for run in by_adapter.values()}) > 1:
            say(
                f"    note: the adapters ran different numbers of {capability} steps "
                "(a failing clause shrinks), so their steps/s compare less directly"
            )
    for name in adapters:
        clause_runs = [c for run in runs if run.adapter == name for c in run.runs]
        slowest = sorted(clause_runs, key=lambda c: c.seconds, reverse=True)[:3]
        if slowest:
            say(
                f"  slowest clauses, {name}: "
                + ", ".join(
                    f"{c.clause} {c.seconds:.2f} s ({c.cpu_seconds:.2f} cpu)" for c in slowest
                )
            )
    return runs


# -- 3. Flask's own operations against the suite's cost per step -------------------------
def section_flask_steps(mode: Mode, machines: list[MachineRun]) -> list[Target]:
    say()
    say(
        "3. the suite's cost per step against the raw Flask operation it exercises "
        "(fastest of many interleaved samples)"
    )
    ops = measure_flask_ops(mode.rounds // 4 or 1)
    if isinstance(ops, str):
        say(f"  {ops}")
        return [Target("cost per step", "", None, "n/a", ops)]
    say(f"  raw: test_request_context() push+pop {ops.push_pop_us:.1f} us, ")
    say(f"       one test-client request {ops.request_us:.1f} us")
    targets = []
    for capability, operation in STEP_OPERATIONS.items():
        run = next(
            (m for m in machines if m.capability == capability and m.adapter == "flask"), None
        )
        name = f"{capability} machine step vs Flask {operation.replace('_', '+')}"
        goal = f"<= {TARGET_STEP_RATIO:g} x"
        if run is None or not run.steps:
            targets.append(Target(name, goal, None, "n/a", "machine not run against flask"))
            continue
        per_step_us = run.seconds / run.steps * 1e6
        raw = ops.push_pop_us if operation == "push_pop" else ops.request_us
        ratio = per_step_us / raw
        say(f"  {capability}: {per_step_us:.1f} us per step = {ratio:.1f} x the raw operation")
        targets.append(Target(name, goal, ratio, "PASS" if ratio <= TARGET_STEP_RATIO else "MISS"))
    return targets


# -- 4. ctxspec run -------------------------------------------------------------------------
def section_ci(mode: Mode) -> list[CiRun]:
    say()
    say(f"4. ctxspec run --profile {mode.budget} (in this process)")
    say(f"  {'adapter':<11}{'clauses':<36}{'wall s':>8}{'cpu s':>8}{'exit':>6}  summary")
    runs = []
    for name, capabilities, _ in CI_TARGETS:
        run = time_ctxspec_run(name, mode.budget, capabilities)
        runs.append(run)
        code = "-" if run.exit_code is None else str(run.exit_code)
        say(
            f"  {name:<11}{', '.join(capabilities):<36}{run.seconds:8.2f}{run.cpu_seconds:8.2f}"
            f"{code:>6}  {run.summary}"
        )
    return runs


def ci_run_targets(runs: list[CiRun], mode: Mode) -> list[Target]:
    targets = []
    for run, (_, capabilities, limit) in zip(runs, CI_TARGETS):
        goal = f"< {limit:g} s wall on this {os.cpu_count()}-CPU machine"
        name = f"ctxspec run --profile ci, {run.adapter} ({', '.join(capabilities)})"
        if mode.budget != "ci":
            note = f"--quick runs the {mode.budget} budget; the target is for ci"
            targets.append(Target(name, goal, None, "n/a", note))
        elif run.exit_code is None or run.exit_code == 2:
            targets.append(
                Target(name, goal, None, "n/a", f"the run did not complete: {run.summary}")
            )
        else:
            status = "PASS" if run.seconds < limit else "MISS"
            targets.append(Target(name, goal, run.seconds, status))
    return targets


# -- 5. chat under load --------------------------------------------------------------------
def section_chat(mode: Mode) -> tuple[Optional[dict[str, Any]], list[Target]]:
    """The chat benchmark (``chat.py``), its figures as JSON and its targets."""
    say()
    say("5. chat servers under load (each a child process; ratios to the websockets relay)")
    missing = chat_packages_missing()
    if missing:
        say(f"  not run: the chat {missing}")
        return None, [Target("chat group fan-out", "", None, "n/a", missing)]
    import chat  # here: it imports websockets, which only the chat extra brings

    try:
        report = chat.run_chat(chat.QUICK if mode.chat == "quick" else chat.FULL, say)
    except Exception as error:  # reported, not raised, like a crash of ctxspec run (cirun)
        why = f"the chat benchmark failed: {type(error).__name__}: {error}"
        say(f"  {why}")
        return None, [Target("chat group fan-out", "", None, "n/a", why)]
    targets = [Target(t.name, t.goal, t.figure, t.status, t.note) for t in report.targets]
    return report.as_json(), targets


# -- targets and figures --------------------------------------------------------------------
def print_targets(targets: list[Target]) -> None:
    say("  targets:")
    for target in targets:
        figure = "-" if target.figure is None else f"{target.figure:.2f}"
        note = f"  ({target.note})" if target.note else ""
        say(f"    {target.name}: {figure}, goal {target.goal}: {target.status}{note}")


def write_json(
    path: str,
    mode: Mode,
    micro: MicroResult,
    machines: list[MachineRun],
    ci_runs: list[CiRun],
    chat: Optional[dict[str, Any]],
    targets: list[Target],
) -> None:
    yardstick = micro.yardstick.best
    figures = {
        "mode": asdict(mode),
        "versions": versions(),
        "cpus": os.cpu_count(),
        "load_average": load_average(),
        "micro": {
            "yardstick": "ContextVar.get()",
            "yardstick_ns": yardstick,
            "yardstick_drift": micro.yardstick.drift,
            "yardstick_spread": micro.yardstick.spread,
            "rounds": micro.rounds,
            "unroll": micro.unroll,
            "operations": {
                t.key: {
                    "label": t.label,
                    "ns": t.best,
                    "ratio": t.best / yardstick,
                    "drift": t.drift,
                    "spread": t.spread,
                }
                for t in micro.cases
            },
            "unavailable": micro.unavailable,
        },
        "machines": [
            {
                **asdict(run),
                "steps": run.steps,
                "seconds": run.seconds,
                "cpu_seconds": run.cpu_seconds,
                "steps_per_second": run.steps_per_second,
                "steps_per_cpu_second": run.steps_per_cpu_second,
            }
            for run in machines
        ],
        "ctxspec_run": [asdict(run) for run in ci_runs],
        "chat": chat,
        "targets": [asdict(target) for target in targets],
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(figures, out, indent=2)
        out.write("\n")


if __name__ == "__main__":
    sys.exit(main())
