"""Real ``werkzeug.local``, checked against the profile of the installed release."""

from __future__ import annotations

from typing import Any

from ..adapter import Adapter, library_version, shipped_known_failures
from ..profiles import profile_for_version


class WerkzeugAdapter(Adapter):
    name = "werkzeug"
    capabilities = frozenset({"local", "stack", "proxy"})

    def __init__(self) -> None:
        from werkzeug import local  # ImportError here becomes "needs a library that is missing"

        self._local = local
        self.profile = profile_for_version(library_version("werkzeug"))
        self.known_failures = shipped_known_failures(__file__, "werkzeug")

    def versions(self) -> dict[str, str]:
        return {"werkzeug": library_version("werkzeug")}

    def new_local(self) -> Any:
        return self._local.Local()

    def release_local(self, local: Any) -> None:
        self._local.release_local(local)

    def new_stack(self) -> Any:
        return self._local.LocalStack()

    def new_proxy(self, local: Any, name: str) -> Any:
        return self._local.LocalProxy(local, name)
