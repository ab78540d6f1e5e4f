"""The chat page at ``/`` of the reference server (``reference/chat/page.html``), driven by
people in headless Chromium through Playwright: logins, direct, group and unknown-user
messages, bad and taken names, reconnecting, and markup arriving as plain text.

The browser tests are marked ``browser`` (tox env ``browser``). They need the
``playwright`` package and a Chromium at /usr/bin/chromium (Debian: ``apt-get install
chromium chromium-driver``; ``CTXSPEC_CHROMIUM`` names another); without them they are
skipped, or fail when ``CTXSPEC_REQUIRE_BROWSER=1`` (CI), so that a missing browser never
passes for a green run. Nothing sleeps: every wait is for something on the page, and its
bound only declares a hang."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        Locator,
        LocatorAssertions,
        Page,
        Playwright,
        WebSocket,
    )

#: The flags CI's Chromium runs with: no sandbox (root in a container), and nothing that
#: talks to the network on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Bounds that only declare a hang: the server announcing itself, Chromium starting, and
#: any one thing the page should show.
START_TIMEOUT = 30
LAUNCH_TIMEOUT_MS = 60_000
HANG_MS = 15_000
#: Adds an image to the page and resolves to the CSP directive that refuses it (or
#: "loaded" should none, after a bound that only declares a hang).
CSP_PROBE = """(bound) => new Promise((resolve) => {
    document.addEventListener("securitypolicyviolation", (e) => resolve(e.effectiveDirective));
    setTimeout(() => resolve("loaded"), bound);
    const image = new Image();
    image.src = "/favicon.ico";
    document.body.append(image);
})"""


def chromium_path() -> str:
    return os.environ.get("CTXSPEC_CHROMIUM", "/usr/bin/chromium")


def missing_browser() -> Optional[str]:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    path = chromium_path()
    if not os.path.exists(path):
        return (
            f"no Chromium at {path} (apt-get install chromium chromium-driver, "
            "or set CTXSPEC_CHROMIUM to a Chromium binary)"
        )
    return None


def require_browser() -> None:
    """Skip the calling test when the browser is missing; fail it if CI requires one."""
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CTXSPEC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"CTXSPEC_REQUIRE_BROWSER=1, but {reason}", pytrace=False)
    pytest.skip(f"browser test: {reason}")


def expect(locator: Locator) -> LocatorAssertions:
    """Playwright's ``expect``, imported only when used: the tests must get as far as
    ``require_browser`` (skip or fail) where playwright is not installed."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def start_server(cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """``ctxspec chat --port 0`` in a subprocess, and the http:// URL it announced. It runs
    outside the source tree, so that under tox the page comes from the installed wheel."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance", "chat", "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(START_TIMEOUT)  # only a hung server gets near the bound
    line = process.stdout.readline() if ready else ""
    if not line.startswith("ctxspec chat: serving http://127.0.0.1:"):
        process.kill()
        _, errors = process.communicate(timeout=START_TIMEOUT)
        pytest.fail(f"the chat server did not start: {line!r} {errors}", pytrace=False)
    return process, line.split()[3]


@dataclass
class Lazy:
    """What the module's browser tests share, started by the first one that runs (so that
    a skipped run starts nothing): the server, Playwright and Chromium."""

    workdir: Path
    process: Optional[subprocess.Popen[str]] = None
    url: str = ""
    playwright: Optional[Playwright] = None
    browser: Optional[Browser] = None

    def start(self) -> Browser:
        require_browser()
        if self.process is None:
            self.process, self.url = start_server(self.workdir)
        if self.browser is None:
            from playwright.sync_api import expect as playwright_expect
            from playwright.sync_api import sync_playwright

            playwright_expect.set_options(timeout=HANG_MS)
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path=chromium_path(),
                args=CHROMIUM_ARGS,
                timeout=LAUNCH_TIMEOUT_MS,
            )  # a plain launch: Playwright gives it a fresh temporary profile
        return self.browser

    def stop(self) -> None:
        if self.browser is not None:
            self.browser.close()
        if self.playwright is not None:
            self.playwright.stop()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(START_TIMEOUT)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lazy]:
    lazy = Lazy(tmp_path_factory.mktemp("chat-browser"))
    try:
        yield lazy
    finally:
        lazy.stop()


@dataclass
class User:
    """One person: a page of the chat in a browser context of its own."""

    page: Page
    name: str
    sockets: list[WebSocket] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def login(self, name: Optional[str] = None) -> None:
        self.page.fill("#name", self.name if name is None else name)
        self.page.click("#connect")

    def online(self) -> None:
        expect(self.page.locator("#status")).to_have_attribute("data-state", "online")

    def send(self, to: str, msg: str) -> None:
        self.page.fill("#to", to)
        self.page.fill("#msg", msg)
        self.page.click("#send")

    def entries(self, kind: str) -> Locator:
        return self.page.locator(f'#log li[data-kind="{kind}"]')

    def received(self, kind: str, sender: str, text: str) -> Locator:
        """The log entries of deliveries of ``kind`` from ``sender`` whose text is exactly
        ``text`` (checked on textContent, so markup must be there as characters)."""
        entries = self.entries(kind).and_(self.page.locator(f'[data-from="{sender}"]'))
        return entries.filter(has=self.page.get_by_text(text, exact=True))

    def barrier(self) -> None:
        """A message to oneself, and wait until it is back: every frame the server sent
        this user before has arrived by then (spec/chat.md, ``chat.order``)."""
        token = f"barrier {uuid.uuid4().hex}"
        self.send(self.name, token)
        expect(self.received("direct", self.name, token)).to_have_count(1)


@pytest.fixture
def people(shared: Lazy) -> Iterator[Any]:
    """A factory of Users, each in a fresh context; all closed at the end of the test."""
    contexts: list[Any] = []

    def person(role: str) -> User:
        browser = shared.start()
        context = browser.new_context()
        contexts.append(context)
        user = User(context.new_page(), f"{role}-{uuid.uuid4().hex[:8]}")
        # Playwright wraps handlers by setting an attribute on them: a builtin such as
        # list.append cannot take one, so each handler is a lambda.
        user.page.on("websocket", lambda ws: user.sockets.append(ws))
        user.page.on("request", lambda request: user.requests.append(request.url))
        user.page.goto(shared.url + "/")
        return user

    try:
        yield person
    finally:
        for context in contexts:
            context.close()


@pytest.mark.browser
def test_direct_group_and_unknown_user(people: Any, shared: Lazy) -> None:
    ann, bob = people("ann"), people("bob")
    ann.login()
    bob.login()
    ann.online()
    bob.online()
    # The socket goes to the page's own host, under the name.
    assert [ws.url for ws in ann.sockets] == [
        "ws://" + shared.url.split("://", 1)[1] + "/ws/" + ann.name
    ]

    ann.send(bob.name, "hi bob")
    expect(bob.received("direct", ann.name, "hi bob")).to_have_count(1)
    expect(bob.entries("direct").filter(has_text=f"{ann.name} → {bob.name}:")).to_have_count(1)
    ann.barrier()
    expect(ann.entries("direct")).to_have_count(1)  # the barrier only: nothing of bob's

    bob.send("", "hello everyone")
    expect(ann.received("group", bob.name, "hello everyone")).to_have_count(1)
    expect(ann.entries("group").filter(has_text=f"{bob.name} → everyone:")).to_have_count(1)
    bob.barrier()
    expect(bob.entries("group")).to_have_count(0)  # a group message skips its sender

    nobody = f"nobody-{uuid.uuid4().hex[:8]}"
    ann.send(nobody, "anyone there?")
    error = ann.entries("error")
    expect(error).to_have_count(1)
    expect(error).to_have_attribute("data-error", "unknown_user")
    expect(error).to_have_attribute("data-to-user", nobody)
    expect(error).to_contain_text(nobody)
    bob.barrier()
    expect(bob.page.locator(f'#log li[data-from="{ann.name}"]')).to_have_count(1)  # "hi bob"

    # No resource from anywhere but the server.
    for user in (ann, bob):
        assert all(url.startswith(shared.url + "/") for url in user.requests), user.requests


@pytest.mark.browser
def test_markup_arrives_as_text(people: Any) -> None:
    ann, bob = people("ann"), people("bob")
    ann.login()
    bob.login()
    ann.online()
    bob.online()
    markup = '<b>x</b><img src=x onerror="window.pwned = 1">'

    ann.send(bob.name, markup)
    expect(bob.received("direct", ann.name, markup)).to_have_count(1)
    ann.send(markup, "to a name made of markup")  # comes back as unknown_user's to_user
    expect(ann.entries("error")).to_have_attribute("data-to-user", markup)
    expect(ann.entries("error")).to_contain_text(markup)
    sent = ann.entries("sent")
    expect(sent).to_have_count(2)
    expect(sent.first.locator(".text")).to_have_text(markup)
    expect(sent.last.locator(".who")).to_have_text(f"you → {markup}:")

    for user in (ann, bob):
        expect(user.page.locator("#log b, #log img")).to_have_count(0)
        assert user.page.evaluate("() => window.pwned") is None
    # And were markup ever injected, the page's Content-Security-Policy loads no image.
    assert ann.page.evaluate(CSP_PROBE, HANG_MS) == "img-src"


@pytest.mark.browser
def test_bad_and_taken_names(people: Any) -> None:
    ann, other = people("ann"), people("other")
    ann.login()
    ann.online()

    # Percent-encoded, the ? is part of the name (bad); sent raw, it would start a query.
    other.login("ann?x=1")
    expect(other.entries("error")).to_have_attribute("data-error", "bad_name")
    expect(other.entries("close")).to_have_attribute("data-code", "4400")
    expect(other.page.locator("#status")).to_have_attribute("data-state", "offline")

    other.login(ann.name)
    expect(other.entries("error").last).to_have_attribute("data-error", "name_taken")
    expect(other.entries("close").last).to_have_attribute("data-code", "4409")
    ann.barrier()  # the name's holder is still served, and heard nothing of the attempt
    expect(ann.entries("error")).to_have_count(0)


@pytest.mark.browser
def test_connecting_again_closes_the_old_socket_first(people: Any) -> None:
    ann, bob = people("ann"), people("bob")
    bob.login()
    bob.online()
    ann.login()
    ann.online()
    # What was closed when each socket was made: the page never holds two.
    closed_before: list[list[bool]] = []
    ann.page.on("websocket", lambda _: closed_before.append([ws.is_closed() for ws in ann.sockets]))
    old = ann.name
    ann.name = f"ann2-{uuid.uuid4().hex[:8]}"
    ann.login()
    ann.online()
    expect(ann.entries("close")).to_have_attribute("data-name", old)
    expect(ann.entries("close")).to_have_attribute("data-code", "1000")
    assert len(ann.sockets) == 2 and closed_before == [[True, False]]
    assert ann.sockets[0].is_closed() and not ann.sockets[1].is_closed()

    bob.send(ann.name, "new name")
    expect(ann.received("direct", bob.name, "new name")).to_have_count(1)

    ann.page.click("#disconnect")
    expect(ann.entries("close")).to_have_count(2)
    expect(ann.page.locator("#status")).to_have_attribute("data-state", "offline")


def test_the_page_is_served_at_root_and_stands_alone() -> None:
    """Without a browser: ``/`` serves the page, which loads nothing from elsewhere and
    never parses text as HTML."""
    pytest.importorskip("geventwebsocket")
    from reference.chat.server import create_app

    response = create_app().test_client().get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'id="connect"' in page and "encodeURIComponent" in page and "location.host" in page
    for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "://"):
        assert risky not in page, risky
