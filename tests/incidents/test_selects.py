"""incidents.selects: a SELECT compiled once per shape and process, read again with another value."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import selectors, services
from incidents.models import Incident, TimelineEntry
from incidents.selects import compiled_list
from tests.factories import UserFactory, agent, incident_in
from tests.incidents.test_views import compiles_of

pytestmark = pytest.mark.django_db
S = Incident.State


def timeline(pk: int):
    return TimelineEntry.objects.filter(incident_id=pk).select_related("actor", "comment", "attachment")


def test_a_compiled_read_gives_for_each_value_what_the_queryset_gives():
    first, second = incident_in(S.RESPONDING), incident_in(S.CLASSIFIED)
    services.add_comment(first, author=first.assignee, body="first's note", public=True)
    for incident in (first, second, first):
        rows = compiled_list(("test timeline",), timeline, incident.pk)
        expected = list(timeline(incident.pk))
        assert [r.pk for r in rows] == [e.pk for e in expected]
        assert [r.data for r in rows] == [e.data for e in expected]
        assert [r.at for r in rows] == [e.at for e in expected]
        with CaptureQueriesContext(connection) as queries:  # the joined rows came with the read
            assert [r.actor and r.actor.username for r in rows] == [
                e.actor and e.actor.username for e in expected
            ]
            assert [r.comment and r.comment.body for r in rows] == [
                e.comment and e.comment.body for e in expected
            ]
        assert len(queries) == 0
    assert "first's note" not in {
        r.comment.body for r in compiled_list(("test timeline",), timeline, second.pk) if r.comment
    }


def test_a_compiled_read_is_compiled_once_per_key():
    incident = incident_in(S.RESPONDING)
    compiled_list(("test once",), timeline, incident.pk)
    assert compiles_of(lambda: compiled_list(("test once",), timeline, incident.pk)) == 0
    assert compiles_of(lambda: list(timeline(incident.pk))) == 1


def test_a_read_with_nothing_to_read_answers_as_django_does():
    """A reader who handles no incident: Django knows the answer without a statement, and so does the read."""
    incident = incident_in(S.RESPONDING)
    reporter = UserFactory()
    with CaptureQueriesContext(connection) as queries:
        assert selectors.child_incidents(incident, reporter) == []
    assert all("incidents_incident" not in q["sql"] for q in queries.captured_queries)
    assert selectors.child_incidents(incident, agent(incident.team)) == []


def test_the_incident_by_reference_never_serves_one_readers_visibility_to_another(monkeypatch):
    """The console's look-up is compiled once per reach: a restricted incident read first by a member of its
    domain's team stays out of reach for a responder of another domain, and the other way round."""
    from incidents import selects
    from incidents.models import Membership
    from tests.factories import TeamFactory

    monkeypatch.setattr(selects, "_statements", {})  # compiled afresh, in this test's order
    secret, plain = incident_in(S.RESPONDING, domain_slug="security"), incident_in(S.RESPONDING)
    security = agent(TeamFactory(domains=["security"]))
    other = agent()  # an it_service team: the security domain is restricted to its own teams
    both = agent(TeamFactory(domains=["security"]))  # in two teams: security's and an it_service one
    Membership.objects.create(team=TeamFactory(domains=["it_service"]), user=both)
    superuser = UserFactory(is_superuser=True)
    reporter = secret.reporter

    def found(user, incident: Incident) -> bool:
        user = type(user).objects.get(pk=user.pk)  # a new request's user: its roles read again
        return selectors.handled_incident(user, incident.reference) is not None

    for first, second in ((security, other), (other, security)):
        assert found(first, secret) == (first is security)
        assert found(second, secret) == (second is security)
    for reader in (both, superuser, other, security):
        assert found(reader, plain)
    assert found(both, secret)
    assert found(superuser, secret)
    assert not found(reporter, secret)  # who only reported it follows it in their portal
    assert not found(other, secret)
    for nonsense in ("INC-0", "INC-999999999999", "nonsense", "", f"{secret.reference}x"):
        assert selectors.handled_incident(superuser, nonsense) is None


def test_the_incident_by_reference_is_compiled_once_and_read_in_one_statement():
    first, second = incident_in(S.RESPONDING), incident_in(S.CLASSIFIED)
    reader = UserFactory(is_superuser=True)
    selectors.handled_incident(reader, first.reference)  # compiled (and the roles read) here
    with CaptureQueriesContext(connection) as queries:
        assert compiles_of(lambda: selectors.handled_incident(reader, second.reference)) == 0
        found = selectors.handled_incident(reader, second.reference.lower())
    assert len(queries.captured_queries) == 2
    expected = selectors.handled_incident_list(reader).by_reference(second.reference).first()
    assert found is not None
    assert expected is not None
    assert {f.attname: getattr(found, f.attname) for f in Incident._meta.concrete_fields} == {
        f.attname: getattr(expected, f.attname) for f in Incident._meta.concrete_fields
    }
    with CaptureQueriesContext(connection) as queries:  # the related rows came with the read
        assert (found.domain, found.category, found.team, found.assignee, found.reporter) == (
            expected.domain, expected.category, expected.team, expected.assignee, expected.reporter,
        )  # fmt: skip
    assert len(queries.captured_queries) == 0
