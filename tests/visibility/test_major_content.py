"""Content crosses between a major incident and its children only where the receiving side may see the
source, re-checked whenever it flows (issue 11, Build 4): the first defect at the top of issue 11."""

from __future__ import annotations

import pytest

from escalation.models import Notification
from incidents import lifecycle, major, services
from incidents.models import Incident, TimelineEntry
from tests.conftest import client_for
from tests.factories import CategoryFactory, TeamFactory, agent, classified, domain

pytestmark = pytest.mark.django_db

SECRET = "zqsecretsummary"


@pytest.fixture
def reclassified_parent():
    """An IT child follows an IT parent; then the parent turns out to be a security incident."""
    it_team = TeamFactory(domains=["it_service"])
    sec_team = TeamFactory(domains=["security"])
    parent, it_agent = classified(team=it_team, title="Mail server down")
    child, _ = classified(team=it_team, title="Cannot send mail")
    child = lifecycle.acknowledge_incident(child, actor=it_agent)
    child = major.set_parent(child, parent=parent, actor=it_agent)
    sec = agent(sec_team)
    security = domain("security")
    parent = lifecycle.classify_incident(
        Incident.objects.get(pk=parent.pk), actor=sec, domain=security, category=CategoryFactory(domain=security),
        impact=1, urgency=1, team=sec_team,
    )  # fmt: skip
    parent = lifecycle.acknowledge_incident(parent, actor=sec)
    return parent, Incident.objects.get(pk=child.pk), sec, it_agent


def test_a_restricted_parents_public_update_does_not_reach_an_it_child(reclassified_parent):
    parent, child, sec, _ = reclassified_parent
    services.add_comment(parent, author=sec, body=f"Public update {SECRET}", public=True)

    child_entries = TimelineEntry.objects.filter(incident=child, kind=TimelineEntry.Kind.MAJOR_INCIDENT)
    assert not child_entries.filter(comment__isnull=False).exists()
    assert child_entries.filter(action="update_withheld", public=False).exists()
    assert not Notification.objects.filter(incident=child, body__contains=SECRET).exists()
    page = client_for(child.reporter).get(f"/api/v1/incidents/{child.reference}/timeline/").content.decode()
    assert SECRET not in page


def test_resolving_and_closing_a_restricted_parent_gives_an_it_child_no_content(reclassified_parent):
    parent, child, sec, it_agent = reclassified_parent
    parent = lifecycle.resolve_incident(parent, actor=sec, summary=f"Resolved {SECRET}")
    lifecycle.close_incident(
        parent, actor=sec, cause=f"Cause {SECRET}", measures=f"Measures {SECRET}", resolution_code="fixed"
    )

    child = Incident.objects.get(pk=child.pk)
    assert child.state == Incident.State.CLOSED  # it still follows its parent
    for text in (child.resolution_summary, child.cause, child.measures):
        assert SECRET not in text
        assert parent.reference in text
    for viewer in (it_agent, child.reporter):
        body = client_for(viewer).get(f"/api/v1/incidents/{child.reference}/").content.decode()
        assert SECRET not in body
    assert not Notification.objects.filter(incident=child, body__contains=SECRET).exists()
    assert TimelineEntry.objects.filter(incident=child, action="content_withheld").exists()
