"""Cost of the recurrence check (incidents.problems.check_recurrence) per classification, on PostgreSQL, at
100, 10,000 and 100,000 similar incidents in the window.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench_recurrence \\
        .venv/bin/python bench/recurrence_probe.py --sizes 100 10000 100000

For each size the database is emptied and filled with one INSERT ... SELECT generate_series: N incidents of
one domain received within the window, with one title and a number ("Checkout 5xx over 5 % on lb1 #n"), then
check_recurrence is timed (median of --repeat calls, and its statement count) for:

- category: the N incidents share the checked incident's category and a proposal covers it (an alert storm
  after the proposal): the category decides;
- text: the N incidents have no category, the checked one its own: the text probe decides (the proposal key
  exists, so each check probes and stops).

`--code /work/main` runs another checkout's incidents.problems against the same data (the comparison).
Use a database made for the bench: it is emptied first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FILL_SQL = """
INSERT INTO incidents_incident (
    title, description, description_html, state, domain_id, category_id, outcome, harm_level, impact, urgency,
    priority, priority_override_reason, channel, reporter_id, reporter_email, confidential, tracking_token,
    team_id, escalation_level, reopen_count, hold_reason, held_from, received_at, created_at, updated_at,
    version, resolution_summary, cause, measures, resolution_code, auto_closed, cancel_reason, responded_at,
    resolved_at, closed_at, sla_response, sla_resolution, assignee_name, reporter_name, history_started_late
)
SELECT
    'Checkout 5xx over 5 %% on lb1 #' || g, '', '', 'classified', %(domain)s, %(category)s, '', '', 1, 1, 1, '',
    'monitoring', %(reporter)s, '', false, md5(random()::text || g::text), %(team)s, 0, 0, '', '',
    now() - (g || ' seconds')::interval * (%(spread)s::float / %(n)s), now(), now(),
    1, '', '', '', '', false, '', NULL, NULL, NULL, '', '', '', '', false
FROM generate_series(1, %(n)s) AS g
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--code", default=str(ROOT), help="the checkout whose code runs")
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("Set DATABASE_URL to a PostgreSQL database made for the bench (it is emptied).")
    sys.path.insert(0, args.code)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from fill import empty_incidents, fill_incidents  # bench/ is on sys.path when the script runs

    from incidents import problems
    from incidents.models import Category, Domain, Incident, Problem, Team

    call_command("migrate", verbosity=0)
    print(f"code: {Path(problems.__file__).resolve().parent.parent}, load average {os.getloadavg()}")
    reporter, _ = get_user_model().objects.get_or_create(username="bench-reporter")
    domain = Domain.objects.get(slug="it_service")
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    storm, _ = Category.objects.get_or_create(domain=domain, slug="bench-storm", defaults={"name": "Storm"})
    own, _ = Category.objects.get_or_create(domain=domain, slug="bench-own", defaults={"name": "Own"})
    print(f"\n{'size':>8} {'case':10} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for size in args.sizes:
        for case in ("category", "text"):
            with connection.cursor() as cursor:
                empty_incidents(cursor)
                cursor.execute(
                    "TRUNCATE incidents_followupaction, incidents_problem, escalation_notification CASCADE"
                )
                fill_incidents(
                    cursor, size, reporter=reporter.pk, other=reporter.pk, team=team.pk, sql=FILL_SQL,
                    params={"domain": domain.pk, "category": storm.pk if case == "category" else None, "spread": 3600},
                )  # fmt: skip
            checked = Incident.objects.filter(domain=domain).order_by("-received_at").first()
            if checked is None:
                raise SystemExit("the fill inserted nothing")
            if case == "category":
                Problem.objects.create(title="Covering the storm", category=storm, state="open")
            else:
                Incident.objects.filter(pk=checked.pk).update(category=own)
                cluster = problems.similar_text_cluster(checked)
                Problem.objects.create(title="taken", proposal_key=f"recurrence:text:{cluster[0].pk}")
            samples = []
            for _ in range(args.repeat):
                fresh = Incident.objects.select_related("category__default_team", "team").get(pk=checked.pk)
                start = time.perf_counter()
                if problems.check_recurrence(fresh) is not None:
                    raise SystemExit("the check proposed a problem: the bench measures a decided check")
                samples.append((time.perf_counter() - start) * 1000)
            fresh = Incident.objects.select_related("category__default_team", "team").get(pk=checked.pk)
            with CaptureQueriesContext(connection) as queries:
                problems.check_recurrence(fresh)
            samples.sort()
            p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
            print(f"{size:>8} {case:10} {statistics.median(samples):10.2f} {p95:8.2f} {len(queries):>8}")


if __name__ == "__main__":
    main()
