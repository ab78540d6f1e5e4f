"""A pure model of app and request contexts: what each actor must observe.

Each actor has one list of *frames*, in the order they were pushed: app frames (an app
and its ``g``) and request frames (an app, a path, a session, and the app frame the push
brought along, if any). The active app context is the last app frame; the active request
context the last request frame. When a request push brings an app context is the
reference's own rule, ``needs_app_context``: the model and the reference read it from
one place.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Optional, Union

from reference.contexts import needs_app_context

from .model import Token

_frame_numbers = itertools.count(1)


@dataclass(eq=False)
class AppFrame:
    app: int
    g: dict[str, Token] = field(default_factory=dict)
    explicit: bool = True  # pushed by the machine itself, not brought by a request push
    number: int = field(default_factory=lambda: next(_frame_numbers))

    def __repr__(self) -> str:
        return f"app context #{self.number} of app{self.app}"


@dataclass(eq=False)
class RequestFrame:
    app: int
    path: str
    session: dict[str, Token]  # shared with the copies of this request context
    brought: Optional[AppFrame]
    number: int = field(default_factory=lambda: next(_frame_numbers))

    def __repr__(self) -> str:
        return f"request context #{self.number} ({self.path}) of app{self.app}"


Frame = Union[AppFrame, RequestFrame]


@dataclass
class ContextsModel:
    frames: dict[str, list[Frame]] = field(default_factory=lambda: {"main": []})
    kinds: dict[str, str] = field(default_factory=lambda: {"main": "main"})

    def spawn(self, actor: str, kind: str) -> None:
        """A new thread or greenlet starts with no context at all, whatever its creator
        had pushed (spec: contexts.isolation.*)."""
        self.kinds[actor] = kind
        self.frames[actor] = []

    def finish(self, actor: str) -> None:
        del self.frames[actor]

    def app_frame(self, actor: str) -> Optional[AppFrame]:
        return next((f for f in reversed(self.frames[actor]) if isinstance(f, AppFrame)), None)

    def request_frame(self, actor: str) -> Optional[RequestFrame]:
        found = (f for f in reversed(self.frames[actor]) if isinstance(f, RequestFrame))
        return next(found, None)

    def push_app(self, actor: str, app: int) -> AppFrame:
        frame = AppFrame(app)
        self.frames[actor].append(frame)
        return frame

    def push_request(
        self, actor: str, app: int, path: str, session: Optional[dict[str, Token]] = None
    ) -> RequestFrame:
        active = self.app_frame(actor)
        brought = None
        if needs_app_context(active.app if active else None, app):
            brought = AppFrame(app, explicit=False)
            self.frames[actor].append(brought)
        frame = RequestFrame(app, path, {} if session is None else session, brought)
        self.frames[actor].append(frame)
        return frame

    def pop(self, actor: str) -> Frame:
        """Pop the last frame pushed, and the app frame it brought along."""
        frame = self.frames[actor].pop()
        if isinstance(frame, RequestFrame) and frame.brought is not None:
            assert self.frames[actor].pop() is frame.brought
        return frame

    def owner_of_token(self, token: object) -> Optional[str]:
        """The actor whose frames hold ``token`` in a g or a session, if any does."""
        for actor, frames in self.frames.items():
            for frame in frames:
                values = frame.g if isinstance(frame, AppFrame) else frame.session
                if any(value is token for value in values.values()):
                    return actor
        return None
