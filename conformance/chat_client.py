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
            compression=None,
            ping_interval=None,  # no keepalive pings: every wait is bounded anyway
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
            received = closed.rcvd
            self.closed = Closed(received.code if received is not None else None)
            return self.closed
        if isinstance(data, bytes):
            return f"a binary frame {data[:40]!r}"
        try:
            parsed = json.loads(data)
        except ValueError:
            return f"a text frame that is not JSON: {data[:80]!r}"
        return parsed if isinstance(parsed, dict) else f"JSON that is not an object: {data[:80]!r}"

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
