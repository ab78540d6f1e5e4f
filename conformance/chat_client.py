"""A chat client for the checker: one real WebSocket connection (the ``websockets``
library's sync client), and what came on it, as parsed JSON or as the close.

Every wait is bounded: a server that does not answer within ``timeout`` seconds is
declared hung (``ChatHung``), never waited on for ever.
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from typing import Any, Optional, Union
from urllib.parse import quote


class ChatHung(BaseException):
    """The server gave no frame and no close within the timeout.

    A BaseException, like the scheduler's ActorHung, so that nothing swallows it."""


@dataclass(frozen=True)
class Silent:
    """Nothing came within the wait: the frames awaited were lost (or the server hangs)."""

    seconds: float

    def __repr__(self) -> str:
        return f"<nothing more within {self.seconds:g} s>"


@dataclass(frozen=True)
class Closed:
    """The server closed the connection, with this code (None: no code, or no close frame
    at all)."""

    code: Optional[int]


Received = Union[dict[str, Any], Closed, Silent, str]  # a frame, the close, or not JSON

#: The codes of a close the client library sends when a server's bytes make no message:
#: a protocol error, text that is not UTF-8, a frame too big for the library.
UNREADABLE = (1002, 1007, 1009)
#: Messages the library reads ahead of ``receive``.
READ_AHEAD = 2


#: What the checker puts for a bad_request's ``detail``: its text is free (spec/chat.md),
#: so only that it is a string is compared.
ANY_DETAIL = "<any text>"


def comparable(frame: dict[str, Any]) -> dict[str, Any]:
    """``frame`` as the checker compares it: a bad_request's detail text left out."""
    if frame.get("error") == "bad_request" and isinstance(frame.get("detail"), str):
        return {**frame, "detail": ANY_DETAIL}
    return frame


def ws_url(base: str, name: str) -> str:
    """The URL of ``/ws/<name>`` on the server at ``base``, the name percent-encoded."""
    return f"{base.rstrip('/')}/ws/{quote(name, safe='')}"


class ChatClient:
    def __init__(self, base: str, name: str, timeout: float, segment: Optional[str] = None) -> None:
        """``segment``: the path segment exactly as sent, already percent-encoded (by
        default ``name``, percent-encoded), for clients that test odd paths."""
        from websockets.sync.client import connect

        self.name = name
        self.timeout = timeout
        self.closed: Optional[Closed] = None
        url = ws_url(base, name) if segment is None else f"{base.rstrip('/')}/ws/{segment}"
        opening = connect(
            url,
            open_timeout=timeout,
            close_timeout=timeout,
            max_size=None,  # the checker reads whatever a server sends
            # Not reading makes the library stop reading the socket almost at once, so that
            # a client the checker does not read backs the server up, not this process.
            max_queue=READ_AHEAD,
            ping_interval=None,  # no keepalive: the checker times every wait itself
            compression=None,
        )
        # Entered as a context (websockets 17.1 deprecates using connect() directly; in
        # earlier releases entering gives the same connection).
        self.ws = opening.__enter__()
        # Small frames at once (see reference/chat/server.py on Nagle's algorithm); the
        # server may have closed the socket already (a bad or taken name).
        with contextlib.suppress(OSError):
            self.ws.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __repr__(self) -> str:
        return f"<client {self.name!r}>"

    # -- sending --------------------------------------------------------------------------
    # Sending on a connection the server has closed is no error of the checker's: the
    # next receive reports the close.
    def send(self, frame: Any) -> None:
        self._send(json.dumps(frame))

    def send_all(self, frames: list[Any], timeout: float) -> bool:
        """Send ``frames``, from a thread of their own: False if they have not all gone
        within ``timeout`` (the server stopped reading this connection). The thread then
        ends when the connection does."""
        import threading

        def send_them() -> None:
            for frame in frames:
                self.send(frame)

        sender = threading.Thread(target=send_them)
        sender.daemon = True
        sender.start()
        sender.join(timeout)  # a bounded wait that declares a hang, never an ordering
        return not sender.is_alive()

    def send_binary(self, data: bytes) -> None:
        self._send(data)

    def send_raw_text(self, payload: bytes) -> None:
        """A text message whose bytes are ``payload`` as they are, valid UTF-8 or not."""
        self._send(payload, text=True)

    def _send(self, data: Any, text: Optional[bool] = None) -> None:
        from websockets.exceptions import ConnectionClosed

        if self.closed is not None:
            return
        try:
            if text is None:
                self.ws.send(data)
            else:
                self.ws.send(data, text=text)
        except ConnectionClosed:
            pass

    # -- receiving ------------------------------------------------------------------------
    def receive(self, silence: Optional[float] = None) -> Received:
        """The next frame, parsed, or the close once the server has closed. With
        ``silence``, nothing within that many seconds is ``Silent``; without, it is a hang."""
        from websockets.exceptions import ConnectionClosed

        if self.closed is not None:
            return self.closed
        try:
            data = self.ws.recv(timeout=silence or self.timeout)
        except TimeoutError:
            if silence:
                return Silent(silence)
            raise ChatHung(f"{self!r} got nothing within {self.timeout:g} s") from None
        except ConnectionClosed as closed:
            received, sent = closed.rcvd, closed.sent
            self.closed = Closed(received.code if received is not None else None)
            if received is None and sent is not None and sent.code in UNREADABLE:
                # The library closed it: what the server sent was no WebSocket message.
                return f"bytes that are no WebSocket message ({sent.code}: {sent.reason})"
            return self.closed
        if isinstance(data, bytes):
            return f"a binary frame {data[:40]!r}"
        try:
            parsed = json.loads(data)
        except ValueError:
            return f"a text frame that is not JSON: {data[:80]!r}"
        if not isinstance(parsed, dict):
            return f"JSON that is not an object: {data[:80]!r}"
        return comparable(parsed)

    # -- ending ---------------------------------------------------------------------------
    def close(self) -> None:
        """A clean close: a close frame, then the close handshake."""
        self.ws.close()

    def abort(self) -> None:
        """An abrupt end: the TCP connection goes away without a close frame."""
        # Shut the socket down and let the library's reading thread find it closed (closing
        # it here as well would leave that thread waiting for ever).
        with contextlib.suppress(OSError):
            self.ws.socket.shutdown(socket.SHUT_RDWR)
