"""Shared fixtures: the fixture adapters on the path, the ``ctxspec`` command, the report
schema's validator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from conformance import report

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"

# ``ctxspec_fixture_adapters:...`` is importable here as a user's own module would be, and
# the helper modules beside the tests (mutants, regressions) whatever pytest's import mode.
for path in (FIXTURES, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

#: Longest any ``ctxspec`` subprocess may take before the test declares it hung.
SUBPROCESS_TIMEOUT = 120


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment of a ``ctxspec`` subprocess: the fixture adapters importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FIXTURES), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def ctxspec(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m conformance ARGS`` (the real command) in a scratch directory."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conformance", *args],
            cwd=tmp_path,
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )

    return run


# RFC 3339 date-time. jsonschema checks "date-time" only when the optional
# rfc3339-validator is installed; the schema promises it, so the tests check it always.
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@pytest.fixture(scope="session")
def report_validator() -> Any:
    """A Draft 2020-12 validator of report.schema.json that checks formats."""
    jsonschema = pytest.importorskip("jsonschema")
    validator_class = jsonschema.Draft202012Validator
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(
        lambda value: not isinstance(value, str) or bool(DATE_TIME.match(value))
    )
    schema = report.schema()
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=checker)
