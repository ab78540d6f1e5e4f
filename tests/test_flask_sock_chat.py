"""The second chat server (conformance/adapters/flask_sock_chat.py): ``ctxspec run
--adapter flask-sock`` passes every chat clause; its hub queues and closes as the spec
says where the checker does not look yet (the backlog); and without flask-sock its chat
clauses are skipped with the reason."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from conformance.adapters.chat_servers import FlaskSockAdapter


def test_flask_sock_passes_every_chat_clause(ctxspec: Callable[..., Any], tmp_path: Path) -> None:
    pytest.importorskip("flask_sock")
    pytest.importorskip("websockets")
    report = tmp_path / "flask-sock.json"
    done = ctxspec("run", "--adapter", "flask-sock", "--only", "chat.*", "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(report.read_text())["results"]
    assert {r["verdict"] for r in results} == {"passed"}
    assert len(results) == len([r for r in results if r["clause"].startswith("chat.")]) >= 12


def test_chat_is_skipped_without_flask_sock(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "flask_sock" else real(name)
    )
    assert FlaskSockAdapter().unavailable == {
        "chat": "needs flask-sock (pip install 'ctxspec[chat]')"
    }


def hub_with(*names: str) -> tuple[Any, dict[str, Any]]:
    chat = pytest.importorskip("conformance.adapters.flask_sock_chat")
    hub = chat.Hub()
    outboxes = {name: chat.Outbox(name) for name in names}
    for outbox in outboxes.values():
        hub.connect(outbox)  # no socket, no writer: what is queued stays queued
    return hub, outboxes


def test_a_backlog_up_to_the_limit_loses_nothing() -> None:
    hub, box = hub_with("ann", "bob")
    frame = json.dumps({"to_user": "bob", "msg": "x" * 60_000})
    while box["bob"].backlog + 60_100 <= 1_048_576:
        hub.text(box["ann"], frame)
    assert list(hub.online) == ["ann", "bob"] and box["bob"].backlog > 1_000_000
    assert all(isinstance(item, str) for item in box["bob"].items)


def test_a_backlog_over_the_limit_closes_with_1008() -> None:
    hub, box = hub_with("ann", "bob")
    frame = json.dumps({"to_user": "bob", "msg": "x" * 60_000})
    for _ in range(18):  # 18 deliveries of 60 kB: over 1 MiB
        hub.text(box["ann"], frame)
    assert box["bob"].items[-1] == 1008  # after every frame queued before
    assert list(hub.online) == ["ann"]
    hub.text(box["ann"], frame)
    assert json.loads(box["ann"].items[-1]) == {"error": "unknown_user", "to_user": "bob"}
