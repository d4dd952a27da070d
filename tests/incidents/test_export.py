from __future__ import annotations

import csv
import io
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from incidents import lifecycle, services
from incidents.export import COLUMN_NAMES, escape_cell, unescape_cell
from incidents.models import Incident
from tests.conftest import client_for
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, domain, incident_in, report

pytestmark = pytest.mark.django_db
S = Incident.State
EXPORT = "/desk/export.csv"
API_EXPORT = "/api/v1/reports/incidents.csv"


def rows_of(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def desk_client(client, user):
    client.force_login(user)
    return client


def test_export_streams_the_visible_incidents_with_the_documented_columns(client):
    mine = incident_in(S.CLASSIFIED)
    secret = incident_in(S.RECEIVED, domain_slug="security")
    user = agent(mine.team)

    response = desk_client(client, user).get(EXPORT)

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="incidents-')
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].split(",") == COLUMN_NAMES
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["reference"] for r in rows] == [mine.reference]  # the security incident is not visible
    assert secret.reference not in body
    row = rows[0]
    assert row["state"] == "classified"
    assert row["team"] == mine.team.slug
    assert row["received_at"] == mine.received_at.isoformat()


def test_export_takes_the_queue_filters_and_refuses_one_it_does_not_understand(client):
    received = incident_in(S.RECEIVED)
    closed = incident_in(S.CLOSED)
    client = desk_client(client, UserFactory(is_superuser=True))

    assert [r["reference"] for r in rows_of(client.get(EXPORT, {"state": "received"}))] == [
        received.reference
    ]
    assert [r["reference"] for r in rows_of(client.get(EXPORT, {"open": "1"}))] == [received.reference]
    oldest = rows_of(client.get(EXPORT, {"sort": "oldest"}))
    assert [r["reference"] for r in oldest] == [received.reference, closed.reference]

    response = client.get(EXPORT, {"state": "bogus"})
    assert response.status_code == 400
    assert b"state" in response.content


def test_export_is_for_the_console_only(client):
    reporter = UserFactory()
    report(reporter=reporter)

    assert client.get(EXPORT).status_code == 302  # to the sign-in page
    assert desk_client(client, reporter).get(EXPORT).status_code == 404


def test_cells_a_spreadsheet_would_run_are_neutralised_and_read_back_exactly(client):
    incident = incident_in(S.RECEIVED, title='=HYPERLINK("http://evil.example","click")')
    services.edit_incident(
        incident, actor=agent(), version=incident.version, description="@SUM(1+1)\n+also -this"
    )

    row = rows_of(desk_client(client, UserFactory(is_superuser=True)).get(EXPORT))[0]

    assert row["title"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["description"].startswith("'@SUM")
    for value in ["=1+2", "+1", "-1", "@x", "\tx", "'=x", "'plain", "plain", ""]:
        assert unescape_cell(escape_cell(value)) == value
    assert escape_cell("'plain") == "''plain"


def test_a_confidential_reporter_stays_hidden_in_the_export(client):
    reporter = UserFactory(username="whistleblower")
    incident = incident_in(S.RECEIVED, reporter=reporter, confidential=True)

    row = rows_of(desk_client(client, agent()).get(EXPORT))[0]

    assert row["reference"] == incident.reference
    assert row["reporter"] == ""
    assert row["reporter_email"] == ""
    assert "whistleblower" not in str(row)


def test_the_export_costs_the_same_queries_for_3_or_30_incidents(client, django_assert_num_queries):
    team = TeamFactory()
    user = agent(team)
    client = desk_client(client, user)
    for _ in range(3):
        report(domain=domain("it_service"))
    # session, user with memberships and permission (one query), the audit rows of the restricted incidents (one
    # INSERT ... SELECT), the incidents (one server-side cursor / query)
    with django_assert_num_queries(4):
        assert len(rows_of(client.get(EXPORT))) == 3
    for _ in range(27):
        report(domain=domain("it_service"))
    with django_assert_num_queries(4):
        assert len(rows_of(client.get(EXPORT))) == 30


def test_the_api_export_takes_the_list_filters(django_assert_num_queries):
    received = incident_in(S.RECEIVED)
    incident_in(S.RESOLVED)
    api = client_for(agent(received.team))

    response = api.get(API_EXPORT, {"state": "received"}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert [r["reference"] for r in rows_of(response)] == [received.reference]
    bad = api.get(API_EXPORT, {"state": "bogus", "ordering": "colour"})
    assert bad.status_code == 400
    assert "state" in bad.json()
    assert api.get(API_EXPORT, {"ordering": "colour"}).json()["ordering"]
    assert client_for(UserFactory()).get(API_EXPORT).status_code == 403


def _desk_history(team, other, nurse_team, people):
    """Incidents in every state, made through the lifecycle, as a desk would have them."""
    actor = people["agent"]
    it, med = domain("it_service"), domain("medical")
    vpn = CategoryFactory(domain=it, slug="vpn")
    ward = CategoryFactory(domain=med, slug="falls")

    def new(title="VPN drops", **kw):
        return services.create_incident(title=title, reporter=people["reporter"], **kw)

    def classified(incident, **kw):
        return lifecycle.classify_incident(
            incident, actor=actor, domain=it, category=vpn, impact=2, urgency=1, team=team, **kw
        )

    made = [new(title='=cmd|"/c calc"!A1', description="- first\n- second")]
    made.append(classified(new()))
    made.append(lifecycle.acknowledge_incident(classified(new()), actor=actor))
    made.append(lifecycle.escalate_incident(classified(new()), actor=actor, team=other, reason="vendor"))
    held = lifecycle.acknowledge_incident(classified(new()), actor=actor)
    made.append(lifecycle.hold_incident(held, actor=actor, reason="awaiting_vendor"))
    resolved = lifecycle.resolve_incident(
        lifecycle.acknowledge_incident(classified(new()), actor=actor), actor=actor, summary="Rebooted"
    )
    made.append(resolved)
    again = lifecycle.resolve_incident(
        lifecycle.acknowledge_incident(classified(new()), actor=actor), actor=actor, summary="Patched"
    )
    made.append(lifecycle.reopen_incident(again, actor=actor, reason="Still broken"))
    done = lifecycle.resolve_incident(
        lifecycle.acknowledge_incident(classified(new(confidential=True)), actor=actor), actor=actor,
        summary="Replaced the cable",
    )  # fmt: skip
    made.append(
        lifecycle.close_incident(done, actor=actor, cause="Cable", measures="Spares", resolution_code="fixed")
    )
    made.append(lifecycle.cancel_incident(new(), actor=actor, reason="spam"))
    fall = services.create_incident(
        title="Patient fall", reporter=people["reporter"], domain=med, outcome="harm"
    )
    made.append(
        lifecycle.classify_incident(
            fall,
            actor=people["nurse"],
            domain=med,
            category=ward,
            impact=3,
            urgency=2,
            team=nurse_team,
            harm_level="3a",
        )
    )
    return made


SNAPSHOT_FIELDS = [name for name in COLUMN_NAMES if name not in ("reference", "external_id", "channel")]


def _snapshot(incident: Incident) -> dict:
    values = {}
    for name in SNAPSHOT_FIELDS:
        value = getattr(incident, name, None)
        if name in ("domain", "team"):
            value = value.slug if value else None
        elif name == "category":
            value = value.path if value else None
        elif name in ("assignee", "reporter"):
            value = value.username if value else None
        values[name] = value
    values["held_from"] = incident.held_from
    return values


@pytest.mark.django_db(transaction=True)
def test_the_export_round_trips_through_the_importer_into_a_clean_database(client, tmp_path):
    team, other = TeamFactory(slug="desk"), TeamFactory(slug="network", tier=2)
    nurse_team = TeamFactory(slug="nursing", domains=["medical"])
    people = {
        "agent": agent(team, username="agent"),
        "nurse": agent(nurse_team, username="nurse"),
        "reporter": UserFactory(username="reporter"),
    }
    admin = UserFactory(username="admin", is_superuser=True)
    CategoryFactory(domain=domain("it_service"), slug="vpn")
    CategoryFactory(domain=domain("medical"), slug="falls")

    expected = {}
    with transaction.atomic():
        made = _desk_history(team, other, nurse_team, people)
        for incident in made:
            incident.refresh_from_db()
            expected[incident.reference] = _snapshot(incident)
        response = desk_client(client, admin).get(EXPORT)
        (tmp_path / "export.csv").write_bytes(b"".join(response.streaming_content))
        transaction.set_rollback(True)  # forget every incident: what follows starts from a clean database
    assert not Incident.objects.exists()  # a clean database: only the configuration is left
    assert len(expected) == 10

    out = StringIO()
    call_command(
        "import_incidents",
        str(tmp_path / "export.csv"),
        "--mapping",
        "desk-export",
        "--no-progress",
        stdout=out,
    )

    assert "Imported 10 incidents" in out.getvalue()
    imported = {i.external_id: _snapshot(i) for i in Incident.objects.all()}
    differences = {
        (ref, name): (value, imported.get(ref, {}).get(name))
        for ref, values in expected.items()
        for name, value in values.items()
        if imported.get(ref, {}).get(name) != value
    }
    assert differences == {}
    again = StringIO()
    call_command(
        "import_incidents",
        str(tmp_path / "export.csv"),
        "--mapping",
        "desk-export",
        "--no-progress",
        stdout=again,
    )
    assert "Imported 0 incidents (0 timeline entries); 10 already imported" in again.getvalue()


def test_the_rows_are_read_while_the_response_is_sent_not_before(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    incident_in(S.RECEIVED)
    client = desk_client(client, UserFactory(is_superuser=True))

    with CaptureQueriesContext(connection) as before_sending:
        response = client.get(EXPORT)
    # The audit trail's INSERT ... SELECT of the restricted ones' ids runs first; it loads no row into Python.
    reads = [q["sql"] for q in before_sending.captured_queries if not q["sql"].startswith("INSERT INTO")]
    assert not any('"incidents_incident"' in sql for sql in reads)
    with CaptureQueriesContext(connection) as while_sending:
        assert len(rows_of(response)) == 1
    assert any('"incidents_incident"' in q["sql"] for q in while_sending.captured_queries)


def test_the_queue_links_to_the_export_of_what_it_shows(client):
    team = TeamFactory()
    page = desk_client(client, agent(team)).get("/desk/", {"state": "received", "sort": "oldest"})

    assert 'href="/desk/export.csv?state=received&amp;sort=oldest"' in page.content.decode()
