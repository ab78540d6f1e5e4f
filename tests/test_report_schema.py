"""Reports validate against conformance/report.schema.json: reports of real runs (passing,
failing, known failures, errored), every verdict, and an interrupted run; broken reports
do not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conformance import cli
from conformance import report as reports
from conformance.adapters.reference import ReferenceAdapter
from conformance.clauses import BY_ID
from conformance.runner import BUDGETS, VERDICTS, ClauseResult, Failure

FIXTURE = "ctxspec_fixture_adapters"


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    """Run ``ctxspec run`` in this process; return its exit code and its report."""
    path = tmp_path / "report.json"
    code = cli.main(["run", *args, "--profile", "dev", "--report", str(path)])
    capsys.readouterr()
    return code, json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def passing_report(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The report of a passing reference run, with one clause skipped for its profile."""
    path = tmp_path_factory.mktemp("passing") / "report.json"
    code = cli.main(
        [
            "run",
            "--adapter",
            "reference",
            "--only",
            "local.attr.*",
            "--only",
            "stack.pop.*",
            "--only",
            "stack.isolation.task-shared-pop",
            "--profile",
            "dev",
            "--report",
            str(path),
        ]
    )
    assert code == 0
    return json.loads(path.read_text(encoding="utf-8"))


def test_schema_is_a_valid_draft_2020_12_schema(report_validator):
    """The schema itself is valid, and its $id is what reports name as $schema."""
    assert report_validator.schema["$id"] == reports.SCHEMA_ID
    assert report_validator.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_passing_run_report_validates(passing_report, report_validator):
    """A passing run's report validates, with passed and skipped verdicts."""
    report_validator.validate(passing_report)
    verdicts = {entry["verdict"] for entry in passing_report["results"]}
    assert verdicts == {"passed", "skipped"}
    assert passing_report["summary"]["failed"] == 0
    assert passing_report["interrupted"] is False


def test_failing_run_report_validates(tmp_path, capsys, report_validator):
    """A failing run's report validates, failure and shrunk program included."""
    code, data = run(
        tmp_path, capsys, "--adapter", f"{FIXTURE}:SilentDeleteAdapter", "--only", "local.attr.*"
    )
    assert code == 1
    report_validator.validate(data)
    failed = [entry for entry in data["results"] if entry["verdict"] == "failed"]
    assert [entry["clause"] for entry in failed] == ["local.attr.delete"]
    assert failed[0]["failure"]["clause"] == "local.attr.delete"
    assert failed[0]["failure"]["program"].startswith("state = LocalMachine()")


def test_known_failure_report_validates(tmp_path, capsys, report_validator):
    """A report with a known failure and its manifest validates."""
    manifest = tmp_path / "known.json"
    manifest.write_text(
        json.dumps(
            {
                "local.attr.delete": "deletes silently",
                "local.attr.missing": {"reason": "may not show", "strict": False},
            }
        )
    )
    code, data = run(
        tmp_path,
        capsys,
        "--adapter",
        f"{FIXTURE}:SilentDeleteAdapter",
        "--only",
        "local.attr.*",
        "--known-failures",
        str(manifest),
    )
    assert code == 0
    report_validator.validate(data)
    assert data["known_failures"]["source"] == str(manifest)
    assert data["known_failures"]["entries"]["local.attr.missing"] == {
        "reason": "may not show",
        "strict": False,
    }
    assert data["summary"]["known-failure"] == 1


def build(results: list[ClauseResult], interrupted: bool = False) -> dict[str, Any]:
    header = reports.RunHeader(
        "reference",
        ReferenceAdapter(),
        BUDGETS["ci"],
        7,
        ["local.*"],
        "none",
        {},
    )
    return reports.build(header, results, interrupted)


def test_every_verdict_validates(report_validator):
    """A report with one result of every verdict validates."""
    clause = BY_ID["local.iter"]
    failure = Failure("local.iter", "boom", "state = LocalMachine()\nstate.teardown()", None)
    results = [
        ClauseResult(
            clause,
            verdict,
            0.5,
            None if verdict == "passed" else "why",
            failure if verdict in ("failed", "known-failure", "errored") else None,
        )
        for verdict in VERDICTS
    ]
    data = build(results)
    report_validator.validate(data)
    assert data["summary"] == {verdict: 1 for verdict in VERDICTS}


def test_interrupted_report_validates(report_validator):
    """An interrupted report with no finished clause validates."""
    data = build([], interrupted=True)
    report_validator.validate(data)
    assert data["interrupted"] is True and data["results"] == []


def test_written_report_round_trips(tmp_path, report_validator):
    """write then load gives back the same report, and leaves no temporary file."""
    data = build([ClauseResult(BY_ID["local.iter"], "passed", 0.25)])
    path = tmp_path / "r.json"
    reports.write(path, data)
    assert reports.load(path) == json.loads(json.dumps(data))
    assert not (tmp_path / "r.json.tmp").exists()
    report_validator.validate(reports.load(path))


def breakages() -> list[tuple[str, Any]]:
    """(what, how) pairs: each makes a valid report invalid."""

    def set_path(data: dict[str, Any], path: str, value: Any) -> None:
        *parents, last = path.split("/")
        for key in parents:
            data = data[int(key)] if isinstance(data, list) else data[key]
        if value is KeyError:
            del data[last]
        else:
            data[last] = value

    cases = [
        ("unknown verdict", "results/0/verdict", "mostly-passed"),
        ("unknown level", "results/0/level", "MAY"),
        ("bad clause id", "results/0/clause", "Local Attr"),
        ("negative seconds", "results/0/seconds", -1),
        ("failure without program", "results/0/failure", {"clause": "x", "message": "m"}),
        ("unknown profile", "adapter/profile", "1.0"),
        ("unknown capability", "adapter/capabilities", ["local", "teleport"]),
        ("non-string version", "adapter/versions", {"werkzeug": 3}),
        ("unknown budget", "budget/name", "huge"),
        ("zero examples", "budget/examples", 0),
        ("negative seed", "seed", -1),
        ("interrupted as string", "interrupted", "no"),
        ("not a date-time", "started", "yesterday"),
        ("wrong $schema", "$schema", "https://example.invalid/other"),
        ("missing summary", "summary", KeyError),
        ("missing result field", "results/0/reason", KeyError),
        ("extra top-level key", "extra", 1),
        ("known failure without strict", "known_failures/entries", {"local.iter": {"reason": "r"}}),
        ("negative count", "summary/failed", -1),
        ("missing count", "summary/errored", KeyError),
    ]
    return [
        (what, lambda data, p=path, v=value: set_path(data, p, v)) for what, path, value in cases
    ]


@pytest.mark.parametrize(("what", "breaking"), breakages(), ids=[w for w, _ in breakages()])
def test_broken_report_does_not_validate(report_validator, what, breaking):
    """A report with a broken field fails validation."""
    data = build([ClauseResult(BY_ID["local.iter"], "passed", 0.25)])
    report_validator.validate(copy.deepcopy(data))  # valid before the break
    breaking(data)
    assert not report_validator.is_valid(data), what
