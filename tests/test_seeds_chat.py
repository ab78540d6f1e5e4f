"""The seeds' chat server (adapter ``seeds-chat``): with its shipped manifest the chat
clauses exit 0, each declared one reported known-failure; with ``--known-failures none``
exactly the declared clauses fail (exit 1), each failure naming its own clause.

Slow: run with ``pytest -m slow`` (tox env ``mutants``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("geventwebsocket")
pytest.importorskip("websockets")

from conformance.adapter import load_adapter, normalize_known_failures

pytestmark = pytest.mark.slow

#: A bound that declares a hang (conftest's 120 s is too close to a ci run of all twelve
#: chat clauses on a busy machine; without the manifest every failure is also shrunk).
RUN_TIMEOUT = 900


def ctxspec_run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m conformance run --adapter seeds-chat --only 'chat.*' ARGS``."""
    command = [sys.executable, "-m", "conformance", "run", "--adapter", "seeds-chat"]
    return subprocess.run(
        [*command, "--only", "chat.*", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def declared() -> dict[str, Any]:
    adapter = load_adapter("seeds-chat")
    return normalize_known_failures(adapter.known_failures, "seeds-chat")


def results(report: Path) -> dict[str, dict[str, Any]]:
    return {entry["clause"]: entry for entry in json.loads(report.read_text())["results"]}


def test_seeds_chat_passes_with_its_manifest(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    known = declared()
    assert known, "the manifest declares no failure"
    report = tmp_path / "report.json"
    done = ctxspec_run(subprocess_env, tmp_path, "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    got = results(report)
    for clause, entry in known.items():
        allowed = ("known-failure",) if entry.strict else ("known-failure", "passed")
        assert got[clause]["verdict"] in allowed, (clause, got[clause])
    for clause, entry in got.items():
        if clause not in known:
            assert entry["verdict"] == "passed", (clause, entry)
        elif entry["verdict"] == "known-failure":
            assert entry["reason"] == known[clause].reason


def test_seeds_chat_fails_its_declared_clauses_without_manifest(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    strict = {clause for clause, entry in declared().items() if entry.strict}
    report = tmp_path / "report.json"
    # A clause's shrinking may outlast the default 120 s watchdog (every attempt at
    # chat.malformed.too-big waits 2 s for a close that never comes): room for it.
    done = ctxspec_run(
        subprocess_env, tmp_path, "--known-failures", "none", "--timeout", "600",
        "--report", str(report),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    got = results(report)
    failed = {clause for clause, entry in got.items() if entry["verdict"] == "failed"}
    assert strict <= failed <= set(declared()), done.stdout
    assert {entry["verdict"] for entry in got.values()} <= {"passed", "failed"}, done.stdout
    for clause in failed:
        assert got[clause]["failure"]["clause"] == clause, got[clause]
        assert f"{clause}: failed (spec/chat.md)" in done.stdout
