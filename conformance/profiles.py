"""Version profiles: which release line's behaviour an adapter is checked against.

Most clauses hold for every profile. Where real Werkzeug releases behave differently,
a clause names the profiles it holds for, and a profile-specific clause pins the other
behaviour, so that each release line is checked against what it really does. A profile
is named after the Werkzeug release line that introduced the behaviour; the reference
implementation follows the newest one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Every profile, oldest first.
PROFILES: tuple[str, ...] = ("2.0", "2.2", "2.3", "3.0", "3.1")
CURRENT_PROFILE = PROFILES[-1]

ALL: frozenset[str] = frozenset(PROFILES)


def _key(profile: str) -> tuple[int, ...]:
    return tuple(int(part) for part in profile.split("."))


def since(first: str) -> frozenset[str]:
    """The profiles from ``first`` on."""
    return frozenset(p for p in PROFILES if _key(p) >= _key(first))


def until(last: str) -> frozenset[str]:
    """The profiles up to and including ``last``."""
    return frozenset(p for p in PROFILES if _key(p) <= _key(last))


def describe(profiles: Iterable[str]) -> str:
    """A short human description, e.g. ``all``, ``>=2.3`` or ``<=2.2``."""
    chosen = sorted(set(profiles), key=_key)
    if set(chosen) == ALL:
        return "all"
    if chosen and set(chosen) == since(chosen[0]):
        return f">={chosen[0]}"
    if chosen and set(chosen) == until(chosen[-1]):
        return f"<={chosen[-1]}"
    return ",".join(chosen)


def profile_for_version(version: str) -> str:
    """The newest profile not newer than a library version like ``2.3.8``.

    A release between two profiles (2.1.x) gets the older one's profile; anything newer
    than the newest profile gets the newest."""
    # Leading digits only: "3.0rc1" is 3.0, "2.2.0.dev1" is 2.2.
    match = re.match(r"(\d+)(?:\.(\d+))?", version.strip())
    wanted = (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)
    chosen = PROFILES[0]
    for profile in PROFILES:
        if _key(profile) <= wanted:
            chosen = profile
    return chosen
