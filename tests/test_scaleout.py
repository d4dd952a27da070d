"""Scale-out settings: the reports router (REPORTS_DATABASE_URL), the export behind a transaction-pooling
PgBouncer (DATABASE_POOLING=transaction) and the bench's ceiling views (BENCH_CEILING_VIEWS)."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from config import ceiling
from config.dbrouter import reports_reads
from incidents import export
from incidents.models import Domain, Incident
from tests.conftest import client_for
from tests.factories import UserFactory, incident_in

ROOT = Path(__file__).resolve().parent.parent
EXPORT = "/desk/export.csv"
SUMMARY = "/api/v1/reports/summary/"
# What may reach a replica: reads (also through a server-side cursor, or a WITH query that writes nothing, as the
# per-day figures are read), and the report's transaction.
READ_ONLY = re.compile(
    r"^\s*(SELECT|WITH\b(?!.*\b(INSERT|UPDATE|DELETE)\b)|DECLARE \S+ NO SCROLL CURSOR WITHOUT HOLD FOR SELECT"
    r"|SET LOCAL|SAVEPOINT|RELEASE SAVEPOINT)\b",
    re.I | re.S,
)
AUDIT = re.compile(r"^\s*INSERT INTO \"?incidents_auditevent\b")


def rows_of(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def references(response) -> list[str]:
    return [row["reference"] for row in rows_of(response)]


def replica_incident(title: str) -> Incident:
    """A row that exists only in the reports database, so a read that finds it was routed there."""
    # The data migrations seed through the router (to the primary), so the replica's domain is made here.
    it, _ = Domain.objects.using("reports").get_or_create(slug="it_service", defaults={"name": "IT"})
    return Incident.objects.using("reports").create(title=title, domain=it, state=Incident.State.RECEIVED)


@pytest.mark.django_db(databases=["default", "reports"])
@override_settings(REPORTS_DATABASE_ALIAS="reports")
def test_reports_and_export_read_from_the_reports_database_and_only_read_there(client):
    on_primary = [incident_in(Incident.State.RECEIVED) for _ in range(3)]
    on_replica = replica_incident("only on the replica")
    boss = UserFactory(is_superuser=True)
    client.force_login(boss)

    with (
        CaptureQueriesContext(connections["reports"]) as replica,
        CaptureQueriesContext(connections["default"]) as primary,
    ):
        summary = client_for(boss).get(SUMMARY)
        exported = rows_of(client.get(EXPORT))

    assert summary.status_code == 200
    assert summary.json()["counts"]["total"] == 1
    assert [(row["reference"], row["title"]) for row in exported] == [
        (on_replica.reference, on_replica.title)
    ]
    assert replica.captured_queries
    assert [q["sql"] for q in replica.captured_queries if not READ_ONLY.match(q["sql"])] == []
    # the primary only writes the audit rows of the restricted incidents shown (an INSERT ... SELECT; a replica
    # cannot be written): no read of the report or the export goes there
    assert not [
        q for q in primary.captured_queries if "incidents_incident" in q["sql"] and not AUDIT.match(q["sql"])
    ]
    assert on_primary[0].title not in {row["title"] for row in exported}


@pytest.mark.django_db(databases=["default", "reports"])
@override_settings(REPORTS_DATABASE_ALIAS="reports")
def test_a_write_inside_a_report_block_goes_to_the_primary():
    replica_incident("only on the replica")
    replica_incident("also only on the replica")

    with reports_reads() as alias, CaptureQueriesContext(connections["reports"]) as replica:
        written = Incident.objects.create(title="written while reading reports")
        seen = Incident.objects.count()

    assert alias == "reports"
    assert seen == 2  # the read went to the replica, which does not have the new row
    assert Incident.objects.filter(pk=written.pk).exists()  # the write is on the primary
    assert not Incident.objects.using("reports").filter(title=written.title).exists()
    assert all(READ_ONLY.match(q["sql"]) for q in replica.captured_queries)


@pytest.mark.django_db
def test_without_a_reports_database_everything_reads_the_primary(client):
    incident = incident_in(Incident.State.RECEIVED)
    client.force_login(UserFactory(is_superuser=True))

    with reports_reads() as alias:
        assert alias == "default"
    assert references(client.get(EXPORT)) == [incident.reference]


@pytest.fixture
def transaction_pooling():
    """The default connection as DATABASE_POOLING=transaction configures it."""
    connection_settings = connections["default"].settings_dict
    before = connection_settings.get("DISABLE_SERVER_SIDE_CURSORS", False)
    connection_settings["DISABLE_SERVER_SIDE_CURSORS"] = True
    yield
    connection_settings["DISABLE_SERVER_SIDE_CURSORS"] = before


@pytest.mark.django_db
def test_behind_transaction_pooling_the_export_reads_keyset_chunks_with_the_same_rows(
    client, monkeypatch, transaction_pooling
):
    incidents = [incident_in(Incident.State.RECEIVED) for _ in range(5)]
    client.force_login(UserFactory(is_superuser=True))
    monkeypatch.setattr(export, "CHUNK_SIZE", 2)

    newest_first = references(client.get(EXPORT))
    with CaptureQueriesContext(connections["default"]) as queries:
        oldest_first = references(client.get(EXPORT, {"sort": "oldest"}))

    assert oldest_first == [i.reference for i in incidents]
    assert newest_first == oldest_first[::-1]
    incident_reads = [
        q["sql"]
        for q in queries.captured_queries
        if 'FROM "incidents_incident"' in q["sql"] and not AUDIT.match(q["sql"])  # the export's audit rows
    ]
    assert len(incident_reads) == 1 + 3  # the keys, then three chunks of at most two rows
    assert not [q for q in queries.captured_queries if "DECLARE" in q["sql"].upper()]


@pytest.mark.postgres  # the settings load the PostgreSQL backend, which needs its driver (not in the SQLite venv)
def test_pooling_setting_disables_server_side_cursors_on_every_database():
    code = (
        "from django.conf import settings; "
        "print(sorted(a['DISABLE_SERVER_SIDE_CURSORS'] for a in settings.DATABASES.values()))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/incidentdesk",
        "REPORTS_DATABASE_URL": "postgres://postgres@127.0.0.1:5433/incidentdesk",
        "DATABASE_POOLING": "transaction",
    }
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "[True, True]"


def test_bench_ceiling_views_are_off_by_default_and_in_production(client):
    assert settings.BENCH_CEILING_VIEWS is False
    assert client.get("/bench/ceiling/json/").status_code == 404
    assert client.post("/bench/ceiling/insert/", {}, content_type="application/json").status_code == 404

    # production refuses an in-process cache: a Redis URL (never connected here), as on a real deployment
    env = {**os.environ, "BENCH_CEILING_VIEWS": "1", "SECRET_KEY": "x", "ALLOWED_HOSTS": "x",
           "CACHE_URL": "redis://127.0.0.1:6379/0"}  # fmt: skip
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.BENCH_CEILING_VIEWS)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.django_db
def test_the_insert_ceiling_is_one_statement():
    request = RequestFactory().post(
        "/bench/ceiling/insert/", b'{"title": "ceiling"}', content_type="application/json"
    )

    with CaptureQueriesContext(connections["default"]) as queries:
        response = ceiling.ceiling_insert(request)

    assert response.status_code == 201
    assert len(queries) == 1
    assert Incident.objects.get().title == "ceiling"
