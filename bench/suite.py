"""`make bench`: every web figure under gunicorn with wrk on loopback, each next to its ceiling, in one run.

    .venv/bin/python bench/suite.py --size quick      # about 6 minutes on 2 cores
    .venv/bin/python bench/suite.py --size full       # 100k incidents, longer rounds

What it does:

1. (Re)creates the database ``--database`` on the PostgreSQL server of ``--server``, migrates it and fills it
   like bench/api_latency.py (``--incidents`` rows in one INSERT ... SELECT), plus a reporter with a token,
   an agent in a team, and a monitoring integration.
2. Starts gunicorn (``--workers`` sync workers, config.settings.local with DEBUG off, BENCH_CEILING_VIEWS on,
   throttles lifted) on a free loopback port. The same server answers the app's requests and the two
   ceilings of config/ceiling.py: a bare JSON view and a bare one-insert view.
3. Runs every figure with wrk (``--connections`` connections, ``--seconds`` seconds) in ``--rounds``
   interleaved rounds (figure A, B, C, ... then again), so that load from elsewhere hits every figure alike.
   For each round it reads the CPU time of the gunicorn processes and of the PostgreSQL backends serving
   this database from /proc, before and after.
4. Counts one request's SQL statements of every figure in process (Django's test client, same settings).
5. Prints the medians over rounds (requests/s, p50, p99, CPU per request for app and PostgreSQL) and the
   ratio to the ceiling, and writes bench/RESULTS.md with the machine, date, load average and commands.

Needs wrk (Debian: apt-get install wrk), gunicorn (a dependency) and a PostgreSQL server. It never touches
any database but ``--database``.
"""
# ruff: noqa: S603, S310 (a bench that starts its own server and load tool on loopback)

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SIZES = {
    "quick": {"incidents": 10_000, "seconds": 5, "rounds": 3},
    "full": {"incidents": 100_000, "seconds": 15, "rounds": 5},
    "1m": {"incidents": 1_000_000, "seconds": 15, "rounds": 5},
}
# The non-web figures of issue 15 (--with-scripts): each script through its own command line, as a subprocess,
# on a database of its own named after --database (created empty before, dropped after). Arguments per size:
# the quick size runs them smaller so that the whole quick run stays under 10 minutes.
SCRIPTS: dict[str, dict[str, list[str]]] = {
    "sweep": {
        "quick": [],  # 40 incidents x 50 clocks: 2,000 due timers (warning and breach of 1,000 clocks)
        "full": ["--incidents", "100"],
        "1m": ["--incidents", "100"],
    },
    "recurrence": {
        "quick": ["--sizes", "100", "10000", "100000", "--repeat", "10"],
        "full": ["--sizes", "100", "10000", "100000"],
        "1m": ["--sizes", "100", "10000", "100000"],
    },
    "import": {
        "quick": ["--incidents", "10000"],
        "full": ["--incidents", "100000"],
        "1m": ["--incidents", "100000"],
    },
    "reports": {
        "quick": ["--incidents", "100000", "--repeat", "5"],
        "full": ["--incidents", "100000"],
        "1m": ["--incidents", "1000000"],
    },
}
SCRIPT_FILES = {
    "sweep": ("sweep_throughput.py", "the sweep decides >= 2,000 timers/s"),
    "recurrence": (
        "recurrence_probe.py",
        "recurrence check O(1) per classification at 100 / 10,000 / 100,000",
    ),
    "import": ("import_throughput.py", "import >= 2,000 events/s"),
    "reports": ("report_summary.py", "reports <= 1 s for any period up to two years at 1M incidents"),
}
# The per-day reporting triggers on incident writes (reporting/migrations/0002): --no-report-triggers turns
# them off for the run, to show what they cost a write (the reports figure then misses the run's new incidents).
REPORT_TRIGGERS = ("reporting_incident_insert", "reporting_incident_update", "reporting_incident_delete")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (INFO|DEBUG) ")


@dataclass
class Figure:
    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    lua_body: str = ""  # a Lua expression for a body that changes per request (unique dedup keys)
    ceiling: str = ""  # the figure it is compared with
    # The report form's one-time token (incidents.forms): `body` holds FORM_TOKEN where each request puts a
    # fresh token signed with the server's settings; a token sent twice would measure the resend path.
    form_tokens: bool = False
    # The queue's poll as the browser sends it: If-None-Match with the ETag its URL answers now, read again
    # before every run (other figures' writes change the rows between rounds).
    current_etag: bool = False
    expect: tuple[int, ...] = (200,)
    rounds: list[dict[str, float]] = field(default_factory=list)
    queries: int | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(p) for p in text.split()]
    return found


def app_pids(master: int) -> list[int]:
    return [master, *children(master)]


def db_pids(admin_url: str, database: str) -> list[int]:
    import psycopg2

    with psycopg2.connect(admin_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        )
        return [row[0] for row in cur.fetchall()]


def snapshot(master: int, admin_url: str, database: str) -> tuple[dict[int, float], dict[int, float]]:
    app = {pid: cpu_seconds(pid) for pid in app_pids(master)}
    db = {pid: cpu_seconds(pid) for pid in db_pids(admin_url, database)}
    return app, db


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    # A process that appeared during the round (a new backend) counts from its start.
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def busy(master: int, admin_url: str, database: str) -> bool:
    """A gunicorn worker runnable (state R: in Python, or waiting for a CPU) or a backend of the bench
    database running a statement. A CPU-time test is not enough: at load 15 on 2 cores a busy process gets
    a few ms of CPU in a tenth of a second."""
    import psycopg2

    for pid in children(master):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "R":
                return True
        except (FileNotFoundError, ProcessLookupError):
            continue
    with psycopg2.connect(admin_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
            "AND pid <> pg_backend_pid()",
            [database],
        )
        return bool(cur.fetchone()[0])


def drain(master: int, admin_url: str, database: str, *, limit: float = 120.0) -> float:
    """Wait until gunicorn and the bench database's backends are idle (three looks in a row, 0.1 s apart);
    return the seconds waited. When wrk stops, requests it already sent are still queued or running: a slow
    figure's tail (a report at 1M incidents) would otherwise be served in the next figure's round, and
    counted there."""
    started = time.perf_counter()
    idle = 0
    while idle < 3 and time.perf_counter() - started < limit:
        idle = 0 if busy(master, admin_url, database) else idle + 1
        time.sleep(0.1)
    return time.perf_counter() - started


FORM_TOKEN = "FORM_TOKEN"  # noqa: S105 (a placeholder in the body, not a secret)
TOKENS_PER_THREAD_SECOND = 400  # above any rate the form reaches on this machine: no token is sent twice


def fresh_form_tokens(count: int) -> list[str]:
    """Report-form tokens as the server issues them (same SECRET_KEY: the bench runs with its settings)."""
    from urllib.parse import quote

    from incidents.forms import new_form_token

    return [quote(new_form_token(), safe="") for _ in range(count)]


def lua_script(figure: Figure, threads: int = 1, seconds: int = 1) -> str:
    lines = [f'wrk.method = "{figure.method}"']
    for name, value in figure.headers.items():
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    if figure.form_tokens:
        # Each wrk thread takes its own slice of tokens signed for this run, one per request.
        per_thread = TOKENS_PER_THREAD_SECOND * seconds + 200
        before, _, after = figure.body.partition(FORM_TOKEN)
        tokens = fresh_form_tokens(per_thread * threads)
        lines += [
            "tokens = {" + ",".join(json.dumps(t) for t in tokens) + "}",
            "threads = 0",
            'setup = function(thread) thread:set("tid", threads); threads = threads + 1 end',
            "counter = 0",
            "request = function()",
            "  counter = counter + 1",
            f"  local token = tokens[tid * {per_thread} + ((counter - 1) % {per_thread}) + 1]",
            f"  return wrk.format(nil, nil, nil, {json.dumps(before)} .. token .. {json.dumps(after)})",
            "end",
        ]
    elif figure.lua_body:
        lines += [
            "counter = 0",
            "math.randomseed(os.time() + math.floor(os.clock() * 1000000))",
            "prefix = tostring(math.random(1, 1000000000))",
            "request = function()",
            "  counter = counter + 1",
            f"  return wrk.format(nil, nil, nil, {figure.lua_body})",
            "end",
        ]
    elif figure.body:
        lines.append(f"wrk.body = {json.dumps(figure.body)}")
    return "\n".join(lines) + "\n"


def parse_wrk(output: str) -> dict[str, float]:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]

    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if not (p50 and p99 and total and rate):
        raise SystemExit(f"could not read wrk's output:\n{output}")
    return {
        "rps": float(rate.group(1)),
        "p50": ms(p50.group(1)),
        "p99": ms(p99.group(1)),
        "requests": int(total.group(1)),
        "bad": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
    }


def refresh_etag(base: str, figure: Figure) -> None:
    if not figure.current_etag:
        return
    headers = {k: v for k, v in figure.headers.items() if k != "If-None-Match"}
    request = urllib.request.Request(base + figure.path, headers=headers)
    figure.headers["If-None-Match"] = urllib.request.urlopen(request, timeout=60).headers["ETag"]


def run_wrk(base: str, figure: Figure, args: argparse.Namespace, workdir: Path) -> str:
    refresh_etag(base, figure)
    script = workdir / f"{re.sub(r'[^a-z0-9]+', '-', figure.name.lower())}.lua"
    script.write_text(lua_script(figure, min(2, args.connections), args.seconds))
    command = [
        "wrk", f"-t{min(2, args.connections)}", f"-c{args.connections}", f"-d{args.seconds}s",
        "--latency", "--timeout", "30s", "-s", str(script), base + figure.path,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def setup_database(args: argparse.Namespace) -> dict[str, Any]:
    """Create, migrate and fill the bench database; return what the figures need (tokens, references)."""
    import psycopg2

    admin = psycopg2.connect(f"{args.server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database])
        exists = cur.fetchone() is not None
        if exists and not args.keep:
            cur.execute(f'DROP DATABASE "{args.database}" WITH (FORCE)')
        if not exists or not args.keep:
            cur.execute(f'CREATE DATABASE "{args.database}"')
    admin.close()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from events_throughput import make_integration

    from accounts.models import ApiToken
    from incidents.models import Category, Domain, Incident, Membership, Team

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    agent, _ = user_model.objects.get_or_create(username="bench-agent")
    agent.set_password("bench-password")
    agent.save()
    reporter, _ = user_model.objects.get_or_create(
        username="bench-reporter", defaults={"email": "r@example.org"}
    )
    other, _ = user_model.objects.get_or_create(username="bench-other")
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    team.domains.add(*Domain.objects.filter(slug__in=["it_service", "security"]))
    Membership.objects.get_or_create(team=team, user=agent)
    for domain in Domain.objects.all():
        Category.objects.get_or_create(domain=domain, slug="bench", defaults={"name": "Bench"})
    fill: dict[str, float] = {}
    if Incident.objects.count() < args.incidents:
        from fill import fill_incidents

        from reporting.daily import rebuild_all

        started = time.perf_counter()
        with connection.cursor() as cursor:
            fill = fill_incidents(
                cursor, args.incidents, reporter=reporter.pk, other=other.pk, team=team.pk,
                fast=not args.plain_fill,
            )  # fmt: skip
            if args.plain_fill:
                cursor.execute("ANALYZE")
        mark = time.perf_counter()
        rebuild_all()  # the fast fill fires no trigger; and a new installation starts this way
        fill["report days"] = time.perf_counter() - mark
        fill["total"] = time.perf_counter() - started
        print(f"filled {args.incidents:,} incidents: {fill_text(fill)}", flush=True)
    with connection.cursor() as cursor:  # --keep reuses a database: set the triggers either way
        for trigger in REPORT_TRIGGERS:
            state = "DISABLE" if args.no_report_triggers else "ENABLE"
            cursor.execute(f"ALTER TABLE incidents_incident {state} TRIGGER {trigger}")
    sample = Incident.objects.filter(team=team, state="responding").order_by("-id").first()
    if sample is None:
        raise SystemExit("the fill made no responding incident of the bench team")
    return {
        # accounts.ApiToken: the API authenticates against its hashed keys (DRF's authtoken table is unused).
        "reporter_token": ApiToken.issue(reporter, name="bench")[1],
        "agent_token": ApiToken.issue(agent, name="bench")[1],
        "reference": sample.reference,
        "routing_key": make_integration("suite"),
        "fill": fill,
    }


def rate(rps: float) -> str:
    """Requests per second, with a decimal below 10 (a 1M figure at 0.4 req/s is not 0)."""
    return f"{rps:,.0f}" if rps >= 10 else f"{rps:.1f}"


def fill_text(steps: dict[str, float]) -> str:
    return ", ".join(f"{step} {seconds:.1f} s" for step, seconds in steps.items())


@dataclass
class ScriptRun:
    name: str
    command: str
    returncode: int
    wall: float
    cpu: float  # the script process's own CPU (children's rusage), not PostgreSQL's
    load_before: str
    load_after: str
    output: str


def recreate(server: str, database: str, *, drop_only: bool = False) -> None:
    import psycopg2

    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if not drop_only:
            cur.execute(f'CREATE DATABASE "{database}"')
    admin.close()


def run_scripts(args: argparse.Namespace, base_env: dict[str, str]) -> list[ScriptRun]:
    """Each script of SCRIPTS at this size, one after the other, with its own database. A script that fails
    or runs past --script-timeout is recorded as such; the next one still runs."""
    runs = []
    for name, by_size in SCRIPTS.items():
        script, _ = SCRIPT_FILES[name]
        database = f"{args.database}_{name}"
        env = {**base_env, "DATABASE_URL": f"{args.server}/{database}", "PYTHONUNBUFFERED": "1"}
        argv = [f"bench/{script}", *by_size[args.size]]
        if name == "import":  # it (re)creates and drops its own database
            env["BENCH_IMPORT_DB"] = database
            argv += ["--server", args.server]
        else:
            recreate(args.server, database)
        shown = "DATABASE_URL=" + shlex.quote(env["DATABASE_URL"]) + " "
        if name == "import":
            shown = f"BENCH_IMPORT_DB={database} "
        command = shown + shlex.join([".venv/bin/python", *argv])
        print(f"\n$ {command}", flush=True)
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                timeout=args.script_timeout,
            )  # fmt: skip
            returncode, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            returncode = -1
            output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            output += f"\n(stopped after {args.script_timeout} s)"
        wall = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        if name != "import" and not args.keep:
            recreate(args.server, database, drop_only=True)
        output = "\n".join(line for line in output.splitlines() if not LOG_LINE.match(line)).strip()
        print(output, flush=True)
        print(f"({name}: exit {returncode}, {wall:.1f} s wall, {cpu:.1f} s CPU of the script)", flush=True)
        runs.append(
            ScriptRun(name, command, returncode, wall, cpu, load_before,
                      " ".join(f"{x:.2f}" for x in os.getloadavg()), output)
        )  # fmt: skip
    return runs


def scripts_section(args: argparse.Namespace, runs: list[ScriptRun]) -> str:
    lines = [
        "",
        "## The other figures (bench scripts, same run)",
        "",
        f"Run after the web figures by `--with-scripts` at the `{args.size}` size, one after the other, each "
        "as a subprocess (its own command line, run from the checkout's root) on its own database, created "
        "empty before and dropped after. Wall time includes each script's own fill. CPU is the script "
        "process's (resource.getrusage of the children), not PostgreSQL's. Each output is the script's own, "
        "minus Django's INFO log lines.",
        "",
        "| script | budget (issue 15) | exit | wall s | script CPU s | load average before / after |",
        "|---|---|---:|---:|---:|---|",
    ]
    for run in runs:
        script, budget = SCRIPT_FILES[run.name]
        lines.append(
            f"| `{script}` | {budget} | {run.returncode} | {run.wall:.1f} | {run.cpu:.1f} | "
            f"{run.load_before} / {run.load_after} |"
        )
    for run in runs:
        lines += [
            "",
            f"### {SCRIPT_FILES[run.name][0]}",
            "",
            f"`{run.command}`",
            "",
            "```",
            run.output,
            "```",
        ]
    return "\n".join(lines) + "\n"


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"{args.server}/{args.database}",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",  # testserver: the in-process query counts
        "BENCH_CEILING_VIEWS": "1",
        "API_THROTTLE_USER": "100000000/min",
        "API_THROTTLE_ANON": "100000000/min",
        "WEB_REPORT_RATE": "100000000/hour",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }


def login_cookies(base: str) -> tuple[str, str, str]:
    """The agent's session cookie, and an anonymous CSRF cookie with its form token."""
    import requests

    browser = requests.Session()
    page = browser.get(base + "/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    browser.post(
        base + "/accounts/login/",
        data={"username": "bench-agent", "password": "bench-password", "csrfmiddlewaretoken": token},
        headers={"Referer": base + "/accounts/login/"},
        timeout=30,
    )
    session = browser.cookies.get("sessionid") or ""
    anonymous = requests.Session()
    form = anonymous.get(base + "/report/", timeout=30)
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    return session, anonymous.cookies.get("csrftoken") or "", form_token


def figures(data: dict[str, Any], session: str, csrf_cookie: str, csrf_token: str) -> list[Figure]:
    api = {"Authorization": f"Token {data['reporter_token']}", "Content-Type": "application/json"}
    agent = {"Authorization": f"Token {data['agent_token']}"}
    desk = {"Cookie": f"sessionid={session}"}
    poll = {**desk, "HX-Request": "true", "HX-Target": "queue-results"}
    create = json.dumps(
        {"title": "Printer on floor 3 jams", "description": "Since this morning, **every** job."}
    )
    form = (
        f"csrfmiddlewaretoken={csrf_token}&title=Printer+on+floor+3+jams&description=Since+this+morning"
        f"&reporter_email=someone%40example.org&website=&form_token={FORM_TOKEN}"
    )
    event = (
        '\'{"routing_key": "' + data["routing_key"] + '", "event_action": "trigger", "dedup_key": "\' '
        '.. prefix .. "-" .. counter .. \'", "payload": {"summary": "Checkout 5xx", "source": "lb1", '
        '"severity": "critical"}}\''
    )
    hit = json.dumps(
        {"routing_key": data["routing_key"], "event_action": "trigger", "dedup_key": "suite-same",
         "payload": {"summary": "Checkout 5xx", "source": "lb1", "severity": "critical"}}
    )  # fmt: skip
    ceiling_body = json.dumps({"title": "Printer on floor 3 jams", "description": "Since this morning."})
    return [
        Figure("ceiling: bare JSON", "GET", "/bench/ceiling/json/"),
        Figure("ceiling: one insert", "POST", "/bench/ceiling/insert/", {"Content-Type": "application/json"},
               ceiling_body, expect=(201,)),
        Figure("API create", "POST", "/api/v1/incidents/", api, create, ceiling="ceiling: one insert",
               expect=(201,)),
        Figure("public form POST", "POST", "/report/",
               {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf_cookie}"},
               form, ceiling="ceiling: one insert", expect=(302,), form_tokens=True),
        Figure("monitoring event, new incident", "POST", "/api/v1/events/", {"Content-Type": "application/json"},
               lua_body=event, ceiling="ceiling: one insert", expect=(202,)),
        Figure("monitoring event, dedup hit", "POST", "/api/v1/events/", {"Content-Type": "application/json"},
               hit, ceiling="ceiling: one insert", expect=(202,)),
        Figure("queue page (50 rows)", "GET", "/desk/", desk, ceiling="ceiling: bare JSON"),
        # The poll sends the ETag of the rows it shows: "changed" is a poll whose rows changed since (an ETag
        # that no longer matches: the rows are rendered), "unchanged" one answered 304 with no body.
        Figure("queue poll (rows only), changed", "GET", "/desk/", {**poll, "If-None-Match": 'W/"changed"'},
               ceiling="ceiling: bare JSON"),
        Figure("queue poll, unchanged (304)", "GET", "/desk/", poll, ceiling="ceiling: bare JSON",
               current_etag=True, expect=(304,)),
        Figure("incident page", "GET", f"/desk/incidents/{data['reference']}/", desk, ceiling="ceiling: bare JSON"),
        Figure("API list, first page", "GET", "/api/v1/incidents/", agent, ceiling="ceiling: bare JSON"),
        Figure("reports summary (30 days)", "GET", "/api/v1/reports/summary/", agent,
               ceiling="ceiling: bare JSON"),
    ]  # fmt: skip


def check(base: str, figure: Figure) -> None:
    refresh_etag(base, figure)
    body = figure.body.encode() if figure.body else None
    if figure.form_tokens:
        body = figure.body.replace(FORM_TOKEN, fresh_form_tokens(1)[0]).encode()
    if figure.lua_body:
        body = figure.lua_body.replace("' .. prefix .. \"-\" .. counter .. '", "check-0").strip("'").encode()
    request = urllib.request.Request(
        base + figure.path, data=body, method=figure.method, headers=figure.headers
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: Any, **k: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        status = opener.open(request, timeout=60).status
    except urllib.error.HTTPError as exc:
        status = exc.code
    if status not in figure.expect:
        raise SystemExit(
            f"{figure.name}: {figure.method} {figure.path} answered {status}, not {figure.expect}"
        )


def count_queries(figure: Figure) -> int:
    """One request's SQL statements, through Django's whole stack in this process (same settings)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    headers = {k: v for k, v in figure.headers.items() if k not in ("Content-Type", "Cookie")}
    cookie = figure.headers.get("Cookie", "")
    for part in cookie.split(";"):
        if "=" in part:
            name, value = part.strip().split("=", 1)
            client.cookies[name] = value
    body = figure.body
    if figure.form_tokens:
        body = figure.body.replace(FORM_TOKEN, fresh_form_tokens(1)[0])
    if figure.lua_body:
        body = figure.lua_body.replace("' .. prefix .. \"-\" .. counter .. '", f"count-{time.time()}").strip(
            "'"
        )
    with CaptureQueriesContext(connection) as queries:
        if figure.method == "GET":
            client.get(figure.path, headers=headers)
        else:
            client.generic(
                figure.method, figure.path, body, content_type=figure.headers.get("Content-Type", ""),
                headers=headers,
            )  # fmt: skip
    return len(queries)


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    memory = next(
        line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} x {cpu}, {memory.split(':')[1].strip()} RAM, {platform.platform()}"


def write_results(path: Path, args: argparse.Namespace, rows: list[Figure], meta: dict[str, Any]) -> str:
    by_name = {f.name: f for f in rows}

    def med(f: Figure, key: str) -> float:
        return statistics.median(r[key] for r in f.rounds)

    lines = [
        "# Bench results",
        "",
        f"- date: {meta['started']} to {meta['finished']} (UTC)",
        f"- machine: {meta['machine']}",
        f"- PostgreSQL: {meta['postgres']}",
        f"- load average before / after: {meta['load_before']} / {meta['load_after']}",
        f"- size: `{args.size}`: {args.incidents:,} incidents, {args.rounds} interleaved rounds of "
        f"{args.seconds} s per figure, wrk {args.connections} connections, gunicorn {args.workers} sync workers",
        f"- command: `{meta['command']}`",
        *([f"- figures left out: {', '.join(args.skip)}"] if args.skip else []),
        f"- run time: {meta['total_seconds'] / 60:.1f} min in all; web figures (with the fill) "
        f"{meta['web_seconds'] / 60:.1f} min",
        f"- fill (bench/fill.py{', --plain-fill' if args.plain_fill else ''}): "
        + (fill_text(meta["fill"]) if meta["fill"] else "none (reused, or no web figures)"),
        *(
            ["- the per-day reporting triggers were OFF (--no-report-triggers)"]
            if args.no_report_triggers
            else []
        ),
        f"- gunicorn: `{meta['gunicorn']}`",
        f"- wrk (per figure): `wrk -t{min(2, args.connections)} -c{args.connections} -d{args.seconds}s --latency "
        "--timeout 30s -s <figure>.lua <url>` (the Lua scripts set method, headers and body), after one "
        "unrecorded 1 s warm-up run of every figure; before each run the suite waits until gunicorn and the "
        "database's backends are idle (the previous figure's queued requests served)",
        "",
        "Medians over the rounds. CPU per request is the CPU time of the gunicorn processes (app) and of the "
        "PostgreSQL backends serving the bench database (db), read from /proc before and after each round, "
        "divided by the requests wrk completed; other load on the machine does not inflate it. Queries: one "
        "request's SQL statements counted in process (Django test client, same settings).",
        "",
        "| figure | req/s | % of ceiling | p50 ms | p99 ms | app CPU ms/req | db CPU ms/req | queries | "
        "non-2xx/3xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in rows:
        ratio = ""
        if f.ceiling:
            ratio = (
                f"{100 * med(f, 'rps') / med(by_name[f.ceiling], 'rps'):.1f} % of {f.ceiling.split(': ')[1]}"
            )
        lines.append(
            f"| {f.name} | {rate(med(f, 'rps'))} | {ratio} | {med(f, 'p50'):.1f} | {med(f, 'p99'):.1f} | "
            f"{med(f, 'app_ms'):.2f} | {med(f, 'db_ms'):.2f} | {f.queries if f.queries is not None else ''} | "
            f"{sum(int(r['bad']) for r in f.rounds)} |"
        )
    lines += ["", "Every round, requests/s:", ""]
    for f in rows:
        lines.append(f"- {f.name}: " + ", ".join(rate(r["rps"]) for r in f.rounds))
    if not rows:
        web_only = (
            "| figure",
            "|---",
            "Every round",
            "- PostgreSQL",
            "- gunicorn",
            "- wrk",
            "- size",
            "Medians",
        )
        lines = [line for line in lines if not line.startswith(web_only)]
    text = "\n".join(lines) + "\n"
    if meta["runs"]:
        text += scripts_section(args, meta["runs"])
    # The hand-written analysis under "## Notes" survives a new run.
    notes = path.read_text().partition("\n## Notes")[2] if path.exists() else ""
    path.write_text(text + ("\n## Notes" + notes if notes else ""))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=list(SIZES), default="quick")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_SERVER", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--database", default="incidentdesk_bench_suite")
    parser.add_argument("--incidents", type=int)
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="reuse the database if it exists")
    parser.add_argument("--only", help="run only the figures whose name contains this (and the ceilings)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="leave out the figures whose name contains this (repeatable)",
    )
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument(
        "--with-scripts", action="store_true",
        help="then run the sweep, recurrence, import and report scripts (SCRIPTS) and add their outputs",
    )  # fmt: skip
    parser.add_argument("--scripts-only", action="store_true", help="the scripts alone, no web figures")
    parser.add_argument("--script-timeout", type=int, default=1200, help="seconds before a script is stopped")
    parser.add_argument(
        "--plain-fill", action="store_true",
        help="fill with every trigger and index on, row by row (bench/fill.py), to compare with the fast fill",
    )  # fmt: skip
    parser.add_argument(
        "--no-report-triggers", action="store_true",
        help="the per-day reporting triggers off during the run, to compare what they cost each write",
    )  # fmt: skip
    args = parser.parse_args()
    for key, value in SIZES[args.size].items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    clock = time.perf_counter()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    rows: list[Figure] = []
    meta: dict[str, Any] = {"postgres": "", "gunicorn": "", "fill": {}}
    if not args.scripts_only:
        rows, web = run_web(args)
        meta.update(web)
    web_seconds = time.perf_counter() - clock
    runs = run_scripts(args, base_env) if args.with_scripts or args.scripts_only else []
    meta.update(
        {
            "started": started,
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
            "machine": machine(),
            "load_before": load_before,
            "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "command": shlex.join([".venv/bin/python", "bench/suite.py", *sys.argv[1:]]),
            "web_seconds": web_seconds,
            "total_seconds": time.perf_counter() - clock,
            "runs": runs,
        }
    )
    print()
    print(write_results(Path(args.results), args, rows, meta))


def run_web(args: argparse.Namespace) -> tuple[list[Figure], dict[str, Any]]:
    """Fill, start gunicorn, run every figure in interleaved rounds; the figures with their rounds."""
    os.environ.update(server_env(args))
    data = setup_database(args)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    connection.close()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gunicorn = [
        sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(args.workers), "--bind",
        f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "120",
    ]  # fmt: skip
    server = subprocess.Popen(gunicorn, cwd=ROOT, env=server_env(args), start_new_session=True)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/bench/ceiling/json/", timeout=5)
                break
            except OSError:
                time.sleep(0.2)
        session, csrf_cookie, csrf_token = login_cookies(base)
        rows = figures(data, session, csrf_cookie, csrf_token)
        if args.only:
            rows = [f for f in rows if f.name.startswith("ceiling") or args.only.lower() in f.name.lower()]
        for skipped in args.skip:
            rows = [f for f in rows if skipped.lower() not in f.name.lower()]
        for figure in rows:
            check(base, figure)
            figure.queries = count_queries(figure)
        connection.close()
        admin_url = f"{args.server}/postgres"
        with tempfile.TemporaryDirectory() as tmp:
            warm_up = argparse.Namespace(**{**vars(args), "seconds": 1})
            for figure in rows:  # every worker imports and caches what the figure needs; not recorded
                run_wrk(base, figure, warm_up, Path(tmp))
                drain(server.pid, admin_url, args.database)
            for round_number in range(args.rounds):
                for figure in rows:
                    drain(server.pid, admin_url, args.database)
                    before = snapshot(server.pid, admin_url, args.database)
                    result = parse_wrk(run_wrk(base, figure, args, Path(tmp)))
                    after = snapshot(server.pid, admin_url, args.database)
                    result["app_ms"] = 1000 * spent(before[0], after[0]) / max(result["requests"], 1)
                    result["db_ms"] = 1000 * spent(before[1], after[1]) / max(result["requests"], 1)
                    figure.rounds.append(result)
                    print(
                        f"round {round_number + 1}/{args.rounds} {figure.name:34} {result['rps']:8.1f} req/s "
                        f"p50 {result['p50']:7.1f} p99 {result['p99']:7.1f} ms  app {result['app_ms']:6.2f} "
                        f"db {result['db_ms']:6.2f} ms/req  bad {result['bad']}",
                        flush=True,
                    )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    return rows, {
        "postgres": postgres,
        "gunicorn": shlex.join(["gunicorn", *gunicorn[3:]]),
        "fill": data["fill"],
    }


if __name__ == "__main__":
    main()
