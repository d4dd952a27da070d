"""Out-of-range date-times on the incident list's filters answer 400 naming the filter, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import client_for
from tests.factories import TeamFactory, agent, incident_in

pytestmark = pytest.mark.django_db

BAD = [
    ("created_after", "2026-01-01T00:00:00+23:00"),
    ("created_before", "2026-01-01T00:00:00-16:00"),
    ("received_after", "2026-01-01T00:00:00+15:30"),
    ("received_before", "0001-01-01T00:00:00+05:00"),
    ("created_after", "9999-12-31T23:59:59-05:00"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
@pytest.mark.parametrize("path", ["/api/v1/incidents/", "/api/v1/reports/incidents.csv"])
def test_out_of_range_datetimes_are_a_400_naming_the_filter(name, value, path):
    client = client_for(agent(TeamFactory()))
    response = client.get(path, {name: value}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00+14:00", "2026-01-01T00:00:00-12:00", "2026-01-01"])
def test_real_offsets_still_filter(value):
    incident = incident_in("received")
    client = client_for(agent(TeamFactory()))
    response = client.get("/api/v1/incidents/", {"created_after": value})
    assert response.status_code == 200
    assert incident.reference in [i["reference"] for i in response.json()["results"]]


def _imported(run, **kwargs):
    from incidents.models import Incident

    incident = incident_in("resolved", **kwargs)
    Incident.objects.filter(pk=incident.pk).update(import_run=run)
    return incident


def test_the_list_filters_by_import_run_within_what_the_caller_sees():
    from incidents.models import ImportRun
    from tests.factories import UserFactory, responder_of

    run, other_run = ImportRun.objects.create(source="a.csv"), ImportRun.objects.create(source="b.csv")
    alice = UserFactory()
    hers, someone_elses = _imported(run, reporter=alice), _imported(run)
    elsewhere = _imported(other_run, reporter=alice)
    native = incident_in("resolved", reporter=alice)

    def listed(user, value):
        response = client_for(user).get("/api/v1/incidents/", {"import_run": value})
        assert response.status_code == 200, response.content
        return {i["reference"] for i in response.json()["results"]}

    assert listed(alice, run.pk) == {hers.reference}  # her own: the run does not reveal another's incident
    assert listed(alice, other_run.pk) == {elsewhere.reference}
    responder = responder_of(someone_elses)
    seen = {i["reference"] for i in client_for(responder).get("/api/v1/incidents/").json()["results"]}
    assert listed(responder, run.pk) == seen & {hers.reference, someone_elses.reference}
    assert someone_elses.reference in listed(responder, run.pk)
    assert native.reference not in listed(responder, run.pk) | listed(alice, run.pk)
    assert listed(alice, ImportRun.objects.order_by("-pk").first().pk + 1) == set()


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", str(2**63)])
def test_a_bad_import_run_is_a_400_naming_the_filter(value):
    response = client_for(agent(TeamFactory())).get("/api/v1/incidents/", {"import_run": value})
    assert response.status_code == 400, response.content
    assert "import_run" in response.json()


def test_the_schema_documents_the_import_run_filter():
    response = client_for(agent(TeamFactory())).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    operation = response.json()["paths"]["/api/v1/incidents/"]["get"]
    (parameter,) = [p for p in operation["parameters"] if p["name"] == "import_run"]
    assert parameter["schema"]["type"] == "integer"
