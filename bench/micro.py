"""Micro costs: one operation on a Local, or one attribute read through a proxy.

Why ratios: the machines this runs on are shared, and an absolute figure moves from one
run to the next by more than the differences we care about. What holds still is how an
operation compares with a bare ``ContextVar.get()`` timed in the same process, in the
same minute, so every figure is reported as a multiple of that yardstick.

How it is timed:

* Each statement is *unrolled*: written ``unroll`` times in the body of the loop timeit
  builds, so the loop's own cost is spread over that many operations instead of
  flattening every ratio towards 1.
* Each case is calibrated once, to a loop count whose sample takes about
  ``sample_seconds``.
* Then *rounds*. A round times the yardstick first, then every case once, in an order
  rotated from round to round; one last yardstick sample closes the run. A case's figure
  is its fastest sample: other processes only ever add time, so the minimum is the
  least disturbed measurement.
* Samples are short (milliseconds) and many. On a machine with more runnable processes
  than CPUs, a sample of 50 ms nearly always shares its CPU with someone, so even the
  fastest of 15 is disturbed, and the ratios of two such runs differed by 2x here; a
  sample of 2 ms often fits between two interruptions, and the fastest of 30 repeated
  within a few percent.
* A figure's *drift* is its fastest sample in the second half of the run against the
  first half's. The fastest sample is steady even on a busy machine, so a drift of more
  than a few percent means the figure is not to be trusted: run again. The yardstick's
  drift also shows whether the machine's speed changed while we measured.
* The *spread* (median sample against the fastest) says how busy the machine was; it
  can be large while the figures are steady.
"""

from __future__ import annotations

import importlib
import statistics
import timeit
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import reference

YARDSTICK = "contextvar.get"


@dataclass(frozen=True)
class Case:
    """One statement to time, and the objects its names stand for."""

    key: str
    label: str
    stmt: str
    names: Mapping[str, Any]


@dataclass
class Timing:
    key: str
    label: str
    samples: list[float] = field(default_factory=list)  # nanoseconds per operation

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def spread(self) -> float:
        """How far the typical sample sits above the fastest: how busy the machine was."""
        return statistics.median(self.samples) / self.best - 1.0

    @property
    def drift(self) -> float:
        """The fastest sample of the second half of the run against the first half's
        (+0.03: 3 % slower). Near 0 when the figure is steady, however busy the machine;
        for the yardstick, it says whether the machine's speed changed during the run."""
        half = max(1, len(self.samples) // 2)
        return min(self.samples[half:] or self.samples) / min(self.samples[:half]) - 1.0


@dataclass
class MicroResult:
    yardstick: Timing
    cases: list[Timing]
    #: Case key -> why it was not measured.
    unavailable: dict[str, str]
    rounds: int
    unroll: int

    def timing(self, key: str) -> Optional[Timing]:
        return next((timing for timing in self.cases if timing.key == key), None)

    def ratio(self, key: str) -> Optional[float]:
        """A case's cost as a multiple of ``ContextVar.get()``; None if not measured."""
        timing = self.timing(key)
        return None if timing is None else timing.best / self.yardstick.best


class Target:
    """The object behind the proxies: one plain instance attribute to read."""

    def __init__(self) -> None:
        self.attr = 1


def build_cases() -> tuple[Case, list[Case], dict[str, str]]:
    """The yardstick, the cases that can run here, and why the others cannot."""
    var: ContextVar[int] = ContextVar("bench")
    var.set(1)
    yardstick = Case(YARDSTICK, "ContextVar.get()", "var.get()", {"var": var})

    ref_local = reference.Local()
    ref_local.value = 1
    cases = [
        Case("reference.local.get", "reference Local get", "local.value", {"local": ref_local}),
        Case("reference.local.set", "reference Local set", "local.value = 1", {"local": ref_local}),
    ]
    unavailable: dict[str, str] = {}

    wz: Any
    try:
        wz = importlib.import_module("werkzeug.local")
    except ImportError as error:
        for key in ("werkzeug.local.get", "werkzeug.local.set", "werkzeug.proxy.read"):
            unavailable[key] = f"werkzeug not installed ({error})"
        wz = None
    if wz is not None:
        wz_local = wz.Local()
        wz_local.value = 1
        cases += [
            Case("werkzeug.local.get", "Werkzeug Local get", "local.value", {"local": wz_local}),
            Case(
                "werkzeug.local.set", "Werkzeug Local set", "local.value = 1", {"local": wz_local}
            ),
        ]

    proxy_case = reference_proxy_case()
    if isinstance(proxy_case, Case):
        cases.append(proxy_case)
    else:
        unavailable["reference.proxy.read"] = proxy_case

    if wz is not None:
        wz_proxy_local = wz.Local()
        wz_proxy_local.obj = Target()
        cases.append(
            Case(
                "werkzeug.proxy.read",
                "Werkzeug proxied attribute read",
                "proxy.attr",
                {"proxy": wz.LocalProxy(wz_proxy_local, "obj")},
            )
        )
    return yardstick, cases, unavailable


def reference_proxy_case() -> Union[Case, str]:
    """``reference.LocalProxy(local, "obj").attr``, or why it cannot be measured.

    The reference proxy may not exist yet, or be half-written: anything that stops one
    correct read makes it "not available" rather than ending the benchmark."""
    module: Any = importlib.import_module("reference")
    try:
        proxy_class = module.LocalProxy
    except AttributeError:
        return "not available (reference has no LocalProxy)"
    try:
        local = reference.Local()
        local.obj = Target()
        proxy = proxy_class(local, "obj")
        value = proxy.attr
    except Exception as error:
        return f"not available ({type(error).__name__}: {error})"
    if value != 1:
        return f"not available (proxy.attr gave {value!r}, expected 1)"
    return Case(
        "reference.proxy.read", "reference proxied attribute read", "proxy.attr", {"proxy": proxy}
    )


def compile_case(case: Case, unroll: int) -> timeit.Timer:
    """A timer whose loop body is the statement ``unroll`` times, on local names."""
    # Binding the names in setup makes them locals of timeit's inner function, so the
    # statement pays for a fast local load, not a global lookup.
    setup = "\n".join(f"{name} = _names[{name!r}]" for name in case.names)
    body = "\n".join([case.stmt] * unroll)
    return timeit.Timer(body, setup=setup, globals={"_names": case.names})


def calibrate(timer: timeit.Timer, sample_seconds: float) -> int:
    """A loop count whose sample takes at least ``sample_seconds`` (like autorange)."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= sample_seconds:
            return number
        if elapsed < sample_seconds / 10:
            number *= 10
        else:
            number = max(number + 1, int(number * sample_seconds / elapsed * 1.05))


def measure(
    yardstick: Case,
    cases: Sequence[Case],
    unavailable: Mapping[str, str],
    rounds: int,
    sample_seconds: float,
    unroll: int = 20,
) -> MicroResult:
    """Time the yardstick and every case, interleaved in rounds (see the module doc)."""
    everything = [yardstick, *cases]
    timers = {case.key: compile_case(case, unroll) for case in everything}
    numbers = {key: calibrate(timer, sample_seconds) for key, timer in timers.items()}
    timings = {case.key: Timing(case.key, case.label) for case in everything}

    def sample(key: str) -> None:
        seconds = timers[key].timeit(numbers[key])
        timings[key].samples.append(seconds / (numbers[key] * unroll) * 1e9)

    keys = [case.key for case in cases]
    for round_index in range(rounds):
        sample(yardstick.key)
        shift = round_index % len(keys) if keys else 0
        for key in keys[shift:] + keys[:shift]:
            sample(key)
    sample(yardstick.key)
    return MicroResult(
        timings[yardstick.key],
        [timings[case.key] for case in cases],
        dict(unavailable),
        rounds,
        unroll,
    )
