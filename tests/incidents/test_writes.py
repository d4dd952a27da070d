"""The one write primitive of an incident row (incidents.writes): lock, version check, version + 1,
updated_at and the timeline entry, in one transaction, on every path that changes the row."""

from __future__ import annotations

import pytest
from django.db import transaction

from incidents import major, services, timeline, writes
from incidents.errors import StaleVersion
from incidents.models import Incident, TimelineEntry
from tests.factories import agent, incident_in, report, responder_of

pytestmark = pytest.mark.django_db
S = Incident.State


def test_save_bumps_the_version_and_updated_at_and_records_the_change():
    incident = report()
    before = incident.updated_at
    with transaction.atomic():
        locked = writes.lock(incident, version=incident.version)
        locked.title = "Printer on fire"
        writes.save(
            locked,
            fields=["title"],
            record=lambda row, at: timeline.record_fields_changed(
                incident=row, actor=None, changes={"title": ["old", row.title]}, at=at
            ),
        )
    incident.refresh_from_db()
    assert incident.title == "Printer on fire"
    assert incident.version == 2
    assert incident.updated_at > before
    entry = incident.timeline.get(kind=TimelineEntry.Kind.FIELDS_CHANGED)
    assert entry.at == incident.updated_at


def test_lock_refuses_a_stale_version_and_nothing_is_written():
    incident = report()
    with pytest.raises(StaleVersion) as refused, transaction.atomic():
        writes.lock(incident, version=incident.version - 1 if incident.version > 1 else 7)
    assert refused.value.current_version == incident.version
    incident.refresh_from_db()
    assert incident.version == 1


def test_writes_outside_a_transaction_are_refused(monkeypatch):
    incident = report()
    # The test itself runs in a transaction; the guard reads the connection's flag, so pretend it is off.
    monkeypatch.setattr(transaction.get_connection(), "in_atomic_block", False)
    with pytest.raises(RuntimeError, match="transaction"):
        writes.lock(incident)


def test_a_comment_is_a_new_version_with_its_timeline_entry():
    incident = incident_in(S.RESPONDING)
    version = incident.version
    comment = services.add_comment(
        incident, author=responder_of(incident), body="Looking at it", public=False
    )
    incident.refresh_from_db()
    assert incident.version == version + 1
    assert incident.updated_at == comment.created_at
    assert incident.timeline.filter(kind=TimelineEntry.Kind.COMMENT, comment=comment).count() == 1


def test_an_edit_from_a_version_older_than_a_comment_is_stale():
    """A client that read the incident before someone commented is told, not silently applied."""
    incident = incident_in(S.RESPONDING)
    read_version = incident.version
    services.add_comment(incident, author=responder_of(incident), body="New finding", public=True)
    with pytest.raises(StaleVersion):
        services.edit_incident(incident, actor=responder_of(incident), version=read_version, title="Other")


def test_linking_a_parent_bumps_the_child_through_the_primitive():
    parent = incident_in(S.RESPONDING)
    child = incident_in(S.CLASSIFIED)
    actor = agent(parent.team)
    version = child.version
    major.set_parent(child, parent=parent, actor=actor, version=version)
    child.refresh_from_db()
    assert child.version == version + 1
    with pytest.raises(StaleVersion):
        major.set_parent(child, parent=None, actor=actor, version=version)


def test_save_many_bumps_every_row_and_records_each_with_its_old_values():
    rows = [report(), report()]
    seen = []
    with transaction.atomic():
        locked = writes.lock_many([r.pk for r in rows])
        writes.save_many(
            locked, values={"outcome": "no_harm"}, record=lambda row, at: seen.append(row.outcome)
        )
    assert seen == ["", ""]
    assert list(Incident.objects.filter(pk__in=[r.pk for r in rows]).values_list("version", "outcome")) == [
        (2, "no_harm"),
        (2, "no_harm"),
    ]
