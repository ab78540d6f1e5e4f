"""The suite checks itself: every mutant (tests/mutants.py) is caught by the clause it
breaks, with a short shrunk program, and passes an unrelated clause; the nonconforming
built-in adapters fail exactly what their manifests declare.

Slow: run with ``pytest -m slow`` (tox env ``mutants``)."""

from __future__ import annotations

import json

import pytest
from mutants import MUTANTS, Mutant

from conformance import cli
from conformance.adapter import load_adapter, normalize_known_failures
from conformance.clauses import BY_ID
from conformance.runner import BUDGETS, ClauseResult, RunOptions, check_clause

pytestmark = pytest.mark.slow

#: The longest acceptable shrunk program, counting ``state = ...`` and ``state.teardown()``.
MAX_PROGRAM_LINES = 8


def check(mutant: Mutant, clause: str) -> ClauseResult:
    options = RunOptions(BUDGETS["ci"], seed=0, timeout=60)
    return check_clause(mutant.adapter, BY_ID[clause], options)


@pytest.mark.parametrize("mutant", MUTANTS, ids=str)
def test_mutant_is_caught_by_its_clause(mutant):
    """The mutant fails the clause it breaks, with a short shrunk program."""
    result = check(mutant, mutant.catches)
    assert result.verdict == "failed", result.reason
    assert result.failure is not None
    assert result.failure.clause == mutant.catches, result.failure.message
    lines = result.failure.program.splitlines()
    assert lines[0].startswith("state = ")
    assert lines[-1] == "state.teardown()"
    assert len(lines) <= MAX_PROGRAM_LINES, result.failure.program


@pytest.mark.parametrize("mutant", MUTANTS, ids=str)
def test_mutant_passes_an_unrelated_clause(mutant):
    """The diagnosis does not blame everything: an unrelated clause passes."""
    assert BY_ID[mutant.passes].capability == BY_ID[mutant.catches].capability
    result = check(mutant, mutant.passes)
    assert result.verdict == "passed", result.failure or result.reason


def test_every_mutant_has_its_own_name():
    """Mutant names are unique, so parametrized test IDs are too."""
    names = [str(mutant) for mutant in MUTANTS]
    assert len(names) == len(set(names))


# -- the nonconforming built-ins --------------------------------------------------------------

NONCONFORMING = ["naive", "threading-local"]


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["run", *args])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("name", NONCONFORMING)
def test_nonconforming_adapter_passes_with_its_manifest(name, tmp_path, capsys):
    """With its shipped known failures the run exits 0; the report names them."""
    report = tmp_path / "report.json"
    code, out = run_cli(capsys, "--adapter", name, "--report", str(report))
    assert code == 0, out
    data = json.loads(report.read_text())
    verdicts = {entry["clause"]: entry["verdict"] for entry in data["results"]}
    known = normalize_known_failures(load_adapter(name).known_failures, name)
    strict = {clause for clause, entry in known.items() if entry.strict}
    assert strict, "the manifest declares no strict failure"
    for clause in strict:
        assert verdicts[clause] == "known-failure", clause
    for clause, entry in known.items():
        if not entry.strict:
            assert verdicts[clause] in ("known-failure", "passed"), clause
    assert "local.isolation.greenlet" in strict
    assert data["known_failures"]["source"] == "shipped"
    assert set(data["known_failures"]["entries"]) == set(known)
    assert data["summary"]["known-failure"] >= len(strict)
    for entry in data["results"]:
        if entry["verdict"] == "known-failure":
            assert entry["reason"] == known[entry["clause"]].reason
            assert entry["failure"]["clause"] == entry["clause"]


@pytest.mark.parametrize("name", NONCONFORMING)
def test_nonconforming_adapter_fails_without_manifest(name, tmp_path, capsys):
    """With --known-failures none the raw verdicts show, and the run exits 1."""
    report = tmp_path / "report.json"
    code, out = run_cli(
        capsys,
        "--adapter",
        name,
        "--known-failures",
        "none",
        "--only",
        "local.isolation.greenlet",
        "--only",
        "local.attr.*",
        "--report",
        str(report),
    )
    assert code == 1, out
    verdicts = {e["clause"]: e["verdict"] for e in json.loads(report.read_text())["results"]}
    assert verdicts == {
        "local.attr.roundtrip": "passed",
        "local.attr.missing": "passed",
        "local.attr.delete": "passed",
        "local.isolation.greenlet": "failed",
    }
    assert "local.isolation.greenlet: failed (spec/local.md)" in out
    assert f"replay: ctxspec replay {report} local.isolation.greenlet" in out
