"""Scale-out with real processes against one PostgreSQL database (issue 15):

- two sweepers and four delivery workers (real `celery worker` processes, a real Redis broker) decide each
  timer once and deliver each notification once, and drain a burst faster than one sweeper and one worker;
- two web servers (two gunicorn masters sharing one address with SO_REUSEPORT) both serve requests, and
  concurrent edits of one incident through them lose no update (every success has its own version);
- behind a real PgBouncer in transaction pooling mode (DATABASE_POOLING=transaction), the CSV export streams
  whole while other clients write.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from accounts.models import ApiToken
from escalation.engine import db_now
from escalation.models import Notification, Timer
from incidents.models import Incident, TimelineEntry
from tests.conftest import require_service
from tests.escalation.processes import (
    Stack,
    arrivals,
    database_url,
    have_aiosmtpd,
    have_redis_server,
    wait_until,
)
from tests.escalation.receiver import Receiver
from tests.escalation.test_real_worker import Desk
from tests.factories import classified, sla_policy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SMTP_LATENCY = 0.1  # seconds the mail server takes per message, as a remote one does


def overdue_burst(desk: Desk, n: int) -> list[int]:
    """`n` P1 incidents whose response warning and breach are both overdue (received 2 minutes ago against
    a 1-minute target). Nothing decides them until the stack's processes start."""
    received = db_now() - timedelta(minutes=2)
    return [
        desk.raise_incident(
            received_at=received, title=f"{secrets.token_hex(4)} {secrets.token_hex(4)} down"
        ).pk
        for _ in range(n)
    ]


def drain(stack: Stack, ids: list[int], *, sweepers: int, workers: int, beats: int) -> float:
    """Start the processes; seconds from the first decision (fired_at, the database's clock on this machine)
    until the last outbox row of `ids` is on the wire (the receivers' clock, the same machine's)."""
    for _ in range(workers):
        stack.start_worker(wait=False)
    for _ in range(sweepers):
        stack.start_sweeper(wait=False)
    for child in [*stack.workers, *stack.sweepers]:
        stack._wait_up(child)
    for child in [stack.start_beat(wait=False) for _ in range(beats)]:  # beat sends a sweep as it starts
        stack._wait_up(child)

    def done() -> bool:
        if Timer.objects.filter(
            incident_id__in=ids, state=Timer.State.PENDING, due_at__lte=db_now()
        ).exists():
            return False
        states = list(Notification.objects.filter(incident_id__in=ids).values_list("key", "state"))
        seen = arrivals(stack)
        return bool(states) and all(state == "sent" and key in seen for key, state in states)

    wait_until(done, 120, "the burst to be delivered", stack.logs)
    first = min(
        Timer.objects.filter(incident_id__in=ids, state=Timer.State.FIRED).values_list("fired_at", flat=True)
    )
    last = max(max(times) for times in arrivals(stack).values())
    return last - first.timestamp()


def assert_once_each(stack: Stack, ids: list[int]) -> None:
    timers = Timer.objects.filter(incident_id__in=ids)
    assert timers.filter(state=Timer.State.FIRED).count() == 2 * len(
        ids
    )  # a response warning and breach each
    decided = TimelineEntry.objects.filter(
        incident_id__in=ids, kind="sla", action__in=["warning", "breached"]
    )
    assert decided.count() == 2 * len(ids)  # no decision taken twice
    rows = Notification.objects.filter(incident_id__in=ids)
    seen = arrivals(stack)
    assert {row.key for row in rows} <= set(seen)
    twice = {key: len(times) for key, times in seen.items() if len(times) > 1}
    assert not twice, twice  # no double delivery


def task_count(child: Any, task: str) -> int:
    return child.log.read_text(errors="replace").count(f"Task {task}[")


@pytest.fixture
def stacks(tmp_path):
    require_service("redis-server", have_redis_server(), "apt-get install redis-server")
    require_service("aiosmtpd", have_aiosmtpd(), "pip install -e '.[dev]'")
    made: list[Stack] = []

    def make(name: str, receiver: Receiver) -> Stack:
        workdir = tmp_path / name
        workdir.mkdir()
        stack = Stack(
            workdir, database_url(connection.settings_dict), receiver=receiver, concurrency=1, sweeper=True
        )
        made.append(stack.__enter__())
        stack.smtp.delay = SMTP_LATENCY
        return stack

    yield make
    for stack in made:
        stack.close()


def test_two_sweepers_and_four_workers_decide_and_deliver_once_and_drain_faster(stacks):
    n = 40
    sla_policy(priority=1, response=1, resolution=240, warn=50)
    with Receiver() as receiver:
        desk = Desk("scale", receiver.url, quiet=True)
        one = stacks("one", receiver)
        first = overdue_burst(desk, n)
        alone = drain(one, first, sweepers=1, workers=1, beats=1)
        one.close()
        assert_once_each(one, first)

        many = stacks("many", receiver)
        second = overdue_burst(desk, n)
        # Two beats, so that each second two sweeps run at once on the two sweepers.
        together = drain(many, second, sweepers=2, workers=4, beats=2)
        assert_once_each(many, second)
        sweeps = [task_count(child, "escalation.tasks.sweep") for child in many.sweepers]
        deliveries = [task_count(child, "escalation.tasks.deliver_notifications") for child in many.workers]
        many.close()
    print(f"burst of {2 * n} timers, {Notification.objects.filter(incident_id__in=second).count()} rows: "
          f"1 sweeper + 1 worker {alone:.1f} s, 2 sweepers + 4 workers {together:.1f} s; "
          f"sweeps per sweeper {sweeps}, delivery tasks per worker {deliveries}")  # fmt: skip
    assert all(count > 0 for count in sweeps), sweeps  # both sweepers ran sweeps
    assert sum(count > 0 for count in deliveries) >= 2, deliveries  # the deliveries were shared
    assert together < alone, (together, alone)


# --- Two web servers behind one address ---------------------------------------------------------------------


def gunicorn(port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    argv = [
        str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--reuse-port",
        "--workers", "2", "--access-logfile", str(log), "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",
    ]  # fmt: skip
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(f"{log}.err", "wb")
    )


def call(url: str, token: str, method: str = "GET", body: dict[str, Any] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_two_web_servers_on_one_address_serve_and_lose_no_update(tmp_path):
    incident, agent = classified()
    _, token = ApiToken.issue(agent, name="scale-out")
    start_version = Incident.objects.get(pk=incident.pk).version
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict),
    }
    logs = [tmp_path / "web-a.log", tmp_path / "web-b.log"]
    servers = [gunicorn(port, log, env) for log in logs]
    url = f"http://127.0.0.1:{port}/api/v1/incidents/{incident.reference}/"
    try:
        wait_until(lambda: all(log.exists() and _up(url, token) for log in logs), 60, "both web servers",
                   lambda: "\n".join(Path(f"{log}.err").read_text()[-1500:] for log in logs))  # fmt: skip
        results: list[tuple[int, int | None]] = []
        lock = threading.Lock()

        def editor(who: int) -> None:
            for round_ in range(12):
                status, body = call(url, token)
                assert status == 200, body
                status, body = call(
                    url, token, "PATCH", {"version": body["version"], "title": f"edit {who}.{round_}"}
                )
                with lock:
                    results.append((status, body.get("version") if status == 200 else None))

        threads = [threading.Thread(target=editor, args=(who,)) for who in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
    served = [len(log.read_text().splitlines()) for log in logs]
    statuses = sorted({status for status, _ in results})
    won = sorted(version for status, version in results if status == 200)
    print(f"requests served by each web server {served}; PATCH statuses {statuses}; {len(won)} edits won")
    assert len(results) == 72
    assert all(count > 0 for count in served), served  # both servers answered
    assert set(statuses) <= {200, 409}, statuses  # a stale edit is refused, never a 5xx
    # No lost update: every edit that won made its own version, one after the other from the start.
    assert won == list(range(start_version + 1, start_version + 1 + len(won)))
    final = Incident.objects.get(pk=incident.pk)
    assert final.version == start_version + len(won)


def _up(url: str, token: str) -> bool:
    try:
        return call(url, token)[0] == 200
    except OSError:
        return False


def free_port() -> int:
    from tests.escalation.processes import free_port as port

    return port()


PGBOUNCER = "/usr/sbin/pgbouncer"
EXPORT_ROWS = 4500  # three chunks of the export's keyset walk, three fetches of a server-side cursor


def pgbouncer(workdir: Path, port: int, database: str) -> subprocess.Popen[bytes]:
    """A real PgBouncer in transaction pooling mode in front of the test database, with fewer server
    connections than clients, handed out round robin, so consecutive transactions of one client land on different
    server connections.
    It logs to `workdir`/pgbouncer.log (its standard error)."""
    (workdir / "users.txt").write_text('"postgres" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"[databases]\n{database} = host=127.0.0.1 port=5432 dbname={database}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir}/users.txt\npool_mode = transaction\ndefault_pool_size = 2\n"
        "server_round_robin = 1\nmax_client_conn = 50\nserver_reset_query =\nignore_startup_parameters = extra_float_digits\n"
    )
    argv = [PGBOUNCER, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        argv[1:1] = ["-u", "postgres"]  # it refuses to run as root; it reads its files before switching
    return subprocess.Popen(
        argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=open(workdir / "pgbouncer.log", "wb")
    )


def test_behind_a_real_transaction_pooling_pgbouncer_the_export_streams_whole_while_others_write(
    tmp_path_factory,
):
    """docs/operations.md's PgBouncer settings, for real: two gunicorn workers reach PostgreSQL through a
    PgBouncer with two server connections in transaction mode. While four clients edit incidents, two CSV
    exports of 4,500 rows each come back whole and in order. (With DATABASE_POOLING unset, Django streams the
    export through a WITH HOLD cursor, whose later fetches reach a server connection that does not have it:
    the export breaks off: seen with this test, one export ended after 2,000 rows and the other had none.)"""
    require_service("PgBouncer", Path(PGBOUNCER).exists(), "apt-get install pgbouncer")
    incident, agent = classified()
    agent.is_superuser = True  # sees every incident: the export is the whole table
    agent.save(update_fields=["is_superuser"])
    _, token = ApiToken.issue(agent, name="pgbouncer")
    Incident.objects.bulk_create(
        Incident(title=f"row {n}", domain_id=incident.domain_id, state=Incident.State.RECEIVED,
                 reporter_email="r@example.org", tracking_token=secrets.token_urlsafe(32))
        for n in range(EXPORT_ROWS - 1)
    )  # fmt: skip
    expected = list(Incident.objects.order_by("pk").values_list("pk", flat=True))
    database = connection.settings_dict["NAME"]
    bouncer_port, web_port = free_port(), free_port()
    workdir = tmp_path_factory.mktemp("pgbouncer")
    bouncer = pgbouncer(workdir, bouncer_port, database)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{bouncer_port}/{database}",
        "DATABASE_POOLING": "transaction",
    }
    log = workdir / "web.log"
    server = gunicorn(web_port, log, env)
    base = f"http://127.0.0.1:{web_port}/api/v1"
    detail = f"{base}/incidents/{incident.reference}/"
    try:
        wait_until(lambda: _up(detail, token), 60, "the web server behind PgBouncer",
                   lambda: Path(f"{log}.err").read_text()[-1500:])  # fmt: skip
        exports: list[tuple[int, list[str]]] = []
        edits: list[int] = []
        lock = threading.Lock()
        stop = threading.Event()

        def export() -> None:
            request = urllib.request.Request(f"{base}/reports/incidents.csv?ordering=id")  # noqa: S310
            request.add_header("Authorization", f"Token {token}")
            try:
                with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback only
                    body = response.read().decode()
                    status = response.status
            except (urllib.error.HTTPError, urllib.error.URLError, ConnectionError) as error:
                status, body = getattr(error, "code", 0), ""
            except http.client.IncompleteRead as error:  # the server broke off mid-stream
                status, body = 0, error.partial.decode(errors="replace")
            rows = [line.split(",", 1)[0] for line in body.splitlines()[1:]]
            with lock:
                exports.append((status, rows))

        def editor(who: int) -> None:
            round_ = 0
            while not stop.is_set():
                status, body = call(detail, token)
                if status == 200:
                    status, body = call(
                        detail, token, "PATCH", {"version": body["version"], "title": f"e{who}.{round_}"}
                    )
                with lock:
                    edits.append(status)
                round_ += 1

        editors = [threading.Thread(target=editor, args=(who,)) for who in range(4)]
        exporters = [threading.Thread(target=export) for _ in range(2)]
        for thread in editors + exporters:
            thread.start()
        for thread in exporters:
            thread.join(180)
        stop.set()
        for thread in editors:
            thread.join(60)
    finally:
        server.terminate()
        server.wait(30)
        bouncer.terminate()
        bouncer.wait(30)
    from incidents.models import reference_for

    want = [reference_for(pk) for pk in expected]
    print(
        f"exports: {[(status, len(rows)) for status, rows in exports]}; edits: {len(edits)}, statuses {sorted(set(edits))}"
    )
    assert edits
    assert set(edits) <= {200, 409}, sorted(set(edits))
    assert len(exports) == 2
    for status, rows in exports:
        assert status == 200
        assert rows == want, (len(rows), len(want), Path(f"{log}.err").read_text()[-1500:])
