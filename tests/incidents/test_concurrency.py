"""Two people acting on one incident at once: one wins, the other gets a conflict, nothing is lost."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection

from incidents import lifecycle, services
from incidents.lifecycle import InvalidTransition, StaleVersion
from incidents.models import Incident
from tests.factories import agent, incident_in, responder_of

# serialized_rollback: the flush after each test would otherwise drop the domains seeded by migration 0003.
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.postgres]


def race(*calls):
    """Run the calls in threads released together; return what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_acknowledges_at_once_one_wins_one_conflicts():
    incident = incident_in(Incident.State.CLASSIFIED)
    first = responder_of(incident)
    second = agent(incident.team)
    entries = incident.timeline.count()
    results = race(
        lambda: lifecycle.acknowledge_incident(Incident(pk=incident.pk), actor=first),
        lambda: lifecycle.acknowledge_incident(Incident(pk=incident.pk), actor=second),
    )
    winners = [r for r in results if isinstance(r, Incident)]
    losers = [r for r in results if isinstance(r, InvalidTransition)]
    assert len(winners) == 1, results
    assert len(losers) == 1, results
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESPONDING
    assert incident.assignee_id == winners[0].assignee_id
    assert incident.timeline.count() == entries + 1


def test_two_edits_of_the_same_version_one_wins_one_gets_stale_version():
    incident = incident_in(Incident.State.RESPONDING)
    a, b = responder_of(incident), agent(incident.team)
    version = incident.version
    results = race(
        lambda: services.edit_incident(
            Incident(pk=incident.pk), actor=a, version=version, title="Title from A"
        ),
        lambda: services.edit_incident(
            Incident(pk=incident.pk), actor=b, version=version, title="Title from B"
        ),
    )
    winners = [r for r in results if isinstance(r, Incident)]
    assert len(winners) == 1, results
    assert sum(isinstance(r, StaleVersion) for r in results) == 1, results
    incident.refresh_from_db()
    assert incident.title == winners[0].title
    assert incident.version == version + 1


def test_concurrent_comments_are_all_kept():
    incident = incident_in(Incident.State.RESPONDING)
    people = [agent(incident.team) for _ in range(6)]
    results = race(*[
        (lambda p=p: services.add_comment(Incident(pk=incident.pk), author=p, body=f"note by {p}", public=False))
        for p in people
    ])  # fmt: skip
    assert not [r for r in results if isinstance(r, Exception)], results
    assert incident.comments.count() == 6
    assert incident.timeline.filter(kind="comment").count() == 6


def test_resolve_racing_a_hold_never_loses_either_decision_silently():
    incident = incident_in(Incident.State.RESPONDING)
    a, b = responder_of(incident), agent(incident.team)
    version = incident.version
    results = race(
        lambda: lifecycle.resolve_incident(
            Incident(pk=incident.pk), actor=a, summary="fixed", version=version
        ),
        lambda: lifecycle.hold_incident(
            Incident(pk=incident.pk), actor=b, reason="awaiting_vendor", version=version
        ),
    )
    assert sum(isinstance(r, Incident) for r in results) == 1, results
    assert sum(isinstance(r, StaleVersion) for r in results) == 1, results
