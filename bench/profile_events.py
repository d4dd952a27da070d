"""Where a monitoring event's CPU goes: cProfile of N triggers in process (POST /api/v1/events/), each a dedup
hit on one open incident or each opening a new incident, on a database made for it (migrated, added to).

    .venv/bin/python bench/profile_events.py --database idesk_ev_prof --events 2000           # hits
    .venv/bin/python bench/profile_events.py --database idesk_ev_prof --events 500 --new      # new incidents

Prints the process CPU per event with and without the profiler, the ceiling views' CPU through the same
client (a bare JSON answer, one ORM insert), then the functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import inprocess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def cpu_per_call(call: Callable[[], None], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--new", action="store_true", help="every event opens an incident (own dedup_key)")
    inprocess.add_database_arguments(parser, database="incidentdesk_bench_events")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    inprocess.use_settings(args, BENCH_CEILING_VIEWS="1", LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from events_throughput import make_integration

    call_command("migrate", verbosity=0)
    key = make_integration("profile")
    client = Client()
    prefix = uuid.uuid4().hex[:8]
    serial = iter(range(10**9))

    def trigger() -> None:
        dedup = f"{prefix}-{next(serial)}" if args.new else f"{prefix}-same"
        body = json.dumps(
            {"routing_key": key, "event_action": "trigger", "dedup_key": dedup,
             "payload": {"summary": "Checkout 5xx", "source": "lb1", "severity": "critical"}}
        )  # fmt: skip
        response = client.post("/api/v1/events/", body, content_type="application/json")
        if response.status_code != 202:
            raise SystemExit(f"answered {response.status_code}: {response.content[:300]!r}")

    def bare_json() -> None:
        client.get("/bench/ceiling/json/")

    def one_insert() -> None:
        client.post("/bench/ceiling/insert/", '{"title": "ceiling"}', content_type="application/json")

    for call in (trigger, bare_json, one_insert):
        cpu_per_call(call, 20)
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    with_profiler = cpu_per_call(trigger, args.events)
    profile.disable()
    print(f"CPU per event with the profiler: {with_profiler:.3f} ms")
    print(f"CPU per event without it: {cpu_per_call(trigger, args.events):.3f} ms")
    print(f"ceiling, bare JSON: {cpu_per_call(bare_json, args.events):.3f} ms")
    print(f"ceiling, one insert: {cpu_per_call(one_insert, args.events):.3f} ms")
    print(f"load average {os.getloadavg()}")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
