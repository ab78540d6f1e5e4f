"""Finding adapters: by built-in name, by module:attr, by entry point; and the one-line
errors for everything that cannot be loaded."""

from __future__ import annotations

import json
from importlib import metadata

import ctxspec_fixture_adapters as fixtures
import pytest

from conformance import adapter as adapter_module
from conformance.adapter import (
    BUILTIN_ADAPTERS,
    CAPABILITIES,
    ENTRY_POINT_GROUP,
    AdapterError,
    KnownFailure,
    available_adapters,
    load_adapter,
    load_known_failures,
    normalize_known_failures,
    validate,
)
from conformance.adapters.reference import ReferenceAdapter
from conformance.profiles import CURRENT_PROFILE

MODULE = "ctxspec_fixture_adapters"


def fake_entry_points(monkeypatch, **targets: str) -> None:
    """Pretend installed packages registered these adapters in our entry-point group."""
    eps = {
        name: metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
        for name, value in targets.items()
    }
    monkeypatch.setattr(adapter_module, "_entry_points", lambda: eps)


# -- built-in names ---------------------------------------------------------------------------


def test_builtin_reference():
    """'reference' loads the reference adapter at the current profile."""
    loaded = load_adapter("reference")
    assert isinstance(loaded, ReferenceAdapter)
    assert loaded.profile == CURRENT_PROFILE
    assert {"local", "stack"} <= set(loaded.capabilities)


def installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                name == "werkzeug" and not installed("werkzeug"), reason="werkzeug not installed"
            ),
        )
        for name in sorted(BUILTIN_ADAPTERS)
    ],
)
def test_every_builtin_loads_and_validates(name):
    """Every built-in adapter loads, with known capabilities and methods."""
    loaded = load_adapter(name)
    assert loaded.name == name
    assert set(loaded.capabilities) <= set(CAPABILITIES)


@pytest.mark.parametrize("name", ["naive", "threading-local"])
def test_nonconforming_builtins_ship_known_failures(name):
    """The nonconforming built-ins declare their known failures from their manifests."""
    loaded = load_adapter(name)
    known = normalize_known_failures(loaded.known_failures, name)
    assert "local.isolation.greenlet" in known
    assert all(isinstance(entry, KnownFailure) and entry.reason for entry in known.values())


def test_each_load_makes_a_new_adapter():
    """Loading a name twice gives two adapters, so a profile forced on one stays there."""
    first, second = load_adapter("reference"), load_adapter("reference")
    first.profile = "2.0"
    assert second.profile == CURRENT_PROFILE


# -- module:attr ------------------------------------------------------------------------------


def test_module_attr_class():
    """module:Class instantiates the class."""
    loaded = load_adapter(f"{MODULE}:GoodAdapter")
    assert type(loaded) is fixtures.GoodAdapter


def test_module_attr_instance():
    """module:instance uses the instance itself."""
    assert load_adapter(f"{MODULE}:GOOD") is fixtures.GOOD


def test_module_attr_factory():
    """module:function calls it and uses what it returns."""
    loaded = load_adapter(f"{MODULE}:make_good")
    assert loaded.name == "fixture-good-from-factory"


def test_module_attr_dotted():
    """The attribute may be a dotted path inside the module."""
    loaded = load_adapter(f"{MODULE}:Registry.good")
    assert type(loaded) is fixtures.GoodAdapter


# -- entry points -----------------------------------------------------------------------------


def test_entry_point_adapter(monkeypatch):
    """A name registered in the ctxspec.adapters group loads what it points to."""
    fake_entry_points(monkeypatch, plugin=f"{MODULE}:GoodAdapter")
    loaded = load_adapter("plugin")
    assert type(loaded) is fixtures.GoodAdapter


def test_entry_points_are_listed_after_builtins(monkeypatch):
    """available_adapters lists built-ins first, then entry points, with their source."""
    fake_entry_points(monkeypatch, plugin=f"{MODULE}:GoodAdapter", reference=f"{MODULE}:GOOD")
    found = available_adapters()
    assert list(found)[: len(BUILTIN_ADAPTERS)] == list(BUILTIN_ADAPTERS)
    assert found["plugin"] == f"{MODULE}:GoodAdapter"
    assert found["reference"] == BUILTIN_ADAPTERS["reference"]


def test_builtin_name_wins_over_entry_point(monkeypatch):
    """An entry point cannot shadow a built-in name."""
    fake_entry_points(monkeypatch, reference=f"{MODULE}:GOOD")
    assert isinstance(load_adapter("reference"), ReferenceAdapter)


def test_entry_point_that_fails_to_load(monkeypatch):
    """An entry point whose target cannot be imported gives a one-line error."""
    fake_entry_points(monkeypatch, broken="no_such_module_for_ctxspec:Adapter")
    with pytest.raises(AdapterError, match=r"adapter 'broken': entry point failed to load"):
        load_adapter("broken")


def test_entry_point_adapter_is_validated(monkeypatch):
    """An adapter from an entry point is validated like any other."""
    fake_entry_points(monkeypatch, weird=f"{MODULE}:UnknownCapabilityAdapter")
    with pytest.raises(AdapterError, match="unknown capabilities"):
        load_adapter("weird")


def test_real_entry_point_group_is_queried():
    """_entry_points reads the installed distributions' ctxspec.adapters group."""
    eps = adapter_module._entry_points()
    assert isinstance(eps, dict)
    assert all(ep.group == ENTRY_POINT_GROUP for ep in eps.values())


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", r"^unknown adapter 'nonsense'; use one of reference, .*, or module:attr$"),
        ("no_such_module_for_ctxspec:Adapter", r"cannot import 'no_such_module_for_ctxspec'"),
        (f"{MODULE}:Missing", rf"^adapter '{MODULE}:Missing': '{MODULE}' has no 'Missing'$"),
        (f"{MODULE}:", r"expected module:attr"),
        (":GoodAdapter", r"expected module:attr"),
        (
            f"{MODULE}:UnknownCapabilityAdapter",
            r"declares unknown capabilities \['teleport'\]; known: \['local', ",
        ),
        (f"{MODULE}:StackWithoutNewStack", r"declares 'stack' but has no new_stack\(\)$"),
        (f"{MODULE}:UnknownProfileAdapter", r"claims version profile '9.9'; known: \['2.0', "),
        (f"{MODULE}:NoCapabilities", r"declares no capabilities$"),
        (f"{MODULE}:failing_factory", r"failed to start: RuntimeError: no database$"),
        (f"{MODULE}:missing_library_factory", r"needs a library that is missing: No module"),
        (f"{MODULE}:NOT_AN_ADAPTER", r"is neither an adapter nor a factory of one$"),
        ("http://127.0.0.1:5000", r"a chat server is addressed as ws://HOST:PORT$"),
    ],
)
def test_load_errors(spec, message):
    """Every adapter that cannot be used gives an AdapterError with a one-line message."""
    with pytest.raises(AdapterError, match=message) as caught:
        load_adapter(spec)
    assert "\n" not in str(caught.value)


def test_unknown_name_lists_entry_points(monkeypatch):
    """The unknown-name error lists the entry-point adapters too."""
    fake_entry_points(monkeypatch, plugin=f"{MODULE}:GoodAdapter")
    with pytest.raises(AdapterError, match=r"seeds-chat, plugin, or module:attr$"):
        load_adapter("nonsense")


def test_validate_accepts_any_object_with_the_methods():
    """An adapter need not subclass Adapter: the right attributes are enough."""

    class Plain:
        name = "plain"
        capabilities = ("local",)
        profile = "2.2"

        def new_local(self):
            return object()

        def release_local(self, local):
            return None

    validate(Plain(), "plain")  # does not raise


def test_validate_rejects_a_method_left_as_the_base_placeholder():
    """Subclassing Adapter without overriding a method a capability needs is caught at
    load time, not as a NotImplementedError in every clause's run."""
    from conformance.adapter import Adapter

    class Forgetful(Adapter):
        capabilities = frozenset({"local", "stack"})

        def new_local(self):
            return object()

        def release_local(self, local):
            return None

    with pytest.raises(AdapterError, match=r"declares 'stack' but does not override"):
        validate(Forgetful(), "forgetful")


def test_validate_accepts_adapter_without_profile():
    """An adapter without a profile attribute is checked as the current profile."""

    class NoProfile:
        capabilities = frozenset({"stack"})

        def new_stack(self):
            return []

    validate(NoProfile(), "no-profile")  # does not raise


# -- known-failures manifests -----------------------------------------------------------------


def test_known_failures_file_forms(tmp_path):
    """A manifest maps clause IDs to a reason, or to a reason and strictness."""
    path = tmp_path / "known.json"
    path.write_text(
        json.dumps(
            {
                "local.iter": "not iterable",
                "local.isolation.thread": {"reason": "ident reuse", "strict": False},
            }
        )
    )
    assert load_known_failures(path) == {
        "local.iter": KnownFailure("not iterable", strict=True),
        "local.isolation.thread": KnownFailure("ident reuse", strict=False),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "must be a JSON object"),
        ('{"local.iter": 3}', "entry 'local.iter' must be a reason string"),
        ('{"local.iter": {"reason": "x", "strict": "yes"}}', "entry 'local.iter'"),
        ('{"local.iter": {"reason": "x", "extra": 1}}', "entry 'local.iter'"),
        ("{not json", "is not JSON"),
    ],
)
def test_bad_known_failures_file(tmp_path, text, message):
    """A malformed manifest gives an AdapterError saying what is wrong."""
    path = tmp_path / "known.json"
    path.write_text(text)
    with pytest.raises(AdapterError, match=message):
        load_known_failures(path)


def test_missing_known_failures_file(tmp_path):
    """A manifest that cannot be read gives an AdapterError naming it."""
    path = tmp_path / "absent.json"
    with pytest.raises(AdapterError, match=r"cannot read known-failures file .*absent\.json"):
        load_known_failures(path)
