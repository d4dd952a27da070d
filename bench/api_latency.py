"""Server-side latency of the incident API at scale, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench .venv/bin/python bench/api_latency.py --incidents 100000

Fills a dedicated database with N incidents (bench/fill.py, shared with the suite: one INSERT ... SELECT
generate_series spread over three domains, every state, two years of received_at), then times requests through Django's full stack in
process (middleware, auth, DRF, serializers; no network) and prints p50/p95/max and the query count.
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402
from fill import FILL_SQL, empty_incidents, fill_incidents  # noqa: E402  (bench/ is on sys.path)

__all__ = ["FILL_SQL", "timed"]  # queue_latency.py and similar_latency.py take the fill from here


def timed(client, path: str, params: dict | None, repeat: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path, params or {})
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    with CaptureQueriesContext(connection) as queries:
        client.get(path, params or {})
    return samples, len(queries)


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

    from incidents.models import Category, Domain, Incident, Membership, Team

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
        from reporting.daily import rebuild_all

        start = time.perf_counter()
        with connection.cursor() as cursor:
            empty_incidents(cursor)
            steps = fill_incidents(cursor, args.incidents, reporter=reporter.pk, other=other.pk, team=team.pk)
        mark = time.perf_counter()
        rebuild_all()  # the fast fill fires no trigger: the per-day report figures are rebuilt, as on install
        steps["report days"] = time.perf_counter() - mark
        print(
            f"filled {args.incidents:,} incidents in {time.perf_counter() - start:.1f} s ("
            + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in steps.items())
            + ")"
        )

    sample = Incident.objects.order_by("-id").values_list("pk", flat=True)[args.incidents // 2]
    reference = f"INC-{sample:06d}"
    cases = [
        ("agent", "list, newest first", "/api/v1/incidents/", None),
        ("agent", "list, state=received", "/api/v1/incidents/", {"state": "received"}),
        (
            "agent",
            "list, priority 1-2, ordering=-priority",
            "/api/v1/incidents/",
            {"priority": [1, 2], "ordering": "-priority"},
        ),
        (
            "agent",
            "list, priority 1-2, ordering=priority",
            "/api/v1/incidents/",
            {"priority": [1, 2], "ordering": "priority"},
        ),
        ("agent", "list, ordering=priority (all)", "/api/v1/incidents/", {"ordering": "priority"}),
        ("agent", "list, team + state", "/api/v1/incidents/", {"team": "bench", "state": "responding"}),
        ("agent", "list, q=printer (full text)", "/api/v1/incidents/", {"q": "printer"}),
        ("agent", "list, page 2 (cursor)", None, None),
        ("agent", "detail", f"/api/v1/incidents/{reference}/", None),
        ("reporter", "list, own incidents", "/api/v1/incidents/", None),
    ]
    clients = {"agent": Client(), "reporter": Client()}
    clients["agent"].force_login(agent)
    clients["reporter"].force_login(reporter)
    print(f"\n{args.incidents:,} incidents, {args.repeat} requests each, server time in process (ms)\n")
    print(f"{'who':9} {'request':42} {'p50':>7} {'p95':>7} {'max':>7} {'queries':>8}")
    for who, label, path, params in cases:
        client = clients[who]
        if path is None:
            first = client.get("/api/v1/incidents/").json()
            path, params = first["next"], None
        samples, queries = timed(client, path, params, args.repeat)
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        print(
            f"{who:9} {label:42} {statistics.median(samples):7.1f} {p95:7.1f} {samples[-1]:7.1f} {queries:8}"
        )


if __name__ == "__main__":
    main()
