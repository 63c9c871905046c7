"""Fan-out benchmark: how fast does a change reach every open browser, and what does it cost?

    .venv/bin/python bench/run.py            # N = 100, 1000, 5000 on SQLite with one worker,
                                             # then on PostgreSQL + Redis with two workers
    .venv/bin/python bench/run.py --smoke    # N = 20, one round, SQLite, one worker (in make test)
    .venv/bin/python bench/run.py --clients 1000 --configs sqlite
    .venv/bin/python bench/run.py --clients 1000 --configs sqlite --baseline main

The app runs as production runs it (gunicorn -c gunicorn.conf.py wsgi:app, gevent websocket
worker), pinned to its own core(s) with taskset; bench/loadgen.mjs (Node, socket.io-client)
runs on the other core(s) and opens N browser-like clients. For each configuration and N it
measures connect time, time-to-update (POST /table/rows until each client has the table:row
event), server CPU per row (the CPU clock of every server process), RSS growth per connection,
sustained throughput with a bounded number of rows in flight, and HTTP requests/s for GET / and
GET /table/rows (wrk when installed, else the generator's own HTTP loop). The chat room scenario
runs when the app has chat routes, and is reported as not available otherwise. The members
scenario is a chat room of N members who are N different people, each also a member of
MEMBER_OTHER_ROOMS other rooms (seeded by bench/seed.py): every message then also goes to each
member's own channel (their sidebars), beside the room's.

Beside the app, in the same run and on the same cores, the same table scenarios and HTTP
requests run against two references (bench/servers.py): a minimal Flask-SocketIO push app under
the same gunicorn settings, and a raw Node `ws` server speaking just enough Socket.IO. Every
figure of the app is also given as a ratio to each of them. With ``--baseline REF`` the app at
that commit runs the same scenarios too (a temporary git worktree), and the app's figures get a
ratio to the baseline's: before and after, in one run.

Everything targets loopback and stops by itself. A markdown table goes to stdout, the raw
figures as JSON to bench/results/ (and --json PATH). Exit status: 0 completed, 1 completed with
missing deliveries or clients that failed to connect, 2 the run broke.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import servers
from bench.generator import Generator
from bench.report import add_ratios, check_targets, markdown, one_line
from bench.servers import Baseline, Target, app_target, reference_targets

RESULTS = ROOT / "bench" / "results"
LOADGEN = ROOT / "bench" / "loadgen.mjs"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Chat members log in as this many accounts (registering hashes a password: slow on purpose).
CHAT_USERS = 20
# The members scenario: each of the N people in the room is a member of this many other rooms.
MEMBER_OTHER_ROOMS = 20
MEMBER_PASSWORD = "bench-password-1"
CHAT_SCENARIOS = ("chat", "members")


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- the machine and /proc


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of the processes (not of their reaped children)."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])  # fields 14 and 15
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def process_cpu_clock(pid: int) -> int:
    """Linux's CPU-time clock of another process (clock_getcpuclockid(3), not in Python)."""
    return (~pid << 3) | 2  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of the processes, to the nanosecond where the kernel tells.

    /proc's user and system times come in whole clock ticks (10 ms): over a phase of some
    20 rows that is up to half a millisecond per row and process, and a config of two workers
    would carry twice that error of one worker's. The process CPU clock counts the same time
    (every thread's, also of threads that ended) exactly.
    """
    try:
        return sum(time.clock_gettime(process_cpu_clock(pid)) for pid in pids)
    except OSError:
        return sum(cpu_times(pids))


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_sets(requested_server: str | None, requested_loadgen: str | None) -> tuple[str, str] | None:
    """Server and generator cores; None when the machine has a single core (no pinning)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    half = len(cores) // 2
    server = requested_server or ",".join(map(str, cores[:half]))
    loadgen = requested_loadgen or ",".join(map(str, cores[half:]))
    return server, loadgen


# ---------------------------------------------------------------- configurations


@dataclass
class Setup:
    name: str
    workers: int
    env: dict[str, str]
    cleanup: list = field(default_factory=list)

    def close(self) -> None:
        for step in reversed(self.cleanup):
            try:
                step()
            except Exception as error:  # cleanup must not hide the figures
                print(f"cleanup of {self.name} failed: {error}", file=sys.stderr)


def sqlite_setup(workdir: Path, database: str = "bench.db") -> Setup:
    return Setup(
        "sqlite", 1, {"DATABASE_URL": f"sqlite:///{workdir / database}", "MESSAGE_QUEUE_URL": ""}
    )


def redis_postgres_setup(workdir: Path, workers: int) -> Setup:
    """Two workers on PostgreSQL and Redis: a database and a queue channel of their own."""
    from tests.services import fresh_postgres_database

    redis_url = (
        os.environ.get("BENCH_REDIS_URL")
        or os.environ.get("TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )
    postgres_url = (
        os.environ.get("BENCH_POSTGRES_URL")
        or os.environ.get("TEST_POSTGRES_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except Exception as error:
        raise BenchError(f"Redis at {redis_url} is not reachable ({error})") from error
    try:
        database_url, drop = fresh_postgres_database(postgres_url)
    except Exception as error:
        raise BenchError(f"PostgreSQL at {postgres_url} is not reachable ({error})") from error
    channel = f"bench-{uuid.uuid4().hex[:12]}"
    setup = Setup(
        "redis+pg",
        workers,
        {"DATABASE_URL": database_url, "MESSAGE_QUEUE_URL": redis_url, "SOCKETIO_CHANNEL": channel},
    )
    setup.cleanup.append(drop)
    return setup


# ---------------------------------------------------------------- the servers and the generator


def seed_rows(target: Target, database_url: str, count: int) -> None:
    """Fill the target's table with ``count`` old rows, by the target's own code."""
    subprocess.run(
        [str(target.bin / "python"), str(ROOT / "bench" / "seed.py"), database_url, str(count)],
        cwd=target.root,
        env={**os.environ, "PYTHONPATH": str(target.root)},
        check=True,
        capture_output=True,
    )


def seed_members(target: Target, database_url: str, room: str, count: int) -> None:
    """The members scenario's accounts and rooms, by the target's own code."""
    subprocess.run(
        [
            str(target.bin / "python"),
            str(ROOT / "bench" / "seed.py"),
            "members",
            database_url,
            room,
            str(count),
            str(MEMBER_OTHER_ROOMS),
            MEMBER_PASSWORD,
        ],
        cwd=target.root,
        env={**os.environ, "PYTHONPATH": str(target.root)},
        check=True,
        capture_output=True,
    )


def server_env(setup: Setup) -> dict[str, str]:
    """The environment of every server of a configuration: the app, the baseline and the
    Flask-SocketIO reference (tests/e2e/server.py's LOOPBACK_LIMITS come on top)."""
    return {"SECRET_KEY": "bench-secret", "LOG_LEVEL": "warning", **setup.env}


class Server(servers.Server):
    """A target's server for one configuration, with its CPU and memory read from /proc."""

    def __init__(
        self,
        target: Target,
        setup: Setup,
        cpus: str | None,
        log_path: Path,
        env: dict[str, str] | None = None,
    ):
        super().__init__(
            target,
            setup.workers,
            {**server_env(setup), **(env or {})},
            cpus,
            log_path,
            error=BenchError,
        )
        self.setup = setup

    def cpu(self) -> float:
        return cpu_seconds(self.pids)

    def cpu_times(self) -> tuple[float, float]:
        return cpu_times(self.pids)

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds of the master and of each worker, to see where a figure comes from."""
        names = ["master", *(f"worker{i + 1}" for i in range(len(self.workers)))]
        return {name: cpu_seconds([pid]) for name, pid in zip(names, self.pids)}

    def rss(self) -> int:
        return rss_kib(self.pids)


class LoadGenerator(Generator):
    """bench/loadgen.mjs on the generator cores, one JSON command and reply per line."""

    def __init__(self, url: str, cpus: str | None, log_path: Path):
        command = ["node", str(LOADGEN), url]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        super().__init__(command, log_path, error=BenchError, quit_timeout=10)


# ---------------------------------------------------------------- measurements


@dataclass
class Plan:
    clients: list[int]
    rounds: int
    messages: int  # throughput: deliveries to aim for, spread over rows
    inflight: int
    http_seconds: float
    http_connections: int
    profile: Path | None = None
    seed_rows: int = 0
    # Pauses for the server to finish handshakes and closes before the next phase reads it.
    settle_seconds: float = 1.0


def rows_for_throughput(plan: Plan, n: int) -> int:
    """Enough rows for a steady figure, bounded so every run stays within a few minutes."""
    return max(10, min(500, plan.messages // max(n, 1)))


def delivery_timeout_ms(n: int) -> int:
    return 10_000 + 4 * n


def warm_up(loadgen: LoadGenerator, workers: int, settle_seconds: float) -> int:
    """Templates compiled, pools opened, first connections' lazy imports done in every worker:
    none of that is per client.

    The rows of the timed phases are all posted over one kept-alive connection, so to one
    worker, and with several workers not always to the one that served the warm-up's rows: a
    cold worker would pay its first compiles (some 8 ms) inside the measured phase, which the
    single worker paid here. So every worker adds rows here, over fresh connections.

    Answers the JSON size of a table:row event, which the references then send too.
    """
    loadgen("connect", 60, n=4 * workers)
    payload_bytes = loadgen("latency", 60, rounds=2, warmup=0)["payload_bytes"]
    warmed = loadgen("warm-workers", 60, workers=workers, perWorker=3)
    if not warmed["complete"]:
        print(f"   warm-up reached only these workers: {warmed['workers']}", flush=True)
    loadgen("disconnect", 30)
    time.sleep(settle_seconds)
    return payload_bytes


class Profiler:
    """py-spy sampling every gunicorn worker while rows fan out (``--profile DIR``)."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        self.processes: list[subprocess.Popen] = []

    def start(self, server: Server, label: str) -> None:
        if not self.directory:
            return
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.directory.mkdir(parents=True, exist_ok=True)
        for pid in server.workers:
            out = self.directory / f"{label}-{pid}.txt"
            self.processes.append(
                subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        "250",
                        "--format",
                        "raw",
                        "--output",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        for process in self.processes:
            process.wait(30)
        self.processes = []


def measure(
    server: Server,
    loadgen: LoadGenerator,
    plan: Plan,
    n: int,
    scenario: str,
    connect: dict,
    profiler: Profiler | None = None,
) -> dict:
    """Connect N clients, then time-to-update one row at a time, then sustained throughput."""
    run: dict = {
        "config": server.setup.name,
        "server": server.target.key,
        "workers": server.target.processes(server.setup.workers),
        "scenario": scenario,
        "n": n,
        "load_average_start": load_average(),
    }
    rss0, cpu0 = server.rss(), server.cpu()
    # Generous: on a shared machine under load, 1000 chat members took over 160 s to join.
    connect_timeout = 120 + n * 0.3
    reply = loadgen(connect.pop("cmd"), connect_timeout, n=n, **connect)
    time.sleep(plan.settle_seconds)  # every handshake finished before its memory is read
    rss1, cpu1 = server.rss(), server.cpu()
    connected = reply["connected"]
    run.update(
        connected=connected,
        failed=reply["failed"],
        connect_errors=reply["errors"],
        connect_seconds=round(reply["seconds"], 2),
        joined=reply.get("joined"),
        rss_kib_before=rss0,
        rss_kib_after=rss1,
        kib_per_connection=round((rss1 - rss0) / connected, 1) if connected else None,
        cpu_ms_per_connection=round((cpu1 - cpu0) * 1000 / connected, 2) if connected else None,
        loadgen_cpu_percent={"connect": reply["loadgen_cpu_percent"]},
    )
    if not connected:
        return run

    timeout_ms = delivery_timeout_ms(n)
    warmup = 1
    profiler = profiler or Profiler(None)
    profiler.start(server, f"{server.target.key}-{server.setup.name}-{scenario}-{n}-latency")
    (user0, system0), cpu0, by0 = server.cpu_times(), server.cpu(), server.cpu_by_process()
    reply = loadgen(
        "latency",
        (plan.rounds + warmup) * timeout_ms / 1000 + 30,
        rounds=plan.rounds,
        warmup=warmup,
        scenario=scenario,
        timeoutMs=timeout_ms,
    )
    (user1, system1), cpu1, by1 = server.cpu_times(), server.cpu(), server.cpu_by_process()
    run["latency"] = {key: reply[key] for key in ("rounds", "receivers", "missing", "latency_ms")}
    run["payload_bytes"] = reply["payload_bytes"]
    run["cpu_ms_per_row"] = round((cpu1 - cpu0) * 1000 / (plan.rounds + warmup), 1)
    run["cpu_us_per_delivery"] = round(run["cpu_ms_per_row"] * 1000 / reply["receivers"], 1)
    run["cpu_ms_per_row_user_system"] = [
        round((user1 - user0) * 1000 / (plan.rounds + warmup), 1),
        round((system1 - system0) * 1000 / (plan.rounds + warmup), 1),
    ]
    run["cpu_ms_per_row_by_process"] = {
        name: round((by1[name] - by0[name]) * 1000 / (plan.rounds + warmup), 1) for name in by0
    }
    run["loadgen_cpu_percent"]["latency"] = reply["loadgen_cpu_percent"]
    profiler.stop()

    rows = rows_for_throughput(plan, n)
    if scenario in CHAT_SCENARIOS:  # an account may send 10 messages in 10 s: a few each, in turn
        rows = min(rows, 4 * CHAT_USERS)
    profiler.start(server, f"{server.target.key}-{server.setup.name}-{scenario}-{n}-throughput")
    cpu0 = server.cpu()
    reply = loadgen(
        "throughput",
        rows * timeout_ms / 1000 + 30,
        messages=rows,
        inflight=plan.inflight,
        scenario=scenario,
        timeoutMs=timeout_ms,
    )
    cpu1 = server.cpu()
    run["throughput"] = {
        key: reply[key]
        for key in (
            "messages",
            "inflight",
            "receivers",
            "seconds",
            "messages_per_s",
            "deliveries_per_s",
            "delivered",
            "missing",
            "duplicates",
            "latency_ms",
        )
    }
    run["throughput_cpu_ms_per_row"] = round((cpu1 - cpu0) * 1000 / rows, 1)
    run["throughput_cpu_us_per_delivery"] = round(
        (cpu1 - cpu0) * 1e6 / max(reply["delivered"], 1), 1
    )
    run["server_cpu_percent_throughput"] = round((cpu1 - cpu0) * 100 / reply["seconds"], 1)
    run["loadgen_cpu_percent"]["throughput"] = reply["loadgen_cpu_percent"]
    profiler.stop()
    run["load_average_end"] = load_average()
    server.check_workers()
    loadgen("disconnect", 60)
    return run


def wait_until_idle(server: Server, plan: Plan, limit: float = 120) -> bool:
    """Until the server used at most 5% of a core over a second: closing N sockets (and
    writing their access log lines) keeps a worker busy for a while after the clients left."""
    time.sleep(plan.settle_seconds)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        cpu0 = server.cpu()
        time.sleep(1.0)
        if server.cpu() - cpu0 <= 0.05:
            return True
    return False


def http_phase(
    server: Server, loadgen: LoadGenerator, plan: Plan, cpus: str | None, report: dict
) -> None:
    """The HTTP figures of a server; a failure there is reported, the fan-out figures kept."""
    import requests

    if not wait_until_idle(server, plan):
        print(f"   {server.target.label} was still busy; requests/s measured anyway", flush=True)
    try:
        report["http"].extend(http_benchmark(server, loadgen, plan, cpus))
    except (requests.RequestException, BenchError) as error:
        skip(report, f"GET requests/s of {server.target.label} not measured: {error}")


def http_benchmark(
    server: Server, loadgen: LoadGenerator, plan: Plan, cpus: str | None
) -> list[dict]:
    """Requests/s for the page and the rows fragment, with a browser's session cookie."""
    import requests

    page = requests.get(server.url + "/", timeout=60)
    cookie = "; ".join(f"{c.name}={c.value}" for c in page.cookies)
    results = []
    for path in ("/", "/table/rows"):
        load = load_average()
        cpu0 = server.cpu()
        if shutil.which("wrk"):
            result = run_wrk(server.url + path, cookie, plan, cpus)
        else:
            reply = loadgen(
                "http",
                plan.http_seconds + 60,
                path=path,
                seconds=plan.http_seconds,
                connections=plan.http_connections,
            )
            result = {
                "tool": "loadgen (wrk not installed)",
                "requests_per_s": reply["requests_per_s"],
                "requests": reply["requests"],
                "errors": reply["errors"],
                "latency_ms": reply["latency_ms"],
                "seconds": reply["seconds"],
                "loadgen_cpu_percent": reply["loadgen_cpu_percent"],
            }
        result["server_cpu_ms_per_request"] = round(
            (server.cpu() - cpu0) * 1000 / max(result["requests"], 1), 2
        )
        results.append(
            {
                "config": server.setup.name,
                "server": server.target.key,
                "workers": server.target.processes(server.setup.workers),
                "path": path,
                "load_average_start": load,
                **result,
            }
        )
    return results


def run_wrk(url: str, cookie: str, plan: Plan, cpus: str | None) -> dict:
    command = [
        "wrk",
        "-t1",
        f"-c{plan.http_connections}",
        f"-d{max(1, round(plan.http_seconds))}s",
        "--latency",
        "-H",
        f"Cookie: {cookie}",
        url,
    ]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=plan.http_seconds + 60, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "tool": "wrk",
        "requests_per_s": rps,
        "requests": requests_done,
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(0) if errors else None,
        "raw": out,
    }


def run_config(
    setups: dict[str, Setup],
    targets: list[Target],
    plan: Plan,
    scenarios: list[str],
    cpus: tuple[str, str] | None,
    workdir: Path,
    report: dict,
) -> None:
    """Every N and scenario on every target, back to back: the app, the baseline, then the
    references (table only, on the app's configuration: its workers and message queue)."""
    server_cpus, loadgen_cpus = cpus or (None, None)
    for target in targets:
        if target.reference:
            continue
        setup = setups[target.key]
        try:
            target.migrate(server_env(setup))
        except subprocess.CalledProcessError as error:
            raise BenchError(
                f"the migrations of {target.label} failed: {error.stderr.decode()[-2000:]}"
            ) from error
        if plan.seed_rows:
            started = time.monotonic()
            seed_rows(target, setup.env["DATABASE_URL"], plan.seed_rows)
            print(
                f"{setup.name}, {target.label}: table seeded with {plan.seed_rows:,} rows "
                f"in {time.monotonic() - started:.0f}s",
                flush=True,
            )
    chat_available: dict[str, bool] = {}
    for n in plan.clients:
        for scenario in scenarios:
            for target in targets:
                if target.reference and scenario != "table":
                    continue  # no reference has a chat: its ratios say n/a
                if scenario in CHAT_SCENARIOS and chat_available.get(target.key) is False:
                    continue
                setup = setups.get(target.key, setups["app"])
                log = workdir / f"{target.key}-{setup.name}-{scenario}-{n}"
                room = f"m{uuid.uuid4().hex[:8]}"
                if scenario == "members":
                    seed_members(target, setup.env["DATABASE_URL"], room, n)
                server = start_server(target, setup, server_cpus, log, report)
                loadgen = None
                try:
                    if not target.reference and target.key not in chat_available:
                        chat_available[target.key] = server.status("/chat") != 404
                        if not chat_available[target.key] and "chat" in scenarios:
                            skip(
                                report,
                                f"chat: not available in {target.label} (GET /chat answered "
                                "404): chat scenario skipped",
                            )
                        if scenario in CHAT_SCENARIOS and not chat_available[target.key]:
                            continue
                    loadgen = LoadGenerator(
                        server.url, loadgen_cpus, log.with_suffix(".loadgen.log")
                    )
                    payload_bytes = warm_up(
                        loadgen, server.target.processes(setup.workers), plan.settle_seconds
                    )
                    if target.key == "app":
                        report.setdefault("reference_payload_bytes", payload_bytes)
                    print(
                        f"{setup.name} ({setup.workers} worker{'s' * (setup.workers > 1)}), "
                        f"{scenario}, N={n}, {target.label}: load {load_average()} ...",
                        flush=True,
                    )
                    connect = {
                        "table": {"cmd": "connect"},
                        "chat": {
                            "cmd": "chat-connect",
                            "room": f"bench{uuid.uuid4().hex[:8]}",
                            "users": CHAT_USERS,
                        },
                        "members": {
                            "cmd": "members-connect",
                            "room": room,
                            "senders": CHAT_USERS,
                            "password": MEMBER_PASSWORD,
                        },
                    }[scenario]
                    profiler = Profiler(None if target.reference else plan.profile)
                    run = measure(server, loadgen, plan, n, scenario, connect, profiler)
                    report["runs"].append(run)
                    print("   " + one_line(run), flush=True)
                    if scenario == "table" and n == plan.clients[-1]:
                        # Requests/s on the same server, once its clients have gone: the table
                        # holds the rows of every N by now, as a page in use would.
                        http_phase(server, loadgen, plan, loadgen_cpus, report)
                finally:
                    if loadgen:
                        loadgen.close()
                    server.stop()


def start_server(target: Target, setup: Setup, cpus: str | None, log: Path, report: dict) -> Server:
    """The references pad their events to the JSON size of the app's (measured in its warm-up)."""
    env = {}
    if target.reference:
        env["PAYLOAD_BYTES"] = str(report.get("reference_payload_bytes") or 0)
    return Server(target, setup, cpus, log.with_suffix(".server.log"), env).start()


def skip(report: dict, line: str) -> None:
    if line not in report["skipped"]:
        report["skipped"].append(line)
        print(line, flush=True)


def versions() -> dict:
    node = subprocess.run(
        ["node", "--version"], check=False, capture_output=True, text=True
    ).stdout.strip()
    return {"python": platform.python_version(), "node": node, "kernel": platform.release()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="N=20, one round, SQLite, one worker: a quick check that it all works",
    )
    parser.add_argument("--clients", default="100,1000,5000", help="comma-separated N values")
    parser.add_argument(
        "--configs",
        default="sqlite,redis",
        help="sqlite (one worker) and/or redis (PostgreSQL + Redis, --workers)",
    )
    parser.add_argument("--workers", type=int, default=2, help="workers of the redis config")
    parser.add_argument(
        "--scenarios",
        default="table,chat,members",
        help="table, chat (N sockets of 20 people in a room) and/or members (N people in a room, "
        f"each in {MEMBER_OTHER_ROOMS} more rooms)",
    )
    parser.add_argument("--rounds", type=int, default=20, help="rows timed one at a time")
    parser.add_argument(
        "--deliveries",
        type=int,
        default=100_000,
        help="throughput: about this many deliveries (10 to 500 rows)",
    )
    parser.add_argument("--inflight", type=int, default=4, help="throughput: rows in flight")
    parser.add_argument("--http-seconds", type=float, default=5)
    parser.add_argument("--server-cpus", help="taskset list for gunicorn (default: first half)")
    parser.add_argument("--loadgen-cpus", help="taskset list for the generator (default: rest)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--seed-rows",
        type=int,
        default=0,
        help="fill the table with this many rows first (per-event queries)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample the workers with py-spy (pip install py-spy) into this folder",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also run the app at this commit (branch, tag, sha), for before/after ratios",
    )
    args = parser.parse_args(argv)

    if args.smoke:
        plan = Plan(
            clients=[20],
            rounds=1,
            messages=200,
            inflight=2,
            http_seconds=1,
            http_connections=4,
            settle_seconds=0.3,
        )
        configs, scenarios = ["sqlite"], ["table", "chat"]
    else:
        plan = Plan(
            clients=[int(n) for n in args.clients.split(",")],
            rounds=args.rounds,
            messages=args.deliveries,
            inflight=args.inflight,
            http_seconds=args.http_seconds,
            http_connections=8,
            profile=args.profile,
            seed_rows=args.seed_rows,
        )
        configs, scenarios = args.configs.split(","), args.scenarios.split(",")

    if not shutil.which("node"):
        print("node is not installed: the load generator needs it (apt-get install nodejs)")
        return 2
    if not (ROOT / "node_modules" / "socket.io-client").is_dir():
        print("node_modules/socket.io-client is missing: run `make install` first")
        return 2
    limit = raise_open_files_limit()
    too_many = [n for n in plan.clients if n + 200 > limit]
    if too_many:
        print(f"open files limit is {limit}: N={too_many} needs `ulimit -n` above N + 200; skipped")
        plan.clients = [n for n in plan.clients if n not in too_many]
    cpus = cpu_sets(args.server_cpus, args.loadgen_cpus)

    report = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_start": load_average(),
            "uptime": subprocess.run(
                ["uptime"], check=False, capture_output=True, text=True
            ).stdout.strip(),
            **versions(),
        },
        "pinning": {"server": cpus[0] if cpus else "any", "loadgen": cpus[1] if cpus else "any"},
        "plan": vars(plan),
        "baseline": None,
        "labels": {},
        "runs": [],
        "http": [],
        "skipped": [],
        "targets": [],
    }
    print(f"Fan-out benchmark: {report['machine']['uptime']}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    status = 0
    baseline = None
    started = time.monotonic()
    try:
        targets = [app_target()]
        if args.baseline:
            baseline = Baseline(args.baseline, workdir, error=BenchError)
            targets.append(baseline.target)
            report["baseline"] = {
                "ref": args.baseline,
                "commit": baseline.commit,
                "venv": str(baseline.venv or "shared"),
            }
        targets += reference_targets()
        report["labels"] = {target.key: target.label for target in targets}
        for name in configs:
            setups: dict[str, Setup] = {}
            try:
                for target in targets:
                    if not target.reference:  # the app and the baseline: a database each
                        setups[target.key] = (
                            sqlite_setup(workdir, f"{target.key}.db")
                            if name == "sqlite"
                            else redis_postgres_setup(workdir, args.workers)
                        )
            except BenchError as error:
                for setup in setups.values():
                    setup.close()
                skip(report, f"{name}: skipped: {error}")
                continue
            try:
                run_config(setups, targets, plan, scenarios, cpus, workdir, report)
            finally:
                for setup in setups.values():
                    setup.close()
    except BenchError as error:
        report["error"] = str(error)
        print(f"\nThe benchmark broke: {error} (logs in {workdir})", flush=True)
        status = 2
    except Exception as error:  # what was measured until then is still reported
        traceback.print_exc()
        report["error"] = repr(error)
        print(f"\nThe benchmark broke: {error!r} (logs in {workdir})", flush=True)
        status = 2
    finally:
        if baseline:
            baseline.close()
    report["machine"]["load_average_end"] = load_average()
    report["seconds"] = round(time.monotonic() - started)
    add_ratios(report)
    report["targets"] = check_targets(report)
    incomplete = [
        run
        for run in report["runs"]
        if run.get("failed")
        or "latency" not in run
        or run["latency"]["missing"]
        or run["throughput"]["missing"]
    ]
    if incomplete and not status:
        status = 1

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outputs = [RESULTS / f"bench-{'smoke-' if args.smoke else ''}{stamp}.json"]
    if args.json:
        outputs.append(args.json)
    for path in outputs:
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\n" + markdown(report))
    print(f"\nRaw figures: {', '.join(map(str, outputs))} ({report['seconds']} s in all)")
    if status == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"Server and generator logs kept in {workdir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
