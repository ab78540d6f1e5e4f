"""The reference's names, backed by real Flask: what the spec examples of contexts.md and
lifecycle.md import when they run a second time, against Flask (see conftest.py).

The reference mirrors Flask's public API, so most names are Flask's own. The few that
differ are wrapped here: ``App`` is a ``flask.Flask`` set up as the ``flask`` adapter sets
up its apps (no test-mode propagation of errors), and ``Blueprint`` takes Flask's
``import_name`` as optional. The tables an example may read (``SIGNALS``, ``HOOK_ORDER``,
the error messages) stay the reference's: they are the spec's data, which Flask must
agree with, not something Flask exports.
"""

from __future__ import annotations

import types
from typing import Any, Optional

import flask

import reference.contexts
import reference.lifecycle

#: Flask's own names, the same in the reference and in Flask.
FLASK_NAMES = (
    "current_app",
    "g",
    "request",
    "session",
    "has_app_context",
    "has_request_context",
    "copy_current_request_context",
    "after_this_request",
    "abort",
    "session",
    "render_template_string",
    "flash",
    "stream_with_context",
    "Response",
    "signals",
)
#: The reference's tables, which an example may read to show the data behind a rule.
TABLES = (
    "OUTSIDE_MESSAGES",
    "NEEDS",
    "COPY_OUTSIDE_MESSAGE",
    "WRONG_POP_MESSAGES",
    "needs_app_context",
    "HOOK_ORDER",
    "SIGNALS",
    "STREAM_CONTEXTS",
)


def App(name: str, secret_key: Optional[str] = None, stream_contexts: str = "") -> Any:
    """A Flask app; ``stream_contexts`` names how the reference streams, which Flask's
    release line decides (an example that needs the other way is skipped)."""
    app = flask.Flask(name)
    app.secret_key = secret_key
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    app.logger.disabled = True  # the examples raise errors on purpose
    return app


def Blueprint(name: str, import_name: Optional[str] = None) -> Any:
    return flask.Blueprint(name, import_name or name)


def shim(of: types.ModuleType) -> types.ModuleType:
    """A module with ``of``'s names, Flask's where Flask has them."""
    module = types.ModuleType(of.__name__, f"{of.__name__}, backed by real Flask")
    for name in TABLES:
        if hasattr(of, name):
            setattr(module, name, getattr(of, name))
    for name in FLASK_NAMES:
        if hasattr(of, name):
            setattr(module, name, getattr(flask, name))
    module.App = App  # type: ignore[attr-defined]
    if hasattr(of, "Blueprint"):
        module.Blueprint = Blueprint  # type: ignore[attr-defined]
    return module


#: What ``from reference.X import ...`` finds while an example runs against Flask.
MODULES = {module.__name__: shim(module) for module in (reference.contexts, reference.lifecycle)}


def installed_profile() -> str:
    """The version profile of the installed Flask, as the flask adapter picks it."""
    from conformance.adapter import library_version
    from conformance.profiles import profile_for_version

    return profile_for_version(library_version("flask"))
