"""How the runner turns an adapter's crash into a verdict, and what it must not swallow."""

from __future__ import annotations

import signal

import pytest

from conformance.adapters.reference import ReferenceAdapter
from conformance.clauses import BY_ID
from conformance.runner import (
    BUDGETS,
    NOT_REPRODUCED,
    ClauseHung,
    RunOptions,
    Watchdog,
    check_clause,
)

posix_only = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")

OPTIONS = RunOptions(BUDGETS["dev"], seed=0, timeout=30.0)


class CrashingAdapter(ReferenceAdapter):
    def new_local(self):
        raise ValueError("no Local today")


class InterruptedAdapter(ReferenceAdapter):
    """A Ctrl-C that reaches Hypothesis wrapped in an error of another type."""

    def new_local(self):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise AssertionError("wrapped") from interrupt


def test_a_crash_is_errored_with_its_reason():
    result = check_clause(CrashingAdapter(), BY_ID["local.attr.roundtrip"], OPTIONS)
    assert result.verdict == "errored"
    assert result.reason == "ValueError: no Local today"


def test_a_wrapped_ctrl_c_still_stops_the_run():
    with pytest.raises(KeyboardInterrupt):
        check_clause(InterruptedAdapter(), BY_ID["local.attr.roundtrip"], OPTIONS)


class OnceWrongAdapter(ReferenceAdapter):
    """Breaks local.attr.missing exactly once per process: the failure cannot replay."""

    def __init__(self):
        super().__init__()
        self.misbehaved = False

    def new_local(self):
        adapter = self
        base = super().new_local()

        class Once(type(base)):
            __slots__ = ()

            def __getattribute__(self, name):
                try:
                    return super().__getattribute__(name)
                except AttributeError:
                    if adapter.misbehaved:
                        raise
                    adapter.misbehaved = True
                    return "a value nobody set"

        return Once()


def test_a_failure_that_does_not_replay_is_still_a_failure():
    """The adapter broke the clause once; a nondeterministic adapter is not our crash."""
    result = check_clause(OnceWrongAdapter(), BY_ID["local.attr.missing"], OPTIONS)
    assert result.verdict == "failed"
    assert result.failure is not None
    assert result.failure.clause == "local.attr.missing"
    assert NOT_REPRODUCED in result.failure.message


def test_the_time_limit_bounds_each_example_not_the_search(monkeypatch):
    """The watchdog is armed afresh as every example begins, so a bigger budget (more
    examples) never runs out of time on examples that are each quick."""
    armed: list[float] = []
    arm = Watchdog.arm

    def counting_arm(self):
        armed.append(self.seconds)
        arm(self)

    examples: list[object] = []

    def counting(machine):
        class Counted(machine):  # type: ignore[misc, valid-type]
            def __init__(self, *args, **kwargs):
                examples.append(self)
                super().__init__(*args, **kwargs)

        return Counted

    monkeypatch.setattr(Watchdog, "arm", counting_arm)
    result = check_clause(
        ReferenceAdapter(), BY_ID["local.attr.roundtrip"], OPTIONS, instrument=counting
    )
    assert result.verdict == "passed"
    assert len(examples) >= BUDGETS["dev"].examples
    assert armed == [OPTIONS.timeout] * len(examples)


@posix_only
def test_a_fired_watchdog_stops_every_later_example():
    """After the alarm has fired, the next example does not start: the search ends at once."""
    with Watchdog(30.0) as guard:
        guard.arm()
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 29
        with pytest.raises(ClauseHung):
            guard._alarm(signal.SIGALRM, None)
        assert guard.fired
        with pytest.raises(ClauseHung):
            guard.arm()
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
