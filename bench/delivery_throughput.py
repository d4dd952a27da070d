"""How many outbox e-mails one delivery process sends per CPU second (the burst's other half, issue 15).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/incidentdesk_bench .venv/bin/python bench/delivery_throughput.py

Like the test runner it creates test_<NAME> beside the database DATABASE_URL names and drops it at the end.
Writes `--rows` breach notifications of `--incidents` incidents to the outbox (as the sweep does), starts an
SMTP sink as a child process (aiosmtpd's Sink handler: it accepts and drops, so its CPU is not this
process's), and runs `deliver_many` over them in sets of `escalation.delivery.BATCH`, as the delivery
task does, in this process. Reports messages per second (wall and this process's CPU), the statements per
set, and with --profile a cProfile of the sends.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the deliveries to FILE")
    args = parser.parse_args()
    port = free_port()
    sink = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"]
    )
    try:
        os.environ.pop("TEST_REAL_SERVICES", None)
        django.setup()
        from django.conf import settings
        from django.db import connection
        from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        old = setup_databases(verbosity=0, interactive=False)
        try:
            measure(args, connection, CaptureQueriesContext)
        finally:
            teardown_databases(old, verbosity=0)
    finally:
        sink.terminate()
        sink.wait(10)


def measure(args: argparse.Namespace, connection: object, capture: type) -> None:
    from escalation import notify
    from escalation.delivery import BATCH, deliver_many
    from tests.factories import TeamFactory, classified

    team = TeamFactory(email="desk@example.org")
    incidents = [classified(team=team)[0] for _ in range(20)]
    rows = []
    for n in range(args.rows):
        incident = incidents[n % len(incidents)]
        recipients = [notify.Recipient("email", f"desk{n}@example.org")]
        rows += notify.rows_for(
            incident, event="sla_breach", detail="SLA breached: response target missed", cause=f"bench:{n}",
            recipients=recipients,
        )  # fmt: skip
    ids = notify.insert(rows)
    deadline = time.monotonic() + 10
    while not _listening() and time.monotonic() < deadline:  # the sink is a child process
        time.sleep(0.1)
    profiler = cProfile.Profile() if args.profile else None
    sent = 0
    cpu, wall = time.process_time(), time.perf_counter()
    with capture(connection) as queries:
        if profiler is not None:
            profiler.enable()
        for start in range(0, len(ids), BATCH):
            sent += deliver_many(ids[start : start + BATCH])["sent"]
        if profiler is not None:
            profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sets = -(-len(ids) // BATCH)
    print(f"load average {os.getloadavg()}")
    print(f"sent {sent} of {len(ids)} in sets of {BATCH}: {wall:.2f} s wall, {cpu:.2f} s CPU of this process")
    print(
        f"{sent / wall:.0f} messages/s wall, {sent / cpu:.0f} messages per CPU second of the delivery process"
    )
    print(
        f"{len(queries.captured_queries)} statements for {sets} sets ({len(queries.captured_queries) / sets:.1f} per set)"
    )
    if profiler is not None:
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)


def _listening() -> bool:
    from django.conf import settings

    try:
        socket.create_connection(("127.0.0.1", settings.EMAIL_PORT), timeout=0.2).close()
    except OSError:
        return False
    return True


if __name__ == "__main__":
    main()
