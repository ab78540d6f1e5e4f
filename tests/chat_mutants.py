"""Broken chat routers: the reference router with one thing wrong, each served by the
reference server, for ``test_chat_mutants.py``. Run as a script, it serves one of them:
``python tests/chat_mutants.py NAME`` prints its URL, as ``ctxspec chat`` does."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: the project is importable from its checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference.chat.router import Action, Router, Send, valid_name


class DropsFirstMessage(Router):
    """The first message a user gets from someone else is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.reached: set[Any] = set()

    def route(self, connection: Any, text: str) -> list[Action]:
        kept = []
        for action in super().route(connection, text):
            if (
                isinstance(action, Send)
                and action.to is not connection
                and "from_user" in action.frame
            ) and action.to not in self.reached:
                self.reached.add(action.to)
                continue
            kept.append(action)
        return kept


class SwapsPairs(Router):
    """Of two messages from one user to another, the second overtakes the first."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[tuple[Any, Any], Send] = {}

    def route(self, connection: Any, text: str) -> list[Action]:
        out: list[Action] = []
        for action in super().route(connection, text):
            if (
                isinstance(action, Send)
                and action.to is not connection
                and "from_user" in action.frame
            ):
                pair = (connection, action.to)
                if pair in self.held:
                    out += [action, self.held.pop(pair)]
                else:
                    self.held[pair] = action
                continue
            out.append(action)
        return out


class GroupToSender(Router):
    """A group message goes to its sender too."""

    def route(self, connection: Any, text: str) -> list[Action]:
        actions = super().route(connection, text)
        groups = [a for a in actions if isinstance(a, Send) and "to_user" not in a.frame]
        if groups and "from_user" in groups[0].frame:
            actions.append(Send(connection, groups[0].frame))
        return actions


class ForwardsClientKeys(Router):
    """The seeds' bug: the client's dict is forwarded, its from_user and all."""

    def route(self, connection: Any, text: str) -> list[Action]:
        import json

        actions = super().route(connection, text)
        try:
            sent = json.loads(text)
        except ValueError:
            return actions
        if not isinstance(sent, dict):
            return actions
        return [
            Send(a.to, {**a.frame, **sent}) if isinstance(a, Send) and "from_user" in a.frame else a
            for a in actions
        ]


class KeepsGhosts(Router):
    """A user who leaves stays online: messages to them go to the dead connection."""

    def disconnect(self, connection: Any) -> list[Action]:
        return []


class AcceptsAnyName(Router):
    """Every name is good."""

    def connect(self, connection: Any, name: str) -> list[Action]:
        if name in self.connections:
            return super().connect(connection, name)
        self.connections[name] = connection
        self.names[connection] = name
        return []


class IgnoresUnknownRecipients(Router):
    """A message to nobody online is dropped without a word."""

    def route(self, connection: Any, text: str) -> list[Action]:
        return [
            a for a in super().route(connection, text)
            if not (isinstance(a, Send) and a.frame.get("error") == "unknown_user")
        ]  # fmt: skip


class IgnoresMalformed(Router):
    """A malformed message is dropped without a word."""

    def route(self, connection: Any, text: str) -> list[Action]:
        return [
            a for a in super().route(connection, text)
            if not (isinstance(a, Send) and a.frame.get("error") == "bad_request")
        ]  # fmt: skip


class ReplacesInvalidUtf8(Router):
    """Bytes that are not UTF-8 are replaced, and the message is served."""

    def text(self, connection: Any, payload: bytes) -> list[Action]:
        if connection not in self.names:
            return []
        return self.route(connection, payload.decode("utf-8", errors="replace"))


class RegistersOnFirstFrame(Router):
    """A connection is registered when its first frame comes, not at its handshake."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[Any, str] = {}

    def connect(self, connection: Any, name: str) -> list[Action]:
        if not valid_name(name) or name in self.connections:
            return super().connect(connection, name)
        self.pending[connection] = name
        return []

    def text(self, connection: Any, payload: bytes) -> list[Action]:
        if connection in self.pending:
            super().connect(connection, self.pending.pop(connection))
        return super().text(connection, payload)

    def binary(self, connection: Any, payload: bytes) -> list[Action]:
        if connection in self.pending:
            super().connect(connection, self.pending.pop(connection))
        return super().binary(connection, payload)

    def disconnect(self, connection: Any) -> list[Action]:
        self.pending.pop(connection, None)
        return super().disconnect(connection)


class TakesNamesOver(Router):
    """A second login with a name takes it: the first connection stays open, forgotten
    (what the seeds' server does)."""

    def connect(self, connection: Any, name: str) -> list[Action]:
        holder = self.connections.pop(name, None)
        if holder is not None:
            del self.names[holder]
        return super().connect(connection, name)


class SharesTheSender(Router):
    """Keeps the sender of the frame being routed in one attribute, and yields before
    using it (as a look-up in a database would): of two frames routed at once, both are
    taken for the second one's sender's."""

    def text(self, connection: Any, payload: bytes) -> list[Action]:
        import gevent

        self.sender = connection
        gevent.sleep(0.005)  # frames of two connections within 5 ms of each other meet
        return super().text(self.sender, payload)


# -- the server broken, not the router: patches of reference/chat/server.py ------------------
def writes_in_sender() -> None:
    """A message is written by the greenlet that routed it: a recipient that stops
    reading stops its senders too (a naive fan-out loop)."""
    from reference.chat import server

    def put(self: Any, action: Any, data: Any = None) -> None:
        if isinstance(action, server.Close):
            self.ended = True
            self.queue.put(("close", action.code))
            return
        import json

        self.ws.send_frame(json.dumps(action.frame), self.ws.OPCODE_TEXT)

    server.Outbox.put = put  # type: ignore[method-assign]


def writes_unlocked() -> None:
    """Every greenlet writes its frames itself, with no lock, header and payload apart with
    a yield between them (as a server awaiting each write does): two frames for one
    client go into one another."""
    import json

    import gevent
    from geventwebsocket.websocket import Header

    from reference.chat import server

    def put(self: Any, action: Any, data: Any = None) -> None:
        if isinstance(action, server.Close):
            self.ended = True
            self.queue.put(("close", action.code))
            return
        data = json.dumps(action.frame).encode()
        self.ws.raw_write(Header.encode_header(True, self.ws.OPCODE_TEXT, b"", len(data), 0))
        gevent.sleep(0.005)  # two frames for one client within 5 ms of each other meet
        self.ws.raw_write(data)

    server.Outbox.put = put  # type: ignore[method-assign]


def no_size_limit() -> None:
    """Messages of any size are served (gevent-websocket's own behaviour)."""
    from reference.chat import router, server

    router.MAX_MESSAGE_BYTES = server.MAX_MESSAGE_BYTES = 1 << 24  # type: ignore[misc]


MUTANTS = {
    "accepts-any-name": (AcceptsAnyName, "chat.connect.bad-name"),
    "ignores-unknown-recipients": (IgnoresUnknownRecipients, "chat.direct.unknown"),
    "ignores-malformed": (IgnoresMalformed, "chat.malformed.bad-request"),
    "drops-first-message": (DropsFirstMessage, "chat.direct.deliver"),
    "swaps-pairs": (SwapsPairs, "chat.order"),
    "group-to-sender": (GroupToSender, "chat.group.deliver"),
    "forwards-client-keys": (ForwardsClientKeys, "chat.from-user"),
    "keeps-ghosts": (KeepsGhosts, "chat.disconnect.frees-name"),
    "shares-the-sender": (SharesTheSender, "chat.concurrent"),
    "replaces-invalid-utf8": (ReplacesInvalidUtf8, "chat.malformed.utf8"),
    "registers-on-first-frame": (RegistersOnFirstFrame, "chat.connect.register"),
    "takes-names-over": (TakesNamesOver, "chat.connect.taken"),
}
#: The reference router, served by a broken server: name -> (patch, clause it breaks).
SERVER_MUTANTS = {
    "writes-in-sender": (writes_in_sender, "chat.backlog"),
    "writes-unlocked": (writes_unlocked, "chat.one-writer"),
    "no-size-limit": (no_size_limit, "chat.malformed.too-big"),
}


if __name__ == "__main__":
    from reference.chat.server import serve

    name = sys.argv[1]
    if name in SERVER_MUTANTS:
        SERVER_MUTANTS[name][0]()
        router = Router()
    else:
        router = MUTANTS[name][0]()
    serve("127.0.0.1", 0, lambda url: print(f"serving {url}", flush=True), router)
