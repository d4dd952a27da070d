"""Throughput of POST /api/v1/events/ `trigger` on PostgreSQL, with and without dedup hits.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench .venv/bin/python bench/events_throughput.py

Requests go through Django's whole stack in process (middleware, DRF parsing and validation, routing-key
lookup, throttle, the domain and its transaction) with the test client: server time without the network.
Runs, each with its own integration (complete mapping, so new incidents open classified with SLA clocks):

- new: every trigger has its own dedup_key, so each opens (and classifies) an incident;
- hit: every trigger has the same dedup_key, so each adds an alert to one open incident;
- and both again from --threads threads at once (one connection each): `hit` then contends for one row.

Each line gives events per second, the app's CPU per event (this process: Django, DRF, the domain; not
PostgreSQL's) and the load average; the 1-thread lines also the CPU of the PostgreSQL backend serving them
(from /proc: the server must run on this machine) and the statements per event (all of them, what runs
after commit included; BEGIN and COMMIT are not statements Django runs).

Use a database made for the bench: it is migrated and its intake and incident rows are added to, never read.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("BENCH_CEILING_VIEWS", "1")  # the bare one-insert view, the ceiling of the same run

import django  # noqa: E402


def make_integration(label: str):
    from escalation.models import EscalationPolicy, EscalationStep, SlaPolicy
    from incidents.models import Category, Domain, Team
    from intake import events
    from intake.models import Integration

    domain = Domain.objects.get(slug="it_service")
    category, _ = Category.objects.get_or_create(
        domain=domain, slug="bench-events", defaults={"name": "Bench"}
    )
    team, _ = Team.objects.get_or_create(slug="bench-events", defaults={"name": "Bench events"})
    team.domains.add(domain)
    # What a desk has configured: an SLA policy for P1 (response and resolution clocks with their warnings and
    # breaches) and the team's escalation ladder (its first step armed at once).
    ladder, made = EscalationPolicy.objects.get_or_create(
        team=team, defaults={"slug": "bench-events", "name": "Bench"}
    )
    if made:
        EscalationStep.objects.create(policy=ladder, position=1, trigger="unacknowledged", delay_minutes=5)
    SlaPolicy.objects.get_or_create(
        name="Bench P1",
        defaults={"priority": 1, "domain": domain, "response_minutes": 15, "resolution_minutes": 240},
    )
    integration = Integration(
        slug=f"bench-{label}-{uuid.uuid4().hex[:6]}", name=f"Bench {label}", domain=domain, category=category,
        team=team, rate_limit_per_minute=10_000_000,
    )  # fmt: skip
    key = integration.set_new_key()
    integration.save()
    events.service_user(integration)
    return key


def send(key: str, count: int, dedup, barrier: threading.Barrier | None = None) -> None:
    from django.db import connection
    from rest_framework.test import APIClient

    client = APIClient()
    if barrier is not None:
        barrier.wait()
    try:
        for n in range(count):
            body = {
                "routing_key": key,
                "event_action": "trigger",
                "dedup_key": dedup(n),
                "payload": {"summary": "Checkout 5xx over 5 %", "source": "lb1", "severity": "critical"},
            }
            response = client.post("/api/v1/events/", body, format="json")
            if response.status_code != 202:
                raise SystemExit(f"answered {response.status_code}: {response.content[:300]!r}")
    finally:
        if barrier is not None:
            connection.close()


def _backend_cpu() -> float:
    """CPU seconds of this thread's PostgreSQL backend (the server is on this machine), from /proc."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(label: str, events_total: int, threads: int, same_key: bool) -> None:
    from django.db import connection

    key = make_integration(label)
    prefix = uuid.uuid4().hex[:8]
    statements = [0]

    def count(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    def dedup_for(worker: int):
        return (lambda n: f"{prefix}-same") if same_key else (lambda n: f"{prefix}-{worker}-{n}")

    per_thread = events_total // threads
    cpu = time.process_time()
    start = time.perf_counter()
    db_cpu = None
    if threads == 1:
        send(key, 1, lambda n: f"{prefix}-warm-up")  # the configuration is read once, by the first event
        db_before = _backend_cpu()
        cpu, start = time.process_time(), time.perf_counter()
        with connection.execute_wrapper(count):
            send(key, events_total, dedup_for(0))
        db_cpu = _backend_cpu() - db_before
    else:
        barrier = threading.Barrier(threads)
        workers = [
            threading.Thread(target=send, args=(key, per_thread, dedup_for(w), barrier))
            for w in range(threads)
        ]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    total = per_thread * threads if threads > 1 else events_total
    db = (
        f"  {db_cpu / total * 1000:5.2f} ms PostgreSQL CPU  {statements[0] / total:5.1f} statements"
        if db_cpu is not None
        else ""
    )
    print(
        f"{label:<24} {total:>6} events  {elapsed:7.2f} s  {total / elapsed:8.1f} events/s  "
        f"{cpu / total * 1000:6.2f} ms app CPU per event{db}  load average {os.getloadavg()[0]:.1f}"
    )


def ceiling(total: int) -> None:
    """The bare one-insert view (config.ceiling) through the same client and stack: what an event could cost
    at least (Django's middleware and one ORM INSERT in autocommit)."""
    from rest_framework.test import APIClient

    client = APIClient()
    body = {"title": "ceiling", "description": "", "reporter_email": "bench@example.org"}
    client.post("/bench/ceiling/insert/", body, format="json")
    db_before, cpu, start = _backend_cpu(), time.process_time(), time.perf_counter()
    for _ in range(total):
        if client.post("/bench/ceiling/insert/", body, format="json").status_code != 201:
            raise SystemExit("the ceiling view did not answer 201")
    elapsed, cpu, db_cpu = time.perf_counter() - start, time.process_time() - cpu, _backend_cpu() - db_before
    print(
        f"{'ceiling: one-insert view':<24} {total:>6} events  {elapsed:7.2f} s  {total / elapsed:8.1f} events/s  "
        f"{cpu / total * 1000:6.2f} ms app CPU per event  {db_cpu / total * 1000:5.2f} ms PostgreSQL CPU  "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database made for the bench.")
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    print(
        f"PostgreSQL {connection.cursor().connection.server_version}, {os.cpu_count()} CPUs, in-process test client"
    )
    ceiling(args.events)
    run("new (1 thread)", args.events, 1, same_key=False)
    run("hit (1 thread)", args.events, 1, same_key=True)
    run(f"new ({args.threads} threads)", args.events, args.threads, same_key=False)
    run(f"hit ({args.threads} threads)", args.events, args.threads, same_key=True)


if __name__ == "__main__":
    main()
