"""The ``ctxspec`` command: run, replay, adapters, clauses.

Exit codes: 0 every clause passed, skipped or known-failure; 1 something failed, errored
or passed unexpectedly; 2 a usage error (bad option, adapter not loadable, ``--only``
matching nothing, unreadable report or manifest); 130 interrupted (the partial report is
still written).
"""

from __future__ import annotations

import argparse
import fnmatch
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, TextIO

from . import __version__
from . import report as reports
from .adapter import (
    DEFAULT_ADAPTER,
    AdapterError,
    KnownFailure,
    available_adapters,
    load_adapter,
    load_known_failures,
    normalize_known_failures,
    python_version,
)
from .clauses import BY_ID, CLAUSES, Clause
from .profiles import PROFILES, describe
from .program import ProgramError
from .runner import (
    BAD_VERDICTS,
    BUDGETS,
    DEFAULT_TIMEOUT,
    ClauseResult,
    RunOptions,
    check_clause,
    hypothesis_version,
    parse_blob,
    replay_program,
    run_clauses,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_REPORT = "ctxspec-report.json"


class UsageError(Exception):
    """A mistake in how ctxspec was called: one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctxspec",
        description="Check Flask-style context machinery, or a chat server, against ctxspec.",
    )
    parser.add_argument("--version", action="version", version=f"ctxspec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="run the conformance clauses against an adapter")
    run.add_argument(
        "--adapter",
        default=DEFAULT_ADAPTER,
        metavar="SPEC",
        help=f"built-in name, module:attr, or entry-point name (default: {DEFAULT_ADAPTER})",
    )
    run.add_argument(
        "--profile",
        choices=sorted(BUDGETS),
        default="ci",
        help="test budget: how many examples and steps per clause (default: ci)",
    )
    run.add_argument(
        "--report",
        default=DEFAULT_REPORT,
        metavar="FILE",
        help=f"where to write the JSON report (default: {DEFAULT_REPORT})",
    )
    run.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only clauses whose ID matches GLOB (repeatable), e.g. 'local.*'",
    )
    run.add_argument(
        "--known-failures",
        metavar="FILE|none",
        help="known-failures manifest replacing the adapter's own; 'none' shows raw verdicts",
    )
    run.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="longest one example of a clause may run before the clause is declared hung"
        f" and errored (default: {DEFAULT_TIMEOUT:g}; a bigger budget runs more examples, each"
        " under this limit)",
    )
    run.add_argument(
        "--seed",
        default="0",
        metavar="N|random",
        help="seed for Hypothesis (default: 0, so runs repeat; 'random' for a fresh one)",
    )
    run.add_argument(
        "--as-version",
        choices=PROFILES,
        metavar="X.Y",
        help=f"check against this version profile instead of the adapter's ({', '.join(PROFILES)})",
    )

    run.add_argument(
        "--grace",
        type=positive_float,
        metavar="SECONDS",
        help="chat: how long a server may take to free a departed user's name (default: 1)",
    )

    chat = commands.add_parser("chat", help="serve the reference chat (spec/chat.md)")
    chat.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    chat.add_argument(
        "--port", type=int, default=9527, help="port to bind; 0 picks a free one (default: 9527)"
    )

    replay = commands.add_parser("replay", help="re-run one clause's failure from a report")
    replay.add_argument("report", metavar="REPORT", help="a report written by 'ctxspec run'")
    replay.add_argument("clause", metavar="CLAUSE", help="the clause ID to replay")
    replay.add_argument(
        "--timeout", type=positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS"
    )

    commands.add_parser("adapters", help="list the adapters found and their capabilities")
    commands.add_parser("clauses", help="list every clause and where the spec defines it")
    return parser


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return command_run(args)
        if args.command == "replay":
            return command_replay(args)
        if args.command == "adapters":
            return command_adapters()
        if args.command == "chat":
            return command_chat(args)
        return command_clauses()
    except (UsageError, AdapterError) as error:
        print(f"ctxspec: error: {error}", file=sys.stderr)
        return EXIT_USAGE


# -- chat -----------------------------------------------------------------------------------
def command_chat(args: argparse.Namespace) -> int:
    from .adapters.chat_servers import chat_packages_missing

    missing = chat_packages_missing()
    if missing:
        raise UsageError(f"the reference chat server {missing}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    from reference.chat import server

    return server.main(["--host", args.host, "--port", str(args.port)])


# -- run ------------------------------------------------------------------------------------
def select_clauses(patterns: list[str]) -> list[Clause]:
    if not patterns:
        return list(CLAUSES)
    chosen = [c for c in CLAUSES if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
    if not chosen:
        raise UsageError(f"--only {' '.join(patterns)} matches no clause (see 'ctxspec clauses')")
    return chosen


def parse_seed(text: str) -> int:
    if text == "random":
        return random.SystemRandom().randrange(2**32)
    try:
        seed = int(text)
    except ValueError:
        raise UsageError(f"--seed must be a whole number or 'random', not {text!r}") from None
    if not 0 <= seed < 2**32:
        raise UsageError("--seed must be between 0 and 4294967295")
    return seed


def resolve_known_failures(
    adapter: Any, option: Optional[str]
) -> tuple[str, dict[str, KnownFailure]]:
    if option == "none":
        return "none", {}
    if option is not None:
        path = Path(option)
        if not path.is_file():
            raise UsageError(f"--known-failures: no such file: {option}")
        source, known = str(path), load_known_failures(path)
    else:
        source = "shipped"
        known = normalize_known_failures(
            getattr(adapter, "known_failures", {}), f"adapter {adapter.name}"
        )
    unknown = sorted(set(known) - set(BY_ID))
    if unknown:
        raise UsageError(f"known failures from {source} name unknown clauses: {', '.join(unknown)}")
    return source, known


def command_run(args: argparse.Namespace) -> int:
    adapter = load_adapter(args.adapter)
    if args.as_version:
        adapter.profile = args.as_version
    if args.grace is not None:
        adapter.grace = args.grace
    clauses = select_clauses(args.only)
    seed = parse_seed(args.seed)
    source, known = resolve_known_failures(adapter, args.known_failures)
    budget = BUDGETS[args.profile]
    report_path = Path(args.report)
    if report_path.parent and not report_path.parent.is_dir():
        raise UsageError(f"--report: no such directory: {report_path.parent}")
    header = reports.RunHeader(
        args.adapter,
        adapter,
        budget,
        seed,
        args.only,
        source,
        {k: {"reason": v.reason, "strict": v.strict} for k, v in known.items()},
    )
    options = RunOptions(budget, seed, args.timeout, known)
    out = sys.stdout
    print_header(out, adapter, args.adapter, budget.name, seed)
    table = ProgressTable(out, len(clauses))
    results: list[ClauseResult] = []
    started = time.perf_counter()
    interrupted = False

    def finished(index: int, result: ClauseResult) -> None:
        results.append(result)
        table.done(index, result)

    try:
        run_clauses(adapter, clauses, options, table.start, finished)
    except KeyboardInterrupt:
        interrupted = True
        table.interrupt()
    reports.write(report_path, reports.build(header, results, interrupted))
    print_failures(out, results, report_path)
    print_summary(out, results, time.perf_counter() - started, report_path, len(clauses))
    if interrupted:
        print(f"interrupted: {len(results)} of {len(clauses)} clauses finished", file=out)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(r.verdict in BAD_VERDICTS for r in results) else EXIT_OK


def print_header(out: TextIO, adapter: Any, spec: str, budget: str, seed: int) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in adapter.versions().items()) or "no versions given"
    chosen = BUDGETS[budget]
    print(
        f"ctxspec {__version__}: adapter {spec} ({versions}), profile {adapter.profile}, "
        f"capabilities {', '.join(sorted(adapter.capabilities))}",
        file=out,
    )
    print(
        f"Python {python_version()}, Hypothesis {hypothesis_version()}, budget {budget} "
        f"({chosen.examples} examples x {chosen.steps} steps per clause), seed {seed}",
        file=out,
    )
    print(file=out)


class ProgressTable:
    """One row per clause as it finishes; on a terminal, the running clause is shown too."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = total
        self.width = max([len(c.id) for c in CLAUSES] + [6])
        self.live = out.isatty()

    def prefix(self, index: int) -> str:
        return f"[{index + 1:>{len(str(self.total))}}/{self.total}]"

    def start(self, index: int, clause: Clause) -> None:
        if self.live:
            self.out.write(f"{self.prefix(index)} {clause.id} ...\r")
            self.out.flush()

    def done(self, index: int, result: ClauseResult) -> None:
        note = result.reason if result.verdict in ("skipped", "known-failure", "errored") else ""
        seconds = f"{result.seconds:6.2f}s" if result.verdict != "skipped" else " " * 7
        line = (
            f"{self.prefix(index)} {result.clause.id:<{self.width}}  {result.verdict:<15} {seconds}"
        )
        if note:
            line += f"  {note}"
        if self.live:
            self.out.write("\x1b[2K")  # clear the "running" line
        print(line, file=self.out, flush=True)

    def interrupt(self) -> None:
        if self.live:
            self.out.write("\x1b[2K")
        print("-- interrupted --", file=self.out)


def print_failures(out: TextIO, results: list[ClauseResult], report_path: Path) -> None:
    bad = [r for r in results if r.verdict in BAD_VERDICTS]
    if not bad:
        return
    print(file=out)
    for result in bad:
        print(f"{result.clause.id}: {result.verdict} ({result.clause.spec_file})", file=out)
        if result.reason:
            print(f"  {result.reason}", file=out)
        failure = result.failure
        if failure is not None:
            print(f"  violates {failure.clause}: {failure.message}", file=out)
            if failure.program:
                print("  shrunk program:", file=out)
                for line in failure.program.splitlines():
                    print(f"    {line}", file=out)
            print(f"  replay: ctxspec replay {report_path} {result.clause.id}", file=out)


def print_summary(
    out: TextIO, results: list[ClauseResult], seconds: float, report_path: Path, total: int
) -> None:
    counts = reports.summarize(results)
    print(file=out)
    if results and counts["skipped"] == len(results) == total:
        print("nothing to check: no selected clause applies to this adapter", file=out)
    parts = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    print(f"summary: {parts} ({seconds:.1f} s)", file=out)
    print(f"report: {report_path}", file=out)


# -- replay ---------------------------------------------------------------------------------
def command_replay(args: argparse.Namespace) -> int:
    path = Path(args.report)
    try:
        data = reports.load(path)
        adapter_spec = data["adapter"]["spec"]
        profile = data["adapter"]["profile"]
        budget = BUDGETS[data["budget"]["name"]]
        seed = int(data["seed"])
        entries = {entry["clause"]: entry for entry in data["results"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"cannot read report {path}: {error}") from None
    if args.clause not in entries:
        raise UsageError(f"report {path} has no result for clause {args.clause!r}")
    entry = entries[args.clause]
    adapter = load_adapter(adapter_spec)
    adapter.profile = profile
    failure = entry.get("failure") or {}
    blob, program = failure.get("reproduce"), failure.get("program")
    reproduce = None
    same_hypothesis = data.get("hypothesis") == hypothesis_version()
    if blob and same_hypothesis:
        reproduce = parse_blob(blob)
        how = "the exact failing example"
    elif program and program.startswith("state = "):
        # Another Hypothesis cannot read the blob, but the printed program needs none.
        how = "its failing program, run once as printed"
    else:
        how = (
            f"seed {seed} (Hypothesis {hypothesis_version()} differs from the report's)"
            if blob
            else f"seed {seed}"
        )
    print(
        f"replaying {args.clause} ({entry['verdict']} in {path}) against {adapter_spec} with {how}"
    )
    if reproduce is None and program and program.startswith("state = "):
        try:
            result = replay_program(adapter, BY_ID[args.clause], program, args.timeout)
        except ProgramError as error:
            raise UsageError(f"report {path}: the program of {args.clause}: {error}") from None
    else:
        result = check_clause(
            adapter, BY_ID[args.clause], RunOptions(budget, seed, args.timeout), reproduce
        )
    print(f"{args.clause}: {result.verdict} ({result.seconds:.2f} s)")
    if result.reason:
        print(f"  {result.reason}")
    if result.failure is not None:
        print(f"  violates {result.failure.clause}: {result.failure.message}")
        for line in result.failure.program.splitlines():
            print(f"    {line}")
    return EXIT_OK if result.verdict == "passed" else EXIT_FAILED


# -- listings -------------------------------------------------------------------------------
def command_adapters() -> int:
    for name, source in available_adapters().items():
        try:
            adapter = load_adapter(name)
            caps = ", ".join(sorted(adapter.capabilities))
            print(f"{name:<16} profile {adapter.profile:<4} capabilities: {caps}  ({source})")
        except AdapterError as error:
            print(f"{name:<16} unavailable: {error}  ({source})")
    return EXIT_OK


def command_clauses() -> int:
    width = max(len(c.id) for c in CLAUSES)
    for clause in CLAUSES:
        print(
            f"{clause.id:<{width}}  {clause.capability:<6} {clause.level:<9} "
            f"profiles {describe(clause.holds_for):<6} {clause.anchor}"
        )
        print(f"{'':<{width}}  {clause.title}")
    return EXIT_OK
