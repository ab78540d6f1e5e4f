"""``ctxspec chat`` and ``ctxspec run --adapter ws://...``: the reference chat server as a
command, checked over real sockets by a separate ``ctxspec run``, and the one-line errors
for a server that is not there and a port that cannot be."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

pytest.importorskip("geventwebsocket")
pytest.importorskip("websockets")

#: A bound on how long the server may take to say it accepts connections (it says so on
#: stdout; this only declares a hang).
START_TIMEOUT = 30


@pytest.fixture
def chat_server(subprocess_env: dict[str, str]) -> Any:
    """``ctxspec chat --port 0`` in a subprocess, and the ws:// URL it announced."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance", "chat", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server announces itself
        assert line.startswith("ctxspec chat: serving http://127.0.0.1:"), line
        url = "ws://" + line.split()[3].split("://", 1)[1]
        yield url
    finally:
        process.terminate()
        process.wait(START_TIMEOUT)


def test_a_separate_run_checks_the_chat_command(
    chat_server: str, ctxspec: Callable[..., Any], tmp_path: Path
) -> None:
    report = tmp_path / "chat.json"
    done = ctxspec(
        "run", "--adapter", chat_server, "--only", "chat.*", "--profile", "dev",
        "--report", str(report),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(report.read_text())["results"]
    assert {r["verdict"] for r in results} == {"passed"}
    assert len(results) == len([c for c in results if c["clause"].startswith("chat.")]) >= 12


def test_other_clauses_are_skipped_for_a_chat_server(
    chat_server: str, ctxspec: Callable[..., Any], tmp_path: Path
) -> None:
    done = ctxspec(
        "run", "--adapter", chat_server, "--only", "local.attr.*", "--report",
        str(tmp_path / "r.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "the adapter does not declare capability 'local'" in done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def test_nothing_at_the_url_is_a_usage_error(ctxspec: Callable[..., Any]) -> None:
    done = ctxspec("run", "--adapter", f"ws://127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert done.stderr.startswith("ctxspec: error: nothing answers at ws://127.0.0.1:")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("url", ["ws://127.0.0.1", "http://127.0.0.1:9527", "ws://:80"])
def test_a_malformed_url_is_a_usage_error(ctxspec: Callable[..., Any], url: str) -> None:
    done = ctxspec("run", "--adapter", url)
    assert done.returncode == 2, done.stderr
    assert "ws://HOST:PORT" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_chat_refuses_a_port_that_cannot_be(ctxspec: Callable[..., Any], port: str) -> None:
    done = ctxspec("chat", "--port", port)
    assert done.returncode == 2
    assert "--port must be between 0 and 65535" in done.stderr


def test_chat_says_so_when_its_port_is_taken(ctxspec: Callable[..., Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = ctxspec("chat", "--port", str(taken.getsockname()[1]))
    assert done.returncode == 2
    assert done.stderr.startswith("ctxspec chat: cannot serve on 127.0.0.1:")
    assert "Traceback" not in done.stderr
