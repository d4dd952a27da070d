"""Monitoring events (SPEC section 8, POST /api/v1/events/): trigger, acknowledge and resolve.

Every incident is opened by incidents.services.create_incident and every state change goes through
incidents.lifecycle, on behalf of the integration (actor None; the alert entry names the integration).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents import lifecycle, services, timeline
from incidents.models import Incident

from .models import AlertGroup, Integration, hash_routing_key

logger = logging.getLogger(__name__)
State = Incident.State
# An incident collects the alerts of its dedup key while it is active (not yet resolved, closed or cancelled).
COLLECTING = frozenset(Incident.ACTIVE_STATES)
PAYLOAD_TIMELINE_LIMIT = 4000  # characters of custom_details kept per alert entry


@dataclass(frozen=True)
class EventResult:
    dedup_key: str
    incident: Incident | None
    message: str = ""


def integration_for_key(raw: str) -> Integration | None:
    """The active integration holding this routing key, or None: callers answer 404 either way."""
    if not raw:
        return None
    return Integration.objects.filter(key_hash=hash_routing_key(raw), active=True).first()


def derive_dedup_key(payload: dict[str, Any]) -> str:
    """A trigger without a dedup_key groups with others of the same source and summary."""
    text = f"{payload.get('source', '')}\n{payload.get('summary', '')}"
    return "auto-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def service_user(integration: Integration) -> Any:
    """The account an integration reports as: no password, no e-mail (so nobody is mailed about it)."""
    if integration.user_id:
        return integration.user
    User = get_user_model()
    username = f"integration-{integration.slug}"[:150]
    if User.objects.filter(username=username).exists():
        # Never take over someone's account that happens to have the name.
        username = f"{username[:140]}-{secrets.token_hex(4)}"
    user = User(username=username)
    user.set_unusable_password()
    user.save()
    Integration.objects.filter(pk=integration.pk).update(user=user)
    integration.user = user
    return user


def _timeline_payload(payload: dict[str, Any]) -> dict[str, Any]:
    details = payload.get("custom_details")
    kept = {k: payload.get(k) for k in ("summary", "source", "severity") if payload.get(k) is not None}
    if details is not None:
        text = json.dumps(details, sort_keys=True, default=str)
        kept["custom_details"] = (
            details if len(text) <= PAYLOAD_TIMELINE_LIMIT else text[:PAYLOAD_TIMELINE_LIMIT] + "..."
        )
    return kept


def _description(integration: Integration, payload: dict[str, Any]) -> str:
    lines = [
        f"Reported by the monitoring integration **{integration.name}**.",
        "",
        f"- Source: `{payload.get('source', '')}`",
        f"- Severity: {payload.get('severity', '')}",
    ]
    details = payload.get("custom_details")
    if details:
        lines += ["", "```json", json.dumps(details, indent=2, sort_keys=True, default=str)[:20000], "```"]
    return "\n".join(lines)


def _still_collecting(group: AlertGroup, integration: Integration, now: Any) -> bool:
    if group.incident is None or group.incident.state not in COLLECTING:
        return False  # resolved (by anyone), closed or cancelled: a new trigger opens a new incident
    if group.derived_key:
        return group.last_seen_at >= now - timedelta(minutes=integration.grouping_window_minutes)
    return True


def _open_incident(integration: Integration, payload: dict[str, Any]) -> Incident:
    severity = payload.get("severity", "")
    mapping = integration.mapping_for(severity)
    incident = services.create_incident(
        title=(payload.get("summary") or "Alert").strip()[:200] or "Alert",
        description=_description(integration, payload),
        reporter=service_user(integration),
        domain=integration.domain,
        category=integration.category,
        impact=mapping[0] if mapping else None,
        urgency=mapping[1] if mapping else None,
        channel=Incident.Channel.MONITORING,
    )
    domain, category, team = integration.domain, integration.category, integration.team
    if mapping and domain and category and team:
        try:
            incident = lifecycle.classify_incident(
                incident,
                actor=None,
                domain=domain,
                category=category,
                impact=mapping[0],
                urgency=mapping[1],
                team=team,
            )
        except ValidationError:
            # The configuration went stale (say the team stopped handling the domain): a human classifies.
            logger.warning("integration %s could not classify %s", integration.slug, incident.reference)
    return incident


def trigger(integration: Integration, *, dedup_key: str, payload: dict[str, Any]) -> EventResult:
    """Add an alert to the open incident of the dedup key, or open a new incident.

    Safe under concurrency: the partial unique index on (integration, dedup_key) WHERE open lets one
    transaction insert the open group; the others wait for it, fail, and add to it instead.
    """
    derived = not dedup_key
    key = dedup_key or derive_dedup_key(payload)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return _trigger_once(integration, key=key, derived=derived, payload=payload)
        except IntegrityError:
            continue  # another trigger of this key opened the group first: add to it
    raise RuntimeError(f"could not settle the alert group of {key}")  # pragma: no cover


def _trigger_once(
    integration: Integration, *, key: str, derived: bool, payload: dict[str, Any]
) -> EventResult:
    now = timezone.now()
    group = (
        AlertGroup.objects.select_for_update(of=("self",))
        .select_related("incident")
        .filter(integration=integration, dedup_key=key, open=True)
        .first()
    )
    kept = _timeline_payload(payload)
    if group is not None and _still_collecting(group, integration, now):
        assert group.incident is not None  # noqa: S101 (checked by _still_collecting)
        group.alert_count += 1
        group.last_seen_at = now
        group.last_payload = kept
        group.save(update_fields=["alert_count", "last_seen_at", "last_payload"])
        timeline.record_alert(
            incident=group.incident,
            event="trigger",
            integration=integration.name,
            dedup_key=key,
            payload=kept,
            count=group.alert_count,
        )
        return EventResult(key, group.incident)
    if group is not None:
        group.open = False
        group.save(update_fields=["open"])
    with transaction.atomic():
        # Claim the key first (a savepoint): a concurrent trigger blocks here until we commit, then fails.
        group = AlertGroup.objects.create(
            integration=integration, dedup_key=key, derived_key=derived, first_seen_at=now, last_seen_at=now,
            last_payload=kept,
        )  # fmt: skip
    incident = _open_incident(integration, payload)
    group.incident = incident
    group.save(update_fields=["incident"])
    timeline.record_alert(
        incident=incident, event="trigger", integration=integration.name, dedup_key=key, payload=kept, count=1
    )
    return EventResult(key, incident)


def _open_group(integration: Integration, key: str) -> AlertGroup | None:
    return (
        AlertGroup.objects.select_for_update(of=("self",))
        .select_related("incident")
        .filter(integration=integration, dedup_key=key, open=True)
        .first()
    )


@transaction.atomic
def acknowledge(integration: Integration, *, dedup_key: str, payload: dict[str, Any]) -> EventResult:
    """Acknowledge the open incident of the key on behalf of the integration.

    Acknowledging twice, or an incident already being worked, changes nothing. A received incident
    must be classified by a person first: lifecycle.InvalidTransition (409).
    """
    group = _open_group(integration, dedup_key)
    if group is None or group.incident is None:
        return EventResult(dedup_key, None, "No open incident has this dedup_key; nothing to acknowledge.")
    incident = group.incident
    if incident.state in (State.RESPONDING, State.ON_HOLD):
        return EventResult(dedup_key, incident, "Already acknowledged.")
    if incident.state in COLLECTING:
        incident = lifecycle.acknowledge_incident(incident, actor=None)
    kept = _timeline_payload(payload)
    timeline.record_alert(
        incident=incident, event="acknowledge", integration=integration.name, dedup_key=dedup_key, payload=kept,
        count=group.alert_count,
    )  # fmt: skip
    return EventResult(dedup_key, incident)


@transaction.atomic
def resolve(integration: Integration, *, dedup_key: str, payload: dict[str, Any]) -> EventResult:
    """Resolve the open incident of the key with the payload's summary as resolution, and close the group.

    A classified incident is acknowledged first and a held one resumed, each through the lifecycle, so
    the record shows every step. Resolving twice changes nothing. A received incident must be
    classified by a person first: lifecycle.InvalidTransition (409).
    """
    group = _open_group(integration, dedup_key)
    if group is None or group.incident is None:
        return EventResult(dedup_key, None, "No open incident has this dedup_key; nothing to resolve.")
    incident = group.incident
    summary = (
        payload.get("summary") or ""
    ).strip() or f"Resolved by the monitoring integration {integration.name}."
    if incident.state == State.CLASSIFIED:
        incident = lifecycle.acknowledge_incident(incident, actor=None)
    elif incident.state == State.ON_HOLD:
        incident = lifecycle.resume_incident(incident, actor=None)
    if incident.state in COLLECTING:
        incident = lifecycle.resolve_incident(incident, actor=None, summary=summary)
    group.open = False
    group.save(update_fields=["open"])
    timeline.record_alert(
        incident=incident, event="resolve", integration=integration.name, dedup_key=dedup_key,
        payload=_timeline_payload(payload), count=group.alert_count,
    )  # fmt: skip
    return EventResult(dedup_key, incident)


ACTIONS = {"trigger": trigger, "acknowledge": acknowledge, "resolve": resolve}


def handle(
    integration: Integration, *, event_action: str, dedup_key: str, payload: dict[str, Any]
) -> EventResult:
    return ACTIONS[event_action](integration, dedup_key=dedup_key, payload=payload)
