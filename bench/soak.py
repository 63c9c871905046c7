"""Soak run: 1,000 browser-like clients for 10 minutes on two workers with Redis and PostgreSQL.

    .venv/bin/python bench/soak.py                       # make soak: the full 10-minute run
    .venv/bin/python bench/soak.py --clients 200 --duration 30 --warmup 10   # a short one

The app runs as production runs it (gunicorn -c gunicorn.conf.py wsgi:app, two gevent websocket
workers) on a fresh PostgreSQL database and a Redis queue channel of its own. bench/soak.mjs
(Node, socket.io-client) opens the clients: every one loads `/` for its session cookie and
connects over websocket with it; a share of them are logged-in chat users' tabs, each showing
one of a few rooms. Then rows (POST /table/rows) and chat messages (chat:send with a client id,
some over POST /chat/<room>/messages) are added at a steady rate while some tabs reload and
sockets that drop reconnect and catch up from the database, as browsers do.

Every few seconds the RSS, open file descriptors and CPU time of each worker are read from
/proc. After the warm-up, and again at the end, the load pauses until every client is
connected and nothing is in flight (a quiet point): the RSS and descriptors of those two points
are compared, so sockets in the middle of a reconnect do not blur the comparison.

At the end every page's deliveries are compared with the database: each acknowledged row and
message must have reached every page that was open while it was added, exactly once over the
socket or through the page's catch-up, and nothing may arrive that the database does not have.

Figures go to stdout, the raw figures and samples as JSON to bench/results/ (and --json PATH).
Exit status: 0 every check passed, 1 a check failed, 2 the run broke.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generator import Generator, children_of
from tests.e2e.server import LiveServer

RESULTS = ROOT / "bench" / "results"
GENERATOR = ROOT / "bench" / "soak.mjs"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# Limits the app enforces per address or per client (webapp/config.py, "N per minute"). Every
# client here comes from 127.0.0.1, which a real deployment would never see for 1,000 users, so
# the limits are raised rather than switched off: the limiter still runs (and costs what it
# costs) on every request and connection.
RATE_LIMIT_OVERRIDES = {
    "RATELIMIT_LOGIN_PER_IP": "100000 per minute",
    "RATELIMIT_LOGIN_PER_USERNAME": "100000 per minute",
    "RATELIMIT_REGISTER_PER_IP": "100000 per minute",
    "RATELIMIT_REGISTER_PER_USERNAME": "100000 per minute",
    "RATELIMIT_ROWS_PER_CLIENT": "100000 per minute",
    "RATELIMIT_SOCKET_CONNECTS_PER_IP": "100000 per minute",
}


class SoakError(RuntimeError):
    pass


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE // 1024


SERVICE_PORTS = {5432: "postgres", 6379: "redis", 5672: "amqp"}


def tcp_sockets() -> dict[int, tuple[int, int, str]]:
    """Every TCP socket of the machine: inode -> (local port, remote port, state)."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            found[inode] = (
                int(local.rsplit(":", 1)[1], 16),
                int(remote.rsplit(":", 1)[1], 16),
                state,
            )
    return found


def open_fds(pid: int, server_port: int, sockets: dict) -> Counter:
    """Open descriptors of ``pid`` by kind: client (a browser's connection to the app),
    postgres, redis, listen, other-socket, pipe, anon_inode, file."""
    kinds: Counter = Counter()
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        try:
            target = os.readlink(f"{directory}/{name}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            local, remote, state = sockets.get(int(target[8:-1]), (0, 0, ""))
            if state == "0A":
                kinds["listen"] += 1
            elif local == server_port:
                kinds["client"] += 1
            else:
                kinds[SERVICE_PORTS.get(remote, "other-socket")] += 1
        elif ":" in target and not target.startswith("/"):
            kinds[target.split(":", 1)[0]] += 1
        else:
            kinds["file"] += 1
    return kinds


class Sampler(threading.Thread):
    """RSS, descriptors and CPU of each worker (and the master and generator) every few seconds."""

    def __init__(
        self, workers: list[int], master: int, generator: int, every: float, t0: float, port: int
    ):
        super().__init__(daemon=True)
        self.port = port
        self.pids = {
            "master": master,
            "generator": generator,
            **{f"worker{i + 1}": p for i, p in enumerate(workers)},
        }
        self.workers = [f"worker{i + 1}" for i in range(len(workers))]
        self.every = every
        self.t0 = t0
        self.samples: list[dict] = []
        self.stopping = threading.Event()
        self.phase = "setup"

    def sample(self) -> dict:
        point = {
            "t": round(time.monotonic() - self.t0, 2),
            "phase": self.phase,
            "load": [round(x, 2) for x in os.getloadavg()],
        }
        sockets = tcp_sockets()
        for name, pid in self.pids.items():
            try:
                entry = {"rss_kib": rss_kib(pid), "cpu_s": cpu_seconds(pid)}
                if name != "generator":
                    fds = open_fds(pid, self.port, sockets)
                    entry["fds"] = sum(fds.values())
                    entry["fd_kinds"] = dict(fds)
            except (OSError, ValueError, IndexError):
                entry = {"gone": True}
            point[name] = entry
        return point

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            self.samples.append(self.sample())

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


# ---------------------------------------------------------------- services and processes


def services(args) -> tuple[str, str, callable]:
    """Redis URL, a fresh PostgreSQL database's URL and its dropper."""
    import redis

    from tests.services import fresh_postgres_database

    try:
        redis.Redis.from_url(args.redis_url, socket_connect_timeout=2).ping()
    except Exception as error:
        raise SoakError(f"Redis at {args.redis_url} is not reachable ({error})") from error
    try:
        database_url, drop = fresh_postgres_database(args.postgres_url)
    except Exception as error:
        raise SoakError(f"PostgreSQL at {args.postgres_url} is not reachable ({error})") from error
    return args.redis_url, database_url, drop


def forget_presence(redis_url: str, channel: str) -> None:
    """Remove the presence keys the workers left in the shared Redis."""
    import redis

    try:
        store = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
        keys = list(store.scan_iter(f"{channel}:*"))
        if keys:
            store.delete(*keys)
    except redis.RedisError:
        pass


def start_generator(url: str, log_path: Path) -> Generator:
    """bench/soak.mjs, one JSON command and reply per line."""
    return Generator(["node", str(GENERATOR), url], log_path, error=SoakError, quit_timeout=30)


def database_contents(database_url: str) -> tuple[list, list]:
    """Every row as [id, created ms] and every message as [id, room key, created ms]."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, (EXTRACT(EPOCH FROM created_at) * 1000)::bigint FROM table_rows ORDER BY id"
        ).fetchall()
        messages = conn.execute(
            "SELECT m.id, r.name_key, (EXTRACT(EPOCH FROM m.created_at) * 1000)::bigint "
            "FROM messages m JOIN rooms r ON r.id = m.room_id WHERE m.deleted_at IS NULL ORDER BY m.id"
        ).fetchall()
    return [list(r) for r in rows], [list(m) for m in messages]


def server_errors(log_path: Path, upto: int | None = None) -> dict:
    """From gunicorn's log (its first ``upto`` bytes: not the shutdown): responses by status
    class, 5xx lines, tracebacks, worker trouble."""
    statuses: Counter = Counter()
    five_hundreds: list[str] = []
    tracebacks = 0
    worker_trouble: list[str] = []
    access = re.compile(r'"[A-Z]+ [^"]*" (\d{3}) ')
    with open(log_path, "rb") as log:
        text = log.read(upto if upto is not None else -1).decode(errors="replace")
    for line in text.splitlines():
        match = access.search(line)
        if match:
            statuses[match.group(1)[0] + "xx"] += 1
            if match.group(1).startswith("5"):
                five_hundreds.append(line[:300])
        if line.startswith("Traceback"):
            tracebacks += 1
        if "WORKER TIMEOUT" in line or re.search(r"Worker \(pid:\d+\) (was sent|exited)", line):
            worker_trouble.append(line[:300])
    return {
        "responses": dict(statuses),
        "five_hundreds": five_hundreds[:10],
        "tracebacks": tracebacks,
        "worker_trouble": worker_trouble[:10],
    }


# ---------------------------------------------------------------- the run


def quiet_point(gen: Generator, sampler: Sampler, label: str, settle: float) -> dict:
    """Pause the load until every client is connected and nothing is in flight (the generator
    then closes its idle keep-alive connections), and take a sample a moment later."""
    paused = gen("pause", 200, timeoutMs=180_000)
    time.sleep(settle)
    point = sampler.sample()
    point["label"] = label
    point["pause"] = paused
    return point


def run(args) -> tuple[dict, list[str]]:
    redis_url, database_url, drop = services(args)
    channel = f"soak-{uuid.uuid4().hex[:12]}"
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    server_log = workdir / "gunicorn.log"
    env = {
        "SECRET_KEY": "soak-secret",
        "DATABASE_URL": database_url,
        "MESSAGE_QUEUE_URL": redis_url,
        "SOCKETIO_CHANNEL": channel,
        "LOG_LEVEL": "warning",
        **RATE_LIMIT_OVERRIDES,
    }
    server = LiveServer(env, workers=args.workers, log_path=server_log)
    gen = None
    sampler = None
    log_size = None
    report: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {k: v for k, v in vars(args).items() if k not in ("json",)},
        "machine": {"cpus": os.cpu_count(), "load_before": list(os.getloadavg())},
        "rate_limit_overrides": RATE_LIMIT_OVERRIDES,
        "logs": str(workdir),
    }
    try:
        server.migrate()
        server.start(timeout=60)
        master = server.process.pid
        deadline = time.monotonic() + 30
        while len(children_of(master)) < args.workers:
            if time.monotonic() > deadline:
                raise SoakError("gunicorn did not start all its workers")
            time.sleep(0.1)
        workers = children_of(master)
        gen = start_generator(server.url, workdir / "generator.log")
        t0 = time.monotonic()
        sampler = Sampler(workers, master, gen.process.pid, args.sample_every, t0, server.port)
        sampler.start()
        progress(f"server {server.url} (workers {workers}), logs in {workdir}")
        before = sampler.sample()

        setup = gen(
            "setup",
            600,
            clients=args.clients,
            chatShare=args.chat_share,
            users=args.users,
            rooms=args.rooms,
        )
        report["setup"] = setup
        progress(
            f"setup: {setup['clients'] - setup['failed']}/{setup['clients']} clients "
            f"({setup['chat_tabs']} chat tabs of {setup['users']} users) in {setup['seconds']:.1f}s"
        )
        if setup["failed"] or not setup["ready"]:
            raise SoakError(f"clients failed to connect: {setup['errors']}")

        rates = {
            "rowsPerS": args.rows_per_s,
            "messagesPerS": args.messages_per_s,
            "reloadsPerS": args.reloads_per_s,
        }
        sampler.phase = "warmup"
        gen("start", 30, **rates)
        load_t0 = time.monotonic()
        watch(gen, args.warmup, "warm-up", args.progress_every)
        warm = quiet_point(gen, sampler, "after warm-up", args.settle)
        progress(f"quiet point after warm-up: {point_text(warm, sampler.workers)}")

        sampler.phase = "steady"
        steady_t0 = time.monotonic()
        cpu0 = {name: sampler.sample()[name].get("cpu_s", 0) for name in sampler.pids}
        gen("start", 30, **rates)
        watch(gen, args.duration - args.warmup, "steady", args.progress_every)
        last = sampler.sample()
        steady_s = time.monotonic() - steady_t0
        cpu1 = {name: last[name].get("cpu_s", 0) for name in sampler.pids}
        sampler.phase = "end"
        end = quiet_point(gen, sampler, "end", args.settle)
        progress(f"quiet point at the end: {point_text(end, sampler.workers)}")

        drained = gen("drain", 200, timeoutMs=120_000)
        report["drain"] = drained
        report["generator"] = gen("report", 60)
        rows, messages = database_contents(database_url)
        report["database"] = {"rows": len(rows), "messages": len(messages)}
        report["deliveries"] = gen(
            "verify", 600, rows=rows, messages=messages, graceMs=args.grace * 1000
        )
        report["load_seconds"] = round(time.monotonic() - load_t0, 1)
        report["quiet_points"] = [warm, end]
        report["cpu_steady"] = {
            name: round(100 * (cpu1[name] - cpu0[name]) / steady_s, 1) for name in sampler.pids
        }
        report["steady_seconds"] = round(steady_s, 1)
        if children_of(master) != workers:
            report["worker_pids_changed"] = {"before": workers, "after": children_of(master)}
        report["after_close"] = close_all(gen, sampler, before, redis_url, channel)
        progress(f"every client closed at once: {report['after_close']}")
    finally:
        if sampler:
            sampler.stop()
            report["samples"] = sampler.samples
        if gen:
            gen.close()
        log_size = server_log.stat().st_size if server_log.exists() else 0
        server.stop()
        forget_presence(redis_url, channel)
        drop()
    report["server_log"] = server_errors(server_log, log_size)
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report, check(report, args, sampler.workers)


def close_all(
    gen: Generator,
    sampler: Sampler,
    before: dict,
    redis_url: str,
    channel: str,
    timeout: float = 30,
) -> dict:
    """Close every client at once; wait until no worker holds a client connection and presence
    holds no entry."""
    import redis

    closed = gen("closeAll", 60)["closed"]
    store = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(1)
        point = sampler.sample()
        entries = sum(1 for _ in store.scan_iter(f"{channel}:presence:conn:*"))
        fds = {w: point[w]["fds"] for w in sampler.workers}
        clients = {w: point[w]["fd_kinds"].get("client", 0) for w in sampler.workers}
        settled = not any(clients.values()) and entries == 0
        if settled or time.monotonic() > deadline:
            return {
                "closed": closed,
                "presence_entries_left": entries,
                "client_connections_left": clients,
                "fds": fds,
                "fds_before_clients": {w: before[w]["fds"] for w in sampler.workers},
                "fd_kinds": {w: point[w]["fd_kinds"] for w in sampler.workers},
                "waited_s": round(timeout - (deadline - time.monotonic()), 1),
            }


def watch(gen: Generator, seconds: float, label: str, every: float) -> None:
    """Let the load run for ``seconds``, printing the counters now and then."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(every, left))
        status = gen("status", 60)
        progress(
            f"{label}: {status['connected']} connected; rows {status['rows']['acked']}/"
            f"{status['rows']['sent']}, messages {status['messages']['acked']}/"
            f"{status['messages']['sent']}; reloads {status['reloads']}, reconnects "
            f"{status['stats']['reconnects']}; load {os.getloadavg()[0]:.1f}"
        )


def point_text(point: dict, workers: list[str]) -> str:
    return ", ".join(
        f"{w} {point[w]['rss_kib'] / 1024:.1f} MiB, {point[w]['fds']} fds" for w in workers
    )


def progress(text: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- checks


def check(report: dict, args, workers: list[str]) -> list[str]:
    """Names and figures of the checks that failed (empty: all passed)."""
    failed = []
    d = report["deliveries"]
    g = report["generator"]
    for kind in ("rows", "messages"):
        if d[kind]["lost"]:
            failed.append(f"{kind} lost: {d[kind]['lost']}")
        if d[kind]["duplicated"]:
            failed.append(f"{kind} duplicated: {d[kind]['duplicated']}")
        if d[kind]["unknown"]:
            failed.append(f"{kind} received that the database does not have: {d[kind]['unknown']}")
        if g[kind]["failed"]:
            failed.append(f"{kind} whose request failed: {g[kind]['failed']}")
        if not d[kind]["expected"]:
            failed.append(f"no {kind} deliveries were expected: the run measured nothing")
    if g["acked_rows"] != report["database"]["rows"]:
        failed.append(
            f"rows acknowledged {g['acked_rows']} != rows stored {report['database']['rows']}"
        )
    if g["acked_messages"] != report["database"]["messages"]:
        failed.append(
            f"messages acknowledged {g['acked_messages']} != stored {report['database']['messages']}"
        )
    if not report["drain"]["complete"]:
        failed.append(f"open pages still missing deliveries: {report['drain']['missing_now']}")
    warm, end = report["quiet_points"]
    for point in (warm, end):
        if not point["pause"]["quiet"]:
            failed.append(f"not every client reconnected at the quiet point '{point['label']}'")
        # At a quiet point the workers hold exactly one connection per tab, its socket.
        held = sum(point[w]["fd_kinds"].get("client", 0) for w in workers)
        if held != report["setup"]["clients"]:
            failed.append(
                f"the workers hold {held} client connections for {report['setup']['clients']} "
                f"tabs at the quiet point '{point['label']}'"
            )
    report["memory"] = {}
    for w in workers:
        growth = (end[w]["rss_kib"] - warm[w]["rss_kib"]) / warm[w]["rss_kib"]
        # Reloaded tabs land on either worker, so each worker's share of the client sockets
        # drifts: the leak check is on every other descriptor.
        other_warm = warm[w]["fds"] - warm[w]["fd_kinds"].get("client", 0)
        other_end = end[w]["fds"] - end[w]["fd_kinds"].get("client", 0)
        fd_growth = other_end - other_warm
        report["memory"][w] = {
            "rss_kib_after_warmup": warm[w]["rss_kib"],
            "rss_kib_end": end[w]["rss_kib"],
            "rss_growth": round(growth, 4),
            "fds_after_warmup": warm[w]["fds"],
            "fds_end": end[w]["fds"],
            "client_sockets_after_warmup": warm[w]["fd_kinds"].get("client", 0),
            "client_sockets_end": end[w]["fd_kinds"].get("client", 0),
            "other_fds_after_warmup": other_warm,
            "other_fds_end": other_end,
            "fd_growth": fd_growth,
        }
        if args.rss_growth_limit is not None and growth >= args.rss_growth_limit:
            failed.append(
                f"{w} RSS grew {growth:.1%} after warm-up (limit {args.rss_growth_limit:.0%})"
            )
        if fd_growth > args.fd_slack:
            failed.append(
                f"{w} descriptors other than client sockets grew by {fd_growth} after warm-up "
                f"(allowed {args.fd_slack})"
            )
    log = report["server_log"]
    if log["responses"].get("5xx"):
        failed.append(f"server answered {log['responses']['5xx']} requests with 5xx")
    if log["worker_trouble"] or report.get("worker_pids_changed"):
        failed.append(f"a worker timed out or was replaced: {log['worker_trouble'][:2]}")
    closing = report["after_close"]
    if any(closing["client_connections_left"].values()):
        failed.append(
            f"client connections still open 30 s after every client closed: "
            f"{closing['client_connections_left']}"
        )
    if closing["presence_entries_left"]:
        failed.append(
            f"presence entries left after every client closed: {closing['presence_entries_left']}"
        )
    if log["tracebacks"]:
        failed.append(f"tracebacks in the server log: {log['tracebacks']}")
    if report["setup"]["failed"]:
        failed.append(f"clients that never connected: {report['setup']['failed']}")
    return failed


def summary(report: dict, failed: list[str], workers: list[str]) -> str:
    d, g = report["deliveries"], report["generator"]
    lat = g["latency_ms"]
    lines = [
        (
            f"Soak: {report['setup']['clients']} clients ({report['setup']['chat_tabs']} chat tabs of "
            f"{report['setup']['users']} users in {len(report['setup']['rooms'])} rooms), "
            f"{report['config']['workers']} workers, PostgreSQL + Redis, load for "
            f"{report['load_seconds']:.0f}s (steady {report['steady_seconds']:.0f}s after a "
            f"{report['config']['warmup']:.0f}s warm-up)"
        ),
        "",
        (
            "| | sent | acknowledged | failed | stored | deliveries expected | received | by socket "
            "| by catch-up only | lost | duplicated | unknown | latency p50 / p99 / max ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind in ("rows", "messages"):
        s, f = g[kind], d[kind]
        lk = lat[kind]
        lat_text = f"{lk.get('p50', '-')} / {lk.get('p99', '-')} / {lk.get('max', '-')}"
        lines.append(
            f"| {kind} | {s['sent']:,} | {s['acked']:,} | {s['failed']:,} | "
            f"{report['database'][kind]:,} | {f['expected']:,} | {f['received']:,} | "
            f"{f['by_socket']:,} | {f['by_catchup_only']:,} | {f['lost']:,} | "
            f"{f['duplicated']:,} | {f['unknown']:,} | {lat_text} |"
        )
    st = g["stats"]
    lines += [
        "",
        (
            f"Pages: {d['pages']:,} ({d['pages_reloaded']:,} reloaded, {st['reconnects']:,} socket "
            f"reconnects, {st['resyncs']:,} resyncs, {st['catchups']:,} catch-ups, "
            f"{st['overflowReloads']:,} reloads for a too-long catch-up, {st['catchupFailures']} "
            f"failed catch-ups, {st['joinFailures']} failed joins); messages resent with the same "
            f"client id: {g['messages']['resent']}."
        ),
        "",
        (
            "| worker | RSS after warm-up | RSS at the end | growth | fds after warm-up "
            "(client sockets + other) | fds at the end | other fds growth | CPU (steady, % of a core) |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in workers:
        m = report["memory"][w]
        lines.append(
            f"| {w} | {m['rss_kib_after_warmup'] / 1024:.1f} MiB | {m['rss_kib_end'] / 1024:.1f} MiB "
            f"| {m['rss_growth']:+.1%} | {m['client_sockets_after_warmup']} + "
            f"{m['other_fds_after_warmup']} | {m['client_sockets_end']} + {m['other_fds_end']} "
            f"| {m['fd_growth']:+d} | {report['cpu_steady'][w]} |"
        )
    lines.append(f"| master | | | | | | | {report['cpu_steady']['master']} |")
    lines.append(f"| generator (Node) | | | | | | | {report['cpu_steady']['generator']} |")
    rss_line = []
    for w in workers:
        series = [(s["t"], s[w]["rss_kib"]) for s in report["samples"] if "rss_kib" in s.get(w, {})]
        if series:
            per_minute = {}
            for t, kib in series:
                per_minute[int(t // 60)] = kib
            rss_line.append(f"{w}: " + " ".join(f"{kib / 1024:.0f}" for kib in per_minute.values()))
    lines += ["", "RSS MiB at each minute: " + "; ".join(rss_line)]
    log = report["server_log"]
    lines += [
        (
            f"Server: responses {log['responses']}, tracebacks in the log {log['tracebacks']}; "
            f"load average at the end {report['samples'][-1]['load'] if report['samples'] else '-'}."
        ),
        "",
    ]
    lines.append("FAILED: " + "; ".join(failed) if failed else "All checks passed.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--chat-share", type=float, default=0.5, help="share of clients that are chat tabs"
    )
    parser.add_argument(
        "--users", type=int, default=100, help="chat accounts (their tabs share a cookie)"
    )
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--duration", type=float, default=600, help="seconds of load, warm-up included"
    )
    parser.add_argument("--warmup", type=float, default=120)
    parser.add_argument("--rows-per-s", type=float, default=3.0)
    parser.add_argument("--messages-per-s", type=float, default=3.0)
    parser.add_argument("--reloads-per-s", type=float, default=1.0, help="tabs reloaded per second")
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="a reloaded page is judged on what was added this long before it closed",
    )
    parser.add_argument(
        "--rss-growth-limit",
        type=float,
        default=0.10,
        help="allowed RSS growth per worker after warm-up; negative: report only",
    )
    parser.add_argument(
        "--fd-slack",
        type=int,
        default=20,
        help="allowed growth of open descriptors per worker after warm-up",
    )
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--progress-every", type=float, default=30.0)
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds between a quiet point and its sample"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("SOAK_REDIS_URL")
        or os.environ.get("TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/0",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SOAK_POSTGRES_URL")
        or os.environ.get("TEST_POSTGRES_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    if args.rss_growth_limit is not None and args.rss_growth_limit < 0:
        args.rss_growth_limit = None
    if args.warmup >= args.duration:
        parser.error("--warmup must be shorter than --duration")
    if not shutil.which("node") or not (ROOT / "node_modules" / "socket.io-client").is_dir():
        print(
            "soak: the load generator needs node and node_modules (make install)", file=sys.stderr
        )
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the children inherit it
    if hard < args.clients + 200:
        print(f"soak: the open-files limit ({hard}) is below clients + 200", file=sys.stderr)
        return 2
    try:
        report, failed = run(args)
    except SoakError as error:
        print(f"soak: the run broke: {error}", file=sys.stderr)
        return 2
    workers = [f"worker{i + 1}" for i in range(args.workers)]
    report["failed_checks"] = failed
    text = summary(report, failed, workers)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    for path in filter(None, (out, args.json)):
        path.write_text(json.dumps(report, indent=1, default=str))
    print(f"Raw figures: {out}" + (f" and {args.json}" if args.json else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
