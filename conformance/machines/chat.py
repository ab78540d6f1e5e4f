"""The chat machine: real WebSocket clients against a server at a URL, and the reference
router (reference/chat/router.py), fed the same events, predicting every frame each
client must receive.

Theory of operation
-------------------
One client, the *observer*, is online from the start and never leaves: it is a user like
any other (it gets group messages), and it is the one that probes a departed user's name
until the server has freed it. The rules connect clients (good, bad and taken names),
send every kind of message from one of them, and disconnect them cleanly or abruptly.

After every step comes a *barrier*: the step's sender first, then every other client,
sends a message to itself and reads until it comes back. A server routes each
connection's frames in order and queues all a frame causes before routing the next
(chat.order), so a client's own message coming back proves that everything meant for it
earlier has arrived. What it read must be exactly what the router predicted. A client
that connected in this very step skips its barrier once, so that the next step can send
to it before it has sent anything (chat.connect.register). No step waits for time to
pass; the only clocks are the receive timeout that declares a hang, and the grace period
within which a departed user's name must be freed.

Every predicted frame carries the clause of the step that caused it. Where a client's
frames and the prediction part, the first frame that differs names the clause broken.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from reference.chat import MAX_MESSAGE_BYTES, Close, Router, Send, valid_name

from ..chat_client import ChatClient, Closed, Received, Silent
from .base import ConformanceMachine

#: Names the rules connect with: good ones (``Ann`` is not ``ann``) and bad ones.
GOOD_NAMES = ("ann", "bob", "Ann")
BAD_NAMES = ("ann smith", "...", "x" * 33, "zoë", "a/b")
#: The observer's name, and a name nobody ever connects with.
OBSERVER = "observer"
NOBODY = "zed"

#: Every machine's good names get a suffix of their own (``ann`` is ``ann.3f9a.7`` on the
#: wire), so that no example meets a user of an earlier one: the server is shared, and may
#: take up to the grace period to free a departed user's name.
PROCESS = secrets.token_hex(2)
MACHINES = itertools.count(1)

#: What a send step sends, and the clause that the frames it causes belong to.
CLAUSE_OF_SEND: Mapping[str, str] = {
    "direct": "chat.direct.deliver",
    "burst": "chat.order",  # two direct messages to one recipient, back to back
    "self": "chat.direct.deliver",
    "unknown": "chat.direct.unknown",
    "empty": "chat.direct.unknown",
    "group": "chat.group.deliver",
    "group_null": "chat.group.deliver",
    "spoof": "chat.from-user",
    "not_json": "chat.malformed.bad-request",
    "not_object": "chat.malformed.bad-request",
    "no_msg": "chat.malformed.bad-request",
    "msg_not_str": "chat.malformed.bad-request",
    "to_user_not_str": "chat.malformed.bad-request",
    "binary": "chat.malformed.bad-request",
    "invalid_utf8": "chat.malformed.utf8",
    "too_big": "chat.malformed.too-big",
    "largest": "chat.malformed.too-big",
}
SENDS = tuple(CLAUSE_OF_SEND)
#: What a server answers by closing the connection.
CLOSING = ("invalid_utf8", "too_big")
BARRIER = "chat.direct.deliver"  # a barrier message is a direct message to oneself
#: How long a client waits for its own message to come back before it counts the frames
#: it waits for as lost. A loopback round trip takes milliseconds; this is for a server
#: that drops them (the seeds' server gives a name taken over to its new login), and it
#: decides nothing else.
SILENCE = 2.0
#: The keys a delivery may have.
DELIVERY_KEYS = ({"from_user", "to_user", "msg"}, {"from_user", "msg"})


@dataclass(frozen=True)
class Message:
    """What a ``chat`` step sends: its kind, and which online clients send and receive it
    (indices into them, modulo their number)."""

    what: str
    sender: int
    to: int


@dataclass(frozen=True)
class Connect:
    """A client connects with this name (a good one gets the machine's suffix)."""

    name: str


@dataclass(frozen=True)
class Leave:
    """One of the clients online, not the observer, disconnects, cleanly or abruptly."""

    who: int
    abrupt: bool


Step = Union[Message, Connect, Leave]
#: Sending first: it is what most clauses are about, and the shrinker prefers the first.
steps: st.SearchStrategy[Step] = st.one_of(
    st.builds(Message, st.sampled_from(SENDS), st.integers(0, 3), st.integers(0, 3)),
    st.builds(Connect, st.sampled_from(GOOD_NAMES + BAD_NAMES)),
    st.builds(Leave, st.integers(0, 3), st.booleans()),
)


@dataclass(frozen=True)
class Expected:
    """A frame (or the close) a client must receive, and the clause it belongs to."""

    what: Union[dict[str, Any], Closed]
    clause: str


@dataclass(eq=False)
class Peer:
    """A client the router has online."""

    client: ChatClient
    name: str
    fresh: bool = True  # has it sent nothing yet?
    expected: list[Expected] = field(default_factory=list)
    overdue: list[Expected] = field(default_factory=list)  # not come by the last barrier

    def __repr__(self) -> str:
        return self.name


class ChatMachine(ConformanceMachine):
    def __init__(self, adapter: Any, target: str, hang_timeout: float = 10.0) -> None:
        super().__init__(adapter, target, hang_timeout)
        self.base: str = adapter.chat_url()
        self.grace: float = float(getattr(adapter, "grace", 1.0))
        self.timeout = hang_timeout
        self.router = Router()
        self.peers: list[Peer] = []
        self.closing: list[Peer] = []  # peers the server must close (the router said so)
        self.clients: list[ChatClient] = []  # every client opened, to close at the end
        self.numbers = itertools.count(1)
        self.step_clause = "chat.connect.register"  # the clause of the step under way
        self.suffix = f".{PROCESS}.{next(MACHINES)}"

    # -- rules ----------------------------------------------------------------------------
    #: Its bugs need the right clients to meet: the runner gives it more examples.
    MANY_ACTORS = True

    @initialize(users=st.lists(st.sampled_from(GOOD_NAMES[:2]), unique=True, max_size=2))
    def start(self, users: list[str]) -> None:
        """The observer connects, and the users already online when the program starts."""
        self.connect_as(OBSERVER)
        for name in users:
            self.connect_as(name)
        self.barrier(None)
        for peer in self.peers:  # all of them are reachable by now
            peer.fresh = False

    # One rule, the step an argument (as in the other machines): with a rule per kind of
    # step, Hypothesis's shrinker could not delete steps (its choices misaligned).
    @rule(step=steps)
    def act(self, step: Step) -> None:
        if isinstance(step, Message):
            self.chat(step)
        elif isinstance(step, Connect):
            self.connect(step.name)
        else:
            self.disconnect(step.who, step.abrupt)

    def connect(self, name: str) -> None:
        self.step_clause = "chat.connect.register"
        self.connect_as(name)
        self.barrier(None)

    def chat(self, message: Message) -> None:
        """One client sends one kind of message (a burst is two in a row)."""
        what, sender, to = message.what, message.sender, message.to
        # The observer stays online: it never sends what makes a server close it.
        observer = self.wire_name(OBSERVER)
        senders = [p for p in self.peers if what not in CLOSING or p.name != observer]
        if not senders:  # nobody online who may send it (a server closed them all)
            return
        peer = senders[sender % len(senders)]
        recipient = self.peers[to % len(self.peers)]
        self.step_clause = CLAUSE_OF_SEND[what]
        peer.fresh = False
        if what == "burst":
            for _ in range(2):
                frame = {"to_user": recipient.name, "msg": f"m{next(self.numbers)}"}
                payload = json.dumps(frame).encode()
                peer.client.send_raw_text(payload)
                self.expect(self.router.text(peer, payload), CLAUSE_OF_SEND[what])
            self.barrier(peer)
            return
        text, binary = self.message(what, peer, recipient)
        if binary is not None:
            peer.client.send_binary(binary)
            actions = self.router.binary(peer, binary)
        else:
            assert text is not None
            peer.client.send_raw_text(text)
            actions = self.router.text(peer, text)
        self.expect(actions, CLAUSE_OF_SEND[what])
        self.barrier(peer)

    def disconnect(self, who: int, abrupt: bool) -> None:
        leaving = [peer for peer in self.peers if peer.name != self.wire_name(OBSERVER)]
        if not leaving:
            return
        peer = leaving[who % len(leaving)]
        self.step_clause = "chat.disconnect.frees-name"
        if abrupt:
            peer.client.abort()
        else:
            peer.client.close()
        self.router.disconnect(peer)
        self.peers.remove(peer)
        self.settle(peer.name)
        self.barrier(None)

    def teardown(self) -> None:
        try:
            if any(peer.overdue for peer in self.peers):  # judge them: one more barrier
                self.barrier(None)
        finally:
            self.close_all()
            super().teardown()

    def close_all(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):  # already gone: nothing to close
                client.close()

    # -- what the rules send ----------------------------------------------------------------
    def message(
        self, what: str, peer: Peer, recipient: Peer
    ) -> tuple[Optional[bytes], Optional[bytes]]:
        """(text payload, binary payload) of a send step: one of them is None."""
        msg = f"m{next(self.numbers)}"
        frames: Mapping[str, Any] = {
            "direct": {"to_user": recipient.name, "msg": msg},
            "self": {"to_user": peer.name, "msg": msg},
            "unknown": {"to_user": self.wire_name(NOBODY), "msg": msg},
            "empty": {"to_user": "", "msg": msg},
            "group": {"msg": msg},
            "group_null": {"to_user": None, "msg": msg},
            "spoof": {
                "to_user": recipient.name,
                "msg": msg,
                "from_user": self.wire_name(NOBODY),
                "admin": True,
            },
            "not_object": [msg],
            "no_msg": {"to_user": recipient.name},
            "msg_not_str": {"to_user": recipient.name, "msg": 7},
            "to_user_not_str": {"to_user": 7, "msg": msg},
        }
        if what in frames:
            return json.dumps(frames[what]).encode(), None
        if what == "not_json":
            return f"{msg}: not JSON {{".encode(), None
        if what == "binary":
            return None, b"\x00\x01" + msg.encode()
        if what == "invalid_utf8":
            return b'{"msg": "\xff\xfe"}', None
        # The largest message a server must serve, to the sender itself, and one byte more.
        empty = json.dumps({"to_user": peer.name, "msg": ""})
        size = MAX_MESSAGE_BYTES - len(empty) + (1 if what == "too_big" else 0)
        return json.dumps({"to_user": peer.name, "msg": "x" * size}).encode(), None

    # -- the model --------------------------------------------------------------------------
    def wire_name(self, name: str) -> str:
        """The name a client connects with: a good one with this machine's suffix."""
        return name + self.suffix if valid_name(name) else name

    def connect_as(self, name: str) -> None:
        name = self.wire_name(name)
        clause = "chat.connect.register" if valid_name(name) else "chat.connect.bad-name"
        try:
            client = ChatClient(self.base, name, self.timeout)
        except Exception as error:  # the handshake itself failed
            self.violated(clause, f"connecting as {name!r}: the handshake failed: {error!r}")
            return
        self.clients.append(client)
        peer = Peer(client, name)
        actions = self.router.connect(peer, name)
        if not actions:
            self.peers.append(peer)
            return
        if valid_name(name):
            clause = "chat.connect.taken"
        self.step_clause = clause
        want = [Expected(frame_or_close(a), clause) for a in actions]
        # A message to itself tells a server that took the name after all (it comes back)
        # from one that closes the connection as it must.
        echo = {"to_user": name, "msg": f"barrier {next(self.numbers)}"}
        client.send(echo)
        delivered = {"from_user": name, **echo}
        got = self.read_until(client, delivered)
        self.check(f"connecting as {name!r}", want, got, None)
        if delivered in got:  # the server took the connection after all: adopt that
            holder = next((p for p in self.peers if p.name == name), None)
            if holder is not None:  # taken over: what was meant for it goes elsewhere now
                self.peers.remove(holder)
                self.router.disconnect(holder)
                holder.client.abort()
            if valid_name(name):
                self.router.connect(peer, name)
                self.peers.append(peer)
                peer.fresh = False

    def expect(self, actions: list[Union[Send, Close]], clause: str) -> None:
        for action in actions:
            peer = action.to if isinstance(action, Send) else action.connection
            assert isinstance(peer, Peer)
            peer.expected.append(Expected(frame_or_close(action), clause))
            if isinstance(action, Close) and peer in self.peers:  # offline from now on
                self.peers.remove(peer)
                self.closing.append(peer)

    # -- the barrier --------------------------------------------------------------------------
    def barrier(self, sender: Optional[Peer]) -> None:
        """Every client reads until its own message comes back (the sender of this step
        first); what it read must be what the router predicted."""
        closing, self.closing = self.closing, []
        for peer in closing:  # the server closes these: read to the close
            self.compare(peer, self.read_until_closed(peer.client))
        order = ([sender] if sender in self.peers else []) + [
            p for p in self.peers if p is not sender
        ]
        for peer in order:
            if peer.fresh and sender is None:  # connected in this step: next time
                continue
            echo = {"to_user": peer.name, "msg": f"barrier {next(self.numbers)}"}
            peer.client.send(echo)
            peer.fresh = False
            self.expect(self.router.text(peer, json.dumps(echo).encode()), BARRIER)
            got = self.read_until(peer.client, peer.expected[-1].what)
            self.compare(peer, got)

    def read_until(self, client: ChatClient, last: Any) -> list[Received]:
        """Frames until ``last`` (or the close, or a silence) has come."""
        got: list[Received] = []
        while True:
            frame = client.receive(silence=min(SILENCE, self.timeout))
            got.append(frame)
            if frame == last or isinstance(frame, (Closed, Silent)):
                return got

    def read_until_closed(self, client: ChatClient) -> list[Received]:
        got: list[Received] = []
        while True:
            frame = client.receive(silence=min(SILENCE, self.timeout))
            got.append(frame)
            if isinstance(frame, (Closed, Silent)):
                return got

    # -- comparing ----------------------------------------------------------------------------
    def compare(self, peer: Peer, got: list[Received]) -> None:
        """Compare what ``peer`` read with what it was to receive. A frame that has not
        come yet, though a frame sent after it has, is *overdue*: dropped, or overtaken?
        The next barrier tells: if it comes then, frames were reordered (chat.order); if
        not, it was lost (its own clause)."""
        want, peer.expected = peer.expected, []
        overdue, peer.overdue = peer.overdue, []
        late = [frame for frame in got if any(o.what == frame for o in overdue)]
        if late:
            self.violated(
                "chat.order",
                f"{peer.name!r} received {show(late)} only after frames sent later "
                "(after its barrier message)",
            )
            got = [frame for frame in got if frame not in late]
        elif overdue:
            self.violated(
                overdue[0].clause,
                f"{peer.name!r} never received {show([o.what for o in overdue])}",
            )
        wanted = [e.what for e in want]
        if got and not isinstance(got[-1], (Closed, Silent)) and is_subsequence(got, wanted):
            peer.overdue = [e for e in want if e.what not in got]
            want = [e for e in want if e.what in got]
        self.check(f"{peer.name!r}", want, got, peer)

    def check(
        self, who: str, want: list[Expected], got: list[Received], peer: Optional[Peer]
    ) -> None:
        wanted = [e.what for e in want]
        if wanted == got:
            return
        clause = self.diagnose(want, got, peer.name if peer is not None else "")
        self.violated(
            clause,
            f"{who} received {show(got)}\n  expected {show(wanted)}",
        )
        # Another clause's run judges this: go on from what happened. A client the server
        # closed, or that waits in vain, is of no more use: it leaves.
        if peer is not None and got and isinstance(got[-1], (Closed, Silent)):
            if peer in self.peers:
                self.peers.remove(peer)
                self.router.disconnect(peer)
            peer.client.abort()

    def diagnose(self, want: list[Expected], got: list[Received], who: str) -> str:
        """The clause a client's frames break, where they differ from the prediction."""
        wanted = [e.what for e in want]
        if sorted(map(repr, wanted)) == sorted(map(repr, got)):
            return "chat.order"  # the same frames, in another order
        for frame in got:  # a frame more often than meant: not exactly once
            if frame in wanted and got.count(frame) > wanted.count(frame):
                return want[wanted.index(frame)].clause
        extra = [frame for frame in got if frame not in wanted and not isinstance(frame, Silent)]
        if extra:
            return self.clause_of_extra(extra[0], who)
        missing = [e for e in want if e.what not in got]
        if missing:
            return missing[0].clause
        return self.step_clause

    def clause_of_extra(self, frame: Received, who: str) -> str:
        """The clause a frame nobody predicted breaks."""
        if isinstance(frame, dict):
            if frame.get("error") == "unknown_user":
                named = next((p for p in self.peers if p.name == frame.get("to_user")), None)
                if named is not None:  # online, yet unknown
                    return "chat.connect.register" if named.fresh else "chat.direct.deliver"
            if "from_user" in frame and set(frame) not in DELIVERY_KEYS:
                return "chat.from-user"
            if set(frame) == {"from_user", "msg"} and frame["from_user"] == who:
                return "chat.group.deliver"  # a group message back to its sender
        return self.step_clause

    # -- a departed user's name -----------------------------------------------------------------
    def settle(self, name: str) -> None:
        """Probe ``name`` from the observer until the server answers unknown_user; within
        the grace period a probe may also go unanswered."""
        observer = next((p for p in self.peers if p.name == self.wire_name(OBSERVER)), None)
        if observer is None:  # the server closed it: another clause's run judges that
            return
        deadline = time.monotonic() + self.grace
        while True:
            probe = {"to_user": name, "msg": f"probe {next(self.numbers)}"}
            echo = {"to_user": observer.name, "msg": f"barrier {next(self.numbers)}"}
            observer.client.send(probe)
            observer.client.send(echo)
            self.router.text(observer, json.dumps(echo).encode())  # keep the model in step
            got = self.read_until(observer.client, {"from_user": observer.name, **echo})
            answers = got[:-1]
            if answers == [{"error": "unknown_user", "to_user": name}]:
                return
            if answers:
                self.violated(
                    "chat.disconnect.frees-name",
                    f"probing {name!r}, who has left, the observer received {show(answers)}",
                )
                return
            if time.monotonic() > deadline:
                self.violated(
                    "chat.disconnect.frees-name",
                    f"{name!r} left, and {self.grace:g} s later messages to it still go "
                    "unanswered (expected unknown_user)",
                )
                return


def is_subsequence(got: list[Any], wanted: list[Any]) -> bool:
    """Is ``got`` ``wanted`` with some frames left out, the rest in order?"""
    rest = iter(wanted)
    return all(any(frame == w for w in rest) for frame in got)


def frame_or_close(action: Union[Send, Close]) -> Union[dict[str, Any], Closed]:
    return action.frame if isinstance(action, Send) else Closed(action.code)


def show(frames: list[Any]) -> str:
    shown = [json.dumps(f) if isinstance(f, dict) else repr(f) for f in frames]
    text = ", ".join(s if len(s) <= 120 else s[:100] + "...}" for s in shown)
    return f"[{text}]"
