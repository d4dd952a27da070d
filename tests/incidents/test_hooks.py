"""Escalation hangs off the lifecycle through incidents.hooks: its receivers run under the incident's lock,
in the lifecycle's transaction, so a receiver that fails undoes the transition with everything it wrote."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from escalation import services as escalation_services
from escalation.models import Notification, SlaClock
from incidents import hooks, lifecycle, services
from incidents.hooks import Event
from incidents.models import Incident
from incidents.transitions import TRANSITIONS, Action
from tests.factories import incident_in, responder_of, sla_policy
from tests.incidents.test_lifecycle import inputs_for

pytestmark = pytest.mark.django_db
S = Incident.State


@pytest.fixture
def receiver():
    """Connect a test receiver for one event; disconnected afterwards whatever happens."""
    connected = []

    def connect(event, func):
        hooks.connect(event, func)
        connected.append((event, func))

    yield connect
    for event, func in connected:
        hooks.disconnect(event, func)


def test_escalation_registers_its_receivers_in_ready():
    for event, func in escalation_services.RECEIVERS.items():
        assert func in hooks.receivers(event), event
    # Reports and public comments concern only the outgoing webhooks (escalation.webhooks).
    assert set(escalation_services.RECEIVERS) == set(Event) - {Event.CREATED, Event.PUBLIC_COMMENT}
    assert all(hooks.receivers(event) for event in Event)
    assert hooks.outbox().queue_message is not None


def test_receivers_run_in_the_transaction_after_the_row_is_written(receiver):
    seen = []

    def look(incident, *, now):
        assert connection.in_atomic_block
        # Same transaction: the new state is already visible to a read.
        seen.append((Incident.objects.get(pk=incident.pk).state, incident.version))

    receiver(Event.RESOLVED, look)
    incident = incident_in(S.RESPONDING)
    lifecycle.resolve_incident(incident, actor=responder_of(incident), summary="Fixed")
    assert seen == [(S.RESOLVED, incident.version + 1)]


def test_a_failing_receiver_rolls_back_the_transition_and_what_escalation_wrote(receiver):
    sla_policy()
    incident = incident_in(S.RESPONDING)
    assert SlaClock.objects.filter(incident=incident, completed_at__isnull=True).exists()
    clocks = list(
        SlaClock.objects.filter(incident=incident).values_list("pk", "completed_at", "cancelled_at")
    )
    mails = Notification.objects.count()
    entries = incident.timeline.count()

    def fail(incident, *, now):
        raise RuntimeError("receiver broke")

    receiver(Event.RESOLVED, fail)  # connected after escalation's: SLA clocks were completed before it
    with pytest.raises(RuntimeError, match="receiver broke"):
        lifecycle.resolve_incident(incident, actor=responder_of(incident), summary="Fixed")

    incident.refresh_from_db()
    assert incident.state == S.RESPONDING
    assert incident.resolved_at is None
    assert incident.timeline.count() == entries
    assert (
        list(SlaClock.objects.filter(incident=incident).values_list("pk", "completed_at", "cancelled_at"))
        == clocks
    )
    assert Notification.objects.count() == mails


def test_announcing_outside_a_transaction_is_refused(monkeypatch):
    incident = incident_in(S.RECEIVED)
    # The test itself runs in a transaction; the guard reads the connection's flag, so pretend it is off.
    monkeypatch.setattr(transaction.get_connection(), "in_atomic_block", False)
    with pytest.raises(RuntimeError, match="outside a transaction"):
        hooks.announce(Event.RESOLVED, incident, now=incident.received_at)


EVENT_OF = {
    Action.CLASSIFY: Event.CLASSIFIED,
    Action.ACKNOWLEDGE: Event.ACKNOWLEDGED,
    Action.ESCALATE: Event.ESCALATED,
    Action.HOLD: Event.HELD,
    Action.RESUME: Event.RESUMED,
    Action.RESOLVE: Event.RESOLVED,
    Action.REOPEN: Event.REOPENED,
    Action.CLOSE: Event.CLOSED,
    Action.CANCEL: Event.CANCELLED,
}
# `assign` hands an incident over without a state change and announces no lifecycle event (clocks and a
# running chain carry on); every other row of the table announces its event.
ROWS = [
    (action, source)
    for action, t in TRANSITIONS.items()
    if action != Action.ASSIGN
    for source in sorted(t.sources)
]


@pytest.mark.parametrize(("action", "source"), ROWS, ids=[f"{a}-from-{s}" for a, s in ROWS])
def test_every_transition_of_the_table_announces_its_event_once(receiver, action, source):
    incident = incident_in(source)
    heard = []
    receiver(EVENT_OF[action], lambda row, **kwargs: heard.append((row.pk, row.state, sorted(kwargs))))

    lifecycle.ACTIONS[action](incident, actor=responder_of(incident), **inputs_for(action, incident))

    assert len(heard) == 1
    pk, state, kwargs = heard[0]
    assert (pk, state) == (incident.pk, TRANSITIONS[action].target_from(source, held_from=incident.held_from))
    assert "now" in kwargs


def test_a_first_public_reply_announces_the_first_response(receiver):
    incident = incident_in(S.CLASSIFIED)
    heard = []
    receiver(Event.PUBLIC_REPLY, lambda row, *, now: heard.append(now))
    services.add_comment(incident, author=responder_of(incident), body="On it", public=True)
    services.add_comment(incident, author=responder_of(incident), body="Still on it", public=True)
    assert len(heard) == 1
