"""Server-side latency of the console queue (/desk/) at scale, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench .venv/bin/python bench/queue_latency.py --incidents 100000

Fills the database like bench/api_latency.py (one INSERT ... SELECT generate_series), then renders the queue
page through Django's whole stack in process (middleware, session, the template) and prints p50/p95/max
server time and the query count per page: the default view, filters, search, the sorts and keyset pages
(forward and back). The fill also stores SLA clock states like the engine's, a few percent in warning or breach.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

# The clock states the SLA engine would have stored: a few percent of open incidents in warning or breach
# (what the partial indexes of migration 0007 are for), closed ones met, held ones paused. Written by the
# fill itself (an UPDATE of every row afterwards rewrites every index entry: minutes at a million rows).
STATE_SQL = "(ARRAY['received','classified','responding','escalated','on_hold','resolved','closed','cancelled'])[1 + g %% 8]"
SLA_COLUMNS_SQL = f"""
    CASE
        WHEN {STATE_SQL} = 'received' THEN (ARRAY['pending','pending','pending','warning','breached'])[1 + g %% 5]
        WHEN {STATE_SQL} = 'cancelled' THEN ''
        ELSE CASE WHEN g %% 40 = 0 THEN 'breached' ELSE 'met' END END,
    CASE
        WHEN {STATE_SQL} IN ('resolved', 'closed') THEN 'met'
        WHEN {STATE_SQL} = 'cancelled' THEN ''
        WHEN {STATE_SQL} = 'on_hold' THEN 'paused'
        ELSE (ARRAY['pending','warning','breached'])[1 + (CASE WHEN g %% 25 < 2 THEN 1 + g %% 25 ELSE 0 END)] END
"""


def queue_fill_sql(fill_sql: str) -> str:
    """The API bench's fill with the SLA columns (its last two values, empty there) set as above."""
    empty_sla = "NULL, NULL, NULL, '', ''\nFROM generate_series"
    if empty_sla not in fill_sql:
        raise SystemExit("bench/api_latency.py's FILL_SQL changed: update queue_fill_sql()")
    return fill_sql.replace(empty_sla, f"NULL, NULL, NULL, {SLA_COLUMNS_SQL}\nFROM generate_series")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="reuse the data if the count already matches")
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("Set DATABASE_URL to a PostgreSQL database made for the bench (it is filled and emptied).")

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from fill import FILL_SQL, empty_incidents, fill_incidents  # bench/ is on sys.path when the script runs

    from incidents.models import Category, Domain, Incident, Membership, Team
    from reporting.daily import rebuild_all

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    agent, _ = user_model.objects.get_or_create(username="bench-agent")
    reporter, _ = user_model.objects.get_or_create(username="bench-reporter")
    other, _ = user_model.objects.get_or_create(username="bench-other")
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    team.domains.add(*Domain.objects.filter(slug__in=["it_service", "security"]))
    Membership.objects.get_or_create(team=team, user=agent)
    for domain in Domain.objects.all():
        Category.objects.get_or_create(domain=domain, slug="bench", defaults={"name": "Bench"})

    if not (args.keep and Incident.objects.count() == args.incidents):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            empty_incidents(cursor)
            fill_incidents(
                cursor,
                args.incidents,
                reporter=reporter.pk,
                other=other.pk,
                team=team.pk,
                sql=queue_fill_sql(FILL_SQL),
            )
        rebuild_all()  # the fast fill fires no trigger: the per-day report figures are rebuilt, as on install
        print(f"filled {args.incidents:,} incidents in {time.perf_counter() - start:.1f} s")

    client = Client()
    client.force_login(agent)
    cases: list[tuple[str, Any]] = [
        ("default (open, newest first)", {}),
        ("sort=priority (P1 first, oldest first)", {"sort": "priority", "open": "1"}),
        ("state=received, oldest first", {"state": "received", "sort": "oldest"}),
        ("priority 1-2 unassigned (preset)", {"assignee": "none", "priority": ["1", "2"], "open": "1"}),
        ("team + state", {"team": "bench", "state": "responding"}),
        ("q=printer (full text)", {"q": "printer", "open": "1"}),
        ("sla=breached", {"sla": "breached", "open": "1"}),
        ("breaching soon (preset: sla=warning)", {"sla": "warning", "open": "1", "sort": "priority"}),
        ("page 2 (keyset), newest", None),
        ("page 2 (keyset), priority", "priority"),
        ("previous page (keyset back), newest", "back"),
        ("htmx poll (results fragment only)", {"open": "1", "_htmx": True}),
    ]
    print(f"\n{args.incidents:,} incidents, {args.repeat} requests each, server time in process (ms)\n")
    # cpu: the web process's own CPU time per request (median), which other load on the machine does not inflate
    print(f"{'request':42} {'p50':>7} {'p95':>7} {'max':>7} {'cpu p50':>8} {'queries':>8}")
    for label, params in cases:
        headers = {}
        if params is None or isinstance(params, str):
            sort = "newest" if params in (None, "back") else params
            page = client.get("/desk/", {"sort": sort, "open": "1"}).content.decode()
            for rel in ("next", "prev") if params == "back" else ("next",):
                match = re.search(rf'href="\?([^"]*)" rel="{rel}"', page)
                if match is None:
                    raise SystemExit(f"no {rel} page")
                path, query = "/desk/?" + match.group(1).replace("&amp;", "&"), {}
                page = client.get(path).content.decode()
        else:
            path, query = "/desk/", dict(params)
            if query.pop("_htmx", False):
                headers = {"HX-Request": "true", "HX-Target": "queue-results"}
        client.get(path, query, headers=headers)  # warm-up, not counted: template loading, first plan
        samples, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(path, query, headers=headers)
            samples.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{label}: {response.status_code}")
        with CaptureQueriesContext(connection) as captured:
            client.get(path, query, headers=headers)
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        print(
            f"{label:42} {statistics.median(samples):7.1f} {p95:7.1f} {samples[-1]:7.1f} "
            f"{statistics.median(cpu):8.1f} {len(captured):8}"
        )


if __name__ == "__main__":
    main()
