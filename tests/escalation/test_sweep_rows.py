"""The sweep's outbox rows are built once per decision and written in one statement: what every recipient
gets (key, address, subject, body, payload, link) is exactly what the per-recipient code wrote before.

`legacy_rows_for` and `legacy_insert` below are that code, frozen (escalation/notify.py before issue 15's
sweep work: one `_content` and one `Notification` instance per recipient, `bulk_create`). Each test runs the
same sweep twice in one database, once through the frozen code (rolled back) and once through the desk's,
and compares the rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from escalation import notify
from escalation.engine import sweep
from escalation.headers import subject_line
from escalation.models import EscalationPolicy, EscalationStep, Notification, WebhookEndpoint
from incidents.models import Incident, Membership, Team, TimelineEntry
from tests.factories import TeamFactory, UserFactory, classified, sla_policy

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)

# What a row carries to its recipient, and what the delivery reads (timestamps set from the clock aside).
COMPARED = (
    "key", "incident_id", "problem_id", "event", "channel", "recipient", "user_id", "webhook_id", "subject",
    "body", "payload", "state", "attempts", "lease_until", "sent_at", "last_error",
)  # fmt: skip


def _legacy_content(
    incident: Incident, event: str, detail: str, recipient: notify.Recipient
) -> tuple[str, str, dict[str, Any]]:
    link = f"{settings.SITE_URL}{reverse('web:incident', args=[incident.reference])}"
    restricted = incident.domain is not None and incident.domain.restricted
    external = recipient.user_id is None or recipient.content_free
    title = "" if (restricted and external) or recipient.content_free else incident.title
    subject = f"[{incident.reference}] {detail}" + (f": {title}" if title else "")
    body = (
        f"{detail}\n\nIncident {incident.reference}"
        + (f" - {title}" if title else "")
        + f"\nPriority: P{incident.priority}\n{link}\n"
    )
    payload = {
        "event": event,
        "detail": detail,
        "incident": {
            "reference": incident.reference,
            "state": incident.state,
            "priority": incident.priority,
            "domain": incident.domain.slug if incident.domain else None,
            "team": incident.team.slug if incident.team else None,
            "url": link,
            **({"title": title} if title else {}),
        },
    }
    return subject, body, payload


def legacy_rows_for(
    incident: Incident, *, event: str, detail: str, cause: str, recipients: list[notify.Recipient]
) -> list[Notification]:
    rows = []
    seen: set[tuple[str, str]] = set()
    for recipient in recipients:
        if (recipient.channel, recipient.address) in seen:
            continue
        seen.add((recipient.channel, recipient.address))
        subject, body, payload = _legacy_content(incident, event, detail, recipient)
        key = hashlib.sha256(f"{cause}:{recipient.channel}:{recipient.address}".encode()).hexdigest()
        payload["id"] = key
        rows.append(
            Notification(
                key=key, incident=incident, event=event, channel=recipient.channel,
                recipient=recipient.address, user_id=recipient.user_id, webhook_id=recipient.webhook_id,
                subject=subject_line(subject), body=body, payload=payload,
            )
        )  # fmt: skip
    return rows


def legacy_insert(rows: list[Any], *, enqueued_at: dt.datetime | None = None) -> list[int]:
    if not rows:
        return []
    for row in rows:
        row.enqueued_at = enqueued_at
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    keys = [row.key for row in rows]
    found = dict(
        Notification.objects.filter(key__in=keys, state=Notification.State.PENDING).values_list("key", "pk")
    )
    return [found[key] for key in dict.fromkeys(keys) if key in found]


def snapshot(result: Any) -> dict[str, Any]:
    rows = {
        row["key"]: row
        for row in Notification.objects.values(*COMPARED, "enqueued_at", "next_attempt_at", "created_at")
    }
    for row in rows.values():
        assert row["enqueued_at"] is not None  # prompted with the decision, whichever path wrote it
        del row["enqueued_at"], row["next_attempt_at"], row["created_at"]
    by_id = dict(Notification.objects.values_list("pk", "key"))
    return {
        "rows": rows,
        "to_deliver": [by_id[pk] for pk in result.to_deliver],
        "urgent": [by_id[pk] for pk in result.urgent],
        "timeline": sorted(
            (e.incident_id, e.kind, e.action, str(e.data)) for e in TimelineEntry.objects.all()
        ),
    }


def both_ways(monkeypatch: pytest.MonkeyPatch, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same sweep through the frozen per-recipient code (then rolled back) and through the desk's."""
    with transaction.atomic():
        with monkeypatch.context() as patched:
            patched.setattr(notify, "rows_for", legacy_rows_for)
            patched.setattr(notify, "insert", legacy_insert)
            before = snapshot(sweep(now=now))
        transaction.set_rollback(True)
    return before, snapshot(sweep(now=now))


def a_desk_with_everything() -> tuple[Team, list[Incident]]:
    """Warnings, breaches and an escalation step for: members (one without an address, one inactive), the
    team's address, its manager, an assignee, a restricted domain (outsiders get no title), a title that
    must be folded into one subject line, a long one that is cut, and a webhook subscriber."""
    sla_policy(priority=1, response=10, resolution=60, warn=50)
    boss = UserFactory(email="boss@example.org")
    team = TeamFactory(domains=["it_service", "medical"], email="desk@example.org", manager=boss)
    Membership.objects.create(team=team, user=boss)
    Membership.objects.create(team=team, user=UserFactory(email=""))
    Membership.objects.create(team=team, user=UserFactory(is_active=False))
    for _ in range(2):
        Membership.objects.create(team=team, user=UserFactory())
    policy = EscalationPolicy.objects.create(slug="p-rows", name="P", team=team)
    EscalationStep.objects.create(
        policy=policy, position=1, trigger="unacknowledged", delay_minutes=3, notify_team=team,
        notify_email="oncall@example.org", notify_manager=True,
    )  # fmt: skip
    WebhookEndpoint.objects.create(
        slug="ops-hook", name="Ops", url="http://127.0.0.1:9/hook", owner_team=team,
        events=["incident.sla_warning", "incident.sla_breached"],
    )  # fmt: skip
    titles = [
        "VPN drops every ten minutes",
        "Alert:\r\nBcc: everyone@example.org\u2028disk\u202efull\ttoday",
        "Patient Jane Roe got the wrong dose",
        "x" * 90 + " " + "y" * 100,
        "Zürich printers — «offline» ✓",
    ]
    incidents = []
    with time_machine.travel(T0, tick=False):
        for n, title in enumerate(titles):
            incident, actor = classified(
                team=team, title=title, domain_slug="medical" if n == 2 else "it_service"
            )
            incidents.append(incident)
        Incident.objects.filter(pk=incidents[0].pk).update(assignee=actor)
    return team, incidents


def test_the_sweeps_rows_are_the_per_recipient_codes_rows_for_warnings_breaches_and_steps(monkeypatch):
    a_desk_with_everything()
    # Steps at T0+3, warnings at T0+5, breaches at T0+10 (response): all decided in one sweep.
    before, after = both_ways(monkeypatch, T0 + dt.timedelta(minutes=11))
    events = {row["event"] for row in after["rows"].values()}
    assert {
        "sla_warning",
        "sla_breach",
        "escalation_step",
        "incident.sla_warning",
        "incident.sla_breached",
    } <= events
    assert len(after["rows"]) >= 5 * 5 * 2  # five incidents, several recipients each, two SLA kinds and more
    assert set(after["rows"]) == set(before["rows"])
    for key, row in after["rows"].items():
        assert row == before["rows"][key], key
    assert after == before


def test_a_decision_taken_twice_keeps_each_row_once_and_answers_only_those_still_to_deliver(monkeypatch):
    """`insert` writes a key once: rows already written are left alone, and only pending ones are answered."""
    _, incidents = a_desk_with_everything()
    incident = Incident.objects.select_related("domain", "team").get(pk=incidents[1].pk)
    recipients = notify.team_recipients(incident, incident.team)
    recipients += [notify.Recipient("email", "outside@example.org")]
    rows = notify.rows_for(
        incident, event="sla_breach", detail="SLA breached", cause="k", recipients=recipients
    )
    first = notify.insert(rows, enqueued_at=T0)
    assert len(first) == len(rows) == len(set(first))
    Notification.objects.filter(pk=first[0]).update(state="sent")
    again = notify.rows_for(
        incident, event="sla_breach", detail="SLA breached", cause="k", recipients=recipients
    )
    assert notify.insert(again, enqueued_at=T0) == first[1:]
    assert Notification.objects.filter(incident=incident, event="sla_breach").count() == len(rows)
    legacy = legacy_rows_for(
        incident, event="sla_breach", detail="SLA breached", cause="k", recipients=recipients
    )
    stored = {row["key"]: row for row in Notification.objects.filter(pk__in=first).values(*COMPARED)}
    for row in legacy:
        assert stored[row.key]["subject"] == row.subject
        assert stored[row.key]["body"] == row.body
        assert stored[row.key]["payload"] == row.payload
