"""The chat benchmark's yardstick: a relay on the ``websockets`` library's asyncio server
that speaks spec/chat.md's frames (direct and group, ``from_user`` added) and fans a group
message out with ``broadcast()``, which writes the same text to every connection without
waiting on any of them. It is what a plain asyncio server of the protocol costs, measured
in the same run as the reference; it is not a conforming server (no size or backlog
limits, no close codes but the name ones).

    python bench/chat_yardstick.py --port 0

prints ``chat yardstick: serving http://HOST:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from collections.abc import Sequence
from typing import Any, Optional
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from reference.chat.router import valid_name

#: Online users: name -> connection.
Online = dict[str, ServerConnection]


def raise_open_files_limit() -> None:
    """Up to the hard limit: a scenario holds 500 to 1,000 connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def route(online: Online, sender: str, ws: ServerConnection, text: Any) -> None:
    """Carry out one frame of ``sender``'s: every send is ``broadcast``, which queues and
    never waits, so a slow reader never holds up the sender's next frame."""
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("msg"), str):
        broadcast([ws], json.dumps({"error": "bad_request", "detail": "not a chat message"}))
        return
    to_user = message.get("to_user")
    if to_user is None:
        group = json.dumps({"from_user": sender, "msg": message["msg"]})
        broadcast([c for name, c in online.items() if name != sender], group)
        return
    recipient = online.get(to_user) if isinstance(to_user, str) else None
    if recipient is None:
        broadcast([ws], json.dumps({"error": "unknown_user", "to_user": to_user}))
        return
    frame = {"from_user": sender, "to_user": to_user, "msg": message["msg"]}
    broadcast([recipient], json.dumps(frame))


async def handle(online: Online, ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    name = unquote(path[len("/ws/") :]) if path.startswith("/ws/") else ""
    if not valid_name(name):
        await ws.send(json.dumps({"error": "bad_name"}))
        await ws.close(4400)
        return
    if name in online:
        await ws.send(json.dumps({"error": "name_taken"}))
        await ws.close(4409)
        return
    online[name] = ws
    try:
        async for text in ws:
            route(online, name, ws, text)
    except ConnectionClosed:
        pass  # an abrupt end is the client's business
    finally:
        del online[name]


async def serve_forever(host: str, port: int) -> None:
    online: Online = {}
    # No compression (gevent-websocket has none) and no pings: the same work as the reference.
    async with serve(
        lambda ws: handle(online, ws),
        host,
        port,
        compression=None,
        ping_interval=None,
        max_size=65_536,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"chat yardstick: serving http://{host}:{bound}", flush=True)
        await asyncio.Future()  # until interrupted


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="The chat benchmark's yardstick relay.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    raise_open_files_limit()
    try:
        asyncio.run(serve_forever(args.host, args.port))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
