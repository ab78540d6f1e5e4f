"""Run the ```python examples of spec/*.md as tests (``pytest spec``).

Each example runs in a fresh namespace, so that every block can be copied out and run on
its own. Blocks in other languages (```console, ```json, ```toml) are shown, not run.
Sybil also finds a ```python block nested in a longer fence (the clause template in
README.md), so such a block must run too.

The examples of contexts.md and lifecycle.md run twice: against the reference, and
against real Flask (test IDs ``sybil:flask,line:...``), with ``reference.contexts`` and
``reference.lifecycle`` standing for Flask (``on_flask.py``). So what they show is known
to be true of the Flask that is installed, not only of the reference. Without Flask, only
the reference runs. An example of a clause that does not hold for the installed Flask's
version profile is skipped on Flask.

Works with Sybil 10 (Python >= 3.11) and Sybil 9.x (Python 3.9 and 3.10): both have
``Sybil`` (with ``name``, and ``+`` for a collection), ``sybil.parsers.markdown.CodeBlockParser``
and ``sybil.evaluators.python.PythonEvaluator`` with the signatures used here.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from typing import Any, Optional

import pytest
from sybil import Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser

#: The chapters whose examples are about Flask, and so also run against it.
ABOUT_FLASK = ["contexts.md", "lifecycle.md"]


class FreshNamespace(PythonEvaluator):
    """Run each example in an empty namespace instead of one shared by the document."""

    def __call__(self, example: Any) -> None:
        __tracebackhide__ = True
        example.namespace.clear()
        super().__call__(example)


#: A clause heading: ``### `lifecycle.stream.held` — ...``.
HEADING = re.compile(r"^### `([a-z0-9.-]+)`", re.MULTILINE)


def clause_of(example: Any) -> Optional[str]:
    """The ID of the clause whose section holds ``example``, if any."""
    text = example.document.text[: example.start]
    headings = HEADING.findall(text)
    return headings[-1] if headings else None


class OnFlask(FreshNamespace):
    """Run each example with the reference's context and lifecycle modules standing for
    real Flask; skip one whose clause does not hold for the installed Flask's profile."""

    def __call__(self, example: Any) -> None:
        __tracebackhide__ = True
        from on_flask import MODULES, installed_profile

        from conformance.clauses import BY_ID

        clause = BY_ID.get(clause_of(example) or "")
        if clause is not None and installed_profile() not in clause.holds_for:
            pytest.skip(f"{clause.id} holds for profiles {clause.profiles}, not this Flask's")

        saved = {name: sys.modules.get(name) for name in MODULES}
        sys.modules.update(MODULES)
        try:
            super().__call__(example)
        finally:
            for name, module in saved.items():
                if module is not None:
                    sys.modules[name] = module


reference_run = Sybil(
    parsers=[CodeBlockParser(language="python", evaluator=FreshNamespace())],
    patterns=["*.md"],
)
if importlib.util.find_spec("flask") is not None:
    flask_run = Sybil(
        parsers=[CodeBlockParser(language="python", evaluator=OnFlask())],
        patterns=ABOUT_FLASK,
        name="flask",
    )
    pytest_collect_file = (reference_run + flask_run).pytest()
else:
    pytest_collect_file = reference_run.pytest()
