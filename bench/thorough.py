"""How long ``ctxspec run --profile thorough`` takes, and whether it still passes.

The thorough budget (500 examples x 40 steps per clause, twice the examples for clauses
about several actors) is what a maintainer runs before a release. This measures it for
the installed libraries: the real command, called in this process (``cirun``), one
adapter at a time, its verdict counts beside its wall and CPU time. It takes minutes per
adapter, so no tox env in CI runs it: ``tox run -e thorough-flask{20,22,23,30,31}`` runs it
on one Flask release each, and bench/README.md records what a run measured.

    python bench/thorough.py                          # flask, lifecycle clauses
    python bench/thorough.py --adapter reference --adapter werkzeug --capability local
    python bench/thorough.py --json thorough.json

Exit status: 1 when a run did not pass (any failed, errored or unexpected-pass verdict,
or a crash), so that a tox env running it shows a conforming release passing thorough.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from typing import Optional

from cirun import CiRun, time_ctxspec_run

LIBRARIES = ("flask", "werkzeug", "hypothesis")


def installed() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="time ctxspec run at the thorough budget")
    parser.add_argument(
        "--adapter", action="append", help="adapter to run (repeatable; default: flask)"
    )
    parser.add_argument(
        "--capability",
        action="append",
        help="capability whose clauses run (repeatable; default: lifecycle)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the runs to FILE as JSON")
    args = parser.parse_args(argv)
    adapters = args.adapter or ["flask"]
    capabilities = args.capability or ["lifecycle"]

    versions = installed()
    print(", ".join(f"{name} {version}" for name, version in versions.items()), flush=True)
    runs: list[CiRun] = []
    for adapter in adapters:
        run = time_ctxspec_run(adapter, "thorough", capabilities)
        runs.append(run)
        print(
            f"{adapter:<12} {'+'.join(capabilities):<28} exit {run.exit_code}"
            f"  {run.seconds:7.1f} s wall  {run.cpu_seconds:7.1f} s CPU  {run.summary}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"versions": versions, "runs": [asdict(r) for r in runs]}, out, indent=2)
    return 0 if all(run.exit_code == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
