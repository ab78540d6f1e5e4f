"""A second chat server, written from spec/chat.md alone: Flask, flask-sock and
simple-websocket (wsproto underneath) on Werkzeug's threaded server. It shares no code
with ``reference.chat``: it checks that the spec can be implemented from its text.

Design
------
* ``Hub`` is the room: who is online and where each frame goes. Routing a frame, and
  queueing all it causes, happens under one lock, so each connection's frames are routed
  in order and everything a frame causes is queued before the next one is routed.
* ``Outbox`` is a connection's one writer: a queue drained by one thread. Frames for a
  connection never interleave, and a sender only appends to the recipient's queue, so a
  recipient that reads slowly never blocks the others. Above ``MAX_BACKLOG_BYTES`` of
  unsent frames the connection is closed with 1008; below it nothing is dropped.
* A name is registered in a ``before_request`` hook, before flask-sock's handshake even
  sends its 101: whoever learns the connection is open can reach it at once.

Traps in simple-websocket 1.1 and Werkzeug 3.1, read in their source; those marked
(met) also showed when the checker ran:

* simple-websocket's ``max_message_size`` counts the *characters* of a text message,
  not its bytes, and closes with 1009 on its own when they exceed it. Set to 65,536 it
  still bounds memory; the byte count is checked here (a text of more characters than
  the limit is over it in bytes too, so the two agree).
* Its reading thread writes to the socket too (pongs, replies to a close), with
  ``socket.send``, which may write part of a frame. ``Wire`` takes its place as the
  socket simple-websocket writes to: every write is whole (``sendall``) and under one
  lock, and the writer holds that lock across ``ws.send`` so that wsproto's state check
  and the bytes it makes go out together (no data frame after a close frame).
* (met) Closing for a message over ``max_message_size``, its reading thread wakes
  ``receive`` before it marks the connection closed: woken too early, ``receive`` waits
  again, for ever without a timeout (0.5 s a close with ours). ``Wire.close`` wakes it
  once more, after the mark.
* Invalid UTF-8 needs nothing: wsproto's decoder fails and simple-websocket answers with
  close code 1007 by itself.
* (met) Werkzeug keeps the TCP connection open after the close handshake: once the view
  returns, its request handler reads what is left on the socket (up to 10 MB, until EOF)
  before it closes it. A client that waits for the server to close first (RFC 6455; the
  checker's ``websockets`` does, and reports the close only then) waits as well, so
  after a close the peer replied to late (1009) neither side moved until the client's
  timeout: a client saw no close within 30 s. The session shuts the socket down
  itself (``shut``) once the close handshake is done.
* Werkzeug logs a line per request: ``QuietHandler`` does not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import sys
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, Callable, Optional, Union

from flask import Flask, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.serving import WSGIRequestHandler, make_server

#: A good name: 1 to 32 of these characters, not only dots.
GOOD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
MAX_MESSAGE_BYTES = 65_536
MAX_BACKLOG_BYTES = 1_048_576
#: Close codes (invalid UTF-8, 1007, is simple-websocket's own).
BAD_NAME, NAME_TAKEN, POLICY, TOO_BIG = 4400, 4409, 1008, 1009
#: How long a closing connection may take to finish: the writer's last frames, the peer's
#: reply to our close. Bounds a wait for a peer that has stopped, decides nothing else.
DRAIN_SECONDS = 2.0
#: How often a session waiting for frames looks whether the connection is closed anyway:
#: every close wakes it (``Wire.wake``); this bounds the wait should one be missed.
POLL_SECONDS = 1.0

Frame = dict[str, Any]
#: What an outbox holds: a frame as JSON text, a close code, or None (stop writing).
Item = Union[str, int, None]


def good_name(name: str) -> bool:
    return GOOD_NAME.fullmatch(name) is not None and name.strip(".") != ""


class Wire:
    """The socket as simple-websocket sees it: each write whole, one at a time; and when
    its reading thread closes it, ``wake`` tells the session (see ``read_messages``)."""

    def __init__(self, sock: socket.socket, wake: Callable[[], None]) -> None:
        self.sock = sock
        self.wake = wake
        self.lock = threading.RLock()  # re-entered: the writer holds it across ws.send

    def send(self, data: bytes) -> int:
        with self.lock:
            self.sock.sendall(data)
        return len(data)

    def close(self) -> None:
        self.sock.close()  # Werkzeug still holds it: the connection stays until ``shut``
        self.wake()

    def __getattr__(self, name: str) -> Any:  # recv, fileno: the socket's own
        return getattr(self.sock, name)


class Outbox:
    """One connection's outgoing queue and its one writer thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: deque[Item] = deque()
        self.ready = threading.Condition()
        self.backlog = 0  # bytes queued and not yet written
        self.closing = False  # a close is queued: nothing more goes in
        self.writer: Optional[threading.Thread] = None

    def put(self, frame: Frame) -> None:
        text = json.dumps(frame)
        with self.ready:
            if self.closing:
                return
            self.backlog += len(text.encode())
            self.items.append(text)
            self.ready.notify()

    def put_close(self, code: int) -> None:
        with self.ready:
            if not self.closing:
                self.closing = True
                self.items.append(code)
                self.ready.notify()

    def start(self, ws: Any, wire: Wire) -> None:
        self.writer = threading.Thread(target=self.write, args=(ws, wire), daemon=True)
        self.writer.start()

    def take(self) -> Item:
        with self.ready:
            while not self.items:
                self.ready.wait()
            return self.items.popleft()

    def write(self, ws: Any, wire: Wire) -> None:
        while True:
            item = self.take()
            if item is None:
                return
            try:
                with wire.lock:  # wsproto's state and the bytes it makes stay together
                    if isinstance(item, int):
                        ws.close(reason=item, message="")
                        wire.wake()  # the session reads no more
                        return
                    ws.send(item)
            except Exception:  # closed (ConnectionClosed, wsproto's state) or reset: stop
                return
            with self.ready:
                self.backlog -= len(item.encode())

    def stop(self, seconds: float) -> None:
        """Let the writer write what is queued, for at most ``seconds``."""
        with self.ready:
            self.items.append(None)
            self.ready.notify()
        if self.writer is not None:
            self.writer.join(seconds)

    def __repr__(self) -> str:
        return f"<connection of {self.name!r}>"


class Hub:
    """Who is online, and where each frame goes: every change and every routing happens
    under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.online: dict[str, Outbox] = {}

    def connect(self, outbox: Outbox) -> None:
        with self.lock:
            if not good_name(outbox.name):
                self.refuse(outbox, "bad_name", BAD_NAME)
            elif outbox.name in self.online:  # the holder is left alone
                self.refuse(outbox, "name_taken", NAME_TAKEN)
            else:
                self.online[outbox.name] = outbox

    @staticmethod
    def refuse(outbox: Outbox, error: str, code: int) -> None:
        outbox.put({"error": error})
        outbox.put_close(code)

    def disconnect(self, outbox: Outbox) -> None:
        with self.lock:
            self.forget(outbox)

    def forget(self, outbox: Outbox) -> None:
        if self.online.get(outbox.name) is outbox:  # not a later login with the name
            del self.online[outbox.name]

    def close(self, outbox: Outbox, code: int) -> None:
        with self.lock:
            self.forget(outbox)
            outbox.put_close(code)

    def text(self, outbox: Outbox, text: str) -> None:
        if len(text.encode()) > MAX_MESSAGE_BYTES:  # simple-websocket counted characters
            self.close(outbox, TOO_BIG)
            return
        with self.lock:
            if self.online.get(outbox.name) is outbox:  # refused or closed: ignored
                self.route(outbox, parse(text))

    def binary(self, outbox: Outbox) -> None:
        with self.lock:
            if self.online.get(outbox.name) is outbox:
                self.deliver(outbox, bad_request("a binary message: chat messages are JSON text"))

    def route(self, sender: Outbox, message: Union[Frame, str]) -> None:
        if isinstance(message, str):  # why it is malformed
            self.deliver(sender, bad_request(message))
            return
        to_user, msg = message.get("to_user"), message["msg"]
        if to_user is None:
            group = {"from_user": sender.name, "msg": msg}
            for outbox in list(self.online.values()):
                if outbox is not sender:
                    self.deliver(outbox, group)
            return
        recipient = self.online.get(to_user)
        if recipient is None:
            self.deliver(sender, {"error": "unknown_user", "to_user": to_user})
        else:
            self.deliver(recipient, {"from_user": sender.name, "to_user": to_user, "msg": msg})

    def deliver(self, outbox: Outbox, frame: Frame) -> None:
        outbox.put(frame)
        if outbox.backlog > MAX_BACKLOG_BYTES:  # it has stopped reading
            self.forget(outbox)
            outbox.put_close(POLICY)


def bad_request(detail: str) -> Frame:
    return {"error": "bad_request", "detail": detail}


def parse(text: str) -> Union[Frame, str]:
    """A chat message as ``{"to_user": str | None, "msg": str}``, or why it is not one."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        return "this is not JSON"
    if not isinstance(message, dict):
        return "a chat message is a JSON object"
    if not isinstance(message.get("msg"), str):
        return "msg: a string is needed"
    to_user = message.get("to_user")
    if to_user is not None and not isinstance(to_user, str):
        return "to_user: a name or null is needed"
    return {"to_user": to_user, "msg": message["msg"]}  # nothing else goes further


def serve_session(hub: Hub, outbox: Outbox, ws: Any) -> None:
    """Read a connection's messages and route them, until either side closes it."""
    raw: socket.socket = ws.sock
    # Small frames at once: Nagle's algorithm would hold each until the peer's ACK.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    wire = Wire(raw, wake=ws.event.set)
    ws.sock = wire  # its reading thread's writes take the lock too
    outbox.start(ws, wire)
    try:
        read_messages(hub, outbox, ws)
    finally:
        hub.disconnect(outbox)
        outbox.stop(DRAIN_SECONDS)
        ws.thread.join(DRAIN_SECONDS)  # the peer's reply to a close we sent
        shut(raw)


def read_messages(hub: Hub, outbox: Outbox, ws: Any) -> None:
    """Until receive raises: after a close it still returns what came before it. (Every
    close wakes it: see the module docstring on ``max_message_size``.)"""
    while True:
        try:
            data = ws.receive(timeout=POLL_SECONDS)
        except ConnectionClosed:
            return
        if data is None:  # nothing yet: go on, unless its reading thread has died
            if not ws.thread.is_alive():
                return
            continue
        if isinstance(data, str):
            hub.text(outbox, data)
        else:
            hub.binary(outbox)


def shut(raw: socket.socket) -> None:
    """End the TCP connection now: Werkzeug would hold it until the peer goes."""
    with contextlib.suppress(OSError):  # gone already
        raw.shutdown(socket.SHUT_RDWR)


def create_app(hub: Optional[Hub] = None) -> Flask:
    hub = hub or Hub()
    app = Flask(__name__)
    # The limit in characters (see the module docstring); no pings: the checker's
    # clients are there or closed.
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": MAX_MESSAGE_BYTES}
    sock = Sock(app)

    @app.before_request
    def register() -> None:
        if request.endpoint == "chat" and request.view_args is not None:
            g.outbox = Outbox(request.view_args["name"])  # percent-decoded by Werkzeug
            hub.connect(g.outbox)  # before the handshake answers

    @app.teardown_request
    def unregister(error: Optional[BaseException]) -> None:
        outbox = g.get("outbox")
        if outbox is not None:  # the handshake may have failed before the session ran
            hub.disconnect(outbox)

    @sock.route("/ws/<path:name>", endpoint="chat")
    def chat(ws: Any, name: str) -> None:
        serve_session(hub, g.outbox, ws)

    return app


class QuietHandler(WSGIRequestHandler):
    """No line per request."""

    def log_request(self, code: Union[int, str] = "-", size: Union[int, str] = "-") -> None:
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="The flask-sock chat server (spec/chat.md).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9528, help="0 picks a free port")
    args = parser.parse_args(argv)
    try:
        server = make_server(
            args.host, args.port, create_app(), threaded=True, request_handler=QuietHandler
        )
    except OSError as error:  # the port is taken, the host is not ours
        print(f"ctxspec flask-sock chat: cannot serve: {error}", file=sys.stderr)
        return 2
    print(f"ctxspec flask-sock chat: serving http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
