"""Every normative clause of spec/, as data.

The spec's Markdown is the text of the law; this table is its index: ID, capability,
title, level and the version profiles a clause holds for. ``tests/test_spec_index.py``
checks the two agree heading by heading. An ID, once published, keeps its meaning: a
changed rule gets a new ID.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .profiles import ALL, describe, since, until

#: Where each capability's clauses are written down.
SPEC_FILES = {
    "local": "spec/local.md",
    "stack": "spec/localstack.md",
    "proxy": "spec/localproxy.md",
    "contexts": "spec/contexts.md",
    "lifecycle": "spec/lifecycle.md",
    "chat": "spec/chat.md",
}


@dataclass(frozen=True)
class Clause:
    id: str
    capability: str
    title: str
    level: str = "MUST"
    holds_for: frozenset[str] = ALL

    @property
    def spec_file(self) -> str:
        return SPEC_FILES[self.capability]

    @property
    def heading(self) -> str:
        """The clause's heading in its spec file, without the ``###``."""
        return f"`{self.id}` \u2014 {self.title}"

    @property
    def anchor(self) -> str:
        """A link to the clause's heading, slugged the way GitHub slugs Markdown headings:
        lower case, punctuation dropped, each space a hyphen."""
        text = self.heading.lower()
        slug = "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")
        return f"{self.spec_file}#{slug}"

    @property
    def profiles(self) -> str:
        return describe(self.holds_for)


def _clauses(capability: str, rows: Iterable[tuple[str, str]], **common: object) -> list[Clause]:
    return [Clause(cid, capability, title, **common) for cid, title in rows]  # type: ignore[arg-type]


LOCAL = _clauses(
    "local",
    [
        (
            "local.attr.roundtrip",
            "A value set is read back, the same object, until set again or deleted",
        ),
        ("local.attr.missing", "Reading a name that is not set raises AttributeError naming it"),
        (
            "local.attr.delete",
            "Deleting unsets a name; deleting a name that is not set raises AttributeError",
        ),
        (
            "local.isolation.thread",
            "Threads never see each other's values; a new thread starts empty",
        ),
        (
            "local.isolation.greenlet",
            "Greenlets never see each other's values, without monkey-patching",
        ),
        (
            "local.isolation.task",
            "A new asyncio task starts with a snapshot of its creator's values",
        ),
        ("local.release", "Releasing forgets the current context's values, and only those"),
        ("local.lifetime.thread", "A value stored only by a thread that ended is not kept alive"),
        (
            "local.lifetime.greenlet",
            "A value stored only by a greenlet that ended is not kept alive",
        ),
        (
            "local.lifetime.task",
            "A value stored only by an asyncio task that ended is not kept alive",
        ),
        ("local.iter", "Iterating a Local yields the current context's (name, value) pairs"),
    ],
)

STACK: list[Clause] = [
    *_clauses(
        "stack",
        [
            ("stack.push.top", "After push(x), top is x"),
            ("stack.pop.lifo", "pop removes and returns the top item"),
            ("stack.pop.empty", "On an empty stack, pop and top return None and change nothing"),
            ("stack.pop.last", "Popping the last item leaves the stack empty"),
            ("stack.pop.release", "A popped item is not kept alive by the stack"),
            (
                "stack.isolation.thread",
                "Each thread has its own stack; a new thread's stack is empty",
            ),
            (
                "stack.isolation.greenlet",
                "Each greenlet has its own stack; a new greenlet's stack is empty",
            ),
        ],
    ),
    Clause(
        "stack.isolation.task",
        "stack",
        "A new asyncio task starts with a snapshot of its creator's stack",
        holds_for=since("2.2"),
    ),
    Clause(
        "stack.isolation.task-shared-pop",
        "stack",
        "A task's pop removes the item from the stack of the task that created it",
        level="DESCRIBES",
        holds_for=until("2.0"),
    ),
]

PROXY: list[Clause] = [
    *_clauses(
        "proxy",
        [
            (
                "proxy.lookup.every-access",
                "Every operation looks up the object bound at that moment",
            ),
            ("proxy.forward.getattr", "Reading an attribute reads it from the object"),
            ("proxy.forward.setattr", "Setting an attribute sets it on the object"),
            ("proxy.forward.delattr", "Deleting an attribute deletes it from the object"),
            ("proxy.forward.dir", "dir() lists the object's attributes"),
            ("proxy.forward.class", "__class__ and isinstance() see the object's class"),
            ("proxy.forward.doc", "__doc__ is the object's docstring"),
            ("proxy.forward.wrapped", "__wrapped__ is the object's __wrapped__"),
            ("proxy.forward.str", "str() is the object's str()"),
            ("proxy.forward.repr", "repr() is the object's repr()"),
            ("proxy.forward.format", "format() and f-strings format the object"),
            ("proxy.forward.bool", "The truth value is the object's"),
            ("proxy.forward.len", "len() and length_hint() are the object's"),
            ("proxy.forward.iter", "iter(), reversed() and next() work on the object"),
            ("proxy.forward.contains", "The in operator tests membership in the object"),
            ("proxy.forward.items", "Subscripts get, set and delete the object's items"),
            ("proxy.forward.compare", "Comparisons compare the object"),
            ("proxy.forward.hash", "hash() is the object's hash"),
            ("proxy.forward.arithmetic", "Binary operators apply to the object"),
            ("proxy.forward.reflected", "Reflected operators apply to the object"),
            (
                "proxy.forward.inplace",
                "In-place operators change the object in place or not at all, and keep the proxy",
            ),
            ("proxy.forward.unary", "Unary operators apply to the object"),
            ("proxy.forward.convert", "Numeric and bytes conversions convert the object"),
            ("proxy.forward.call", "Calling the proxy calls the object"),
            ("proxy.forward.with", "with and async with use the object as context manager"),
            ("proxy.forward.await", "await awaits the object"),
            ("proxy.forward.async-iter", "async for iterates over the object"),
            ("proxy.forward.copy", "copy.copy and copy.deepcopy copy the object"),
            ("proxy.unbound.raises", "Unbound, every other operation raises RuntimeError"),
            ("proxy.unbound.bool", "An unbound proxy is false"),
            ("proxy.unbound.repr", "repr() of an unbound proxy says it is unbound"),
            ("proxy.unbound.dir", "dir() of an unbound proxy is empty"),
            ("proxy.unbound.class", "An unbound proxy's __class__ is the proxy's class"),
            ("proxy.unbound.doc", "An unbound proxy's __doc__ is the proxy class's docstring"),
            (
                "proxy.unbound.compare",
                "Unbound, == and != compare identity and ordering raises TypeError",
            ),
            ("proxy.unbound.hash", "hash() of an unbound proxy raises TypeError"),
            ("proxy.unbound.iter", "iter() of an unbound proxy raises TypeError"),
            ("proxy.unbound.await", "await and async for on an unbound proxy raise AttributeError"),
        ],
    ),
    Clause(
        "proxy.unbound.message",
        "proxy",
        'The unbound RuntimeError says "object is not bound"',
        holds_for=since("2.2"),
    ),
    Clause(
        "proxy.unbound.message-names",
        "proxy",
        "The unbound RuntimeError names the attribute",
        level="DESCRIBES",
        holds_for=until("2.0"),
    ),
    Clause(
        "proxy.unbound.wrapped",
        "proxy",
        "An unbound proxy's __wrapped__ is what it proxies",
        holds_for=since("2.2"),
    ),
    Clause(
        "proxy.unbound.wrapped-raises",
        "proxy",
        "An unbound proxy's __wrapped__ raises RuntimeError",
        level="DESCRIBES",
        holds_for=until("2.0"),
    ),
]

CONTEXTS = _clauses(
    "contexts",
    [
        (
            "contexts.app.current",
            "Inside an app context current_app is its app; the latest pushed is the active one",
        ),
        ("contexts.request.current", "Inside a request context, request is its request"),
        (
            "contexts.request.implicit-app",
            "A request context brings an app context only when the active one is of "
            "another app, or there is none",
        ),
        ("contexts.pop.restores", "Popping a context makes the one pushed before it active again"),
        (
            "contexts.pop.wrong",
            "Popping a context that is not the active one raises AssertionError",
        ),
        ("contexts.g.app-context", "g belongs to the app context; each one starts empty"),
        (
            "contexts.session.request",
            "session belongs to the request context and keeps what is set in it",
        ),
        (
            "contexts.outside.app",
            "Outside an app context, current_app and g raise RuntimeError",
        ),
        (
            "contexts.outside.request",
            "Outside a request context, request and session raise RuntimeError",
        ),
        (
            "contexts.isolation.greenlet",
            "Each greenlet has its own contexts and starts with none, without monkey-patching",
        ),
        ("contexts.isolation.thread", "Each thread has its own contexts and starts with none"),
        (
            "contexts.copy.request",
            "A function from copy_current_request_context runs with that request and session",
        ),
        (
            "contexts.copy.later",
            "A copied function can be called after its request ended, and more than once",
        ),
        (
            "contexts.copy.outside",
            "copy_current_request_context outside a request context raises RuntimeError",
        ),
    ],
)

LIFECYCLE = _clauses(
    "lifecycle",
    [
        (
            "lifecycle.url-values",
            "url_value_preprocessor functions run before every before_request function, "
            "app first, then blueprints from the outermost in",
        ),
        (
            "lifecycle.before",
            "before_request functions run app first, then blueprints from the outermost in, "
            "in registration order, until one answers or raises; the view runs only if none "
            "did",
        ),
        (
            "lifecycle.after",
            "after_this_request functions, then after_request functions from the innermost "
            "blueprint out to the app, newest first, process every response",
        ),
        (
            "lifecycle.after.raises",
            "An error raised by an after_request function is unhandled: its 500 is processed "
            "again, and an error that raises is swallowed",
        ),
        (
            "lifecycle.teardown",
            "teardown_request functions, then teardown_appcontext functions, newest first, "
            "run after every request with its unhandled error or None",
        ),
        (
            "lifecycle.teardown.raises",
            "An error raised by a teardown function ends the teardown of its context and "
            "leaves the request; every context is popped all the same",
        ),
        (
            "lifecycle.errors",
            "An error goes to the innermost blueprint's handler first, out to the app's; an "
            "unhandled one becomes a 500",
        ),
        (
            "lifecycle.session",
            "The session is saved after the after_request functions and before "
            "request_finished; later changes are lost",
        ),
        (
            "lifecycle.templates",
            "Rendering runs the context processors of the app, then of blueprints from the "
            "outermost in, then sends before_render_template and template_rendered",
        ),
        (
            "lifecycle.async",
            "An async view runs in the lifecycle like a sync one, with its request's request and g",
        ),
        (
            "lifecycle.stream",
            "A body streamed with stream_with_context runs after request_finished, inside its "
            "request, and the request's teardown runs after it with its error",
        ),
        (
            "lifecycle.signals",
            "Signals are sent in the lifecycle's order; got_request_exception only for an "
            "unhandled error",
        ),
        (
            "lifecycle.context",
            "Every hook, handler and view runs with its own request's request and g",
        ),
        (
            "lifecycle.interleaved",
            "Requests in flight at once, in greenlets or threads, each run their own "
            "lifecycle with their own request and g",
        ),
    ],
)

LIFECYCLE += [
    Clause(
        "lifecycle.stream.held",
        "lifecycle",
        "stream_with_context keeps the request's contexts pushed until the body ends; the "
        "request is torn down once, after it",
        level="DESCRIBES",
        holds_for=until("3.0"),
    ),
    Clause(
        "lifecycle.stream.pushed-again",
        "lifecycle",
        "The request is torn down when its view returns; stream_with_context pushes its "
        "contexts again around the body and tears them down again after it",
        level="DESCRIBES",
        holds_for=since("3.1"),
    ),
]

CHAT = _clauses(
    "chat",
    [
        (
            "chat.connect.register",
            "A good name is registered under its percent-decoded form before the "
            "connection's first frame is read",
        ),
        ("chat.connect.bad-name", "A bad name gets bad_name and close code 4400"),
        (
            "chat.connect.taken",
            "A name already online gets name_taken and close code 4409; the session "
            "holding it is untouched",
        ),
        (
            "chat.direct.deliver",
            "A direct message reaches its recipient exactly once, with from_user, to_user and msg",
        ),
        ("chat.direct.unknown", "A message to nobody online gets unknown_user, and reaches nobody"),
        (
            "chat.group.deliver",
            "A group message reaches every other online user exactly once, and not its sender",
        ),
        (
            "chat.from-user",
            "from_user is always the sender's own name, and no other key a client sends is "
            "forwarded",
        ),
        (
            "chat.malformed.bad-request",
            "A malformed message gets bad_request, and the connection stays open",
        ),
        (
            "chat.malformed.utf8",
            "A text message that is not valid UTF-8 closes the connection with 1007",
        ),
        ("chat.malformed.too-big", "A message over 65,536 bytes closes the connection with 1009"),
        ("chat.order", "Each sender's frames reach each recipient in the order sent"),
        (
            "chat.disconnect.frees-name",
            "A closed connection's name is freed within the grace period, and nothing meant "
            "for it reaches another connection",
        ),
        (
            "chat.concurrent",
            "Frames several clients send at once each reach their recipients exactly once, "
            "and each sender's in order",
        ),
        (
            "chat.one-writer",
            "A connection's frames never interleave, however many senders write to it",
        ),
        (
            "chat.backlog",
            "A client that stops reading holds up nobody else, and below 1 MiB of backlog "
            "loses nothing",
        ),
    ],
)

CLAUSES: tuple[Clause, ...] = tuple(LOCAL + STACK + PROXY + CONTEXTS + LIFECYCLE + CHAT)
BY_ID = {clause.id: clause for clause in CLAUSES}
