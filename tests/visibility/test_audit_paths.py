"""Issue 11, Build 8: every view of a security or medical incident by a responder leaves an audit row.

Rather than one test per page, this walks every read route the URLconf resolves (pages, API, admin, as the
authorisation matrix does), as responders who see restricted incidents, and for each answer that shows a
restricted incident's content (its title marker or an internal note) asserts that the request wrote an
audit row naming that user and that incident. A new read route that shows restricted content without
auditing it fails here the day it is added.

The report aggregates (`/reports/`, `/api/v1/reports/summary/`) show no incident's content, only counts and
durations: they write no row (see docs and the report). The private tracking link is the reporter's view,
whoever holds the link; it is not a responder's view and is not audited (a responder handling the incident
sees more on the console, which is). Likewise `/my/`, a user's list of their own reports (the titles they
wrote and the states): a reporter reading their own report is not audited, as `incidents.audit.note` says.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client

from incidents.models import AuditEvent
from tests.visibility.test_matrix import cells, routes
from tests.visibility.world import World, build_world, oracle_sees_as

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

# Roles that see restricted incidents as responders: a security responder, a medical one, a superuser.
AUDITED_ROLES = ("security", "medical", "superuser")
# The reporter's private link and the reporter's own list ("my reports"): see the docstring.
NOT_A_RESPONDER_VIEW = ("track/", "report/done/", "my/")


def _read(client: Client, url: str, user: Any) -> tuple[int, str, set[int]]:
    """GET `url` in a transaction that is rolled back; the answer and the incidents audited for `user`."""
    with transaction.atomic():
        before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        response = client.get(url)
        content = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
        audited = set(
            AuditEvent.objects.filter(pk__gt=before, user_id=user.pk).values_list("incident_id", flat=True)
        )
        transaction.set_rollback(True)
    return response.status_code, content.decode("utf-8", "replace"), audited


def unaudited_reads(world: World, role: str) -> tuple[int, list[str]]:
    """(requests made, the reads that showed a restricted incident's content without auditing it)."""
    user = world.user(role)
    client = Client()
    client.force_login(user)
    restricted = [
        t
        for t in world.targets.values()
        if t.incident.domain is not None
        and t.incident.domain.restricted
        and oracle_sees_as(world, role, t.incident) == "responder"
    ]
    assert restricted, f"{role} sees no restricted incident as a responder: the walk would prove nothing"
    failures: list[str] = []
    requests = 0
    for key, methods in routes():
        if "GET" not in methods or key.startswith(NOT_A_RESPONDER_VIEW):
            continue
        for url, _target, _problem, _data in cells(key, world, role):
            if requests % 200 == 0:
                cache.clear()  # throttles count per test run, not per request
            requests += 1
            code, body, audited = _read(client, url, user)
            if "?q=" in url:
                body = body.replace(url.split("?q=", 1)[1], "")  # the search box echoes the query
            for target in restricted:
                shown = target.marker in body or target.note in body
                if shown and target.incident.pk not in audited:
                    failures.append(f"{role} GET {url} ({code}) shows {target.key} and wrote no audit row")
    return requests, failures


@pytest.mark.parametrize("role", AUDITED_ROLES)
def test_every_read_that_shows_a_restricted_incident_to_a_responder_is_audited(role, attachment_dir):
    world = build_world()
    requests, failures = unaudited_reads(world, role)
    print(f"audit walk: role {role}: {requests} GET requests")
    assert requests > 100
    assert not failures, f"{len(failures)} unaudited reads:\n" + "\n".join(failures)
