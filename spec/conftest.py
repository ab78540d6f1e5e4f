"""Run the ```python examples of spec/*.md as tests (``pytest spec``).

Each example runs in a fresh namespace, so that every block can be copied out and run on
its own. Blocks in other languages (```console, ```json, ```toml) are shown, not run.
Sybil also finds a ```python block nested in a longer fence (the clause template in
README.md), so such a block must run too.

Works with Sybil 10 (Python >= 3.11) and Sybil 9.x (Python 3.9 and 3.10): both have
``Sybil``, ``sybil.parsers.markdown.CodeBlockParser`` and
``sybil.evaluators.python.PythonEvaluator`` with the signatures used here.
"""

from __future__ import annotations

from typing import Any

from sybil import Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser


class FreshNamespace(PythonEvaluator):
    """Run each example in an empty namespace instead of one shared by the document."""

    def __call__(self, example: Any) -> None:
        __tracebackhide__ = True
        example.namespace.clear()
        super().__call__(example)


pytest_collect_file = Sybil(
    parsers=[CodeBlockParser(language="python", evaluator=FreshNamespace())],
    patterns=["*.md"],
).pytest()
