"""How many due SLA timers the sweep decides per second (issue 15: >= 2,000/s), in this process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench .venv/bin/python bench/sweep_throughput.py

Like the test runner it creates test_<NAME> beside the database DATABASE_URL names and drops it at the end.
Setup: `--incidents` P1 incidents classified through the lifecycle (a team of 5 with a manager), each given
`--clocks` reporting-target clocks that are running and overdue, each with its warning and breach timer
(rows written in bulk: classifying thousands of incidents one by one would take the whole run). Then one
`sweep()` decides them all: per timer an SLA clock update, a timeline entry and the outbox rows (the team
address or members, and the manager for a breach), set-wise per batch. Reports timers per second (wall and
this process's CPU), the statements per batch and the load average. Delivery prompts go to an in-memory broker.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=40)
    parser.add_argument("--clocks", type=int, default=50, help="overdue target clocks per incident")
    parser.add_argument("--limit", type=int, default=500, help="timers per batch (the sweep's default)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the measured sweep to FILE")
    args = parser.parse_args()
    os.environ.pop("TEST_REAL_SERVICES", None)
    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

    from escalation.engine import db_now, sweep
    from escalation.models import SlaClock, Timer
    from incidents.models import Membership
    from tests.factories import TeamFactory, UserFactory, classified, sla_policy

    old = setup_databases(verbosity=0, interactive=False)
    try:
        sla_policy(priority=1, response=600, resolution=6000, warn=50)
        team: Any = TeamFactory(manager=UserFactory(email="boss@example.org"), email="desk@example.org")
        members = [Membership.objects.create(team=team, user=cast(Any, UserFactory())).pk for _ in range(5)]
        now = db_now()
        start = now - timedelta(hours=2)
        clocks = []
        for _ in range(args.incidents):
            incident, _ = classified(team=team)
            clocks += [
                SlaClock(
                    incident=incident,
                    kind="target",
                    name=f"t{n}",
                    target_seconds=3600,
                    warn_seconds=1800,
                    started_at=start,
                    running_since=start,
                    due_at=start + timedelta(hours=1),
                    warn_at=start + timedelta(minutes=30),
                )
                for n in range(args.clocks)
            ]
        # A team of five and its address, as on a real desk (each classification above added its classifier).
        Membership.objects.filter(team=team).exclude(pk__in=members).delete()
        SlaClock.objects.bulk_create(clocks)
        timers = []
        for clock in clocks:
            prefix = f"sla:{clock.pk}:{clock.epoch}"
            timers += [
                Timer(key=f"{prefix}:warn", incident_id=clock.incident_id, kind="sla_warning", clock=clock,
                      due_at=cast(Any, clock.warn_at)),
                Timer(key=f"{prefix}:breach", incident_id=clock.incident_id, kind="sla_breach", clock=clock,
                      due_at=cast(Any, clock.due_at)),
            ]  # fmt: skip
        Timer.objects.bulk_create(timers)
        sweep(now=start)  # warm up (nothing due then); prompts the classifications' mail
        due = Timer.objects.filter(state="pending", due_at__lte=now).count()
        cpu, wall = time.process_time(), time.perf_counter()
        profiler = cProfile.Profile() if args.profile else None
        with CaptureQueriesContext(connection) as queries:
            if profiler is not None:
                profiler.enable()
            result = sweep(now=now, limit=args.limit, budget_seconds=600)
            if profiler is not None:
                profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        batches = -(-due // args.limit)
        print(f"load average {os.getloadavg()}")
        print(
            f"due {due}, fired {result.fired}, cancelled {result.cancelled}, outbox rows {len(result.to_deliver)}"
        )
        print(f"{wall:.2f} s wall, {cpu:.2f} s CPU of this process: {result.fired / wall:.0f} timers/s wall, "
              f"{result.fired / cpu:.0f} timers/s per CPU second of the sweeper")  # fmt: skip
        if profiler is not None:
            profiler.dump_stats(args.profile)
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(30)
        spent: dict[str, list[float]] = {}
        for query in queries.captured_queries:
            spent.setdefault(" ".join(query["sql"].split())[:60], []).append(float(query["time"]))
        print("statements by time spent in them (the database's share of the wall time):")
        for sql, times in sorted(spent.items(), key=lambda item: -sum(item[1]))[:6]:
            print(f"  {sum(times):6.2f} s in {len(times):3d} x {sql}")
        print(f"{len(queries.captured_queries)} statements for {batches} batches of up to {args.limit}")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
