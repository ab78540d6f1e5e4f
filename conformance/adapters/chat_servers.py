"""Chat servers as adapters: one already running at a ``ws://`` URL, or one this process
starts (the reference server) on a free loopback port and stops when it exits."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import threading
from typing import Optional
from urllib.parse import urlsplit

from ..adapter import Adapter, AdapterError, library_version

#: How long a started server may take to say it accepts connections.
START_TIMEOUT = 30.0


def chat_packages_missing() -> Optional[str]:
    """Why the reference chat server cannot run here, or None if it can."""
    import importlib.util

    needed = {"gevent": "gevent", "geventwebsocket": "gevent-websocket", "flask": "flask"}
    needed["websockets"] = "websockets"  # the checker's own client
    missing = [dist for module, dist in needed.items() if importlib.util.find_spec(module) is None]
    if missing:
        return f"needs {', '.join(missing)} (pip install 'ctxspec[chat]')"
    return None


class StartedServer:
    """A chat server in a child process: ``command`` must print its base URL (``http://``
    or ``ws://``, host and port) as the last word of its first line once it accepts
    connections."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.process: Optional[subprocess.Popen[str]] = None
        self.url: Optional[str] = None

    def start(self) -> str:
        if self.url is not None:
            return self.url
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        atexit.register(self.stop)
        line = self._first_line()
        if not line:
            error = self.process.stderr.read() if self.process.stderr else ""
            raise AdapterError(f"the chat server did not start: {error.strip()[-300:]}")
        # Nobody reads the child's stderr from now on: drain it, or a server that logs
        # (tracebacks, request lines) blocks for ever once the pipe's 64 KiB are full.
        drain = threading.Thread(target=self._drain_stderr, daemon=True)
        drain.start()
        # "ctxspec chat: serving http://127.0.0.1:PORT (...)": the first URL on the line.
        found = next((w for w in line.split() if "://" in w), "")
        self.url = "ws://" + found.split("://", 1)[1].rstrip("/")
        return self.url

    def _first_line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.process.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(START_TIMEOUT)  # a bounded wait that declares a hang, never an ordering
        return box[0] if box else ""

    def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        # Bytes, from the descriptor: output that is not UTF-8 must not end the drain.
        while os.read(self.process.stderr.fileno(), 65536):  # dropped: the checker reports
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def flask_sock_packages_missing() -> Optional[str]:
    """Why the flask-sock chat server cannot run here, or None if it can."""
    import importlib.util

    needed = {"flask_sock": "flask-sock", "simple_websocket": "simple-websocket"}
    needed["websockets"] = "websockets"  # the checker's own client
    missing = [dist for module, dist in needed.items() if importlib.util.find_spec(module) is None]
    if missing:
        return f"needs {', '.join(missing)} (pip install 'ctxspec[chat]')"
    return None


def reference_server() -> StartedServer:
    return StartedServer(
        [sys.executable, "-m", "reference.chat.server", "--host", "127.0.0.1", "--port", "0"]
    )


def flask_sock_server() -> StartedServer:
    module = "conformance.adapters.flask_sock_chat"
    return StartedServer([sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0"])


class FlaskSockAdapter(Adapter):
    """The second chat server (``flask_sock_chat.py``), on flask-sock, started on a free
    loopback port on first use."""

    name = "flask-sock"
    capabilities = frozenset({"chat"})

    def __init__(self) -> None:
        missing = flask_sock_packages_missing()
        #: Capabilities it would have, with why they are unavailable here.
        self.unavailable = {"chat": missing} if missing else {}
        self.server = flask_sock_server()

    def versions(self) -> dict[str, str]:
        return {dist: library_version(dist) for dist in ("flask-sock", "simple-websocket")}

    def chat_url(self) -> str:
        return self.server.start()


class ChatServerAdapter(Adapter):
    """Any running server that speaks spec/chat.md, addressed by its URL."""

    capabilities = frozenset({"chat"})

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname or parts.port is None:
            raise AdapterError(f"adapter {url!r}: a chat server is addressed as ws://HOST:PORT")
        self.name = f"ws://{parts.hostname}:{parts.port}"
        self.url = self.name
        try:  # is anything there? A refused connection is the user's mistake, said in a line.
            socket.create_connection((parts.hostname, parts.port), timeout=5).close()
        except OSError as error:
            raise AdapterError(f"nothing answers at {self.name}: {error}") from None

    def versions(self) -> dict[str, str]:
        return {"server": self.url}

    def chat_url(self) -> str:
        return self.url
