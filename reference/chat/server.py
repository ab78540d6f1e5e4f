"""The reference chat server: the router (``router.py``) behind Flask and gevent-websocket,
as in the seeds, made to meet spec/chat.md. The one module under ``reference/`` that
imports Flask.

gevent-websocket 0.10.1 is unmaintained; ``ChatWebSocket`` works around what it gets
wrong (each found by running it, see spec/chat.md):

* ``close(code)`` sends no code (clients see 1005): we pack the code ourselves.
* Its reply to a client's close frame that carries a reason is malformed: we echo the
  client's code alone (1002 if the code may not be sent, 1007 if the reason is not UTF-8).
* It accepts frames RFC 6455 calls protocol errors (unmasked; a control frame over 125
  bytes closes with 1009): we close them with 1002, after what is queued, and skip their
  payload so that the peer's close reply is still read.
* It has no message size limit: a frame or message over 65,536 bytes is refused before
  its payload is read (1009).
* Frames sent from several greenlets at once corrupt the stream, and the reading
  greenlet sends too (pongs, close replies): every frame goes out under one lock, and a
  connection's messages leave through its one writer greenlet (``Outbox``).
* Its UTF-8 check raises before a close code can be sent: text comes to the router as
  bytes, and the router decides (1007).

Run it with ``ctxspec chat`` (or ``python -m reference.chat.server``).
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import gevent
import gevent.lock
import gevent.queue
from flask import Flask, request
from gevent.pywsgi import WSGIServer
from geventwebsocket.exceptions import FrameTooLargeException, ProtocolError, WebSocketError
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.websocket import Header, Stream, WebSocket
from werkzeug.routing import PathConverter

from .router import MAX_BACKLOG_BYTES, MAX_MESSAGE_BYTES, Action, Close, Router, Send

#: What ``ChatWebSocket.receive`` returns: a message, "too big", "protocol error", or None
#: once closed.
Message = Union[tuple[str, bytes], None]
TOO_BIG = ("too_big", b"")
PROTOCOL_ERROR = ("protocol_error", b"")
#: How long a connection the server closed may take to close its side too.
DRAIN_SECONDS = 2.0
#: At most this many queued frames leave in one write (a group message queues one
#: frame in each of many outboxes; a slow reader's outbox holds many).
WRITE_BATCH = 64


def valid_close_code(code: int) -> bool:
    """May a close frame carry ``code`` (RFC 6455 7.4, and the IANA registry's 1012-1014)?
    gevent-websocket's own check lets 1016-1999 and 5000 up through."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class ChatWebSocket(WebSocket):  # type: ignore[misc,unused-ignore]
    """gevent-websocket's WebSocket, with the fixes listed in the module docstring."""

    closed: bool
    raw_read: Any

    def __init__(self, environ: Any, stream: Any, handler: Any) -> None:
        super().__init__(environ, stream, handler)
        self.send_lock = gevent.lock.RLock()
        self.unread = 0  # bytes of a refused frame's payload still on the wire

    def send_frame(self, message: Any, opcode: int) -> Any:
        with self.send_lock:
            return super().send_frame(message, opcode)

    def send_texts(self, texts: Sequence[str]) -> None:
        """Text frames, in order, in one write: one system call for all, not one each."""
        frames = []
        for text in texts:
            payload = text.encode("utf-8")
            frames.append(Header.encode_header(True, self.OPCODE_TEXT, b"", len(payload), 0))
            frames.append(payload)
        with self.send_lock:
            if self.closed:
                raise WebSocketError("the connection is closed")
            data = b"".join(frames)
            try:
                # send first: gevent's sendall asks the socket its buffer size (a system
                # call) every time, while most writes fit whole.
                sent = self.handler.socket.send(data)
                if sent < len(data):
                    self.raw_write(data[sent:])
            except OSError as error:
                raise WebSocketError("the peer is gone") from error

    def close(self, code: Optional[int] = 1000, message: bytes = b"") -> None:
        if self.closed:
            return
        payload = b"" if code is None else struct.pack("!H", code) + message
        try:
            self.send_frame(payload, self.OPCODE_CLOSE)
        except WebSocketError:
            pass  # the peer is gone already
        finally:
            self.closed = True  # the stream stays, so that ``drain`` can read the reply

    def drain(self, seconds: float) -> None:
        """After closing: read and drop what the peer still sends (the rest of a refused
        message, frames sent meanwhile) up to its close reply, for at most ``seconds``.
        Closing the socket with unread data makes the kernel send a reset, which can
        destroy our close frame before the peer reads it; and the peer, its reply sent,
        waits for the server to close the TCP connection first (RFC 6455)."""
        with gevent.Timeout(seconds, False):
            try:
                while True:
                    if self.unread:  # the payload of a frame refused (too big, or bad)
                        chunk = self.raw_read(min(self.unread, 65_536))
                        if not chunk:
                            return
                        self.unread -= len(chunk)
                        continue
                    try:
                        header, _ = self.read_frame()
                    except (FrameTooLargeException, ProtocolError):
                        continue  # read_frame noted how much of it is left unread
                    if header.opcode == self.OPCODE_CLOSE:
                        return
            except (WebSocketError, ProtocolError, OSError):
                return  # reset, gone or garbled: nothing more to wait for

    def read_header(self) -> Any:
        """Header.decode_header, except that it checks nothing: ``read_frame`` does, once
        the header is read whole, so that after a protocol error ``drain`` can skip the
        frame and still find the peer's close reply."""
        data = self.raw_read(2)
        if len(data) != 2:
            raise WebSocketError("the connection ended inside a frame header")
        header = Header(fin=bool(data[0] & 0x80), opcode=data[0] & 0x0F, flags=data[0] & 0x70)
        size = {126: 2, 127: 8}.get(data[1] & 0x7F, 0)  # bytes of an extended length
        mask = 4 if data[1] & 0x80 else 0
        extra = self.raw_read(size + mask)
        if len(extra) != size + mask:
            raise WebSocketError("the connection ended inside a frame header")
        header.length = int.from_bytes(extra[:size], "big") if size else data[1] & 0x7F
        header.mask = extra[size:]
        return header

    def read_frame(self) -> tuple[Any, bytes]:
        header = self.read_header()
        if header.length > MAX_MESSAGE_BYTES:  # before reading a byte of its payload
            self.unread = header.length
            raise FrameTooLargeException(f"a frame of {header.length} bytes")
        problem = ""
        if header.flags:
            problem = "reserved bits set"
        elif not header.mask:  # RFC 6455 5.1: a server must close on an unmasked frame
            problem = "an unmasked frame"
        elif header.opcode > 7 and (not header.fin or header.length > 125):
            problem = "a control frame fragmented or over 125 bytes"
        if problem:
            self.unread = header.length  # skipped by ``drain``
            raise ProtocolError(problem)
        if not header.length:
            return header, b""
        payload = self.raw_read(header.length)
        if len(payload) != header.length:
            raise WebSocketError("the connection ended inside a frame")
        return header, header.unmask_payload(payload)

    def read_message(self) -> Message:
        kind: Optional[str] = None
        message = bytearray()
        while True:
            header, payload = self.read_frame()
            opcode = header.opcode
            if opcode in (self.OPCODE_TEXT, self.OPCODE_BINARY):
                if kind is not None:
                    raise ProtocolError("a new message inside a fragmented one")
                kind = "text" if opcode == self.OPCODE_TEXT else "binary"
            elif opcode == self.OPCODE_CONTINUATION:
                if kind is None:
                    raise ProtocolError("a continuation frame with no message")
            elif opcode == self.OPCODE_PING:
                self.handle_ping(header, payload)
                continue
            elif opcode == self.OPCODE_PONG:
                continue
            elif opcode == self.OPCODE_CLOSE:
                self.handle_close(header, payload)
                return None
            else:
                raise ProtocolError(f"unknown opcode {opcode}")
            message += payload
            if len(message) > MAX_MESSAGE_BYTES:
                raise FrameTooLargeException("a message over the limit")
            if header.fin:
                return kind, bytes(message)

    def handle_close(self, header: Any, payload: bytes) -> None:
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000
        if len(payload) == 1 or not valid_close_code(code):
            code = 1002  # RFC 6455 5.5.1: a body starts with a 2-byte code
        else:
            try:
                payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                code = 1007  # the reason must be UTF-8
        self.close(code)

    def receive(self) -> Message:
        if self.closed:
            return None
        try:
            return self.read_message()
        except FrameTooLargeException:
            return TOO_BIG
        except ProtocolError:
            return PROTOCOL_ERROR  # closed by the view, after what is queued (chat.order)
        except OSError:  # the peer is gone (WebSocketError is a socket.error too)
            self.close(None)
        return None


class ChatHandler(WebSocketHandler):  # type: ignore[misc,unused-ignore]
    """Hands the view a ChatWebSocket instead of gevent-websocket's own."""

    def upgrade_connection(self) -> Any:
        # Small frames go out at once: without this, Nagle's algorithm holds a frame
        # written in two parts until the peer's delayed ACK, some 40 ms a frame.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        result = super().upgrade_connection()
        stock = self.environ.get("wsgi.websocket")
        if stock is not None:
            stock.closed = True  # it must never write: it is replaced before any frame
            self.websocket = ChatWebSocket(self.environ, Stream(self), self)
            self.environ["wsgi.websocket"] = self.websocket
        return result


class Outbox:
    """One connection's queue and its one writer greenlet: frames for a connection leave
    in the order they were queued, and never two at once. Also the connection's identity
    for the router."""

    def __init__(self, ws: ChatWebSocket, name: str) -> None:
        self.ws, self.name = ws, name
        self.queue: gevent.queue.Queue[Optional[tuple[str, Any]]] = gevent.queue.Queue()
        self.backlog = 0  # bytes queued and not yet sent
        self.ended = False  # the router closed it: read no more
        self.writer = gevent.spawn(self.write)

    def put(self, action: Action, data: Optional[str] = None) -> None:
        """Queue ``action``; ``data``, if given, is its frame as JSON already."""
        if self.ended:
            return
        if isinstance(action, Close):
            self.ended = True
            self.queue.put(("close", action.code))
            return
        if data is None:
            data = json.dumps(action.frame)
        self.backlog += len(data)
        self.queue.put(("text", data))

    def write(self) -> None:
        texts: list[str] = []  # queued frames that go out together, in queue order
        while True:
            item = self.queue.get()
            if item is not None and item[0] == "text":
                texts.append(item[1])
                if len(texts) < WRITE_BATCH and self.queue.qsize():
                    continue  # more are queued already: one write for all of them
            try:
                if texts:
                    self.ws.send_texts(texts)
                    self.backlog -= sum(map(len, texts))
                    texts.clear()
                if item is None:
                    return
                if item[0] == "close":
                    self.ws.close(item[1])
                    return
            except WebSocketError:
                return  # the peer is gone: what is left goes nowhere

    def finish(self) -> None:
        """Stop writing, once what is queued for a server close has gone."""
        if not self.ended:
            self.queue.put(None)
        self.writer.join(timeout=5)

    def __repr__(self) -> str:
        return f"<connection of {self.name!r}>"


class SegmentConverter(PathConverter):  # type: ignore[misc,unused-ignore]
    """The rest of the path, whatever it holds: Werkzeug's ``path`` matches neither a
    leading slash (``%2F`` is decoded before routing) nor a line break, and a name it does
    not match would get no bad_name (chat.connect.bad-name)."""

    regex = r"[\s\S]+"
    part_isolating = False  # it spans slashes


def create_app(router: Optional[Router] = None) -> Flask:
    """The chat app: ``/ws/<name>`` for clients, ``/`` for people."""
    router = router or Router()
    app = Flask(__name__)
    app.url_map.converters["segment"] = SegmentConverter

    def dispatch(actions: Sequence[Action]) -> None:
        # A group message is one frame dict in every recipient's Send: encode it once.
        encoded: dict[int, str] = {}  # id(frame) -> JSON; ``actions`` keeps the frames alive
        for action in actions:
            outbox = action.to if isinstance(action, Send) else action.connection
            assert isinstance(outbox, Outbox)
            data = None
            if isinstance(action, Send):
                data = encoded.get(id(action.frame))
                if data is None:
                    data = encoded[id(action.frame)] = json.dumps(action.frame)
            outbox.put(action, data)
            if isinstance(action, Send) and outbox.backlog > MAX_BACKLOG_BYTES:
                dispatch(router.close(outbox, "backlog"))  # it stopped reading

    @app.route("/ws/<segment:name>", websocket=True)  # websocket=True: Werkzeug 3 needs it
    def chat(name: str) -> str:
        ws = request.environ["wsgi.websocket"]
        outbox = Outbox(ws, name)
        dispatch(router.connect(outbox, name))  # registered before any frame is read
        try:
            while not outbox.ended:
                message = ws.receive()
                if message is None:
                    break
                kind, payload = message
                if message == TOO_BIG:
                    dispatch(router.close(outbox, "too_big"))
                elif message == PROTOCOL_ERROR:  # not WebSocket (RFC 6455): 1002, in turn
                    router.disconnect(outbox)
                    outbox.put(Close(outbox, 1002))
                elif kind == "text":
                    dispatch(router.text(outbox, payload))
                else:
                    dispatch(router.binary(outbox, payload))
        finally:
            router.disconnect(outbox)
            outbox.finish()
            if outbox.ended:  # we closed it: let the peer's reply come before the socket goes
                ws.drain(DRAIN_SECONDS)
        return ""  # None would make Flask log an error for a finished WebSocket

    page = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")

    @app.route("/")
    def index() -> str:
        return page  # the seeds' ws.html done right: it connects to this host's /ws/<name>

    return app


def serve(
    host: str, port: int, announce: Callable[[str], None], router: Optional[Router] = None
) -> None:
    """Serve the chat on ``host:port`` (0: a free port) until interrupted; ``announce``
    gets the base URL once connections are accepted. ``router`` replaces the reference's
    (the test suite serves broken ones)."""
    app = create_app(router)
    server = WSGIServer((host, port), app, handler_class=ChatHandler, log=None)
    server.start()
    announce(f"http://{host}:{server.server_port}")
    try:
        server.serve_forever()
    finally:
        server.stop(timeout=1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="ctxspec chat", description="Serve the reference chat.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9527, help="0 picks a free port")
    args = parser.parse_args(argv)

    def announce(url: str) -> None:
        ws = "ws" + url[len("http") :]
        print(f"ctxspec chat: serving {url} (WebSocket {ws}/ws/<name>)", flush=True)

    try:
        serve(args.host, args.port, announce)
    except KeyboardInterrupt:
        return 130
    except OSError as error:  # the port is taken, the host is not ours
        print(f"ctxspec chat: cannot serve on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
