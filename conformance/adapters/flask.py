"""Real Flask, through its public API, checked against the profile of the installed
release. Its Local, LocalStack and LocalProxy are Werkzeug's, which Flask's globals are
built on."""

from __future__ import annotations

from typing import Any

from ..adapter import library_version, shipped_known_failures
from ..profiles import profile_for_version
from .werkzeug import WerkzeugAdapter


class FlaskAdapter(WerkzeugAdapter):
    name = "flask"
    capabilities = frozenset({"local", "stack", "proxy", "contexts", "lifecycle"})

    def __init__(self) -> None:
        super().__init__()
        import flask  # ImportError here becomes "needs a library that is missing"

        self._flask = flask
        self.profile = profile_for_version(library_version("flask"))
        self.known_failures = shipped_known_failures(__file__, "flask")

    def versions(self) -> dict[str, str]:
        return {"flask": library_version("flask"), "werkzeug": library_version("werkzeug")}

    def new_app(self, name: str) -> Any:
        app = self._flask.Flask(name)
        app.secret_key = "ctxspec"
        # The production path for errors: no test-mode propagation (spec/contexts.md).
        app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
        app.logger.disabled = True  # the errors it would log are the machines' own doing
        return app

    def context_api(self) -> Any:
        return self._flask

    def lifecycle_api(self) -> Any:
        return self._flask
