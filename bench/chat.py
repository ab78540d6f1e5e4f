"""Chat servers under load: deliveries per second and latency, as ratios to a yardstick.

    python bench/chat.py [--quick] [--json FILE]

One asyncio load generator (the ``websockets`` client) drives each server in turn, each
in its own child process:

* ``yardstick``: ``chat_yardstick.py``, a relay on the ``websockets`` asyncio server that
  fans group messages out with ``broadcast()``;
* ``reference``: ``reference/chat/server.py`` (Flask and gevent-websocket);
* ``flask-sock``: ``conformance.adapters.flask_sock_chat``, when that module imports.

A scenario is N clients sending direct messages (client i to client i+1, in a ring) or
group messages (each reaching the N-1 others), senders taking turns. What is measured:

* deliveries per second: frames the clients received, over the measured wall time;
* latency of each delivery: the sender puts ``time.perf_counter_ns()`` in the text, and
  the receiver, in the same process, reads the clock when the frame arrives.

In-flight messages are bounded (``WINDOW_DELIVERIES`` deliveries' worth), so that the run
measures throughput rather than how fast queues grow: a message's slot frees when its
last delivery arrives. Every figure is also given as a ratio to the yardstick's in the
same scenario of the same run: the machine is shared, and only ratios travel.

The generator is Python too, and on a 2-CPU machine it shares the CPUs with the server:
where it is the bottleneck, both servers reach the same rate. The table gives the CPU
each side used per wall second (1.00: one whole CPU), to tell which side was saturated.

Last, a fresh reference server holds 1,000 connections (100 with ``--quick``), and its
resident memory (VmRSS) is read before and with them; the yardstick's too, for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from websockets.asyncio.client import ClientConnection, connect

from conformance.adapter import AdapterError
from conformance.adapters.chat_servers import StartedServer, reference_server

HERE = os.path.dirname(os.path.abspath(__file__))
#: The module someone is writing; the benchmark includes it once it imports.
FLASK_SOCK_MODULE = "conformance.adapters.flask_sock_chat"
#: In-flight bound, in deliveries: messages in flight = this // deliveries per message.
WINDOW_DELIVERIES = 1024
#: Connections opened at once (a listen backlog overflowing would add SYN retries).
CONNECTING_AT_ONCE = 64
#: How long the in-flight messages of a finished run may take to arrive.
DRAIN_SECONDS = 10.0
#: Where the target is: the reference's group fan-out at these sizes against the yardstick.
TARGET_SIZES = (50, 500)


@dataclass(frozen=True)
class ChatMode:
    name: str
    sizes: tuple[int, ...]  # clients per scenario
    seconds: float  # measured time of a run
    warmup: float  # load before measuring starts
    repeats: int  # runs of each scenario per server, interleaved; the fastest counts
    hold: int  # connections held for the memory figure


QUICK = ChatMode("quick", sizes=(2, 20), seconds=1.0, warmup=0.2, repeats=1, hold=100)
FULL = ChatMode("full", sizes=(2, 50, 500), seconds=3.0, warmup=0.5, repeats=3, hold=1000)
KINDS = ("direct", "group")


@dataclass
class Row:
    """One scenario's run against one server."""

    server: str
    kind: str
    clients: int
    deliveries: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu: Optional[float]  # server's CPU seconds per wall second
    generator_cpu: float  # the generator's, the same way
    errors: int  # error frames, frames that are not deliveries, and undelivered messages

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0

    @property
    def server_us_per_delivery(self) -> Optional[float]:
        """The server's CPU per delivery: steadier than rates when other work takes the CPUs."""
        if self.server_cpu is None or not self.deliveries:
            return None
        return self.server_cpu * self.seconds / self.deliveries * 1e6

    @property
    def scenario(self) -> str:
        return f"{self.kind} {self.clients}"


@dataclass
class Memory:
    server: str
    connections: int
    before_kib: int
    with_kib: int

    @property
    def per_connection_kib(self) -> float:
        return (self.with_kib - self.before_kib) / self.connections


@dataclass
class ChatTarget:
    name: str
    goal: str
    figure: Optional[float]
    status: str  # PASS, MISS or n/a, as bench/run.py counts them
    note: str = ""


@dataclass
class ChatReport:
    mode: str
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # server -> why
    memory: list[Memory] = field(default_factory=list)
    targets: list[ChatTarget] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        rows = [
            {**asdict(row), "rate": row.rate, "server_us_per_delivery": row.server_us_per_delivery}
            for row in self.rows
        ]
        memory = [{**asdict(m), "per_connection_kib": m.per_connection_kib} for m in self.memory]
        return {
            "mode": self.mode,
            "window_deliveries": WINDOW_DELIVERIES,
            "rows": rows,
            "skipped": self.skipped,
            "memory": memory,
            "targets": [asdict(t) for t in self.targets],
        }


# -- servers --------------------------------------------------------------------------------
def raise_open_files_limit() -> None:
    """Soft to hard limit, here and, inherited, in every server started after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_commands() -> tuple[dict[str, list[str]], dict[str, str]]:
    """The servers to run, by name, and those skipped, with why."""
    commands = {
        "yardstick": [sys.executable, os.path.join(HERE, "chat_yardstick.py"), "--port", "0"],
        "reference": reference_server().command,
    }
    skipped = {}
    why = import_problem(FLASK_SOCK_MODULE)
    if why:
        skipped["flask-sock"] = f"{FLASK_SOCK_MODULE} does not import ({why})"
    else:
        module = ["-m", FLASK_SOCK_MODULE, "--host", "127.0.0.1", "--port", "0"]
        commands["flask-sock"] = [sys.executable, *module]
    return commands, skipped


def import_problem(module: str) -> str:
    """Why ``module`` does not import, or "". Tried in a child: a server module may patch
    the standard library on import (gevent's monkey), which this asyncio process must not."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    if result.returncode == 0:
        return ""
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def drain_output(server: StartedServer) -> None:
    """Read what the child writes after its first line: a full pipe would stop it."""
    process = server.process
    assert process is not None
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            threading.Thread(target=stream.read, daemon=True).start()


def start(command: list[str]) -> tuple[StartedServer, str]:
    server = StartedServer(command)
    url = server.start()
    drain_output(server)
    return server, url


def cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU of a process, from /proc (None where there is none)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- clients --------------------------------------------------------------------------------
async def open_clients(
    stack: contextlib.AsyncExitStack, url: str, names: Sequence[str]
) -> list[ClientConnection]:
    """Connect every name, a bounded number at a time; each enters ``stack`` (websockets
    17.1 deprecates a connection that is not entered as a context)."""
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def one(name: str) -> ClientConnection:
        async with gate:
            opening = connect(
                f"{url}/ws/{name}",
                compression=None,  # the reference has none: the same bytes for every server
                ping_interval=None,
                open_timeout=30,
                close_timeout=2,
            )
            return await stack.enter_async_context(opening)

    return list(await asyncio.gather(*(one(name) for name in names)))


class Load:
    """The generator's bookkeeping for one run: who sends what, what arrived, when."""

    def __init__(self, names: Sequence[str], kind: str) -> None:
        self.names = list(names)
        self.kind = kind
        self.fanout = len(names) - 1 if kind == "group" else 1
        self.window = asyncio.Semaphore(max(2, WINDOW_DELIVERIES // self.fanout))
        self.pending: dict[int, int] = {}  # message number -> deliveries still to come
        self.drained = asyncio.Event()
        self.seq = 0
        self.measuring = False
        self.delivered = 0  # while measuring
        self.latencies: list[int] = []  # ns, while measuring
        self.errors = 0
        self.barriers = [asyncio.Event() for _ in names]

    def text(self, sender: int) -> str:
        """The next message from ``sender``: its number and send time are its text."""
        self.seq += 1
        self.pending[self.seq] = self.fanout
        self.drained.clear()
        msg = f"{self.seq} {time.perf_counter_ns()}"
        if self.kind == "group":
            return f'{{"msg": "{msg}"}}'
        return f'{{"to_user": "{self.names[(sender + 1) % len(self.names)]}", "msg": "{msg}"}}'

    def received(self, client: int, data: Any) -> None:
        now = time.perf_counter_ns()
        frame = json.loads(data)
        msg = frame.get("msg")
        if not isinstance(msg, str) or "error" in frame:
            self.errors += 1
            return
        if msg == "barrier":
            self.barriers[client].set()
            return
        seq, sent = msg.split(" ")
        if self.measuring:
            self.delivered += 1
            self.latencies.append(now - int(sent))
        self.delivery_done(int(seq))

    def delivery_done(self, seq: int) -> None:
        left = self.pending[seq] - 1
        if left:
            self.pending[seq] = left
            return
        del self.pending[seq]
        self.window.release()
        if not self.pending:
            self.drained.set()


async def receive(load: Load, client: int, ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):  # closed at the end of the run, or by the server
        async for data in ws:
            load.received(client, data)


async def close_all(
    clients: Sequence[ClientConnection], readers: Sequence[asyncio.Task[None]]
) -> None:
    """All at once: the exit stack would close them one after the other."""
    await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    for reader in readers:
        reader.cancel()


async def barrier(load: Load, clients: Sequence[ClientConnection]) -> None:
    """Each client messages itself and waits for it: once it is back, the server has
    registered that client (it reads a connection's frames only after registering it)."""
    for name, ws in zip(load.names, clients):
        await ws.send(json.dumps({"to_user": name, "msg": "barrier"}))
    await asyncio.wait_for(asyncio.gather(*(b.wait() for b in load.barriers)), 60)


async def pump(load: Load, clients: Sequence[ClientConnection]) -> None:
    """Senders take turns, each message waiting for a slot in the window."""
    sender = 0
    while True:
        await load.window.acquire()
        await clients[sender].send(load.text(sender))
        sender = (sender + 1) % len(clients)


# -- one run --------------------------------------------------------------------------------
async def run_load(server: str, pid: int, url: str, kind: str, size: int, mode: ChatMode) -> Row:
    tag = secrets.token_hex(4)  # unique names: a previous run's closes may still be going
    names = [f"{tag}-{i}" for i in range(size)]
    gc.collect()
    async with contextlib.AsyncExitStack() as stack, generator_gc_off():
        clients = await open_clients(stack, url, names)
        load = Load(names, kind)
        readers = [asyncio.create_task(receive(load, i, ws)) for i, ws in enumerate(clients)]
        await barrier(load, clients)
        sending = asyncio.create_task(pump(load, clients))
        await asyncio.sleep(mode.warmup)
        row = await measure(load, server, pid, kind, size, mode.seconds)
        sending.cancel()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(load.drained.wait(), DRAIN_SECONDS)
        row.errors += len(load.pending)  # messages whose deliveries never all came
        await close_all(clients, readers)
    return row


@contextlib.asynccontextmanager
async def generator_gc_off() -> AsyncIterator[None]:
    """A collection in the generator pauses every client at once: a stall that would be
    charged to the server's latency."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def measure(load: Load, server: str, pid: int, kind: str, size: int, seconds: float) -> Row:
    cpu_before, own_before = cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    load.measuring = True
    await asyncio.sleep(seconds)
    load.measuring = False
    wall = time.perf_counter() - started
    cpu_after = cpu_seconds(pid)
    server_cpu = None
    if cpu_before is not None and cpu_after is not None:
        server_cpu = (cpu_after - cpu_before) / wall
    latencies = sorted(load.latencies)
    return Row(
        server,
        kind,
        size,
        load.delivered,
        wall,
        percentile(latencies, 0.50) / 1e6,
        percentile(latencies, 0.99) / 1e6,
        server_cpu,
        (time.process_time() - own_before) / wall,
        load.errors,
    )


def percentile(ordered: Sequence[int], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


# -- memory ---------------------------------------------------------------------------------
async def hold_connections(server: str, pid: int, url: str, count: int) -> Memory:
    """RSS of a fresh server with one client (imports and first-request costs paid),
    then with ``count`` more, each registered (a barrier)."""
    tag = secrets.token_hex(4)
    async with contextlib.AsyncExitStack() as stack:
        first = await open_clients(stack, url, [f"{tag}-first"])
        await warm(first[0], f"{tag}-first")
        before = rss_kib(pid)
        names = [f"{tag}-{i}" for i in range(count)]
        clients = await open_clients(stack, url, names)
        load = Load(names, "direct")
        readers = [asyncio.create_task(receive(load, i, ws)) for i, ws in enumerate(clients)]
        await barrier(load, clients)
        await asyncio.sleep(0.5)  # let the server's buffers settle after the barrier
        held = rss_kib(pid)
        await close_all([*first, *clients], readers)
    return Memory(server, count, before, held)


async def warm(ws: ClientConnection, name: str) -> None:
    await ws.send(json.dumps({"to_user": name, "msg": "warm"}))
    await asyncio.wait_for(ws.recv(), 30)


# -- the whole benchmark --------------------------------------------------------------------
Say = Callable[[str], None]


def run_chat(mode: ChatMode, say: Say) -> ChatReport:
    raise_open_files_limit()
    report = ChatReport(mode.name)
    commands, report.skipped = server_commands()
    for name, why in report.skipped.items():
        say(f"  {name}: skipped: {why}")
    started: dict[str, tuple[StartedServer, str]] = {}
    try:
        for name, command in commands.items():
            try:
                started[name] = start(command)
            except AdapterError as error:
                report.skipped[name] = str(error)
                say(f"  {name}: skipped: {error}")
        report.rows = run_scenarios(started, mode)
    finally:
        for server, _ in started.values():
            server.stop()
    print_rows(report.rows, say)
    report.memory = measure_memory(commands, mode, say)
    report.targets = chat_targets(report.rows, mode)
    return report


def run_scenarios(started: dict[str, tuple[StartedServer, str]], mode: ChatMode) -> list[Row]:
    """Every scenario, the servers interleaved run by run; the fastest repeat counts."""
    best: dict[tuple[str, str, int], Row] = {}
    for size in mode.sizes:
        for kind in KINDS:
            for _ in range(mode.repeats):
                for name, (server, url) in started.items():
                    assert server.process is not None
                    row = asyncio.run(run_load(name, server.process.pid, url, kind, size, mode))
                    key = (name, kind, size)
                    if key not in best or row.rate > best[key].rate:
                        best[key] = row
    return list(best.values())


def measure_memory(commands: dict[str, list[str]], mode: ChatMode, say: Say) -> list[Memory]:
    found = []
    for name in ("reference", "yardstick"):
        server, url = start(commands[name])
        try:
            assert server.process is not None
            memory = asyncio.run(hold_connections(name, server.process.pid, url, mode.hold))
        finally:
            server.stop()
        found.append(memory)
        say(
            f"  memory, {name}: VmRSS {memory.before_kib / 1024:.1f} MiB with one client, "
            f"{memory.with_kib / 1024:.1f} MiB with {memory.connections} more: "
            f"{memory.per_connection_kib:.1f} KiB a connection"
        )
    return found


def yardstick_row(rows: Sequence[Row], row: Row) -> Optional[Row]:
    return next(
        (
            r
            for r in rows
            if r.server == "yardstick" and r.kind == row.kind and r.clients == row.clients
        ),
        None,
    )


def print_rows(rows: Sequence[Row], say: Say) -> None:
    say(
        f"  {'server':<11}{'scenario':<12}{'deliv/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'x rate':>8}{'x p99':>7}{'srv us':>8}{'x us':>6}{'srv cpu':>8}{'gen cpu':>8}"
        f"{'errors':>7}"
    )
    order = {"yardstick": 0, "reference": 1, "flask-sock": 2}
    for row in sorted(rows, key=lambda r: (r.clients, r.kind, order.get(r.server, 9))):
        base = yardstick_row(rows, row)
        rate = f"{row.rate / base.rate:.2f}" if base and base.rate else "-"
        p99 = f"{row.p99_ms / base.p99_ms:.2f}" if base and base.p99_ms else "-"
        cpu = "-" if row.server_cpu is None else f"{row.server_cpu:.2f}"
        cost, base_cost = row.server_us_per_delivery, base.server_us_per_delivery if base else None
        us = "-" if cost is None else f"{cost:.1f}"
        x_us = f"{cost / base_cost:.2f}" if cost is not None and base_cost else "-"
        say(
            f"  {row.server:<11}{row.scenario:<12}{row.rate:9.0f}{row.p50_ms:8.2f}"
            f"{row.p99_ms:8.2f}{rate:>8}{p99:>7}{us:>8}{x_us:>6}{cpu:>8}"
            f"{row.generator_cpu:8.2f}{row.errors:7d}"
        )
    say(
        "  (x: against the yardstick in the same scenario; srv us: the server's CPU "
        "microseconds per delivery;"
    )
    say(
        "   cpu: CPU seconds per wall second; errors: unexpected frames and messages not "
        "fully delivered)"
    )


def chat_targets(rows: Sequence[Row], mode: ChatMode) -> list[ChatTarget]:
    targets = []
    for size in TARGET_SIZES:
        name = f"chat group {size} clients, reference vs yardstick"
        rate_goal, p99_goal = ">= 1.00 x deliveries/s", "<= 1.00 x p99"
        group = [r for r in rows if r.kind == "group" and r.clients == size]
        ours = next((r for r in group if r.server == "reference"), None)
        base = yardstick_row(rows, ours) if ours else None
        if ours is None or base is None or not base.rate or not base.p99_ms:
            note = f"--quick runs {', '.join(map(str, mode.sizes))} clients" if mode.sizes else ""
            targets.append(ChatTarget(f"{name}, deliveries/s", rate_goal, None, "n/a", note))
            targets.append(ChatTarget(f"{name}, p99", p99_goal, None, "n/a", note))
            continue
        rate, p99 = ours.rate / base.rate, ours.p99_ms / base.p99_ms
        targets.append(
            ChatTarget(f"{name}, deliveries/s", rate_goal, rate, "PASS" if rate >= 1 else "MISS")
        )
        targets.append(ChatTarget(f"{name}, p99", p99_goal, p99, "PASS" if p99 <= 1 else "MISS"))
    return targets


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="chat servers under load (reports; never a test)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL

    def say(line: str) -> None:
        print(line, flush=True)

    say(f"chat under load ({mode.name}): {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    report = run_chat(mode, say)
    for target in report.targets:
        figure = "-" if target.figure is None else f"{target.figure:.2f}"
        note = f"  ({target.note})" if target.note else ""
        say(f"  {target.name}: {figure}, goal {target.goal}: {target.status}{note}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report.as_json(), out, indent=2)
            out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
