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
