"""The fan-out benchmark's report: the figures of each server, their ratios, the targets.

Every figure of the app (and of the baseline, with ``--baseline``) is divided by the same
figure of each reference measured in the same run at the same N and configuration, and the app's
by the baseline's: the ratio moves much less than the figure when the shared machine gets
busier, and "before and after" come from one run.
"""

from __future__ import annotations

# Targets for a 2-core machine, one worker unless stated (see the README's Benchmark section).
TARGET_N = 1000
TARGET_P99_MS = 150
TARGET_CPU_MS_PER_ROW = 100
TARGET_KIB_PER_CONNECTION = 80
TARGET_DELIVERIES_PER_S = 30_000
TARGET_P99_MS_5000 = 1000
TARGET_TWO_WORKER_RATIO = 1.15
# A message to N people, each in more rooms, against one to N sockets of 20 people (same run).
TARGET_MEMBERS_CPU_RATIO = 1.3

REFERENCES = ("flask-socketio", "node-ws")
# The servers whose figures get ratios, and what they are divided by.
SUBJECTS = ("app", "baseline")


def _latency(key: str):
    return lambda run: run["latency"]["latency_ms"].get(key)


# The figures of a fan-out run that have a ratio: (key, heading, where in the run).
FIGURES = (
    ("connect_s", "connect s", lambda run: run.get("connect_seconds")),
    ("p50_ms", "p50 ms", _latency("p50")),
    ("p95_ms", "p95 ms", _latency("p95")),
    ("p99_ms", "p99 ms", _latency("p99")),
    ("max_ms", "max ms", _latency("max")),
    ("cpu_ms_per_row", "CPU ms/row", lambda run: run["cpu_ms_per_row"]),
    ("cpu_us_per_delivery", "CPU µs/delivery", lambda run: run["cpu_us_per_delivery"]),
    ("kib_per_connection", "KiB/conn", lambda run: run["kib_per_connection"]),
    ("rows_per_s", "rows/s", lambda run: round(run["throughput"]["messages_per_s"], 1)),
    ("deliveries_per_s", "deliveries/s", lambda run: round(run["throughput"]["deliveries_per_s"])),
    ("cpu_ms_per_connection", None, lambda run: run.get("cpu_ms_per_connection")),
)
HTTP_FIGURES = ("requests_per_s", "server_cpu_ms_per_request")
NOT_AVAILABLE = "n/a"


def figures(run: dict) -> dict:
    """The figures of a run that completed its phases, flat; {} for one that did not."""
    if "latency" not in run or "throughput" not in run:
        return {}
    return {key: read(run) for key, _heading, read in FIGURES}


def ratio(mine, theirs) -> float | None:
    if not isinstance(mine, int | float) or not isinstance(theirs, int | float) or theirs <= 0:
        return None
    return round(mine / theirs, 2)


def ratios_of(mine: dict, theirs: dict) -> dict:
    return {key: ratio(value, theirs.get(key)) for key, value in mine.items()}


def find_run(
    report: dict, config: str, n: int, scenario: str = "table", server: str = "app"
) -> dict | None:
    for run in report["runs"]:
        if (run["config"], run["n"], run["scenario"], run.get("server", "app")) == (
            config,
            n,
            scenario,
            server,
        ) and "latency" in run:
            return run
    return None


def add_ratios(report: dict) -> None:
    """Each run of the app and the baseline gets ``figures`` and ``ratios`` (to each reference
    and, for the app, to the baseline); a scenario no reference has (chat) gets "n/a"."""
    for run in report["runs"]:
        run["figures"] = figures(run)
    servers = {run["server"] for run in report["runs"]}
    for run in report["runs"]:
        if run["server"] not in SUBJECTS or not run["figures"]:
            continue
        others = [key for key in REFERENCES if key in servers]
        if run["server"] == "app" and "baseline" in servers:
            others.append("baseline")
        run["ratios"] = {}
        for other in others:
            theirs = find_run(report, run["config"], run["n"], run["scenario"], other)
            if theirs:
                run["ratios"][other] = ratios_of(run["figures"], theirs["figures"])
            elif other in REFERENCES and run["scenario"] != "table":
                run["ratios"][other] = NOT_AVAILABLE
            else:
                run["ratios"][other] = None  # that server's run did not complete
    for result in report["http"]:
        if result["server"] not in SUBJECTS:
            continue
        result["ratios"] = {}
        for other in result_servers(report, result):
            theirs = next(
                (
                    r
                    for r in report["http"]
                    if (r["server"], r["config"], r["path"])
                    == (other, result["config"], result["path"])
                ),
                None,
            )
            result["ratios"][other] = (
                {key: ratio(result[key], theirs[key]) for key in HTTP_FIGURES} if theirs else None
            )


def result_servers(report: dict, result: dict) -> list[str]:
    present = {r["server"] for r in report["http"]}
    others = [key for key in REFERENCES if key in present]
    if result["server"] == "app" and "baseline" in present:
        others.append("baseline")
    return others


# ---------------------------------------------------------------- markdown


def one_line(run: dict) -> str:
    if "latency" not in run:
        return f"connected {run['connected']}/{run['n']}: {run['connect_errors']}"
    lat, tp = run["latency"]["latency_ms"], run["throughput"]
    return (
        f"connected {run['connected']}/{run['n']} in {run['connect_seconds']} s, p99 "
        f"{lat['p99']} ms, {run['cpu_ms_per_row']} CPU-ms/row, {run['kib_per_connection']} "
        f"KiB/conn, {tp['deliveries_per_s']:.0f} deliveries/s, missing "
        f"{run['latency']['missing'] + tp['missing']}"
    )


def _times(value) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _label(report: dict, key: str) -> str:
    return report.get("labels", {}).get(key, key)


def _ratio_rows(report: dict, run: dict, columns: list[str], lead: str) -> list[str]:
    rows = []
    for other, values in (run.get("ratios") or {}).items():
        name = f"{_label(report, run['server'])} ÷ {_label(report, other)}"
        if values == NOT_AVAILABLE:
            cells = [NOT_AVAILABLE] * len(columns)
        elif values is None:
            cells = ["–"] * len(columns)
        else:
            cells = [_times(values.get(key)) for key in columns]
        rows.append(f"| {lead} | {name} | | {' | '.join(cells)} | | | | |")
    return rows


def markdown(report: dict) -> str:
    columns = [key for key, heading, _read in FIGURES if heading]
    headings = [heading for _key, heading, _read in FIGURES if heading]
    lines = [
        "| config | scenario | N | server | connected | "
        + " | ".join(headings)
        + " | missing | server CPU % | loadgen CPU % | load avg |",
        "|---|---|---:|---|---:|" + "---:|" * len(columns) + "---:|---:|---:|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for run in report["runs"]:
        groups.setdefault((run["config"], run["scenario"], run["n"]), []).append(run)
    for (config, scenario, n), runs in groups.items():
        for run in runs:
            lead = f"{config} ×{run['workers']} | {scenario} | {n}"
            name = _label(report, run["server"])
            if not run.get("figures"):
                lines.append(
                    f"| {lead} | {name} | {run['connected']} | "
                    + " | ".join(["–"] * len(columns))
                    + f" | – | – | – | {run['load_average_start'][0]} |"
                )
                continue
            tp = run["throughput"]
            loadgen_cpu = max(
                run["loadgen_cpu_percent"].get("latency", 0),
                run["loadgen_cpu_percent"].get("throughput", 0),
            )
            cells = [
                "–" if run["figures"][key] is None else str(run["figures"][key]) for key in columns
            ]
            lines.append(
                f"| {lead} | {name} | {run['connected']} | {' | '.join(cells)} "
                f"| {run['latency']['missing'] + tp['missing']} "
                f"| {run['server_cpu_percent_throughput']} | {loadgen_cpu} "
                f"| {run['load_average_start'][0]} |"
            )
        for run in runs:
            lines += _ratio_rows(
                report, run, columns, f"{config} ×{run['workers']} | {scenario} | {n}"
            )
    lines += [
        "",
        (
            "connect s: N clients loading `/` and connecting. p50…max: time-to-update over all "
            "clients and timed rows (messages for chat), one row at a time; CPU ms/row and "
            "µs/delivery: every server process, in the same phase. rows/s, deliveries/s: "
            f"sustained, {report['plan']['inflight']} rows in flight. server CPU %: cores' worth "
            "the server used meanwhile: well under 100 per worker means it was waiting, or the "
            "machine was busy (see load avg). A ÷ B: A's figure divided by B's, measured in this "
            "run at the same N: above 1 for times, CPU and memory means A costs more, below 1 "
            "for rows/s and deliveries/s means A delivers less. n/a: no reference has this "
            "scenario. References: Flask-SocketIO is bench/reference/flask_push.py under the "
            "same gunicorn settings (the stack without the app), Node ws is "
            "bench/reference/ws_server.mjs (one Node process); their events carry "
            f"{report.get('reference_payload_bytes', '?')} bytes of JSON like the app's."
        ),
    ]
    if report["http"]:
        lines += [
            "",
            "| config | GET | server | requests/s | server CPU ms/request | tool | load avg |",
            "|---|---|---|---:|---:|---|---|",
        ]
        for result in report["http"]:
            lead = f"{result['config']} ×{result['workers']} | `{result['path']}`"
            lines.append(
                f"| {lead} | {_label(report, result['server'])} "
                f"| {result['requests_per_s']:.0f} | {result['server_cpu_ms_per_request']} "
                f"| {result['tool']} | {result['load_average_start'][0]} |"
            )
        for result in report["http"]:
            lead = f"{result['config']} ×{result['workers']} | `{result['path']}`"
            for other, values in (result.get("ratios") or {}).items():
                cells = [_times((values or {}).get(key)) for key in HTTP_FIGURES]
                lines.append(
                    f"| {lead} | {_label(report, result['server'])} ÷ {_label(report, other)} "
                    f"| {' | '.join(cells)} | | |"
                )
    if report["targets"]:
        lines += ["", "| target (the app) | measured | met |", "|---|---|---|"]
        for target in report["targets"]:
            lines.append(
                f"| {target['target']} | {target['measured']} "
                f"| {'yes' if target['met'] else '**no**'} |"
            )
    for line in report["skipped"]:
        lines.append(f"\n_{line}_")
    lines.append(
        f"\nLoad average at the start {report['machine']['load_average_start']}, "
        f"at the end {report['machine'].get('load_average_end')} "
        f"({report['machine']['cpus']} CPUs; servers on CPUs {report['pinning']['server']}, "
        f"load generator on {report['pinning']['loadgen']})."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- targets


def check_targets(report: dict) -> list[dict]:
    targets = []

    def add(target: str, measured, met: bool) -> None:
        targets.append({"target": target, "measured": measured, "met": bool(met)})

    one = find_run(report, "sqlite", TARGET_N)
    if one:
        p99 = one["latency"]["latency_ms"]["p99"]
        add(
            f"N={TARGET_N}: p99 time-to-update ≤ {TARGET_P99_MS} ms",
            f"{p99} ms",
            p99 <= TARGET_P99_MS,
        )
        add(
            f"N={TARGET_N}: ≤ {TARGET_CPU_MS_PER_ROW} server CPU-ms per row",
            f"{one['cpu_ms_per_row']} ms",
            one["cpu_ms_per_row"] <= TARGET_CPU_MS_PER_ROW,
        )
        add(
            f"N={TARGET_N}: ≤ {TARGET_KIB_PER_CONNECTION} KiB per connection",
            f"{one['kib_per_connection']} KiB",
            one["kib_per_connection"] <= TARGET_KIB_PER_CONNECTION,
        )
        tp = one["throughput"]
        missing = one["latency"]["missing"] + tp["missing"]
        add(
            f"N={TARGET_N}: sustained ≥ {TARGET_DELIVERIES_PER_S:,} deliveries/s, 0 missing",
            f"{tp['deliveries_per_s']:,.0f}/s, {missing} missing",
            tp["deliveries_per_s"] >= TARGET_DELIVERIES_PER_S and missing == 0,
        )
    big = find_run(report, "sqlite", 5000)
    if big:
        missing = big["latency"]["missing"] + big["throughput"]["missing"]
        p99 = big["latency"]["latency_ms"]["p99"]
        add(
            "N=5000, one worker: all connected, all delivered, p99 ≤ 1 s",
            f"{big['connected']}/5000 connected, {missing} missing, p99 {p99} ms",
            big["connected"] == 5000 and missing == 0 and p99 <= TARGET_P99_MS_5000,
        )
    for n in sorted({run["n"] for run in report["runs"] if run["n"] >= TARGET_N}):
        single, double = find_run(report, "sqlite", n), find_run(report, "redis+pg", n)
        if single and double:
            ratio = double["cpu_us_per_delivery"] / single["cpu_us_per_delivery"]
            missing = double["latency"]["missing"] + double["throughput"]["missing"]
            add(
                f"N={n}, 2 workers + Redis: CPU per delivery ≤ {TARGET_TWO_WORKER_RATIO}× one "
                "worker, none missing",
                f"{ratio:.2f}×, {missing} missing",
                ratio <= TARGET_TWO_WORKER_RATIO and missing == 0,
            )
    chat = find_run(report, "sqlite", TARGET_N, "chat")
    if chat:
        p99 = chat["latency"]["latency_ms"]["p99"]
        add(
            f"chat room with {TARGET_N} members: p99 ≤ {TARGET_P99_MS} ms",
            f"{p99} ms",
            p99 <= TARGET_P99_MS,
        )
    members = find_run(report, "sqlite", TARGET_N, "members")
    if members and chat:
        ratio = members["cpu_ms_per_row"] / chat["cpu_ms_per_row"]
        p99 = members["latency"]["latency_ms"]["p99"]
        add(
            f"room of {TARGET_N} people, each in more rooms: CPU per message ≤ "
            f"{TARGET_MEMBERS_CPU_RATIO}× the chat room's, p99 ≤ {TARGET_P99_MS} ms",
            f"{ratio:.2f}× ({members['cpu_ms_per_row']} vs {chat['cpu_ms_per_row']} ms), "
            f"p99 {p99} ms",
            ratio <= TARGET_MEMBERS_CPU_RATIO and p99 <= TARGET_P99_MS,
        )
    return targets
