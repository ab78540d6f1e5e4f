"""Checking real Flask as another release line's version profile fails, and names exactly
the clauses that differ: those that hold for the forced profile and not for the installed
one. (The clauses that hold only for the installed profile are skipped then.) This is what
tells an old release from a broken one, so it must have teeth on every release: tox runs
this file under each Flask release it checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from conformance.adapter import library_version
from conformance.clauses import CLAUSES
from conformance.profiles import profile_for_version

pytest.importorskip("flask")

FLASK_CAPABILITIES = {"local", "stack", "proxy", "contexts", "lifecycle"}


def differing(installed: str, forced: str) -> tuple[set[str], set[str]]:
    """The clauses of Flask's capabilities that hold for only one of two profiles: (for
    ``forced`` only, for ``installed`` only)."""
    ours = [c for c in CLAUSES if c.capability in FLASK_CAPABILITIES]
    only_forced = {c.id for c in ours if forced in c.holds_for and installed not in c.holds_for}
    only_installed = {c.id for c in ours if installed in c.holds_for and forced not in c.holds_for}
    return only_forced, only_installed


def test_the_wrong_profile_fails_the_clauses_that_differ(
    ctxspec: Callable[..., Any], tmp_path: Path
) -> None:
    installed = profile_for_version(library_version("flask"))
    forced = "3.1" if installed != "3.1" else "2.0"
    only_forced, only_installed = differing(installed, forced)
    assert only_forced, f"no clause tells profile {forced} from {installed}"
    report = tmp_path / "report.json"
    args = ["run", "--adapter", "flask", "--as-version", forced, "--report", str(report)]
    for clause in sorted(only_forced | only_installed):
        args += ["--only", clause]
    done = ctxspec(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    verdicts = {r["clause"]: r["verdict"] for r in json.loads(report.read_text())["results"]}
    assert {c for c, v in verdicts.items() if v == "failed"} == only_forced, done.stdout
    assert {c for c, v in verdicts.items() if v == "skipped"} == only_installed, done.stdout
