"""The adapter contract: how ctxspec reaches an implementation under test.

An adapter is an object that declares *capabilities* and, for each, offers the few
factories the machines need. Everything else the machines do with plain Python: a Local
is read with ``getattr``, a stack with ``.push``/``.pop``/``.top``, a proxy with every
operator of the data model. A clause whose capability the adapter does not declare is
reported *skipped*, never failed.

| capability | the adapter provides                                     |
|------------|----------------------------------------------------------|
| ``local``  | ``new_local()``, ``release_local(local)``                |
| ``stack``  | ``new_stack()``                                          |
| ``proxy``  | ``new_local()`` and ``new_proxy(local, name)``           |
| ``contexts`` | ``new_app(name)`` and ``context_api()``                |
| ``lifecycle`` | ``new_app(name)`` and ``lifecycle_api()``             |
| ``chat``   | ``chat_url()``: the ``ws://HOST:PORT`` of a running server   |

An adapter may also have ``unavailable``: capabilities it declares but cannot serve here,
each with the reason (a package that is missing); their clauses are skipped with it.

An adapter is addressed by a short built-in name, by ``module:attr`` (the attribute is
an adapter, or a class or function that makes one with no arguments), or by a name
registered in the entry-point group ``ctxspec.adapters``.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .profiles import CURRENT_PROFILE, PROFILES

ENTRY_POINT_GROUP = "ctxspec.adapters"

#: Every capability a clause can belong to; later ones arrive with later spec chapters.
CAPABILITIES = ("local", "stack", "proxy", "contexts", "lifecycle", "chat")

#: What each capability requires of the adapter object.
REQUIRED_METHODS: Mapping[str, tuple[str, ...]] = {
    "local": ("new_local", "release_local"),
    "stack": ("new_stack",),
    "proxy": ("new_local", "new_proxy"),
    "contexts": ("new_app", "context_api"),
    "lifecycle": ("new_app", "lifecycle_api"),
    "chat": ("chat_url",),
}

BUILTIN_ADAPTERS: Mapping[str, str] = {
    "reference": "conformance.adapters.reference:ReferenceAdapter",
    "werkzeug": "conformance.adapters.werkzeug:WerkzeugAdapter",
    "flask": "conformance.adapters.flask:FlaskAdapter",
    "flask-sock": "conformance.adapters.chat_servers:FlaskSockAdapter",
    "threading-local": "conformance.adapters.threading_local:ThreadingLocalAdapter",
    "naive": "conformance.adapters.naive:NaiveAdapter",
    "seeds-chat": "conformance.adapters.seeds_chat:SeedsChatAdapter",
}

DEFAULT_ADAPTER = "flask"


class Adapter:
    """Base class for adapters. Subclassing it is optional: any object with these
    attributes will do."""

    #: Short name shown in reports.
    name: str = "unnamed"
    #: Capabilities from ``CAPABILITIES`` that this adapter implements.
    capabilities: frozenset[str] = frozenset()
    #: The version profile whose clauses apply (see spec/README.md).
    profile: str = CURRENT_PROFILE
    #: Clause ID -> reason (or KnownFailure), for clauses this adapter is known to fail.
    known_failures: Mapping[str, Any] = {}

    def versions(self) -> dict[str, str]:
        """Versions of the libraries under test, for the report."""
        return {}

    def new_local(self) -> Any:
        raise NotImplementedError

    def release_local(self, local: Any) -> None:
        raise NotImplementedError

    def new_stack(self) -> Any:
        raise NotImplementedError

    def new_proxy(self, local: Any, name: str) -> Any:
        raise NotImplementedError

    def new_app(self, name: str) -> Any:
        """An app with a secret key (sessions work), Flask's API: ``app_context()``,
        ``test_request_context(path)``."""
        raise NotImplementedError

    def context_api(self) -> Any:
        """A namespace with Flask's ``current_app``, ``g``, ``request``, ``session``,
        ``has_app_context``, ``has_request_context``, ``copy_current_request_context``."""
        raise NotImplementedError

    def chat_url(self) -> str:
        """The base URL (``ws://HOST:PORT``) of a chat server speaking spec/chat.md,
        started if need be."""
        raise NotImplementedError

    def lifecycle_api(self) -> Any:
        """A namespace with Flask's ``Blueprint``, ``Response``, ``abort``,
        ``after_this_request``, ``render_template_string``, ``flash``,
        ``stream_with_context``, ``signals``, ``request``, ``session``, ``g``,
        ``has_app_context`` and ``has_request_context``; ``new_app`` then gives apps with
        Flask's hook decorators, ``errorhandler``, ``add_url_rule`` (sync and async views),
        ``register_blueprint`` (blueprints nest) and ``test_client()``."""
        raise NotImplementedError


class AdapterError(Exception):
    """An adapter could not be found, loaded or used; a one-line message for the user."""


@dataclass(frozen=True)
class KnownFailure:
    """A clause an adapter is declared to fail.

    Strict (the default): if the clause passes, the verdict is unexpected-pass. Not strict:
    for a failure that shows only sometimes (a thread ident the OS happens to reuse)."""

    reason: str
    strict: bool = True


def normalize_known_failures(entries: Mapping[str, Any], source: str) -> dict[str, KnownFailure]:
    """Accept ``{clause: reason}`` or ``{clause: {"reason": ..., "strict": bool}}``."""
    if not isinstance(entries, Mapping):
        raise AdapterError(
            f"known failures from {source} must be a JSON object of clause ID -> reason"
        )
    normalized = {}
    for clause, value in entries.items():
        if isinstance(value, KnownFailure):
            normalized[clause] = value
        elif isinstance(value, str):
            normalized[clause] = KnownFailure(value)
        elif (
            isinstance(value, Mapping)
            and isinstance(value.get("reason"), str)
            and isinstance(value.get("strict", True), bool)
            and set(value) <= {"reason", "strict"}
        ):
            normalized[clause] = KnownFailure(value["reason"], value.get("strict", True))
        else:
            raise AdapterError(
                f"known failures from {source}: entry {clause!r} must be a reason string or "
                '{"reason": "...", "strict": true|false}'
            )
    return normalized


def load_known_failures(path: Path) -> dict[str, KnownFailure]:
    """Read a known-failures manifest (see spec/adapters.md)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AdapterError(f"cannot read known-failures file {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise AdapterError(f"known-failures file {path} is not JSON: {error}") from None
    return normalize_known_failures(data, str(path))


def shipped_known_failures(module_file: str, name: str) -> dict[str, KnownFailure]:
    """The manifest shipped beside a built-in adapter's module, if any."""
    path = Path(module_file).with_name(f"{name}.known-failures.json")
    return load_known_failures(path) if path.exists() else {}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    eps: Any = metadata.entry_points()  # its type differs between Python versions
    if hasattr(eps, "select"):
        selected = eps.select(group=ENTRY_POINT_GROUP)
    else:  # Python 3.9: a dict of group -> entry points
        selected = eps.get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in selected}


def available_adapters() -> dict[str, str]:
    """Name -> where it comes from, for every adapter found (built-in first)."""
    found = dict(BUILTIN_ADAPTERS)
    for name, ep in _entry_points().items():
        found.setdefault(name, ep.value)
    return found


def _import_target(target: str, spec: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise AdapterError(f"adapter {spec!r}: expected module:attr, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise AdapterError(f"adapter {spec!r}: cannot import {module_name!r}: {error}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AdapterError(f"adapter {spec!r}: {module_name!r} has no {attr!r}") from None
    return obj


def _instantiate(obj: Any, spec: str) -> Any:
    if hasattr(obj, "capabilities") and not isinstance(obj, type):
        return obj
    if callable(obj):
        try:
            return obj()
        except ImportError as error:
            raise AdapterError(
                f"adapter {spec!r} needs a library that is missing: {error}"
            ) from None
        except Exception as error:
            raise AdapterError(
                f"adapter {spec!r} failed to start: {type(error).__name__}: {error}"
            ) from None
    raise AdapterError(f"adapter {spec!r} is neither an adapter nor a factory of one")


def validate(adapter: Any, spec: str) -> None:
    """Check the adapter declares known capabilities and has what they need."""
    capabilities = getattr(adapter, "capabilities", None)
    if not isinstance(capabilities, (set, frozenset, tuple, list)):
        raise AdapterError(f"adapter {spec!r} declares no capabilities")
    unknown = sorted(set(capabilities) - set(CAPABILITIES))
    if unknown:
        raise AdapterError(
            f"adapter {spec!r} declares unknown capabilities {unknown}; known: {list(CAPABILITIES)}"
        )
    for capability in capabilities:
        for method in REQUIRED_METHODS.get(capability, ()):
            found = getattr(adapter, method, None)
            if not callable(found):
                raise AdapterError(
                    f"adapter {spec!r} declares {capability!r} but has no {method}()"
                )
            if getattr(found, "__func__", None) is vars(Adapter)[method]:
                raise AdapterError(
                    f"adapter {spec!r} declares {capability!r} but does not override "
                    f"Adapter.{method}()"
                )
    profile = getattr(adapter, "profile", CURRENT_PROFILE)
    if profile not in PROFILES:
        raise AdapterError(
            f"adapter {spec!r} claims version profile {profile!r}; known: {list(PROFILES)}"
        )


def load_adapter(spec: str) -> Any:
    """Find an adapter by URL, built-in name, ``module:attr`` or entry-point name."""
    if "://" in spec:
        from .adapters.chat_servers import ChatServerAdapter

        adapter = ChatServerAdapter(spec)
        validate(adapter, spec)
        return adapter
    if spec in BUILTIN_ADAPTERS:
        obj = _import_target(BUILTIN_ADAPTERS[spec], spec)
    elif ":" in spec:
        obj = _import_target(spec, spec)
    else:
        eps = _entry_points()
        if spec not in eps:
            names = ", ".join(available_adapters())
            raise AdapterError(f"unknown adapter {spec!r}; use one of {names}, or module:attr")
        try:
            obj = eps[spec].load()
        except Exception as error:
            raise AdapterError(f"adapter {spec!r}: entry point failed to load: {error}") from None
    adapter = _instantiate(obj, spec)
    validate(adapter, spec)
    return adapter


def library_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))
