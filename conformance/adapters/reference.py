"""The reference implementation, as an adapter."""

from __future__ import annotations

from typing import Any

import reference
from reference import contexts, lifecycle
from reference.local import Local, LocalStack
from reference.proxy import LocalProxy

from ..adapter import Adapter
from ..profiles import CURRENT_PROFILE
from .chat_servers import StartedServer, chat_packages_missing, reference_server


class ReferenceAdapter(Adapter):
    name = "reference"
    capabilities = frozenset({"local", "stack", "proxy", "contexts", "lifecycle", "chat"})
    profile = CURRENT_PROFILE

    def __init__(self) -> None:
        missing = chat_packages_missing()
        #: Capabilities it would have, with why they are unavailable here.
        self.unavailable = {"chat": missing} if missing else {}
        self.server: StartedServer = reference_server()

    def versions(self) -> dict[str, str]:
        return {"reference": "bundled with ctxspec"}

    def new_local(self) -> Any:
        return Local()

    def release_local(self, local: Any) -> None:
        reference.release_local(local)

    def new_stack(self) -> Any:
        return LocalStack()

    def new_proxy(self, local: Any, name: str) -> Any:
        return LocalProxy(local, name)

    def new_app(self, name: str) -> Any:
        return lifecycle.App(name, secret_key="ctxspec")

    def context_api(self) -> Any:
        return contexts

    def lifecycle_api(self) -> Any:
        return lifecycle

    def chat_url(self) -> str:
        """The reference chat server, started on a free loopback port on first use."""
        return self.server.start()
