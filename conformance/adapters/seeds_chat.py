"""The seeds' chat server, as a nonconforming adapter.

This is the sketch that ends ../shared/seeds/flask-context-and-chat-room.txt (Flask and
gevent-websocket, one global dict of sockets), changed only enough to run here; each
change is marked ``# changed:`` with why. Its bugs are kept on purpose: it crashes a
connection on an unknown recipient or a malformed message, lets a second login take a
name over, never forgets a closed socket, forwards every key a client sends and has no
group chat. Its known failures are declared in seeds-chat.known-failures.json.

Run it with ``python -m conformance.adapters.seeds_chat --port 0``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from ..adapter import Adapter, shipped_known_failures
from .chat_servers import StartedServer, chat_packages_missing

# The server itself, as in the seeds. Its imports are under ``serve`` so that the adapter
# class loads (and reports chat unavailable) where Flask or gevent-websocket is missing.


def serve(port: int) -> None:
    from flask import Flask, render_template, request
    from gevent.pywsgi import WSGIServer
    from geventwebsocket.handler import WebSocketHandler
    from geventwebsocket.websocket import WebSocket  # noqa: F401  提示用: type comments name it

    app = Flask(__name__)

    user_socket_dict: dict[str, Any] = {}  # 用户字典

    # changed: websocket=True, without which Werkzeug 3 matches no rule for an upgrade.
    @app.route("/ws/<username>", websocket=True)
    def ws(username: str) -> Any:  # never returns: the loop ends by raising
        # changed: no print(request.environ): nobody reads the pipe after the first line,
        # and a full pipe blocks the whole server.
        user_socket = request.environ.get("wsgi.websocket")  # type:WebSocket
        if user_socket:
            user_socket_dict[username] = user_socket
            # changed: no print(user_socket_dict), for the same reason.
            while 1:
                msg = user_socket.receive()
                msg_dict = json.loads(msg)
                msg_dict["from_user"] = username
                to_user = msg_dict.get("to_user")
                # chat = msg_dict.get('msg')
                u_socket = user_socket_dict.get(to_user)  # type:WebSocket
                u_socket.send(json.dumps(msg_dict))

    @app.route("/")
    def index() -> str:
        return render_template("ws.html")  # the seeds' page is not shipped: this is a 500

    # changed: 127.0.0.1 and a port from the command line (0: a free one) instead of
    # 0.0.0.0:9527, and the URL printed once listening, for StartedServer.
    http_serv = WSGIServer(("127.0.0.1", port), app, handler_class=WebSocketHandler)
    http_serv.start()
    print(f"ctxspec seeds chat: serving http://127.0.0.1:{http_serv.server_port}", flush=True)
    http_serv.serve_forever()  # changed: the seeds call server_forever, which is no method


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the seeds' chat (nonconforming).")
    parser.add_argument("--port", type=int, default=9527, help="0 picks a free port")
    args = parser.parse_args(argv)
    try:
        serve(args.port)
    except KeyboardInterrupt:
        return 130
    return 0


class SeedsChatAdapter(Adapter):
    name = "seeds-chat"
    capabilities = frozenset({"chat"})
    known_failures = shipped_known_failures(__file__, "seeds-chat")
    #: The grace period (s) within which a departed user's name must be freed. This server
    #: never frees one, so every probe of a name waits out the whole period in vain: a
    #: short one finds the same failure sooner, and no other clause depends on it.
    grace = 0.05

    def __init__(self) -> None:
        missing = chat_packages_missing()
        #: Capabilities it would have, with why they are unavailable here.
        self.unavailable = {"chat": missing} if missing else {}
        self.server = StartedServer(
            [sys.executable, "-m", "conformance.adapters.seeds_chat", "--port", "0"]
        )

    def versions(self) -> dict[str, str]:
        return {"seeds-chat": "the seeds' chat server, bundled with ctxspec"}

    def chat_url(self) -> str:
        """The seeds' server, started on a free loopback port on first use."""
        return self.server.start()


if __name__ == "__main__":
    sys.exit(main())
