"""Major incidents: children follow their parent (updates to their reporters, resolve and close cascade)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from escalation.models import Notification
from incidents import lifecycle, major, services
from incidents.models import Incident, TimelineEntry
from tests.conftest import client_for
from tests.factories import UserFactory, incident_in, responder_of

pytestmark = pytest.mark.django_db
S = Incident.State


def family(*child_states, domain_slug="it_service"):
    parent = incident_in(S.RESPONDING, title="Mail is down for everyone")
    actor = responder_of(parent)
    children = []
    for n, state in enumerate(child_states):
        child = incident_in(
            state,
            domain_slug=domain_slug,
            reporter=UserFactory(email=f"child{n}@example.org"),
            title="No mail",
        )
        children.append(major.set_parent(child, parent=parent, actor=actor))
    return parent, actor, children


def test_linking_a_child_records_it_on_both_and_bumps_the_childs_version():
    parent = incident_in(S.RESPONDING)
    actor = responder_of(parent)
    child = incident_in(S.CLASSIFIED)
    version = child.version
    linked = major.set_parent(child, parent=parent, actor=actor, version=version)
    assert linked.parent_id == parent.pk
    assert linked.version == version + 1
    assert TimelineEntry.objects.get(incident=child, kind="major_incident").data["parent"] == parent.reference
    assert TimelineEntry.objects.get(incident=parent, kind="major_incident").data["child"] == child.reference
    same = major.set_parent(linked, parent=parent, actor=actor)
    assert same.version == linked.version  # linking again changes nothing
    unlinked = major.set_parent(linked, parent=None, actor=actor)
    assert unlinked.parent_id is None


@pytest.mark.parametrize("case", ["self", "grandchild", "parent_with_children", "closed_parent"])
def test_bad_links_are_refused_naming_the_parent(case):
    parent, _actor, (child,) = family(S.CLASSIFIED)
    other = incident_in(S.RESPONDING)
    target, new_parent = {
        "self": (other, other),
        "grandchild": (other, child),  # a child cannot be a parent: one level only
        "parent_with_children": (parent, other),
        "closed_parent": (other, incident_in(S.CLOSED)),
    }[case]
    with pytest.raises(ValidationError) as error:
        major.set_parent(target, parent=new_parent, actor=responder_of(target))
    assert "parent" in error.value.message_dict


def test_a_restricted_parent_takes_children_of_its_own_domain_only_and_their_mail_stays_content_free():
    """Resolving a parent copies its resolution onto the children: a security incident's words must not
    reach an IT reporter, nor any child's reporter by e-mail."""
    parent = incident_in(S.RESPONDING, domain_slug="security", title="CFO mailbox exfiltrated")
    actor = responder_of(parent)
    outsider = incident_in(S.CLASSIFIED, domain_slug="it_service")
    with pytest.raises(ValidationError) as error:
        major.set_parent(outsider, parent=parent, actor=actor)
    assert "only incidents of the same domain" in error.value.message_dict["parent"][0]

    child = incident_in(
        S.RESPONDING, domain_slug="security", reporter=UserFactory(email="kid@example.org"), title="Odd mail"
    )
    major.set_parent(child, parent=parent, actor=actor)
    lifecycle.resolve_incident(parent, actor=actor, summary="Revoked the stolen token of the CFO")
    mails = Notification.objects.filter(recipient="kid@example.org")
    assert mails.exists()
    assert not any("CFO" in m.subject or "CFO" in m.body for m in mails)


def test_a_closed_incident_cannot_become_a_child():
    parent = incident_in(S.RESPONDING)
    with pytest.raises(lifecycle.InvalidTransition):
        major.set_parent(incident_in(S.CLOSED), parent=parent, actor=responder_of(parent))


def test_a_public_update_on_the_parent_reaches_every_open_childs_reporter_once():
    parent, actor, children = family(S.CLASSIFIED, S.RESPONDING)
    comment = services.add_comment(parent, author=actor, body="Mail is back for most users.", public=True)
    rows = Notification.objects.filter(event="reporter_update")
    assert sorted(rows.values_list("recipient", flat=True)) == ["child0@example.org", "child1@example.org"]
    assert all("Mail is back for most users." in row.body for row in rows)
    for child in children:
        entry = TimelineEntry.objects.get(incident=child, kind="major_incident", data__event="parent_update")
        assert entry.public
        assert entry.comment_id == comment.pk
    services.add_comment(parent, author=actor, body="Internal: it was the relay.", public=False)
    assert rows.count() == 2  # internal notes never reach reporters


def test_the_update_shows_on_the_childs_portal(client):
    parent, actor, (child,) = family(S.RESPONDING)
    services.add_comment(parent, author=actor, body="Mail is back.", public=True)
    assert "Mail is back." in client.get(f"/track/{child.tracking_token}/").content.decode()


def test_a_restricted_childs_reporter_is_told_only_that_there_is_an_update():
    parent = incident_in(S.RESPONDING, domain_slug="security", title="Phishing wave")
    actor = responder_of(parent)
    child = incident_in(S.CLASSIFIED, domain_slug="security", reporter=UserFactory(email="c@example.org"))
    major.set_parent(child, parent=parent, actor=actor)
    services.add_comment(parent, author=actor, body="Block sender evil.example", public=True)
    row = Notification.objects.get(event="reporter_update")
    assert "evil.example" not in row.body
    assert child.tracking_token in row.body


def test_resolving_the_parent_resolves_children_that_allow_it_and_notes_the_others():
    parent, actor, (responding, escalated, on_hold, received) = family(
        S.RESPONDING, S.ESCALATED, S.ON_HOLD, S.RECEIVED
    )
    lifecycle.resolve_incident(parent, actor=actor, summary="Relay restarted")
    states = {c.pk: Incident.objects.get(pk=c.pk) for c in (responding, escalated, on_hold, received)}
    assert states[responding.pk].state == S.RESOLVED
    assert states[responding.pk].resolution_summary == "Relay restarted"
    assert states[escalated.pk].state == S.RESOLVED
    assert states[on_hold.pk].state == S.ON_HOLD
    assert states[received.pk].state == S.RECEIVED
    skipped = TimelineEntry.objects.get(
        incident=on_hold, kind="major_incident", data__event="skipped_resolve"
    )
    assert not skipped.public
    summary = TimelineEntry.objects.get(
        incident=parent, kind="major_incident", data__event="children_resolve"
    )
    assert summary.data["followed"] == [responding.reference, escalated.reference]
    assert summary.data["skipped"] == [on_hold.reference, received.reference]
    # Each resolved child's reporter got their own resolution mail through its lifecycle.
    assert Notification.objects.filter(event="reporter_resolved", recipient="child0@example.org").exists()


def test_closing_the_parent_closes_resolved_children_with_the_parents_record():
    parent, actor, (child, open_child) = family(S.RESPONDING, S.CLASSIFIED)
    parent = lifecycle.resolve_incident(parent, actor=actor, summary="Relay restarted")
    lifecycle.close_incident(
        parent, actor=actor, cause="Relay disk full", measures="Disk alarm added", resolution_code="fixed"
    )
    child.refresh_from_db()
    open_child.refresh_from_db()
    assert child.state == S.CLOSED
    assert (child.cause, child.measures, child.resolution_code) == (
        "Relay disk full",
        "Disk alarm added",
        "fixed",
    )
    assert open_child.state == S.CLASSIFIED
    assert Notification.objects.filter(event="reporter_closed", recipient="child0@example.org").exists()


def test_api_sets_and_clears_the_parent_and_names_the_field_on_bad_input():
    parent, actor, _ = family()
    child = incident_in(S.CLASSIFIED)
    api = client_for(actor)
    url = f"/api/v1/incidents/{child.reference}/parent/"
    response = api.post(url, {"parent": parent.reference}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["parent"] == parent.reference
    assert api.post(url, {"parent": "INC-999999"}, format="json").json() == {
        "parent": ["No incident INC-999999."]
    }
    assert api.post(url, {"parent": child.reference}, format="json").status_code == 400
    assert api.post(url, {"parent": None}, format="json").json()["parent"] is None
    reporter_api = client_for(UserFactory())
    assert reporter_api.post(url, {"parent": None}, format="json").status_code == 404


def test_console_links_a_child_from_the_incident_page(client):
    parent, actor, _ = family()
    child = incident_in(S.CLASSIFIED)
    client.force_login(actor)
    response = client.post(f"/desk/incidents/{child.reference}/parent/", {"parent": parent.reference})
    assert response.status_code == 302
    child.refresh_from_db()
    assert child.parent_id == parent.pk
    page = client.get(f"/desk/incidents/{child.reference}/").content.decode()
    assert f'value="{parent.reference}"' in page
    assert (
        client.post(f"/desk/incidents/{child.reference}/parent/", {"parent": "INC-999999"}).status_code == 302
    )
    child.refresh_from_db()
    assert child.parent_id == parent.pk


def test_the_quiet_period_auto_close_of_the_parent_closes_its_resolved_children_as_auto(settings):
    import datetime as dt

    from django.utils import timezone

    parent, actor, (child,) = family(S.RESPONDING)
    lifecycle.resolve_incident(parent, actor=actor, summary="Relay restarted")
    # Only the parent's quiet period is over; the child follows it, not its own clock.
    Incident.objects.filter(pk=parent.pk).update(resolved_at=timezone.now() - dt.timedelta(days=10))
    assert lifecycle.auto_close_resolved(now=timezone.now(), quiet_period=dt.timedelta(days=3)) == 1
    child.refresh_from_db()
    assert child.state == S.CLOSED
    assert child.auto_closed
    assert "Relay restarted" in child.cause
