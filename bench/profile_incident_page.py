"""Where the incident page's CPU goes: cProfile of N requests in process (GET /desk/incidents/<ref>/), on a
database made for it (created and filled by bench/suite.py's setup the first time, reused after), for the
suite's sample incident (a filled row: no timeline) and for one with a realistic history (about 30 timeline
entries: comments, attachments, SLA clocks, a hold, an edit, notifications; similar past incidents in the fill).

    .venv/bin/python bench/profile_incident_page.py --database idesk_page_prof --requests 300

Prints the process CPU per request of both pages (the web process's own CPU: PostgreSQL's is not in it), the
ceiling views' CPU through the same client (a bare JSON answer, one ORM insert), the statements of one request,
then the functions of the realistic page by own and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import inprocess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TITLE = "Printer jam on floor 3 after the driver update"


def cpu_per_call(call: Callable[[], None], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) * 1000 / count


def realistic_incident(agent: Any, reporter: Any, *, confidential: bool) -> Any:
    """One incident of the bench team with a history a desk sees every day (made once, then reused)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from escalation.models import SlaPolicy
    from incidents import lifecycle, services
    from incidents.models import Category, Domain, Incident, Team

    title = TITLE + (" (confidential)" if confidential else "")
    found = Incident.objects.filter(title=title).first()
    if found is not None:
        return found
    SlaPolicy.objects.get_or_create(
        name="profile: any", defaults={"response_minutes": 30, "resolution_minutes": 480}
    )
    it = Domain.objects.get(slug="it_service")
    team = Team.objects.get(slug="bench")
    incident = services.create_incident(
        title=title,
        description="Since the **driver update** this morning every job on the third floor jams.\n\n"
        "- tray 2\n- duplex only\n\nSee the [log](https://example.org/log).",
        reporter=reporter,
        domain=it,
        confidential=confidential,
    )
    incident = lifecycle.classify_incident(
        incident, actor=agent, domain=it, category=Category.objects.get(domain=it, slug="bench"),
        impact=2, urgency=2, team=team,
    )  # fmt: skip
    incident = lifecycle.acknowledge_incident(incident, actor=agent, assignee=agent)
    for i in range(16):
        services.add_comment(
            incident, author=agent if i % 3 else reporter,
            body=f"Step {i}: tried *tray {i % 3}*, then `lpq`; mail {reporter.email} if it jams again.\n\n"
            f"1. cleared the path\n2. printed a test page", public=bool(i % 2),
        )  # fmt: skip
    for i in range(3):
        upload = SimpleUploadedFile(f"printer-{i}.log", b"jam at tray 2\n" * 40, content_type="text/plain")
        services.add_attachment(incident, uploaded_by=agent, upload=upload, public=bool(i % 2))
    incident = lifecycle.hold_incident(incident, actor=agent, reason="awaiting_vendor", note="Ticket at HP")
    incident = lifecycle.resume_incident(incident, actor=agent)
    incident = services.edit_incident(
        Incident.objects.get(pk=incident.pk), actor=agent, version=incident.version, impact=1
    )
    return incident


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    inprocess.add_database_arguments(parser, database="incidentdesk_bench_page")
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--confidential", action="store_true", help="the reporter is confidential")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", action="store_true", help="the CPU figures only")
    parser.add_argument("--sample", action="store_true", help="profile the suite's sample page instead")
    parser.add_argument(
        "--pyinstrument",
        action="store_true",
        help="a sampling profile (pip install pyinstrument), not cProfile",
    )
    args = parser.parse_args()
    inprocess.use_settings(
        args,
        BENCH_CEILING_VIEWS="1",
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        LOG_LEVEL="WARNING",
    )
    import suite

    setup = argparse.Namespace(
        server=args.server, database=args.database, keep=True, incidents=args.incidents,
        plain_fill=False, no_report_triggers=False,
    )  # fmt: skip
    data = suite.setup_database(setup)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    users = get_user_model().objects
    agent, reporter = users.get(username="bench-agent"), users.get(username="bench-reporter")
    incident = realistic_incident(agent, reporter, confidential=args.confidential)
    client = Client()
    client.force_login(agent)
    from incidents.models import Incident

    # The suite's sample: its newest responding incident of the bench team, other than the one made here.
    sample = (
        Incident.objects.filter(team__slug="bench", state="responding")
        .exclude(title__startswith=TITLE)
        .order_by("-id")
        .first()
    )
    if sample is None:
        raise SystemExit(f"no responding incident of the bench team besides {incident.reference}: {data}")
    pages = {
        "sample (the suite's)": f"/desk/incidents/{sample.reference}/",
        f"realistic ({incident.timeline.count()} entries)": f"/desk/incidents/{incident.reference}/",
    }

    def page(url: str) -> Callable[[], None]:
        def get() -> None:
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")

        return get

    def bare_json() -> None:
        client.get("/bench/ceiling/json/")

    def one_insert() -> None:
        client.post("/bench/ceiling/insert/", '{"title": "ceiling"}', content_type="application/json")

    calls = {
        **{name: page(url) for name, url in pages.items()},
        "bare JSON": bare_json,
        "one insert": one_insert,
    }
    for call in calls.values():
        cpu_per_call(call, 20)
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as queries:
            page(url)()
        print(f"{name}: {len(queries)} statements")
        for query in queries.captured_queries:
            print(f"    {query['sql'][:160]}")
    # Interleaved, so that load from elsewhere hits every figure alike; the medians of 5 rounds.
    figures: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(5):
        for name, call in calls.items():
            figures[name].append(cpu_per_call(call, max(args.requests // 5, 1)))
    insert = sorted(figures["one insert"])[2]
    for name, values in figures.items():
        median = sorted(values)[2]
        print(f"CPU per request, {name}: {median:.3f} ms ({median / insert:.2f}x one insert)")
    print(f"load average {os.getloadavg()}")
    if args.no_profile:
        return
    if args.pyinstrument:
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0005)
        sampler.start()
        cpu_per_call(calls[list(pages)[0 if args.sample else 1]], args.requests)
        sampler.stop()
        print(sampler.output_text(unicode=False, color=False, show_all=False))
        return
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    cpu_per_call(calls[list(pages)[0 if args.sample else 1]], args.requests)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
