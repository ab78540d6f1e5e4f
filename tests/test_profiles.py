"""Version profiles: the arithmetic of conformance.profiles, which clauses apply to which
profile, and that a profile-specific clause catches an implementation of another profile."""

from __future__ import annotations

import pytest
from regressions import PINNED, replay

from conformance.adapters.reference import ReferenceAdapter
from conformance.clauses import BY_ID, CLAUSES
from conformance.profiles import (
    ALL,
    CURRENT_PROFILE,
    PROFILES,
    describe,
    profile_for_version,
    since,
    until,
)
from conformance.runner import BUDGETS, RunOptions, check_clause, skip_reason

SHARED_POP = "stack.isolation.task-shared-pop"


def test_profiles_are_ordered_oldest_first():
    """PROFILES runs from oldest to newest; the newest is the current one."""
    keys = [tuple(map(int, p.split("."))) for p in PROFILES]
    assert keys == sorted(keys)
    assert CURRENT_PROFILE == PROFILES[-1] == "3.1"
    assert frozenset(PROFILES) == ALL


def test_since_and_until():
    """since and until include their bound."""
    assert since("2.2") == {"2.2", "2.3", "3.0", "3.1"}
    assert since("3.1") == {"3.1"}
    assert until("2.0") == {"2.0"}
    assert until("2.3") == {"2.0", "2.2", "2.3"}
    assert since("2.0") == until("3.1") == ALL
    assert since("2.3") | until("2.2") == ALL
    assert not since("2.3") & until("2.2")


@pytest.mark.parametrize(
    ("profiles", "text"),
    [
        (ALL, "all"),
        (since("2.3"), ">=2.3"),
        (until("2.2"), "<=2.2"),
        (until("2.0"), "<=2.0"),
        ({"3.0", "2.2"}, "2.2,3.0"),
        (["2.2", "2.2", "3.1"], "2.2,3.1"),
    ],
)
def test_describe(profiles, text):
    """describe names a set of profiles as all, a range, or a list."""
    assert describe(profiles) == text


@pytest.mark.parametrize(
    ("version", "profile"),
    [
        ("2.0.3", "2.0"),
        ("2.1.2", "2.0"),
        ("2.2.3", "2.2"),
        ("2.3.8", "2.3"),
        ("3.0.6", "3.0"),
        ("3.1.8", "3.1"),
        ("3.1", "3.1"),
        ("4.0", "3.1"),
        ("2.3.0rc1", "2.3"),
        ("3.0rc1", "3.0"),
        ("2.2.0.dev1", "2.2"),
        ("3", "3.0"),
    ],
)
def test_profile_for_version(version, profile):
    """A release gets the newest profile not newer than it."""
    assert profile_for_version(version) == profile


def test_every_profile_maps_to_itself():
    """A profile's own release line gets that profile."""
    for profile in PROFILES:
        assert profile_for_version(profile + ".0") == profile


def test_clause_profiles():
    """Every clause holds for some known profiles; the task stack clauses split them."""
    assert BY_ID["stack.isolation.task"].holds_for == since("2.2")
    assert BY_ID[SHARED_POP].holds_for == until("2.0")
    assert BY_ID[SHARED_POP].level == "DESCRIBES"
    for clause in CLAUSES:
        assert clause.holds_for and clause.holds_for <= ALL, clause.id


def reference_at(profile: str) -> ReferenceAdapter:
    adapter = ReferenceAdapter()
    adapter.profile = profile
    return adapter


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_skips_the_other_task_stack_clause(profile):
    """A profile runs exactly one of the two task stack clauses and skips the other."""
    adapter = reference_at(profile)
    task, shared = (skip_reason(adapter, BY_ID[c]) for c in ("stack.isolation.task", SHARED_POP))
    assert (task is None) != (shared is None)
    if profile == "2.0":
        assert task == f"holds for profiles >=2.2, not {profile}"
    else:
        assert shared == f"holds for profiles <=2.0, not {profile}"


def test_skip_reason_for_missing_capability():
    """A clause of a capability the adapter lacks is skipped, naming the capability."""
    adapter = ReferenceAdapter()
    adapter.capabilities = frozenset({"local"})
    assert skip_reason(adapter, BY_ID["stack.push.top"]) == (
        "the adapter does not declare capability 'stack'"
    )
    assert skip_reason(adapter, BY_ID["local.release"]) is None


# -- the profile-specific clause has teeth ----------------------------------------------------

SHARED_POP_PROGRAM = next(p for p in PINNED if p.target == SHARED_POP).program


def test_reference_forced_to_2_0_violates_shared_pop():
    """The reference is copy-on-write, so checked as profile 2.0 it breaks shared-pop."""
    violation = replay(SHARED_POP_PROGRAM, reference_at("2.0"), SHARED_POP)
    assert violation is not None and violation.clause == SHARED_POP


def test_same_program_passes_as_the_current_profile():
    """The same steps, checked as stack.isolation.task at 3.1, pass on the reference."""
    assert replay(SHARED_POP_PROGRAM, reference_at("3.1"), "stack.isolation.task") is None


@pytest.mark.slow
def test_search_finds_shared_pop_violation_in_reference_at_2_0():
    """Hypothesis finds the reference at profile 2.0 failing shared-pop.

    At the thorough budget: at ci the search finds it for about half the seeds."""
    result = check_clause(
        reference_at("2.0"), BY_ID[SHARED_POP], RunOptions(BUDGETS["thorough"], seed=0, timeout=300)
    )
    assert result.verdict == "failed", result.reason
    assert result.failure is not None and result.failure.clause == SHARED_POP
