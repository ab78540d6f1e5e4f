"""How long ``ctxspec run`` takes for one adapter: the real command, in this process.

``conformance.cli.main`` is called exactly as the console script calls it, with its
output captured instead of printed. In this process the imports are already done and
Hypothesis is warm, so the figure leaves out interpreter start-up and importing
(a few tenths of a second): it is the time the clauses themselves take.

Wall time is what the target is about; CPU time (this process, every thread) is printed
beside it because on a shared machine the two part ways: wall time well above CPU time
means the run spent time waiting, for the scheduler's thread handoffs or for a CPU
another process held.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from conformance import cli


@dataclass
class CiRun:
    adapter: str
    profile: str
    capabilities: list[str]  # whose clauses were run
    exit_code: Optional[int]  # None: the command crashed
    seconds: float
    cpu_seconds: float
    summary: str  # the command's "summary: ..." line without "summary: ", or the crash


def time_ctxspec_run(adapter: str, profile: str, capabilities: Sequence[str]) -> CiRun:
    """Run ``ctxspec run --adapter ADAPTER --profile PROFILE --only CAP.* ...`` for the
    given capabilities, and time it. A crash of the command is reported, not raised."""
    only = [arg for capability in capabilities for arg in ("--only", f"{capability}.*")]
    captured = io.StringIO()
    exit_code: Optional[int] = None
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "run",
            "--adapter",
            adapter,
            "--profile",
            profile,
            "--report",
            os.path.join(tmp, "report.json"),
            *only,
        ]
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            with contextlib.redirect_stdout(captured):
                exit_code = cli.main(argv)
        except Exception as error:
            crash = f"the command crashed: {type(error).__name__}: {error}"
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    if exit_code is None:
        summary = crash
    else:
        prefix = "summary: "
        summary = next(
            (
                line[len(prefix) :]
                for line in captured.getvalue().splitlines()
                if line.startswith(prefix)
            ),
            "no summary printed",
        )
    return CiRun(adapter, profile, list(capabilities), exit_code, seconds, cpu_seconds, summary)
