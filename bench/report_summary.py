"""Server-side latency of the report summary (GET /api/v1/reports/summary/) at scale, on PostgreSQL.

    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE incidentdesk_bench_reports'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench_reports \\
        .venv/bin/python bench/report_summary.py --incidents 1000000 --keep

Fills the database the way bench/api_latency.py does (its users and team setup, one INSERT ... SELECT
generate_series, one incident a minute back in time), but with a desk's life cycle: the milestone
timestamps a report reads (classified, responded, escalated, resolved, closed, cancelled), SLA due times and
statuses, reopens, outcomes, problems and satisfaction ratings. Only the last few thousand incidents are still
open, as on a real desk. Then it times the summary through Django's whole stack in process (middleware, session,
DRF; no network) for several periods and filters, and prints p50/p95/max and the query count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

# The newest OPEN_TAIL incidents go through every state; older ones are closed (one in twenty cancelled,
# one in 997 still on hold): a backlog of a few thousand, as a desk has.
FILL_SQL = """
INSERT INTO incidents_incident (
    title, description, description_html, state, domain_id, category_id, outcome, harm_level, impact, urgency,
    priority, priority_override_reason, channel, reporter_id, reporter_email, confidential, tracking_token,
    team_id, escalation_level, reopen_count, hold_reason, held_from, received_at, classified_at, responded_at,
    acknowledged_at, escalated_at, resolved_at, closed_at, cancelled_at, response_due_at, resolution_due_at,
    created_at, updated_at, version, resolution_summary, cause, measures, resolution_code, auto_closed,
    cancel_reason, sla_response, sla_resolution, problem_id, assignee_name, history_started_late, reporter_name
)
SELECT
    title, 'Reported by the bench: ' || md5(g::text), '<p>bench</p>', state, domain_id, category_id, outcome, '',
    impact, urgency, priority, '', 'api', reporter_id, '', g %% 17 = 0, md5(g::text || 'token'), team_id,
    CASE WHEN state = 'escalated' OR (responded IS NOT NULL AND g %% 7 = 0) THEN 1 ELSE 0 END,
    CASE WHEN resolved IS NOT NULL AND g %% 23 = 0 THEN 1 ELSE 0 END,
    CASE WHEN state = 'on_hold' THEN 'awaiting_vendor' ELSE '' END,
    CASE WHEN state = 'on_hold' THEN 'responding' ELSE '' END,
    received, classified, responded, responded,
    CASE WHEN state = 'escalated' OR (responded IS NOT NULL AND g %% 7 = 0) THEN responded END,
    resolved, CASE WHEN state = 'closed' THEN LEAST(resolved + interval '1 day', now()) END,
    CASE WHEN state = 'cancelled' THEN received + interval '30 minutes' END,
    received + priority * interval '60 minutes', received + priority * interval '8 hours',
    received, now(), 1, '', '', '', CASE WHEN state = 'closed' THEN 'fixed' ELSE '' END, false,
    CASE WHEN state = 'cancelled' THEN 'duplicate' ELSE '' END,
    CASE WHEN state = 'cancelled' THEN ''
         WHEN responded IS NULL THEN 'pending'
         WHEN responded <= received + priority * interval '60 minutes' THEN 'met' ELSE 'breached' END,
    CASE WHEN state = 'cancelled' THEN ''
         WHEN resolved IS NULL THEN 'pending'
         WHEN resolved <= received + priority * interval '8 hours' THEN 'met' ELSE 'breached' END,
    CASE WHEN g %% 41 = 0 THEN %(first_problem)s + (g / 41) %% 50 END, '', false, ''
FROM (
    SELECT g, s.state, received, d.id AS domain_id, c.id AS category_id, t.id AS team_id,
        (ARRAY['VPN drops', 'Printer jam', 'Phishing mail', 'Wrong dose', 'Mail delayed', 'Laptop stolen'])
            [1 + g %% 6] || ' #' || g AS title,
        CASE WHEN d.slug = 'medical' THEN (ARRAY['near_miss', 'no_harm', 'harm'])[1 + g %% 3] ELSE '' END
            AS outcome,
        1 + g %% 3 AS impact, 1 + (g / 3) %% 3 AS urgency, 1 + g %% 5 AS priority,
        CASE WHEN g %% 10 = 0 THEN %(reporter)s ELSE %(other)s END AS reporter_id,
        CASE WHEN s.state <> 'received' THEN received + (1 + g %% 10) * interval '1 minute' END AS classified,
        CASE WHEN s.state NOT IN ('received', 'classified', 'cancelled')
            THEN LEAST(received + (1 + g %% 150) * interval '1 minute', now()) END AS responded,
        CASE WHEN s.state IN ('resolved', 'closed')
            THEN LEAST(received + (30 + (g * 37) %% 2880) * interval '1 minute', now()) END AS resolved
    FROM generate_series(1, %(n)s) AS g
    CROSS JOIN LATERAL (SELECT now() - g * interval '1 minute' AS received) AS r
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN g <= %(open_tail)s
                THEN (ARRAY['received','classified','responding','escalated','on_hold','resolved','closed',
                            'cancelled'])[1 + g %% 8]
            WHEN g %% 20 = 0 THEN 'cancelled'
            WHEN g %% 997 = 0 THEN 'on_hold'
            ELSE 'closed'
        END AS state
    ) AS s
    JOIN incidents_domain d ON d.slug = (ARRAY['it_service','it_service','security','medical'])[1 + g %% 4]
    JOIN incidents_category c ON c.domain_id = d.id AND c.path = 'bench-' || (g %% 5)
    JOIN incidents_team t ON t.slug = 'bench-' || (g %% 3)
) AS rows
"""

RATINGS_SQL = """
INSERT INTO incidents_satisfactionrating (incident_id, score, comment, created_at, updated_at)
SELECT id, 1 + id %% 5, '', closed_at, closed_at FROM incidents_incident WHERE state = 'closed' AND id %% 3 = 0
"""


def fill(count: int, open_tail: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from fill import empty_incidents, fill_incidents  # bench/ is on sys.path when the script runs

    from incidents.models import Category, Domain, Membership, Problem, Team
    from reporting.daily import rebuild_all

    user_model = get_user_model()
    agent, _ = user_model.objects.get_or_create(username="bench-agent")
    manager, _ = user_model.objects.get_or_create(
        username="bench-manager", defaults={"email": "m@example.org"}
    )
    reporter, _ = user_model.objects.get_or_create(username="bench-reporter")
    other, _ = user_model.objects.get_or_create(username="bench-other")
    domains = list(Domain.objects.filter(slug__in=["it_service", "security", "medical"]))
    for number in range(3):
        team, _ = Team.objects.get_or_create(
            slug=f"bench-{number}", defaults={"name": f"Bench {number}", "manager": manager}
        )
        team.domains.add(*domains)
        Membership.objects.get_or_create(team=team, user=agent)
        Membership.objects.get_or_create(team=team, user=manager)
    for domain in domains:
        for number in range(5):
            Category.objects.get_or_create(
                domain=domain, slug=f"bench-{number}", defaults={"name": f"B{number}"}
            )
    with connection.cursor() as cursor:
        empty_incidents(cursor)
        cursor.execute("TRUNCATE incidents_satisfactionrating")
    Problem.objects.all().delete()
    problems = Problem.objects.bulk_create(Problem(title=f"Bench problem {n}") for n in range(50))
    with connection.cursor() as cursor:
        fill_incidents(
            cursor,
            count,
            reporter=reporter.pk,
            other=other.pk,
            team=0,  # FILL_SQL spreads the incidents over the three bench teams itself
            sql=FILL_SQL,
            params={"open_tail": open_tail, "first_problem": min(p.pk for p in problems)},
        )
        cursor.execute(RATINGS_SQL, {})
        cursor.execute("ANALYZE incidents_satisfactionrating")
    rebuild_all()  # the fast fill fires no trigger: the per-day report figures are rebuilt, as on install


def trigger_cost(writes: int, rounds: int) -> None:
    """What the dirty-slot triggers (reporting migration 0002) add to a write of an incident: `writes` one-row
    UPDATEs (each its own transaction, as the desk writes), with the trigger and with it disabled, in
    alternating rounds so that other load hits both alike. Reports the serving backend's CPU per UPDATE
    (utime + stime from /proc) and the wall time per UPDATE, medians of the rounds."""
    import random

    from django.db import connection

    tick = os.sysconf("SC_CLK_TCK")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), min(id), max(id) FROM incidents_incident")
        pid, low, high = cursor.fetchone()

    def backend_cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    def run(enabled: bool) -> tuple[float, float]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE incidents_incident {'ENABLE' if enabled else 'DISABLE'} TRIGGER reporting_incident_update"
            )
            ids = [random.randint(low, high) for _ in range(writes)]  # noqa: S311
            cpu, start = backend_cpu(), time.perf_counter()
            for pk in ids:
                cursor.execute("UPDATE incidents_incident SET updated_at = now() WHERE id = %s", [pk])
            return (backend_cpu() - cpu) / writes * 1e6, (time.perf_counter() - start) / writes * 1e6

    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    try:
        for _ in range(rounds):
            for enabled in (True, False):
                results[enabled].append(run(enabled))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE incidents_incident ENABLE TRIGGER reporting_incident_update")
    print(
        f"\nOne-row UPDATE of an incident, {writes} per round, {rounds} rounds, autocommit; load {os.getloadavg()}"
    )
    for enabled, label in ((False, "without the trigger"), (True, "with the trigger")):
        cpu = statistics.median(r[0] for r in results[enabled])
        wall = statistics.median(r[1] for r in results[enabled])
        print(f"  {label:22} PostgreSQL CPU {cpu:7.1f} us/UPDATE   wall {wall:7.1f} us/UPDATE")


def timed(client, params: dict, repeat: int, per_day: bool) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reporting import figures

    figures.USE_DAY_FIGURES = per_day
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get("/api/v1/reports/summary/", params)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{params} answered {response.status_code}: {response.content[:300]!r}")
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/reports/summary/", params)
    figures.USE_DAY_FIGURES = True
    return samples, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument(
        "--open-tail", type=int, default=5_000, help="newest incidents spread over every state"
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="reuse the data if the count already matches")
    parser.add_argument("--fill-only", action="store_true")
    parser.add_argument("--skip-long", action="store_true", help="only the periods of 30 days and less")
    parser.add_argument("--skip-raw", action="store_true", help="time the per-day figures only")
    parser.add_argument(
        "--trigger-cost",
        type=int,
        metavar="WRITES",
        help="only measure what the dirty-slot trigger adds to a one-row UPDATE (WRITES per round)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --trigger-cost")
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("Set DATABASE_URL to a PostgreSQL database made for the bench (it is filled and emptied).")

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from incidents.models import Incident

    call_command("migrate", verbosity=0)
    if not (args.keep and Incident.objects.count() == args.incidents):
        start = time.perf_counter()
        fill(args.incidents, args.open_tail)
        print(f"filled {args.incidents:,} incidents in {time.perf_counter() - start:.1f} s")
    from reporting import daily

    if daily.dirty_days():
        start = time.perf_counter()
        days = daily.refresh()  # after a fill every day is dirty: the same as rebuild_all
        print(f"rebuilt the per-day figures of {days} changed days in {time.perf_counter() - start:.1f} s")
    if args.fill_only:
        return
    if args.trigger_cost:
        trigger_cost(args.trigger_cost, args.rounds)
        return
    # A desk at work always has changes of today not yet refreshed: today is read from the incidents.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE incidents_incident SET updated_at = now() WHERE id = (SELECT min(id) FROM incidents_incident)"
        )
    print(f"days read from the incidents (changed since the refresh): {sorted(daily.dirty_days())}")

    now = timezone.now()
    day = now.date()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("last 30 days (default)", {}),
        ("last 7 days", {"from": (day - timedelta(days=7)).isoformat()}),
        ("last 365 days", {"from": (day - timedelta(days=365)).isoformat()}),
        ("all (2 years), weekly buckets", {"from": (day - timedelta(days=730)).isoformat()}),
        ("last 30 days, team", {"team": "bench-1"}),
        ("last 30 days, medical + priority 1-2", {"domain": "medical", "priority": [1, 2]}),
        ("last 365 days, category", {"from": (day - timedelta(days=365)).isoformat(), "category": "bench-3"}),
    ]
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-agent"))
    print(f"\n{args.incidents:,} incidents, {args.repeat} rounds each, server time in process (ms)")
    print("Each round times the summary from the per-day figures, then from the incidents (as before them),")
    print(f"interleaved, so that both see the same load. Load average at the start: {os.getloadavg()}\n")
    print(
        f"{'period and filters':42} {'per-day p50':>11} {'p95':>7} {'queries':>7} "
        f"{'incidents p50':>13} {'p95':>7} {'queries':>7} {'ratio':>6}"
    )
    for label, params in cases:
        if args.skip_long and ("365" in label or "2 years" in label):
            continue
        fast: list[float] = []
        slow: list[float] = []
        for _ in range(args.repeat):
            samples, fast_queries = timed(client, params, 1, per_day=True)
            fast += samples
            if not args.skip_raw:
                samples, slow_queries = timed(client, params, 1, per_day=False)
                slow += samples
        fast.sort()
        slow.sort()

        def p95(samples: list[float]) -> float:
            return samples[min(len(samples) - 1, int(len(samples) * 0.95))] if samples else float("nan")

        fast50 = statistics.median(fast)
        slow50 = statistics.median(slow) if slow else float("nan")
        print(
            f"{label:42} {fast50:11.1f} {p95(fast):7.1f} {fast_queries:7} "
            f"{slow50:13.1f} {p95(slow):7.1f} {slow_queries if slow else 0:7} {fast50 / slow50:6.2f}"
        )
    print(f"\nLoad average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
