"""The ``ctxspec`` command, run for real as ``python -m conformance`` in a subprocess: exit
codes, one-line usage errors, listings, reports, replay, Ctrl-C and hangs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ctxspec_fixture_adapters import AT_GATE

from conformance.adapter import BUILTIN_ADAPTERS
from conformance.clauses import CLAUSES

FIXTURE = "ctxspec_fixture_adapters"

#: Longest the interrupted run may take to exit after SIGINT.
EXIT_TIMEOUT = 60

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ctxspec: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# -- usage errors -----------------------------------------------------------------------------


def test_unknown_adapter_name(ctxspec):
    """An unknown adapter name exits 2 with one line naming the choices."""
    result = ctxspec("run", "--adapter", "nonsense")
    assert_one_line_error(result, "unknown adapter 'nonsense'", "reference")
    assert result.stdout == ""


def test_unimportable_adapter_module(ctxspec):
    """An adapter module that cannot be imported exits 2 with one line."""
    result = ctxspec("run", "--adapter", "no.such:thing")
    assert_one_line_error(result, "adapter 'no.such:thing': cannot import 'no.such'")


def test_missing_adapter_attribute(ctxspec):
    """A module without the named attribute exits 2 with one line."""
    result = ctxspec("run", "--adapter", f"{FIXTURE}:Nothing")
    assert_one_line_error(result, f"'{FIXTURE}' has no 'Nothing'")


def test_only_matching_nothing(ctxspec):
    """--only matching no clause exits 2."""
    result = ctxspec("run", "--adapter", "reference", "--only", "nothing.*")
    assert_one_line_error(result, "--only nothing.* matches no clause")


@pytest.mark.parametrize("seed", ["abc", "-1", "4294967296", "1.5"])
def test_bad_seed(ctxspec, seed):
    """A seed that is not a whole number in range exits 2."""
    result = ctxspec("run", "--adapter", "reference", "--seed", seed)
    assert_one_line_error(result, "--seed")


def test_known_failures_missing_file(ctxspec, tmp_path):
    """--known-failures naming a missing file exits 2."""
    result = ctxspec("run", "--adapter", "reference", "--known-failures", str(tmp_path / "no.json"))
    assert_one_line_error(result, "--known-failures: no such file")


def test_known_failures_unknown_clause(ctxspec, tmp_path):
    """A manifest naming an unknown clause exits 2 and names it."""
    manifest = tmp_path / "known.json"
    manifest.write_text(json.dumps({"local.teleport": "no such clause", "local.iter": "real"}))
    result = ctxspec("run", "--adapter", "reference", "--known-failures", str(manifest))
    assert_one_line_error(result, "unknown clauses: local.teleport")


def test_known_failures_malformed(ctxspec, tmp_path):
    """A manifest that is not JSON exits 2."""
    manifest = tmp_path / "known.json"
    manifest.write_text("{")
    result = ctxspec("run", "--adapter", "reference", "--known-failures", str(manifest))
    assert_one_line_error(result, "is not JSON")


def test_report_in_missing_directory(ctxspec, tmp_path):
    """A report path in a directory that does not exist exits 2 before running."""
    result = ctxspec("run", "--adapter", "reference", "--report", str(tmp_path / "no" / "r.json"))
    assert_one_line_error(result, "--report: no such directory")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--timeout", "0"],
        ["run", "--timeout", "soon"],
        ["run", "--profile", "huge"],
        ["run", "--as-version", "1.0"],
        ["frobnicate"],
        [],
    ],
)
def test_argparse_errors(ctxspec, args):
    """Bad options and commands exit 2 with a usage message and no traceback."""
    result = ctxspec(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "usage: ctxspec" in result.stderr


def test_replay_missing_report(ctxspec, tmp_path):
    """Replaying from a report that does not exist exits 2."""
    result = ctxspec("replay", str(tmp_path / "none.json"), "local.iter")
    assert_one_line_error(result, "cannot read report")


# -- listings ---------------------------------------------------------------------------------


def test_adapters_lists_builtins(ctxspec):
    """'ctxspec adapters' lists every built-in with its profile and capabilities."""
    result = ctxspec("adapters")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(BUILTIN_ADAPTERS) <= set(rows)

    def capabilities(name: str) -> set[str]:
        listed = rows[name].split("capabilities: ")[1].split("  (")[0]
        return set(listed.split(", "))

    assert {"local", "stack"} <= capabilities("reference")
    assert capabilities("threading-local") == {"local"}
    assert "profile 3.1" in rows["reference"]
    assert f"({BUILTIN_ADAPTERS['naive']})" in rows["naive"]


def test_clauses_lists_every_clause(ctxspec):
    """'ctxspec clauses' lists every clause with its title and spec anchor."""
    result = ctxspec("clauses")
    assert result.returncode == 0, result.stderr
    for clause in CLAUSES:
        assert clause.id in result.stdout
        assert clause.title in result.stdout
        assert clause.anchor in result.stdout
    assert "profiles <=2.0" in result.stdout


def test_version(ctxspec):
    """--version prints the version."""
    result = ctxspec("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ctxspec 0.")


# -- runs -------------------------------------------------------------------------------------


def test_passing_run_writes_report(ctxspec, tmp_path):
    """A passing run exits 0, prints a row per clause and writes the report."""
    report = tmp_path / "report.json"
    result = ctxspec(
        "run",
        "--adapter",
        "reference",
        "--only",
        "local.attr.*",
        "--profile",
        "dev",
        "--report",
        str(report),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1/3] local.attr.roundtrip" in result.stdout
    assert "summary: 3 passed, 0 failed" in result.stdout
    data = json.loads(report.read_text())
    assert [(r["clause"], r["verdict"]) for r in data["results"]] == [
        ("local.attr.roundtrip", "passed"),
        ("local.attr.missing", "passed"),
        ("local.attr.delete", "passed"),
    ]
    assert data["only"] == ["local.attr.*"]
    assert data["budget"]["name"] == "dev"
    assert data["interrupted"] is False


def test_default_report_path(ctxspec, tmp_path):
    """Without --report, the report goes to ctxspec-report.json in the working directory."""
    result = ctxspec(
        "run", "--adapter", "reference", "--only", "local.attr.missing", "--profile", "dev"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "ctxspec-report.json").is_file()


def test_failing_run_prints_program_and_replay(ctxspec, tmp_path):
    """A failing run exits 1, prints the shrunk program and a replay command, and
    replaying the report exits 1 and shows the same clause."""
    report = tmp_path / "failing.json"
    result = ctxspec(
        "run",
        "--adapter",
        f"{FIXTURE}:SilentDeleteAdapter",
        "--only",
        "local.attr.*",
        "--profile",
        "dev",
        "--report",
        str(report),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "local.attr.delete: failed (spec/local.md)" in out
    assert "violates local.attr.delete:" in out
    assert "shrunk program:" in out
    assert "    state = LocalMachine()" in out
    assert "    state.teardown()" in out
    assert f"replay: ctxspec replay {report} local.attr.delete" in out
    assert "summary: 2 passed, 1 failed" in out

    verdicts = {r["clause"]: r["verdict"] for r in json.loads(report.read_text())["results"]}
    assert verdicts == {
        "local.attr.roundtrip": "passed",
        "local.attr.missing": "passed",
        "local.attr.delete": "failed",
    }

    replayed = ctxspec("replay", str(report), "local.attr.delete")
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "replaying local.attr.delete (failed in" in replayed.stdout
    assert "the exact failing example" in replayed.stdout
    assert "local.attr.delete: failed" in replayed.stdout
    assert "violates local.attr.delete:" in replayed.stdout

    passed = ctxspec("replay", str(report), "local.attr.missing")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "local.attr.missing: passed" in passed.stdout

    unknown = ctxspec("replay", str(report), "local.iter")
    assert_one_line_error(unknown, "has no result for clause 'local.iter'")


def test_known_failures_file_turns_failure_into_known_failure(ctxspec, tmp_path):
    """A manifest declaring the failing clause makes the run exit 0 with known-failure."""
    manifest = tmp_path / "known.json"
    manifest.write_text(json.dumps({"local.attr.delete": "deletes silently"}))
    report = tmp_path / "known-report.json"
    result = ctxspec(
        "run",
        "--adapter",
        f"{FIXTURE}:SilentDeleteAdapter",
        "--only",
        "local.attr.delete",
        "--profile",
        "dev",
        "--known-failures",
        str(manifest),
        "--report",
        str(report),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "known-failure" in result.stdout
    assert "deletes silently" in result.stdout
    entry = json.loads(report.read_text())["results"][0]
    assert (entry["verdict"], entry["reason"]) == ("known-failure", "deletes silently")
    assert entry["failure"]["clause"] == "local.attr.delete"


def test_known_failure_that_passes_is_unexpected(ctxspec, tmp_path):
    """A clause declared as failing that passes is an unexpected pass: exit 1."""
    manifest = tmp_path / "known.json"
    manifest.write_text(json.dumps({"local.attr.missing": "it does not, in fact, fail"}))
    result = ctxspec(
        "run",
        "--adapter",
        "reference",
        "--only",
        "local.attr.missing",
        "--profile",
        "dev",
        "--known-failures",
        str(manifest),
        "--report",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "unexpected-pass" in result.stdout


def test_hanging_clause_is_errored_and_the_run_goes_on(ctxspec, tmp_path):
    """A clause whose operation hangs is errored after --timeout; the next clause runs."""
    report = tmp_path / "hang.json"
    result = ctxspec(
        "run",
        "--adapter",
        f"{FIXTURE}:HangingLocalAdapter",
        "--only",
        "local.attr.roundtrip",
        "--only",
        "stack.push.top",
        "--profile",
        "dev",
        "--timeout",
        "2",
        "--report",
        str(report),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[2/2] stack.push.top" in result.stdout
    verdicts = [(r["clause"], r["verdict"]) for r in json.loads(report.read_text())["results"]]
    assert verdicts == [("local.attr.roundtrip", "errored"), ("stack.push.top", "passed")]
    assert "longer than the time limit (2 s, --timeout)" in result.stdout


def test_a_swallowed_time_limit_is_errored_never_failed(ctxspec, tmp_path):
    """An implementation that catches the harness's alarm and goes on (losing a value) gets
    errored with the time limit's reason: what it did after the alarm is not evidence."""
    report = tmp_path / "swallowed.json"
    result = ctxspec(
        "run",
        "--adapter",
        f"{FIXTURE}:AlarmSwallowingAdapter",
        "--only",
        "local.attr.roundtrip",
        "--profile",
        "dev",
        "--timeout",
        "1",
        "--report",
        str(report),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    (entry,) = json.loads(report.read_text())["results"]
    assert entry["verdict"] == "errored", entry
    assert "longer than the time limit (1 s, --timeout)" in entry["reason"]
    assert "failure" not in entry or entry["failure"] is None


@posix_only
def test_ctrl_c_writes_partial_report(tmp_path, subprocess_env, report_validator):
    """SIGINT during a run exits 130 and leaves a valid report marked interrupted."""
    report = tmp_path / "interrupted.json"
    command = [
        sys.executable,
        "-m",
        "conformance",
        "run",
        "--adapter",
        f"{FIXTURE}:BlockingStackAdapter",
        "--only",
        "local.attr.roundtrip",
        "--only",
        "stack.push.top",
        "--profile",
        "dev",
        "--timeout",
        "60",
        "--report",
        str(report),
    ]
    # SIGINT must reach Python as KeyboardInterrupt even if whoever runs the tests ignores it.
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as process:
        assert process.stdout is not None
        seen = []
        # The first clause's result line comes first; then the stack clause's first push
        # announces that it blocks (until SIGINT, or BLOCK_SECONDS at most).
        for line in process.stdout:
            seen.append(line.rstrip("\n"))
            if line.startswith(AT_GATE):
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=EXIT_TIMEOUT)
    assert seen[-2:] == [seen[-2], AT_GATE], seen
    assert seen[-2].startswith("[1/2] local.attr.roundtrip"), seen
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert "-- interrupted --" in out
    assert "interrupted: 1 of 2 clauses finished" in out
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    assert [(r["clause"], r["verdict"]) for r in data["results"]] == [
        ("local.attr.roundtrip", "passed"),
    ]
    report_validator.validate(data)
    assert not Path(str(report) + ".tmp").exists()
