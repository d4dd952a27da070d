"""Server-side latency of similar past incidents (recurrence) and of the problem list, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench_problems \\
        .venv/bin/python bench/similar_latency.py --incidents 100000

Fills a dedicated database like api_latency.py (one INSERT ... SELECT generate_series; titles repeat six
phrases with a number, so a phrase matches a sixth of the table: a worst case for trigram ranking), links
every 50th incident to one of 200 problems, then times through Django's full stack in process:
GET /api/v1/incidents/{ref}/similar/ for a frequent phrase, a phrase with a typo and a unique title; the
console incident page (which shows them); and GET /api/v1/problems/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="reuse the data if the count already matches")
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("Set DATABASE_URL to a PostgreSQL database made for the bench (it is filled and emptied).")

    django.setup()
    from api_latency import timed
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from fill import empty_incidents, fill_incidents

    from incidents.models import Category, Domain, Incident, Membership, Problem, Team
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

    if not (args.keep and Incident.objects.count() == args.incidents + 2):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            empty_incidents(cursor)
            cursor.execute(
                "TRUNCATE incidents_followupaction, incidents_problem, escalation_notification CASCADE"
            )
            fill_incidents(cursor, args.incidents, reporter=reporter.pk, other=other.pk, team=team.pk)
            Problem.objects.bulk_create(Problem(title=f"Bench problem {n}") for n in range(200))
            cursor.execute(
                "UPDATE incidents_incident SET problem_id = (SELECT min(id) FROM incidents_problem) + id % 200 "
                "WHERE id % 50 = 0"
            )
            cursor.execute("ANALYZE incidents_incident")
        rebuild_all()  # the fast fill fires no trigger: the per-day report figures are rebuilt, as on install
        for title in ("VPN drops again", "Outlok disconects from Exchang"):
            Incident.objects.create(title=title, channel="api", reporter=reporter, team=team)
        print(f"filled {args.incidents:,} incidents in {time.perf_counter() - start:.1f} s")

    frequent = Incident.objects.get(title="VPN drops again").reference
    typo = Incident.objects.get(title="Outlok disconects from Exchang").reference
    cases = [
        ("similar, frequent phrase (1/6 of rows)", f"/api/v1/incidents/{frequent}/similar/"),
        ("similar, typo, nothing close", f"/api/v1/incidents/{typo}/similar/"),
        ("console incident page (with similar)", f"/desk/incidents/{frequent}/"),
        ("problems list (200 problems)", "/api/v1/problems/"),
    ]
    client = Client()
    client.force_login(agent)
    print(f"\n{args.incidents:,} incidents, {args.repeat} requests each, server time in process (ms)\n")
    print(f"{'request':42} {'p50':>7} {'p95':>7} {'max':>7} {'queries':>8}")
    for label, path in cases:
        samples, queries = timed(client, path, None, args.repeat)
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        print(f"{label:42} {statistics.median(samples):7.1f} {p95:7.1f} {samples[-1]:7.1f} {queries:8}")


if __name__ == "__main__":
    main()
