"""Server time of the interview report pages and APIs (candidate comparison, case analytics, rater analytics)
at N closed sessions of one case version, and what batch scoring saves over scoring one session at a time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_interviews_bench .venv/bin/python bench/interview_reports.py --sessions 200

Like the test runner it creates and drops its own database `test_<NAME>` on that server, so the database
DATABASE_URL names is not touched. Sessions are recorded through the real lifecycle and services (two
reveals, one mapped problem, two raters, a consensus each), then each page is requested through Django's
whole stack in process (no network) and p50/max and the query count are printed.
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
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import django  # noqa: E402


def record_sessions(n: int, raters: int):
    """N closed sessions of one version; the panels (a lead and a rater) come from a pool of `raters`."""
    from interviews import services
    from tests.interviews.helpers import interviewer, published_version, session_in

    version = published_version()
    pool = [interviewer() for _ in range(raters)]
    for i in range(n):
        candidate = services.create_candidate(name=f"Candidate {i}", consent=True, consent_text="bench")
        lead, rater = pool[i % raters], pool[(i + 1) % raters]
        session = services.create_session(
            case_version=version, candidate=candidate, lead=lead, raters=[rater], actor=lead
        )
        session = session_in("gather", session)
        services.reveal_fact(session, actor=lead, fact="F1")
        if i % 3:
            services.reveal_fact(session, actor=lead, fact="F2", level="partial")
        session = session_in("extract", session)
        problem = services.add_candidate_problem(session, statement=f"Problem {i}", by_candidate=True)
        verdict = {"verdict": "matched", "expected": "P1"} if i % 2 else {"verdict": "invalid"}
        services.map_problem(session, actor=lead, problem=problem, **verdict)
        session_in("closed", session)
    return version


def timed(client, path: str, repeat: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        queries = len(captured)
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--raters", type=int, default=4, help="the pool that leads and rates the sessions")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0)
    try:
        started = time.perf_counter()
        version = record_sessions(args.sessions, args.raters)
        print(
            f"recorded {args.sessions} closed sessions ({args.raters} raters) in {time.perf_counter() - started:.1f} s ({name})"
        )
        from interviews import scoring
        from interviews.models import Session
        from tests.interviews.helpers import interviewer

        client = Client()
        client.force_login(interviewer())
        slug, number = version.case.slug, version.number
        pages = {
            "comparison page": f"/interviews/reports/{slug}/v{number}/comparison/",
            "case analytics page": f"/interviews/reports/{slug}/v{number}/analytics/",
            "rater analytics page": "/interviews/reports/raters/?by=month",
            "comparison API": f"/api/v1/interviews/reports/comparison/?case={slug}&version={number}",
            "case analytics API": f"/api/v1/interviews/reports/cases/?case={slug}&version={number}",
        }
        client.get(pages["comparison page"])  # warm caches
        print(f"{'request':24} {'p50 ms':>8} {'max ms':>8} {'queries':>8}")
        for label, path in pages.items():
            times, queries = timed(client, path, args.repeat)
            print(f"{label:24} {statistics.median(times):8.1f} {max(times):8.1f} {queries:8d}")
        sessions = list(Session.objects.filter(case_version=version).select_related("case_version"))
        start = time.perf_counter()
        scoring.score_sessions(sessions)
        batch = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        for s in sessions:
            scoring.score_session(s)
        one_by_one = (time.perf_counter() - start) * 1000
        print(f"scoring {len(sessions)} sessions: batch {batch:.0f} ms, one at a time {one_by_one:.0f} ms")
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
