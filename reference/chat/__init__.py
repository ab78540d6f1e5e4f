"""The chat room of the seeds, done right: a sans-I/O router (``router``) that is the
protocol's model, and a thin server on Flask and gevent-websocket (``server``), the one
module under ``reference/`` that imports Flask."""

from .router import (
    CLOSE_CODES,
    MAX_BACKLOG_BYTES,
    MAX_MESSAGE_BYTES,
    Action,
    Close,
    Router,
    Send,
    valid_name,
)

__all__ = [
    "CLOSE_CODES",
    "MAX_BACKLOG_BYTES",
    "MAX_MESSAGE_BYTES",
    "Action",
    "Close",
    "Router",
    "Send",
    "valid_name",
]
