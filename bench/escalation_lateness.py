"""How late escalation timers fire and their notifications arrive, with real processes, and under faults.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench .venv/bin/python bench/escalation_lateness.py
    DATABASE_URL=... .venv/bin/python bench/escalation_lateness.py --only breaches --breaches 1000

Like the test runner, it creates its own database test_<NAME> beside the one DATABASE_URL names (migrated,
emptied between runs, dropped at the end), and every run starts its own redis-server on a free loopback
port, an SMTP server (aiosmtpd) and a webhook receiver in this process, and, as Procfile.dev runs them, a
delivery `celery worker` (--concurrency processes, 4 by default) and a sweep worker (1 process), and `celery beat` (sweep every 1 s, back-off 1,2,4 s, lease 5 s) as child processes: see
tests/escalation/processes.py. The runs are the scenarios of tests/escalation/test_real_worker.py at a
larger size:

  breaches     N P1 incidents whose response target breaches at one instant (and warns 1 % before)
  ladder       20 P1 incidents nobody acknowledges: warning, step 1, breach, step 2, step 3
  worker-kill  SIGKILL the pool children mid-delivery, then the main process and its children (restart 1 s)
  redis-kill   SIGKILL Redis (no persistence) with prompts queued, use the API while it is down, restart it
  beat         beat SIGKILLed for 30 s while steps come due, then two beats at once
  webhook-down a receiver answering 503 until each delivery failed 3 times

For each: fired - due (fired_at and due_at, both the database's clock) and delivered - due (first arrival
at the SMTP server or webhook receiver, this machine's clock), as p50/p99/max, and the correctness counts
(outbox rows never delivered, delivered twice, delivered without a row).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

RUNS = ["breaches", "ladder", "worker-kill", "redis-kill", "beat", "webhook-down"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", choices=RUNS, help="run only these (repeatable)")
    parser.add_argument("--breaches", type=int, default=1000, help="incidents breaching at one instant")
    parser.add_argument(
        "--factor", type=float, default=4.0, help="breach instant: this many times the estimated setup ahead"
    )
    parser.add_argument(
        "--distinct-titles", action="store_true", help="breaches: a title of its own for each incident"
    )
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="breaches: two incidents through the services, the rest copied from them set-wise (the setup "
        "of 10,000 through the services takes hours on a loaded machine; the sweep and delivery are measured)",
    )
    parser.add_argument("--incidents", type=int, default=20, help="incidents per fault run")
    parser.add_argument("--beat-down", type=float, default=30.0, help="seconds without beat")
    parser.add_argument("--redis-down", type=float, default=10.0, help="seconds without Redis")
    parser.add_argument("--concurrency", type=int, default=4, help="pool processes of the delivery worker")
    parser.add_argument(
        "--shared-queue",
        action="store_true",
        help="no sweeper worker: every worker takes the sweep and the deliveries (the old layout)",
    )
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (the bench creates and drops test_<NAME> there).")

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from tests.escalation import test_real_worker as scenarios
    from tests.escalation.processes import Stack, database_url, have_aiosmtpd, have_redis_server

    if not (have_redis_server() and have_aiosmtpd()):
        sys.exit("Needs redis-server on PATH and aiosmtpd (pip install -e '.[dev]').")
    old_config = setup_databases(verbosity=1, interactive=False, serialized_aliases=["default"])
    print(f"database {connection.settings_dict['NAME']}; load average {os.getloadavg()}")
    n = args.incidents
    runs: dict[str, tuple[str, Callable[..., Any]]] = {
        "breaches": (
            f"{args.breaches} P1 incidents breaching at one instant",
            lambda stack: scenarios.run_simultaneous_breaches(
                stack,
                incidents=args.breaches,
                factor=args.factor,
                margin=15,
                distinct_titles=args.distinct_titles,
                bulk=args.bulk,
            ),
        ),
        "ladder": (f"{n} unacknowledged P1 ladders", lambda stack: scenarios.run_ladder(stack, incidents=n)),
        "worker-kill": (
            f"worker SIGKILL mid-delivery, {n} incidents per kill",
            lambda stack: scenarios.run_worker_kills(stack, incidents=n),
        ),
        "redis-kill": (
            f"Redis SIGKILL for {args.redis_down:.0f} s, {n} + {n // 2} incidents",
            lambda stack: scenarios.run_redis_kill(stack, incidents=n, down=args.redis_down),
        ),
        "beat": (
            f"beat SIGKILL for {args.beat_down:.0f} s, then two beats; {n} + {n} incidents",
            lambda stack: scenarios.run_beat_faults(stack, incidents=n, down=args.beat_down),
        ),
        "webhook-down": (
            "webhook 503 until 3 failures each",
            lambda stack: scenarios.run_webhook_down(stack),
        ),
    }
    try:
        for name in args.only or RUNS:
            title, scenario = runs[name]
            print(f"\n== {name}: {title}", flush=True)
            started = time.monotonic()
            logged = counting("incidents.lifecycle", "escalation.engine")
            with tempfile.TemporaryDirectory() as tmp, scenarios.Receiver() as receiver:
                stack = Stack(
                    Path(tmp),
                    database_url(connection.settings_dict),
                    receiver=receiver,
                    concurrency=args.concurrency,
                    sweeper=not args.shared_queue,
                )
                with stack, Sampler(stack, connection.settings_dict["NAME"]) as sampler:
                    try:
                        run = scenario(stack)
                    except Exception:
                        traceback.print_exc()
                        print(stack.logs()[-3000:])
                        run = None
                    if run is not None:
                        report(name, run, scenarios)
                        if name == "breaches":
                            sampler.report(run)
            if logged.records:
                print(f"   logged (not raised) while enqueueing: {dict(logged.records)}")
            print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
            reset(connection)
    finally:
        teardown_databases(old_config, verbosity=1)


class Counting(logging.Handler):
    """Counts what the web side and the sweeper log instead of failing (enqueue errors while Redis is down)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records[f"{record.name}: {record.msg}"] += 1  # per message template


def counting(*names: str) -> Counting:
    handler = Counting()
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    return handler


def report(name: str, run: Any, scenarios: Any) -> None:
    from escalation.models import Notification
    from tests.escalation.processes import describe

    late = run.lateness()
    print(f"   fired - due      {describe(late['fired'])}")
    print(f"   delivered - due  {describe(late['delivered'])}")
    if name == "breaches":
        only = run.lateness(("sla_breach",))
        print(f"   breaches only: fired - due {describe(only['fired'])}")
        print(f"                  delivered - due {describe(only['delivered'])}")
    rows = run.rows()
    duplicates = run.duplicates()
    print(
        f"   outbox rows {len(rows)}, never delivered {len(run.missing())}, delivered twice {len(duplicates)}, "
        f"without a row {len(run.unexpected())}, not sent {sum(r.state != 'sent' for r in rows)}"
    )
    notes = run.notes
    if name == "breaches":
        print(f"   setup: {notes}")
        # CPU time is what other load on the machine does not inflate (their start-up included).
        workers = cpu_seconds([pid for child in run.stack.workers for pid in (child.pid, *child.children())])
        sweepers = cpu_seconds(
            [pid for child in run.stack.sweepers for pid in (child.pid, *child.children())]
        )
        print(
            f"   CPU: delivery workers {workers:.1f} s ({workers / max(len(rows), 1) * 1000:.2f} ms per outbox row), "
            f"sweeper {sweepers:.1f} s"
        )
    elif name == "worker-kill":
        for kill in notes["kills"]:
            print(
                f"   kill {kill['what']}: in flight {kill['in_flight']}, recovered {kill['recovery_s']:.1f} s after"
            )
        print(
            f"   duplicates {len(duplicates)} (all among the in-flight: {set(duplicates) <= notes['in_flight']})"
        )
    elif name == "redis-kill":
        calls = ", ".join(
            f"{what} {status} {seconds * 1000:.0f} ms" for what, status, seconds in notes["calls"]
        )
        print(f"   API while Redis was down: {calls}")
        print(
            f"   down {notes['down_s']:.1f} s; prompts lost with Redis {notes['lost_prompts']}; "
            f"everything delivered {notes['drained_s']:.1f} s after the restart"
        )
        print(
            f"   processes that exited by themselves (restarted as compose would): {notes['crashes'] or 'none'}"
        )
    elif name == "beat":
        first = scenarios.lateness(run.stack, notes["first"])
        second = scenarios.lateness(run.stack, notes["second"])
        print(f"   due while beat was down: delivered - due {describe(first['delivered'])}")
        print(f"   with two beats:          delivered - due {describe(second['delivered'])}")
        print(f"   sweeps sent by each live beat: {notes['sweeps_sent_by_live_beats']}")
    elif name == "webhook-down":
        hooks = Notification.objects.filter(incident_id__in=run.incidents, webhook=notes["hook"])
        for row in hooks:
            times = sorted((a["at"], a["status"]) for a in notes["attempts"] if a["key"] == row.key)
            offsets = ", ".join(f"+{at - times[0][0]:.1f}s:{status}" for at, status in times)
            print(
                f"   {row.key[:12]}: attempts {offsets}; delivered {times[-1][0] - notes['recovered']:.1f} s after recovery"
            )
        dead = Notification.objects.filter(incident_id__in=run.incidents, webhook=notes["gone"])
        print(
            f"   never-recovering endpoint (its rows are the ones never delivered): {[(r.state, r.attempts) for r in dead]}"
        )


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (/proc/PID/stat, fields 14 and 15)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Every 0.5 s: the CPU seconds used so far by each part of the stack (sweeper, delivery workers, this
    process: the SMTP sink, the receiver and the poller; the PostgreSQL backends of the test database; Redis;
    beat) and the machine's busy time (/proc/stat). `report` prints, for the window from the first due time
    to the last arrival, what each part used of the 2 cores, and how much of the machine stood idle."""

    def __init__(self, stack: Any, database: str) -> None:
        self.stack, self.database = stack, database
        self.samples: list[tuple[float, dict[str, float], float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def groups(self) -> dict[str, list[int]]:
        def tree(children: list[Any]) -> list[int]:
            return [pid for child in children if child.alive() for pid in (child.pid, *kids(child.pid))]

        def kids(pid: int) -> list[int]:
            try:
                return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except OSError:
                return []

        backends = []
        marker = f" {self.database} ".encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if cmdline.startswith(b"postgres: ") and marker in cmdline:
                    backends.append(int(entry.name))
        redis = self.stack.redis.child
        return {
            "sweeper": tree(self.stack.sweepers),
            "delivery": tree(self.stack.workers),
            "beat": tree(self.stack.beats),
            "bench (SMTP sink, poller)": [os.getpid()],
            "postgres (test db)": backends,
            "redis": [redis.pid] if redis is not None and redis.alive() else [],
        }

    def loop(self) -> None:
        groups: dict[str, list[int]] = {}
        found = 0.0
        while not self.stop.is_set():
            with suppress(Exception):
                if time.monotonic() - found > 3:  # finding the processes costs more than reading them
                    groups, found = self.groups(), time.monotonic()
                cpu = {name: cpu_seconds(pids) for name, pids in groups.items()}
                fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
                idle = (fields[3] + fields[4]) / os.sysconf("SC_CLK_TCK")
                total = sum(fields[:8]) / os.sysconf("SC_CLK_TCK")
                self.samples.append((time.time(), cpu, idle, total))
            self.stop.wait(0.5)

    def report(self, run: Any) -> None:
        from tests.escalation.processes import arrivals

        due = run.notes["breach_at"].timestamp() - 1  # the warnings are due just before
        seen = arrivals(run.stack)
        if not seen or len(self.samples) < 2:
            return
        last = max(min(times) for times in seen.values())
        inside = [s for s in self.samples if due - 0.5 <= s[0] <= last + 0.5]
        if len(inside) < 2:
            return
        (t0, cpu0, idle0, total0), (t1, cpu1, idle1, total1) = inside[0], inside[-1]
        wall = t1 - t0
        parts = ", ".join(f"{name} {cpu1.get(name, 0) - cpu0.get(name, 0):.1f} s" for name in cpu1)
        ours = sum(cpu1.get(name, 0) - cpu0.get(name, 0) for name in cpu1)
        cores = os.cpu_count() or 1
        print(
            f"   window due-1s .. last arrival: {wall:.1f} s wall x {cores} cores = {wall * cores:.1f} core-s"
        )
        print(
            f"   CPU in the window: {parts}; ours {ours:.1f} s ({ours / (wall * cores) * 100:.0f} % of the cores)"
        )
        print(
            f"   machine: idle {(idle1 - idle0) / (total1 - total0) * 100:.0f} %, others "
            f"{max(0.0, (total1 - total0) - (idle1 - idle0) - ours):.1f} core-s; "
            f"load average {os.getloadavg()}"
        )


def reset(connection: Any) -> None:
    """Empty every table and put back what the migrations put in (as TransactionTestCase does)."""
    from django.core.management import call_command

    call_command("flush", verbosity=0, interactive=False, inhibit_post_migrate=True)
    connection.creation.deserialize_db_from_string(connection._test_serialized_contents)


if __name__ == "__main__":
    main()
