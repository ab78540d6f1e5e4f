"""Broken chat routers: the reference router with one thing wrong, each served by the
reference server, for ``test_chat_mutants.py``. Run as a script, it serves one of them:
``python tests/chat_mutants.py NAME`` prints its URL, as ``ctxspec chat`` does."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: the project is importable from its checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference.chat.router import Action, Router, Send


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


MUTANTS = {
    "accepts-any-name": (AcceptsAnyName, "chat.connect.bad-name"),
    "ignores-unknown-recipients": (IgnoresUnknownRecipients, "chat.direct.unknown"),
    "ignores-malformed": (IgnoresMalformed, "chat.malformed.bad-request"),
    "drops-first-message": (DropsFirstMessage, "chat.direct.deliver"),
    "swaps-pairs": (SwapsPairs, "chat.order"),
    "group-to-sender": (GroupToSender, "chat.group.deliver"),
    "forwards-client-keys": (ForwardsClientKeys, "chat.from-user"),
    "keeps-ghosts": (KeepsGhosts, "chat.disconnect.frees-name"),
}


if __name__ == "__main__":
    from reference.chat.server import serve

    router_class, _ = MUTANTS[sys.argv[1]]
    serve("127.0.0.1", 0, lambda url: print(f"serving {url}", flush=True), router_class())
