"""Throughput of ``import_incidents`` on PostgreSQL, in timeline events written per second.

    .venv/bin/python bench/import_throughput.py --incidents 100000
    .venv/bin/python bench/import_throughput.py --incidents 100000 --server postgres://postgres@127.0.0.1:5432

Creates the database ``incidentdesk_bench_import`` on the server (dropped first if it is there, and dropped
again at the end unless --keep-db), migrates it, and generates N incidents with their histories (2 to 8
events each: every state, reopens, holds and escalations, Markdown descriptions, three domains, teams and
categories). It then times, through the management command exactly as an operator runs it (no progress bar):

1. the JSON Lines import into the empty database;
2. the same file again (everything already imported: the idempotency check alone);
3. the same histories as a gzip-compressed CSV event log written as another tool writes it (one row per
   event, rows of all cases interleaved by time, its own state names, "2 - Medium", "?" for unknown, group
   names), read by a mapping with value maps, a number pattern, null tokens and a team map, under other ids.

Each import prints its wall time, its time waiting for PostgreSQL, the importer's process CPU and the load
average; "events per CPU-second" is the figure that the machine's load does not distort. --profile FOLDER
writes a cProfile of each import (cProfile inflates pure-Python code about twofold: compare its shares, not
its seconds). BENCH_IMPORT_DB names another database, to run two benchmarks side by side.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
DB_NAME = os.environ.get("BENCH_IMPORT_DB", "incidentdesk_bench_import")

# Histories as the other tool recorded them (state names of the desk).
PATHS = [
    ["received", "classified", "responding", "resolved", "closed"],
    ["received", "classified", "responding", "on_hold", "responding", "resolved", "closed"],
    ["received", "classified", "escalated", "responding", "resolved", "responding", "resolved", "closed"],
    ["received", "cancelled"],
    ["received", "classified", "responding"],
    ["received", "classified", "escalated", "on_hold", "escalated", "resolved", "closed", "closed"],
    ["received", "classified", "responding", "resolved"],
]
DOMAINS = [
    ("it_service", "network/vpn", "desk"),
    ("security", "phishing", "soc"),
    ("medical", "falls", "ward"),
]


def histories(n: int, seed: int = 7):
    """(external_id, document) for n incidents, deterministic."""
    rng = random.Random(seed)  # noqa: S311 - bench data, not a secret
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        domain, category, team = DOMAINS[i % 3]
        at = start + timedelta(minutes=i * 5)
        events = []
        for step, state in enumerate(PATHS[i % len(PATHS)]):
            event: dict[str, object] = {"at": at.isoformat(), "state": state}
            if step == 1 and state == "classified":
                event.update(impact=1 + i % 3, urgency=1 + (i // 3) % 3)
            if state == "resolved":
                event["resolution_summary"] = "Restarted the service"
            events.append(event)
            at += timedelta(minutes=rng.randint(1, 600))
        yield {
            "external_id": f"OLD-{i}",
            "title": f"Incident {i}: service degraded",
            "description": f"**Reported** by the monitoring of host `srv-{i % 500}`.\n\n- seen at {events[0]['at']}",
            "domain": domain,
            "category": category,
            "team": team if len(events) > 2 else "",
            "assignee": f"agent{i % 20}",
            "reporter": f"user{i % 1000}@example.org",
            "events": events,
        }


def write_jsonl(path: Path, n: int) -> int:
    events = 0
    with path.open("w", encoding="utf-8") as out:
        for doc in histories(n):
            events += len(doc["events"])
            out.write(json.dumps(doc) + "\n")
    return events


LEVELS = {1: "1 - High", 2: "2 - Medium", 3: "3 - Low"}


def write_csv_log(path: Path, n: int) -> Path:
    """A gzip-compressed event log written as another tool writes it: its own state names, impact as
    "2 - Medium", "?" for unknown, group names for teams, a sequence column; read by a mapping that uses
    value maps, a number pattern, null tokens, a team map and a time format."""
    rows = []
    names = {"received": "New", "classified": "Assigned", "responding": "Active", "escalated": "Escalated",
             "on_hold": "Awaiting User Info", "resolved": "Resolved", "closed": "Closed", "cancelled": "Canceled"}  # fmt: skip
    for doc in histories(n):
        for k, event in enumerate(doc["events"]):
            at = datetime.fromisoformat(event["at"])
            rows.append(
                {
                    "case": "CSV-" + doc["external_id"],
                    "time": at.strftime("%d/%m/%Y %H:%M:%S"),
                    "sort": event["at"],
                    "seq": k,
                    "status": names[event["state"]],
                    "subject": doc["title"] if k == 0 else "?",
                    "kind": doc["domain"] if k == 0 else "?",
                    "cat": doc["category"] if k == 0 else "?",
                    "group": f"Group {doc['team']}" if k == 0 and doc["team"] else "?",
                    "impact": LEVELS[event["impact"]] if "impact" in event else "?",
                    "urgency": LEVELS[event["urgency"]] if "urgency" in event else "?",
                }
            )
    rows.sort(key=lambda r: r["sort"])  # an event log sorted by time: the cases interleave
    with gzip.open(path.with_suffix(".csv.gz"), "wt", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[k for k in rows[0] if k != "sort"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    groups = "".join(f"    Group {team}: {team}\n" for _, _, team in DOMAINS)
    states = "".join(f"  {name}: {state}\n" for state, name in names.items())
    (path.parent / "mapping.yaml").write_text(
        "case_id: case\ntimestamp: time\nstate: status\nsequence: seq\n"
        "timestamp_format: ['%d/%m/%Y %H:%M:%S']\nnull_values: ['?']\n"
        f"state_values:\n{states}"
        "fields:\n  title: subject\n  domain: kind\n  category: cat\n  team: group\n"
        "  impact: {column: impact, pattern: '^(\\d)'}\n  urgency: {column: urgency, pattern: '^(\\d)'}\n"
        f"teams:\n  missing: error\n  map:\n{groups}"
    )
    return path.with_suffix(".csv.gz")


def admin_connection(server: str):
    import psycopg2

    conn = psycopg2.connect(f"{server.rstrip('/')}/postgres")
    conn.autocommit = True
    return conn


def recreate_database(server: str) -> None:
    conn = admin_connection(server)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        cur.execute(f"CREATE DATABASE {DB_NAME}")
    conn.close()


def drop_database(server: str) -> None:
    conn = admin_connection(server)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    conn.close()


PROFILE: list[str] = []  # a folder: write a cProfile of each timed import there


def timed_import(*args: str) -> tuple[float, str]:
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.db import connection

    waited = [0.0]

    def in_database(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            waited[0] += time.perf_counter() - began

    out, err = StringIO(), StringIO()
    profiler = None
    if PROFILE:
        import cProfile

        profiler = cProfile.Profile()
    backend = _backend_pid()
    pg_cpu = _pg_cpu(backend)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        with connection.execute_wrapper(in_database):
            if profiler is not None:
                profiler.enable()
            try:
                call_command("import_incidents", *args, "--no-progress", stdout=out, stderr=err)
            finally:
                if profiler is not None:
                    profiler.disable()
    except CommandError as error:
        raise SystemExit(f"import failed: {error}\n{err.getvalue()[:2000]}") from error
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    pg_cpu = _pg_cpu(backend) - pg_cpu
    if profiler is not None:
        target = Path(PROFILE[0]) / f"import-{len(list(Path(PROFILE[0]).glob('import-*.prof')))}.prof"
        profiler.dump_stats(target)
        print(f"  profile written to {target}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"  wall {seconds:.1f} s: waiting for PostgreSQL {waited[0]:.1f} s, importer process CPU {cpu:.1f} s, "
        f"PostgreSQL backend CPU {pg_cpu:.1f} s; load average {load} on {os.cpu_count()} CPUs"
    )
    LAST_CPU[0] = cpu
    LAST_PG_CPU[0] = pg_cpu
    return seconds, out.getvalue().strip()


LAST_CPU = [
    0.0
]  # process CPU seconds of the last timed import: the figure that machine load does not distort


LAST_PG_CPU = [0.0]  # CPU seconds of the PostgreSQL backend that served the last timed import


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _pg_cpu(pid: int) -> float:
    """User plus system CPU seconds of a PostgreSQL backend (it runs on this machine), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def setup_configuration() -> None:
    from incidents.models import Category, Domain, Team

    for slug, path, team in DOMAINS:
        domain = Domain.objects.get(slug=slug)
        Team.objects.create(slug=team, name=team.title()).domains.add(domain)
        parent = None
        for part in path.split("/"):
            parent = Category.objects.create(domain=domain, parent=parent, slug=part, name=part.title())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument(
        "--profile", metavar="FOLDER", help="write a cProfile of each timed import into FOLDER"
    )
    args = parser.parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        PROFILE.append(args.profile)

    recreate_database(args.server)
    os.environ["DATABASE_URL"] = f"{args.server.rstrip('/')}/{DB_NAME}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from incidents.models import Incident, TimelineEntry

    try:
        call_command("migrate", verbosity=0)
        setup_configuration()
        with tempfile.TemporaryDirectory() as folder:
            jsonl = Path(folder) / "incidents.jsonl"
            t0 = time.perf_counter()
            events = write_jsonl(jsonl, args.incidents)
            print(
                f"generated {args.incidents:,} incidents, {events:,} events in {time.perf_counter() - t0:.1f} s"
            )

            seconds, summary = timed_import(str(jsonl))
            written = TimelineEntry.objects.count()
            print(f"JSON Lines import: {seconds:.1f} s, {written / seconds:,.0f} events/s, "
                  f"{Incident.objects.count() / seconds:,.0f} incidents/s, "
                  f"{written / LAST_CPU[0]:,.0f} events per importer CPU-second, "
                  f"{written / (LAST_CPU[0] + LAST_PG_CPU[0]):,.0f} per importer+PostgreSQL CPU-second  ({summary})")  # fmt: skip

            seconds, summary = timed_import(str(jsonl))
            print(f"re-import of the same file: {seconds:.1f} s, {args.incidents / seconds:,.0f} incidents/s checked "
                  f"({summary})")  # fmt: skip

            if not args.skip_csv:
                log = write_csv_log(Path(folder) / "events.csv", args.incidents)
                before = TimelineEntry.objects.count()
                seconds, summary = timed_import(str(log), "--mapping", str(Path(folder) / "mapping.yaml"))
                written = TimelineEntry.objects.count() - before
                print(f"CSV event log import: {seconds:.1f} s, {written / seconds:,.0f} events/s, "
                      f"{written / LAST_CPU[0]:,.0f} events per importer CPU-second, "
                  f"{written / (LAST_CPU[0] + LAST_PG_CPU[0]):,.0f} per importer+PostgreSQL CPU-second ({summary})")  # fmt: skip
    finally:
        connection.close()
        if not args.keep_db:
            drop_database(args.server)


if __name__ == "__main__":
    main()
