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
that connects gets a message from the observer before it has sent anything, and skips
its own barrier until then (chat.connect.register). No step waits for time to
pass; the only clocks are the receive timeout that declares a hang, and the grace period
within which a departed user's name must be freed.

Runs about several things at once take two more kinds of step. A *rush* sends several
clients' frames one after another with no barrier between (the server routes them
concurrently), maybe to a client that reads nothing until all are routed; each client's
frames are then compared by sender, each sender's in order. A mismatch is diagnosed by
sending the same frames again one at a time: if that goes right, it is chat.concurrent's.
A *flood* sends one client that reads nothing more than loopback's socket buffers hold:
its sender and everyone else must get their own messages back meanwhile (chat.backlog).

Every predicted frame carries the clause of the step that caused it. Where a client's
frames and the prediction part, the first frame that differs names the clause broken.
"""

from __future__ import annotations

import contextlib
import functools
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
from reference.chat.router import MAX_BACKLOG_BYTES

from ..chat_client import ChatClient, Closed, Received, Silent, comparable
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


@dataclass(frozen=True)
class Rush:
    """Several clients send at once: ``sends`` go out one after another with no barrier in
    between, from any client but ``stalled`` (an index into the clients online, or None),
    which reads nothing until all of them are routed. ``big`` messages are of some 60 KB
    each, so that a server writes each in several parts."""

    sends: tuple[Message, ...]
    stalled: Optional[int]
    big: bool


@dataclass(frozen=True)
class Flood:
    """One client stops reading, and another sends it more than a server's socket buffers
    hold: a server must go on serving the sender and everyone else."""

    sender: int
    stalled: int


Step = Union[Message, Connect, Leave, Rush, Flood]


#: Sending first: it is what most clauses are about, and the shrinker prefers the first.
def plain_steps(target: str) -> st.SearchStrategy[Step]:
    """Messages, connects, leaves. Half of the messages are of the kinds that ``target`` is
    about (drawn from all kinds alike, ``too_big`` would be one message in seventeen, and
    some runs would never send one)."""
    kinds = st.sampled_from(SENDS)
    theirs = [what for what in SENDS if CLAUSE_OF_SEND[what] == target]
    if theirs:
        kinds = st.one_of(st.sampled_from(theirs), kinds)
    return st.one_of(
        st.builds(Message, kinds, st.integers(0, 3), st.integers(0, 3)),
        st.builds(Connect, st.sampled_from(GOOD_NAMES + BAD_NAMES)),
        st.builds(Leave, st.integers(0, 3), st.booleans()),
    )


#: What a rush sends: nothing that makes a server close the sender.
RUSH_SENDS = ("direct", "self", "group", "group_null", "unknown", "spoof", "not_json", "binary")
#: The text of a big message. With at most ``MAX_RUSH`` of them a stalled client's backlog
#: stays under 1 MiB, where a server must neither drop nor close (chat.backlog).
BIG_TEXT = 60_000
MAX_RUSH = 12
rushes: st.SearchStrategy[Step] = st.builds(
    Rush,
    st.lists(
        st.builds(Message, st.sampled_from(RUSH_SENDS), st.integers(0, 3), st.integers(0, 3)),
        min_size=2,
        max_size=MAX_RUSH,
    ).map(tuple),
    st.none() | st.integers(0, 3),
    st.booleans(),
)
#: A flood's messages: over 4 MB, more than loopback's socket buffers take in (the server's
#: send buffer grows to 4 MiB), so a server that writes from the sender's own greenlet or
#: thread blocks; and over 1 MiB, so a server may close the stalled client (chat.backlog).
FLOOD = 80
floods: st.SearchStrategy[Step] = st.builds(Flood, st.integers(0, 3), st.integers(0, 3))
#: The steps that runs about several things at once take besides ``steps_for``.
EXTRA_STEPS: Mapping[str, tuple[st.SearchStrategy[Step], ...]] = {
    "chat.concurrent": (rushes,),
    "chat.one-writer": (rushes,),
    "chat.backlog": (floods, rushes),
}


@functools.cache
def steps_for(target: str) -> st.SearchStrategy[Step]:
    """A step of a run about ``target``: its rushes and floods if it takes them, then the
    others."""
    return st.one_of(*EXTRA_STEPS.get(target, ()), plain_steps(target))


#: How long sending a flood may take: a server that does not read it in that time is held
#: up by the client that stopped reading.
SEND_TIMEOUT = 5.0


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
        self.steps = steps_for(target)
        self.noted = 0  # violations of clauses other than the target, so far
        self.flooded = False

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
    @rule(step=st.runner().flatmap(lambda machine: machine.steps))
    def act(self, step: Step) -> None:
        if isinstance(step, Message):
            self.chat(step)
        elif isinstance(step, Connect):
            self.connect(step.name)
        elif isinstance(step, Leave):
            self.disconnect(step.who, step.abrupt)
        elif isinstance(step, Rush):
            self.rush(step)
        else:
            self.flood(step)

    def violated(self, clause: str, message: str) -> bool:
        self.noted += 1
        return super().violated(clause, message)

    def connect(self, name: str) -> None:
        self.step_clause = "chat.connect.register"
        self.connect_as(name)
        newest = self.peers[-1] if self.peers and self.peers[-1].fresh else None
        observer = next((p for p in self.peers if p.name == self.wire_name(OBSERVER)), None)
        if newest is not None and observer is not None and newest is not observer:
            # A message to it before it has sent anything must find it (chat.connect.register).
            self.send_one("direct", observer, newest)
        else:
            self.barrier(None)

    def chat(self, message: Message) -> None:
        """One client sends one kind of message (a burst is two in a row)."""
        what, sender, to = message.what, message.sender, message.to
        # The observer stays online: it never sends what makes a server close it.
        observer = self.wire_name(OBSERVER)
        senders = [p for p in self.peers if what not in CLOSING or p.name != observer]
        if not senders:  # nobody online who may send it (a server closed them all)
            return
        self.send_one(what, senders[sender % len(senders)], self.peers[to % len(self.peers)])

    def send_one(self, what: str, peer: Peer, recipient: Peer, padding: int = 0) -> None:
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
        self.expect(self.send_kind(what, peer, recipient, padding), CLAUSE_OF_SEND[what])
        self.barrier(peer)

    def send_kind(self, what: str, peer: Peer, recipient: Peer, padding: int) -> list[Any]:
        """``peer`` sends one message of kind ``what``; the router's actions for it."""
        text, binary = self.message(what, peer, recipient, padding)
        if binary is not None:
            peer.client.send_binary(binary)
            return self.router.binary(peer, binary)
        assert text is not None
        peer.client.send_raw_text(text)
        return self.router.text(peer, text)

    def rush(self, rush: Rush) -> None:
        """Several clients send at once (see ``Rush``), then every client reads until its
        own message comes back: the senders first, the stalled client last."""
        stalled = None
        if rush.stalled is not None and len(self.peers) > 1:
            stalled = self.peers[rush.stalled % len(self.peers)]
        pool = [p for p in self.peers if p is not stalled]
        if not pool:
            return
        self.step_clause = "chat.concurrent"
        want: dict[Peer, list[Any]] = {peer: [] for peer in self.peers}
        plan: list[tuple[Peer, Peer, str]] = []
        for message in rush.sends:
            peer, recipient = (
                pool[message.sender % len(pool)],
                self.peers[message.to % len(self.peers)],
            )
            plan.append((peer, recipient, message.what))
            peer.fresh = False
            padding = BIG_TEXT if rush.big else 0
            for action in self.send_kind(message.what, peer, recipient, padding):
                assert isinstance(action, Send) and isinstance(action.to, Peer)
                want[action.to].append(comparable(action.frame))
        got: dict[Peer, list[Received]] = {peer: [] for peer in self.peers}
        senders = list(dict.fromkeys(peer for peer, _, _ in plan))
        held = [s for s in senders if not self.echo(s, want, got)]  # all sent is routed now
        for peer in [p for p in pool if p not in held]:
            self.echo(peer, want, got)
        if stalled is not None:
            self.echo(stalled, want, got)
            late = [sender for sender in held if self.echo(sender, want, got)]
            if late:  # they waited for the stalled client to read
                self.violated(
                    "chat.backlog",
                    f"{late[0].name!r} got its own message back only once {stalled.name!r}, "
                    "which had stopped reading, read again: a slow client held up another",
                )
                for peer in [p for p in want if p in self.peers]:  # what is still on its way
                    self.echo(peer, want, got)
                return
        self.judge_rush(plan, stalled, want, got, BIG_TEXT if rush.big else 0)

    def flood(self, flood: Flood) -> None:
        """``FLOOD`` big messages to a client that reads none of them until their sender,
        and everyone else, have had their own messages back."""
        if len(self.peers) < 2 or self.flooded:  # one a program: each costs some 0.5 s
            return
        self.flooded = True
        stalled = self.peers[flood.stalled % len(self.peers)]
        pool = [p for p in self.peers if p is not stalled]
        sender = pool[flood.sender % len(pool)]
        self.step_clause = "chat.backlog"
        sender.fresh = False
        frames = [
            {"to_user": stalled.name, "msg": f"m{next(self.numbers)}" + "x" * BIG_TEXT}
            for _ in range(FLOOD)
        ]
        sent = [{"from_user": sender.name, **frame} for frame in frames]
        if not sender.client.send_all(frames, SEND_TIMEOUT):
            self.violated(
                "chat.backlog",
                f"{sender.name!r} could not send: the server stopped reading it while "
                f"{stalled.name!r} read nothing (a slow client held up another)",
            )
            self.drop(sender)
            self.drop(stalled)
            return
        want: dict[Peer, list[Any]] = {peer: [] for peer in self.peers}
        got: dict[Peer, list[Received]] = {peer: [] for peer in self.peers}
        served = [peer for peer in pool if self.echo(peer, want, got)]
        unknown = {"error": "unknown_user", "to_user": stalled.name}
        refused = got[sender][:-1] if sender in served else []
        if any(frame != unknown for frame in refused):  # unknown_user: after a close
            self.violated(
                "chat.backlog",
                f"{sender.name!r} flooded {stalled.name!r} and received {show(refused[:3])}",
            )
        self.judge_flood(stalled, sent, len(refused))
        for peer in [p for p in pool if p not in served]:  # did they wait for it to read?
            if self.echo(peer, want, got):
                self.violated(
                    "chat.backlog",
                    f"{peer.name!r} got its own message back only once {stalled.name!r}, "
                    "which had stopped reading, read again: a slow client held up another",
                )
            else:
                self.drop(peer)

    def judge_flood(self, stalled: Peer, sent: list[Any], refused: int) -> None:
        """What the flooded client reads once it reads again: every message, in order; or
        those queued before the server closed it (allowed over 1 MiB), the sender having
        been told unknown_user for the rest."""
        echo = {"to_user": stalled.name, "msg": f"barrier {next(self.numbers)}"}
        stalled.client.send(echo)
        read = self.read_until(stalled.client, {"from_user": stalled.name, **echo})
        delivered = [frame for frame in read if frame in sent]
        end = read[-1]
        # Closed: it went offline when the first refused message was routed, with all sent
        # before queued for it; what the server had not sent by then it may lose.
        queued = sum(len(json.dumps(frame)) for frame in sent[: len(sent) - refused])
        if delivered != sent[: len(delivered)]:
            self.violated(
                "chat.backlog",
                f"{stalled.name!r} received the messages flooding it out of order or with gaps",
            )
        elif isinstance(end, Closed) and end.code in (1008, None):
            if queued <= MAX_BACKLOG_BYTES:
                self.violated(
                    "chat.backlog",
                    f"{stalled.name!r} stopped reading and was closed ({end.code}) after only "
                    f"{queued} bytes were queued for it (a server may close over 1,048,576)",
                )
        elif isinstance(end, (Closed, Silent)) or refused or len(delivered) != len(sent):
            self.violated(
                "chat.backlog",
                f"{stalled.name!r} stopped reading while {len(sent)} messages of some "
                f"{BIG_TEXT} bytes came for it; once it read again it received "
                f"{len(delivered)} of them, then {show([end])}; their sender was told "
                f"unknown_user {refused} times",
            )
        if isinstance(end, (Closed, Silent)):
            self.drop(stalled)

    def echo(
        self, peer: Peer, want: dict[Peer, list[Any]], got: dict[Peer, list[Received]]
    ) -> bool:
        """``peer`` sends itself a message and reads until it comes back (False: it did
        not within the silence)."""
        frame = {"to_user": peer.name, "msg": f"barrier {next(self.numbers)}"}
        if got[peer] and isinstance(got[peer][-1], Silent):  # the last echo's, still awaited
            got[peer].pop()
        else:
            peer.client.send(frame)
            self.router.text(peer, json.dumps(frame).encode())
            want[peer].append({"from_user": peer.name, **frame})
        got[peer] += self.read_until(peer.client, want[peer][-1])
        return not isinstance(got[peer][-1], (Silent, Closed))

    def judge_rush(
        self,
        plan: list[tuple[Peer, Peer, str]],
        stalled: Optional[Peer],
        want: dict[Peer, list[Any]],
        got: dict[Peer, list[Received]],
        padding: int,
    ) -> None:
        """Compare what each client read in a rush with the router's prediction, each
        sender's frames in order, different senders' in any order."""
        wrong: list[str] = []
        for peer in want:
            frames = got[peer]
            garbled = [f for f in frames if isinstance(f, str)]
            closed = next((f for f in frames if isinstance(f, Closed)), None)
            if garbled:
                self.violated(
                    "chat.one-writer",
                    f"in a rush, {peer.name!r} received {show(garbled[:1])}: frames "
                    "written into one another",
                )
            elif closed is not None and peer is stalled:
                self.violated(
                    "chat.backlog",
                    f"{peer.name!r} stopped reading and was closed with {closed.code} though "
                    f"at most {sum(len(json.dumps(f)) for f in want[peer])} bytes were queued "
                    "for it (the limit is 1,048,576)",
                )
            if by_source(peer, frames) != by_source(peer, want[peer]):
                wrong.append(
                    f"{peer.name!r} received {show(frames)}\n  expected {show(want[peer])}"
                )
            if closed is not None or (frames and isinstance(frames[-1], Silent)):
                self.drop(peer)  # of no more use
        if not wrong:
            return
        # Wrong at once: and one at a time? The clause is concurrent's only if not. A
        # client the server closed meanwhile is stood in for by one still online.
        noted = self.noted
        for peer, recipient, what in plan:
            if not self.peers:  # nobody left to try them alone with: no verdict
                return
            sender = peer if peer in self.peers else self.peers[0]
            self.send_one(what, sender, recipient if recipient in self.peers else sender, padding)
        if self.noted == noted:
            self.violated(
                "chat.concurrent",
                "frames sent at once went wrong, though the same frames one at a time did "
                "not:\n  " + "\n  ".join(wrong),
            )

    def drop(self, peer: Peer) -> None:
        """Forget a client the server closed or that waits in vain."""
        if peer in self.peers:
            self.peers.remove(peer)
            self.router.disconnect(peer)
        peer.client.abort()

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
        self, what: str, peer: Peer, recipient: Peer, padding: int = 0
    ) -> tuple[Optional[bytes], Optional[bytes]]:
        """(text payload, binary payload) of a send step: one of them is None. ``padding``
        makes the message text that much longer."""
        msg = f"m{next(self.numbers)}" + "x" * padding
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
            # A message to itself first: from a server that does not close it, it comes
            # back, and the read ends there rather than waiting for a close in vain.
            echo = {"to_user": peer.name, "msg": f"barrier {next(self.numbers)}"}
            peer.client.send(echo)
            self.compare(peer, self.read_until(peer.client, {"from_user": peer.name, **echo}))
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
            self.drop(peer)

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
            if answers or isinstance(got[-1], (Closed, Silent)):  # no use probing on
                self.violated(
                    "chat.disconnect.frees-name",
                    f"probing {name!r}, who has left, the observer received {show(got)}",
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


def by_source(peer: Peer, frames: list[Any]) -> dict[str, list[Any]]:
    """A client's frames by what caused them: a delivery by its sender, anything else by
    the client itself (replies to its own frames, its closes), each list in order."""
    sources: dict[str, list[Any]] = {}
    for frame in frames:
        if isinstance(frame, Silent):
            continue
        source = frame.get("from_user", peer.name) if isinstance(frame, dict) else peer.name
        sources.setdefault(str(source), []).append(frame)
    return sources


def frame_or_close(action: Union[Send, Close]) -> Union[dict[str, Any], Closed]:
    return comparable(action.frame) if isinstance(action, Send) else Closed(action.code)


def show(frames: list[Any]) -> str:
    shown = [json.dumps(f) if isinstance(f, dict) else repr(f) for f in frames]
    text = ", ".join(s if len(s) <= 120 else s[:100] + "...}" for s in shown)
    return f"[{text}]"
