"""Where an API create's CPU goes: cProfile of N creates in process, on the database `make bench` filled.

    .venv/bin/python bench/suite.py --size quick          # once, to make incidentdesk_bench_suite
    .venv/bin/python bench/profile_create.py --creates 150

Prints the process CPU per create with and without the profiler, then the functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
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
    parser.add_argument("--creates", type=int, default=150)
    inprocess.add_database_arguments(parser, database="incidentdesk_bench_suite")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--form", action="store_true", help="profile the public report form (POST /report/) instead"
    )
    args = parser.parse_args()
    inprocess.use_settings(args, WEB_REPORT_RATE="100000000/hour", API_THROTTLE_USER="100000000/min")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.models import ApiToken

    _, token = ApiToken.issue(get_user_model().objects.get(username="bench-reporter"), name="profile")
    client = Client()
    body = '{"title": "Printer on floor 3 jams", "description": "Since this morning, **every** job."}'

    def create_by_form() -> None:
        from incidents.forms import new_form_token

        response = client.post(
            "/report/",
            {"title": "Printer on floor 3 jams", "description": "Since this morning.", "website": "",
             "reporter_email": "someone@example.org", "form_token": new_form_token()},
        )  # fmt: skip
        if response.status_code != 302:
            raise SystemExit(f"answered {response.status_code}: {response.content[:300]!r}")

    def create_by_api() -> None:
        response = client.post(
            "/api/v1/incidents/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
        )
        if response.status_code != 201:
            raise SystemExit(f"answered {response.status_code}: {response.content[:300]!r}")

    create = create_by_form if args.form else create_by_api
    for _ in range(20):
        create()
    started = time.process_time()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.creates):
        create()
    profile.disable()
    print(f"CPU per create with the profiler: {(time.process_time() - started) * 1000 / args.creates:.2f} ms")
    started = time.process_time()
    for _ in range(args.creates):
        create()
    print(f"CPU per create without it: {(time.process_time() - started) * 1000 / args.creates:.2f} ms")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
