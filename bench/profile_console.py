"""Where a console page's CPU goes: cProfile of N requests in process, on the database `make bench` filled.

    .venv/bin/python bench/suite.py --size quick          # once, to make incidentdesk_bench_suite
    .venv/bin/python bench/profile_console.py --page queue --requests 100
    .venv/bin/python bench/profile_console.py --page poll
    .venv/bin/python bench/profile_console.py --page incident --sql

Logs in as the suite's agent (bench-agent) and GETs the queue page, its 30 s poll (HX-Target: queue-results)
or the incident page of the suite's sample incident (the newest responding incident of the bench team).
Prints the process CPU per request without and with the profiler, the statements of one request with their
time (--sql), then the functions by own or cumulative CPU time (cProfile with a process_time timer). Process CPU is this process only: the
PostgreSQL backend's CPU is not in it (bench/suite.py measures both).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import inprocess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--page", choices=("queue", "poll", "incident"), default="queue")
    parser.add_argument("--requests", type=int, default=100)
    inprocess.add_database_arguments(parser, database="incidentdesk_bench_suite")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    parser.add_argument("--dump", help="also write the profile to this file (for pstats' print_callees)")
    parser.add_argument("--sql", action="store_true", help="print one request's statements with their time")
    args = parser.parse_args()
    inprocess.use_settings(args)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from incidents.models import Incident

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-agent"))
    headers: dict[str, str] = {}
    path = "/desk/"
    if args.page == "poll":
        headers = {"HX-Request": "true", "HX-Target": "queue-results"}
    elif args.page == "incident":
        sample = Incident.objects.filter(team__slug="bench", state="responding").order_by("-id").first()
        if sample is None:
            raise SystemExit("no responding incident of the bench team: run bench/suite.py first")
        path = f"/desk/incidents/{sample.reference}/"

    def get() -> None:
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")

    for _ in range(20):
        get()
    with CaptureQueriesContext(connection) as queries:
        get()
    print(f"{path} {headers or ''}: {len(queries)} statements")
    if args.sql:
        for query in queries.captured_queries:
            print(f"  {query['time']:>6} s  {query['sql'][:400]}")
    # Five batches: other load on the machine (caches, frequency) still moves process CPU a little.
    batches = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(args.requests):
            get()
        batches.append((time.process_time() - started) * 1000 / args.requests)
    print(
        f"CPU per request without the profiler: min {min(batches):.2f} ms, median {statistics.median(batches):.2f} ms"
        f" (5 batches of {args.requests})"
    )
    started = time.process_time()
    # CPU time, not wall time: waits on PostgreSQL (and on other load of the machine) do not count.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for _ in range(args.requests):
        get()
    profile.disable()
    print(
        f"CPU per request with the profiler: {(time.process_time() - started) * 1000 / args.requests:.2f} ms"
    )
    if args.dump:
        profile.dump_stats(args.dump)
    pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
