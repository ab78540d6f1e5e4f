"""What Flask itself costs for the operations the machines exercise: pushing and popping
a request context (the contexts machine's steps), and answering one request through the
test client (the lifecycle machine's steps). Timed the way ``micro`` times: many short
samples, the fastest counting, because other processes only ever add time."""

from __future__ import annotations

import gc
import timeit
from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class FlaskOps:
    push_pop_us: float  # app.test_request_context(): push, then pop
    request_us: float  # app.test_client().get("/") of a view returning a string


def fastest_us(statement: Any, rounds: int, number: int) -> float:
    # With the garbage collector on, as it is while a machine runs: timeit turns it off
    # by default, which would flatter Flask's figure against the machines'.
    timer = timeit.Timer(statement, setup="gc.enable()", globals={"gc": gc})
    return min(timer.timeit(number) for _ in range(rounds)) / number * 1e6


def measure_flask_ops(rounds: int) -> Union[FlaskOps, str]:
    """Flask's raw costs, or why they cannot be measured here."""
    try:
        import flask
    except ImportError as error:
        return f"not available: flask is not installed ({error})"
    app = flask.Flask("ctxspec-bench")
    app.secret_key = "bench"
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()

    def push_pop() -> None:
        ctx = app.test_request_context("/")
        ctx.push()
        ctx.pop()

    def request() -> None:
        client.get("/")

    rounds = max(rounds, 5)
    return FlaskOps(fastest_us(push_pop, rounds, 200), fastest_us(request, rounds, 50))
