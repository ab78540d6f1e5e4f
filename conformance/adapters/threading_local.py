"""Plain ``threading.local``, unpatched: a nonconforming example.

Without gevent's monkey-patching a ``threading.local`` is per *thread*, so every greenlet
and every asyncio task of a thread shares one set of values. Its known failures are
declared in threading-local.known-failures.json; the report names them."""

from __future__ import annotations

import threading
from typing import Any

from ..adapter import Adapter, shipped_known_failures


class ThreadingLocalAdapter(Adapter):
    name = "threading-local"
    capabilities = frozenset({"local"})
    known_failures = shipped_known_failures(__file__, "threading-local")

    def versions(self) -> dict[str, str]:
        return {"threading": "standard library"}

    def new_local(self) -> Any:
        return threading.local()

    def release_local(self, local: Any) -> None:
        local.__dict__.clear()
