"""The JSON report of a run: header, one entry per clause, summary.

Its schema is ``report.schema.json`` beside this file (documented in README.md, checked
by the tests). A report is written even when the run is interrupted; ``interrupted`` says
so and the clauses not reached are simply absent.
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from . import __version__
from .adapter import python_version
from .runner import VERDICTS, Budget, ClauseResult, hypothesis_version

SCHEMA_ID = "https://ctxspec.invalid/report/1"
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


@dataclass
class RunHeader:
    adapter_spec: str
    adapter: Any
    budget: Budget
    seed: int
    only: list[str]
    known_failures_source: str
    known_failures: Mapping[str, Any]
    started: str = field(default_factory=lambda: now())


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def summarize(results: list[ClauseResult]) -> dict[str, int]:
    counts = Counter(result.verdict for result in results)
    return {verdict: counts.get(verdict, 0) for verdict in VERDICTS}


def build(header: RunHeader, results: list[ClauseResult], interrupted: bool) -> dict[str, Any]:
    adapter = header.adapter
    return {
        "$schema": SCHEMA_ID,
        "ctxspec": __version__,
        "started": header.started,
        "finished": now(),
        "interrupted": interrupted,
        "adapter": {
            "spec": header.adapter_spec,
            "name": getattr(adapter, "name", header.adapter_spec),
            "capabilities": sorted(adapter.capabilities),
            "profile": adapter.profile,
            "versions": dict(adapter.versions()),
        },
        "python": {"version": python_version(), "implementation": platform.python_implementation()},
        "hypothesis": hypothesis_version(),
        "budget": {
            "name": header.budget.name,
            "examples": header.budget.examples,
            "steps": header.budget.steps,
        },
        "seed": header.seed,
        "only": header.only,
        "known_failures": {
            "source": header.known_failures_source,
            "entries": dict(header.known_failures),
        },
        "results": [entry(result) for result in results],
        "summary": summarize(results),
    }


def entry(result: ClauseResult) -> dict[str, Any]:
    clause = result.clause
    failure: Optional[dict[str, Any]] = None
    if result.failure is not None:
        failure = {
            "clause": result.failure.clause,
            "message": result.failure.message,
            "program": result.failure.program,
            "reproduce": result.failure.reproduce,
        }
    return {
        "clause": clause.id,
        "capability": clause.capability,
        "title": clause.title,
        "level": clause.level,
        "spec": clause.spec_file,
        "verdict": result.verdict,
        "seconds": round(result.seconds, 3),
        "reason": result.reason,
        "failure": failure,
    }


def write(path: Path, report: Mapping[str, Any]) -> None:
    """Write atomically, so that an interrupted write never leaves half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=repr) + "\n", encoding="utf-8")
    tmp.replace(path)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data
