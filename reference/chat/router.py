"""The chat protocol's router, sans I/O: connection events and frames in, frames and
closes out (spec/chat.md). No sockets, no Flask: the server (``server.py``) feeds it what
arrives and carries out what it returns, and the conformance suite runs it beside a
server under test as the model of what every client must receive.

Rules of this file: every method returns the actions its event causes, in the order they
must leave; a connection's actions all go to that connection's one queue. A rejected
connection or frame changes nothing but what the actions say.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Union

#: A name: 1 to 32 of these characters, and not made of dots only.
NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
#: The largest message, in bytes after reassembly, that a server must accept.
MAX_MESSAGE_BYTES = 65_536
#: Unsent bytes queued for one connection below which a server must neither drop nor close.
MAX_BACKLOG_BYTES = 1_048_576

#: The close code for each reason a server ends a connection.
CLOSE_CODES = {
    "bad_name": 4400,
    "name_taken": 4409,
    "invalid_utf8": 1007,
    "backlog": 1008,
    "too_big": 1009,
}

Connection = Hashable
Frame = dict[str, Any]


@dataclass(frozen=True)
class Send:
    """Send ``frame`` (as JSON text) to ``to``."""

    to: Connection
    frame: Frame


@dataclass(frozen=True)
class Close:
    """Close ``connection`` with ``code``, after what was sent to it before."""

    connection: Connection
    code: int


Action = Union[Send, Close]


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None and set(name) != {"."}


def bad_request(detail: str) -> Frame:
    return {"error": "bad_request", "detail": detail}


class Router:
    """Who is online, and where each frame goes."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}  # name -> its connection
        self.names: dict[Connection, str] = {}  # connection -> its name

    # -- connection events ----------------------------------------------------------------
    def connect(self, connection: Connection, name: str) -> list[Action]:
        """A connection to ``/ws/<name>`` (``name`` percent-decoded) has completed its
        handshake. It is registered now, before any of its frames is read."""
        if not valid_name(name):
            return [Send(connection, {"error": "bad_name"}), Close(connection, 4400)]
        if name in self.connections:  # the session holding the name is untouched
            return [Send(connection, {"error": "name_taken"}), Close(connection, 4409)]
        self.connections[name] = connection
        self.names[connection] = name
        return []

    def disconnect(self, connection: Connection) -> list[Action]:
        """The connection has ended, cleanly or not: its name is free from now on."""
        name = self.names.pop(connection, None)
        if name is not None:
            del self.connections[name]
        return []

    def online(self) -> list[str]:
        return sorted(self.connections)

    # -- frames ---------------------------------------------------------------------------
    def text(self, connection: Connection, payload: bytes) -> list[Action]:
        """A text message (reassembled), as the bytes that came on the wire."""
        if connection not in self.names:
            return []
        if len(payload) > MAX_MESSAGE_BYTES:
            return self.close(connection, "too_big")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return self.close(connection, "invalid_utf8")
        return self.route(connection, text)

    def binary(self, connection: Connection, payload: bytes) -> list[Action]:
        """A binary message: never a chat message."""
        if connection not in self.names:
            return []
        if len(payload) > MAX_MESSAGE_BYTES:
            return self.close(connection, "too_big")
        return [Send(connection, bad_request("binary frames are not chat messages"))]

    def close(self, connection: Connection, reason: str) -> list[Action]:
        self.disconnect(connection)
        return [Close(connection, CLOSE_CODES[reason])]

    def route(self, connection: Connection, text: str) -> list[Action]:
        sender = self.names[connection]
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
            return [Send(connection, bad_request("not JSON"))]
        if not isinstance(message, dict):
            return [Send(connection, bad_request("not a JSON object"))]
        msg, to_user = message.get("msg"), message.get("to_user")
        if not isinstance(msg, str):
            return [Send(connection, bad_request("msg must be a string"))]
        if to_user is None:  # absent or null: everyone else online
            group = {"from_user": sender, "msg": msg}
            return [Send(c, group) for name, c in self.connections.items() if name != sender]
        if not isinstance(to_user, str):
            return [Send(connection, bad_request("to_user must be a string or null"))]
        recipient = self.connections.get(to_user)
        if recipient is None:  # "" names nobody
            return [Send(connection, {"error": "unknown_user", "to_user": to_user})]
        return [Send(recipient, {"from_user": sender, "to_user": to_user, "msg": msg})]
