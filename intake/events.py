"""Monitoring events (SPEC section 8, POST /api/v1/events/): trigger, acknowledge and resolve.

Every incident is opened by incidents.services.create_incident and every state change goes through
incidents.lifecycle, on behalf of the integration (actor None; the alert entry names the integration).

A resolve is the machine saying the condition cleared, not a person responding: when nobody had responded,
the response clock ends as `cleared` (escalation.sla.clear_response) and the incident stays out of MTTA.
An acknowledge or resolve of an incident nobody classified yet is held on its alert group and applied
when a person classifies it (apply_held), never refused: monitoring tools do not resend refused events.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Field, ForeignKey, Model
from django.utils import timezone

from escalation import configcache, notify, sla
from incidents import lifecycle, services, timeline
from incidents.lifecycle import InvalidTransition
from incidents.models import Incident, TimelineEntry, reference_for

from .models import AlertGroup, Integration, hash_routing_key

logger = logging.getLogger(__name__)
State = Incident.State
# An incident collects the alerts of its dedup key while it is active (not yet resolved, closed or cancelled).
COLLECTING = frozenset(Incident.ACTIVE_STATES)
PAYLOAD_TIMELINE_LIMIT = 4000  # characters of custom_details kept per alert entry
# What an event carries besides custom_details, kept on the alert entry and the alert group.
KEPT_FIELDS = (
    "summary", "source", "severity", "timestamp", "component", "group", "class",
    "client", "client_url", "links", "images",
)  # fmt: skip
FIRINGS_KEPT = 50  # start times remembered per alert group to recognise a redelivered firing
HELD_MESSAGE = "The incident is not classified yet: the {action} is held and applied when it is classified."


@dataclass(frozen=True)
class EventResult:
    """What an event did. After a dedup hit on PostgreSQL `incident` is None and `incident_id` is the
    incident's id (enough for its reference): the hit reads nothing else, and making an Incident instance of
    sixty fields cost a tenth of its CPU."""

    dedup_key: str
    incident: Incident | None
    message: str = ""
    incident_id: int | None = None

    @property
    def reference(self) -> str | None:
        """The incident's reference, or None when the event concerns no incident."""
        return self.incident.reference if self.incident is not None else reference_for(self.incident_id)


def integration_for_key(raw: str) -> Integration | None:
    """The active integration holding this routing key, or None: callers answer 404 either way."""
    if not raw:
        return None
    # With what opening and classifying an incident reads from it, in one statement written once (the ORM
    # compiled the same select_related join for every event: two thirds of a dedup hit's CPU). The
    # configuration stamp comes along (escalation.configcache): opening an incident reads no configuration
    # that has not changed since.
    sql, parts = _lookup()
    with connection.cursor() as cursor:
        cursor.execute(sql, [hash_routing_key(raw)])
        row = cursor.fetchone()
    if row is None:
        return None
    integration: Any = _from_row(parts[0], row, 0)
    integration.config_token = row[-1]
    # Its domain, category, team and user are made from the row only when an incident is opened (with_related):
    # a dedup hit never reads them, and making four model instances was a sixth of its CPU.
    integration._related_row = row
    return integration


def with_related(integration: Integration) -> Integration:
    """Set the domain, category, team and user that integration_for_key read with the integration (no query)."""
    row = integration.__dict__.pop("_related_row", None)
    if row is not None:
        parts = _lookup()[1]
        start = len(parts[0].names)
        for part in parts[1:]:
            assert part.relation is not None  # noqa: S101 (every part after the first is a relation)
            part.relation.set_cached_value(integration, _from_row(part, row, start))
            start += len(part.names)
    return integration


def _from_row(part: _Part, row: tuple[Any, ...], start: int) -> Model | None:
    values = list(row[start : start + len(part.names)])
    for index, field in part.converting:
        values[index] = _db_value(field, values[index])
    return part.model.from_db(connection.alias, part.names, values) if values[0] is not None else None


RELATED = ("domain", "category", "team", "user")  # what integration_for_key reads with the integration


class _Part(NamedTuple):
    model: type[Model]
    names: list[str]  # its fields' attribute names, in the statement's order
    converting: list[tuple[int, Field]]  # the fields whose values the ORM converts from the database's
    relation: ForeignKey | None  # the integration's field that holds it


@functools.cache
def _lookup() -> tuple[str, list[_Part]]:
    """integration_for_key's statement, and what each model's columns in it are."""
    relations = [cast(ForeignKey, Integration._meta.get_field(name)) for name in RELATED]
    columns: list[str] = []
    joins: list[str] = []
    parts = []
    for number, relation in enumerate([None, *relations]):
        model = Integration if relation is None else relation.related_model
        fields = [cast(Field, field) for field in model._meta.concrete_fields]
        columns += [f"t{number}.{connection.ops.quote_name(str(field.column))}" for field in fields]
        converting = [
            (index, field)
            for index, field in enumerate(fields)
            if connection.ops.get_db_converters(field.cached_col) or field.get_db_converters(connection)
        ]
        parts.append(_Part(model, [field.attname for field in fields], converting, relation))
        if relation is not None:
            pk = model._meta.pk.column
            joins.append(
                f"LEFT JOIN {model._meta.db_table} t{number} ON t{number}.{pk} = t0.{relation.column}"
            )
    # Names from _meta; the one value is bound.
    sql = (
        f"SELECT {', '.join(columns)}, ({configcache.stamp().sql}) FROM {Integration._meta.db_table} t0 "  # noqa: S608
        f"{' '.join(joins)} WHERE t0.key_hash = %s AND t0.active"
    )
    return sql, parts


def _db_value(field: Field, value: Any) -> Any:
    for convert in connection.ops.get_db_converters(field.cached_col) + field.get_db_converters(connection):
        value = convert(value, field.cached_col, connection)
    return value


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
    kept = {k: payload[k] for k in KEPT_FIELDS if payload.get(k) not in (None, "", [])}
    if details is not None:
        text = json.dumps(details, sort_keys=True, default=str)
        kept["custom_details"] = (
            details if len(text) <= PAYLOAD_TIMELINE_LIMIT else text[:PAYLOAD_TIMELINE_LIMIT] + "..."
        )
    return kept


def _md(text: Any) -> str:
    """Event text inside Markdown: no markup of its own (the description is rendered and sanitised)."""
    return re.sub(r"([\\`*_{}\[\]()<>#|!])", r"\\\1", str(text)).replace("\n", " ")


def _url(url: str) -> str:
    """A validated http(s) URL as a Markdown link target: brackets and spaces encoded."""
    return (
        url.replace(" ", "%20")
        .replace("(", "%28")
        .replace(")", "%29")
        .replace("<", "%3C")
        .replace(">", "%3E")
    )


def _description(integration: Integration, payload: dict[str, Any]) -> str:
    lines = [
        f"Reported by the monitoring integration **{_md(integration.name)}**.",
        "",
        f"- Source: `{str(payload.get('source', '')).replace('`', '')}`",
        f"- Severity: {_md(payload.get('severity', ''))}",
    ]
    for field, label in (("component", "Component"), ("group", "Group"), ("class", "Class")):
        if payload.get(field):
            lines.append(f"- {label}: {_md(payload[field])}")
    if payload.get("timestamp"):
        lines.append(f"- Started: {_md(payload['timestamp'])}")
    if payload.get("client"):
        client = _md(payload["client"])
        url = payload.get("client_url")
        lines.append(f"- Sent by: [{client}]({_url(url)})" if url else f"- Sent by: {client}")
    links = [*payload.get("links", []), *payload.get("images", [])]
    if links:
        lines += ["", "Links:", ""]
        for link in payload.get("links", []):
            lines.append(f"- [{_md(link.get('text') or link['href'])}]({_url(link['href'])})")
        for image in payload.get("images", []):
            label = _md(image.get("alt") or "Image")
            lines.append(f"- Image: [{label}]({_url(image['src'])})")
            if image.get("href"):
                lines.append(f"  ([{label}: details]({_url(image['href'])}))")
    details = payload.get("custom_details")
    if details:
        lines += ["", "```json", json.dumps(details, indent=2, sort_keys=True, default=str)[:20000], "```"]
    return "\n".join(lines)


def _firing(payload: dict[str, Any]) -> str:
    """What identifies one occurrence: its start time (Alertmanager's startsAt, an event's timestamp).
    Without one, every delivery is an occurrence."""
    return str(payload.get("timestamp") or "")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as monitoring tools write it (Go's nanoseconds included), or None."""
    if not value or not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year < 2000:  # Alertmanager's "0001-01-01T00:00:00Z": not set
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolution_text(integration: Integration, payload: dict[str, Any], *, now: datetime) -> str:
    """The resolve's own words when it has any, else who cleared it and when."""
    own = str(payload.get("resolution") or "").strip()
    if own:
        return own[:4000]
    at = parse_time(payload.get("cleared_at")) or now
    return f"Cleared by {integration.name} at {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _still_collecting(group: AlertGroup, integration: Integration, now: Any) -> bool:
    if group.incident is None or group.incident.state not in COLLECTING:
        return False  # resolved (by anyone), closed or cancelled: a new trigger opens a new incident
    if group.derived_key:
        return group.last_seen_at >= now - timedelta(minutes=integration.grouping_window_minutes)
    return True


def _open_incident(integration: Integration, payload: dict[str, Any]) -> Incident:
    with_related(integration)
    severity = payload.get("severity", "")
    mapping = integration.mapping_for(severity)
    title = (payload.get("summary") or "Alert").strip()[:200] or "Alert"
    description = _description(integration, payload)
    reporter = service_user(integration)
    domain, category, team = integration.domain, integration.category, integration.team
    if mapping and domain and category and team:
        # Opened classified in one step (one INSERT each of the incident, its clocks, its chain, their
        # timers and the entries): what create_incident followed by classify_incident leave.
        try:
            with notify.memo(), configcache.using(getattr(integration, "config_token", None)):
                return services.create_classified_incident(
                    title=title, description=description, reporter=reporter, domain=domain, category=category,
                    impact=mapping[0], urgency=mapping[1], team=team, channel=Incident.Channel.MONITORING,
                )  # fmt: skip
        except ValidationError:
            # The configuration went stale (say the team stopped handling the domain): a human classifies.
            # Refused before anything was written; the incident is reported unclassified below.
            logger.warning("integration %s could not classify a new incident", integration.slug)
    return services.create_incident(
        title=title,
        description=description,
        reporter=reporter,
        domain=domain,
        category=category,
        impact=mapping[0] if mapping else None,
        urgency=mapping[1] if mapping else None,
        channel=Incident.Channel.MONITORING,
    )


def trigger(integration: Integration, *, dedup_key: str, payload: dict[str, Any]) -> EventResult:
    """Add an alert to the open incident of the dedup key, or open a new incident.

    Safe under concurrency: the partial unique index on (integration, dedup_key) WHERE open lets one
    transaction insert the open group; the others wait for it, fail, roll back and, on the next attempt,
    add to it instead. On PostgreSQL a hit is one statement, atomic by itself (no transaction around it):
    `UPDATE ... SET alert_count = alert_count + 1` whose WHERE (open, still collecting, firing not yet
    counted) PostgreSQL re-checks on the newest row version after waiting for a concurrent one, and the
    INSERT of the alert entry with the count it reached: exact counts without a lock round trip.
    """
    derived = not dedup_key
    key = dedup_key or derive_dedup_key(payload)
    kept = _timeline_payload(payload)
    firing = _firing(payload)
    if connection.vendor == "postgresql":
        hit = _hit_postgresql(integration, key=key, kept=kept, firing=firing, now=timezone.now())
        if hit is not None:
            return hit
    for attempt in range(5):
        try:
            with transaction.atomic():
                return _trigger_once(
                    integration, key=key, derived=derived, payload=payload, kept=kept, firing=firing,
                    retry=attempt > 0,
                )  # fmt: skip
        except IntegrityError:
            continue  # another trigger of this key opened the group first, or a stale group is in the way
    raise RuntimeError(f"could not settle the alert group of {key}")  # pragma: no cover


_TABLE = AlertGroup._meta.db_table
_INCIDENTS = Incident._meta.db_table
# The open group of the key whose incident still collects alerts (_still_collecting, in SQL).
_COLLECTING_SQL = f"""
    g.integration_id = %(integration)s AND g.dedup_key = %(key)s AND g.open
    AND (NOT g.derived_key OR g.last_seen_at >= %(since)s)
    AND EXISTS (SELECT 1 FROM {_INCIDENTS} i WHERE i.id = g.incident_id AND i.state = ANY(%(states)s))
"""  # noqa: S608 (table names from _meta; every value is bound)
# A firing not counted yet: counted, remembered (the newest FIRINGS_KEPT), and whatever was held is dropped.
_COUNT_SQL = f"""
    UPDATE {_TABLE} AS g SET
        alert_count = g.alert_count + 1, last_seen_at = %(now)s, last_payload = %(payload)s::jsonb,
        held_action = '', held_payload = '{{}}'::jsonb, firings = FIRINGS
    WHERE {_COLLECTING_SQL} UNSEEN
    RETURNING g.incident_id, g.alert_count"""  # noqa: S608 (table names from _meta; every value is bound)
# The count and the alert entry with the count reached, in one statement (timeline.alert_data's data).
_HIT_SQL = f"""
    WITH hit AS ({_COUNT_SQL})
    INSERT INTO {TimelineEntry._meta.db_table} (incident_id, at, kind, action, public, data)
    SELECT hit.incident_id, %(now)s, %(kind)s, 'trigger', false, %(entry)s::jsonb || jsonb_build_object('count', hit.alert_count)
    FROM hit
    RETURNING incident_id
"""  # noqa: S608 (table names from _meta; every value is bound)
_APPEND_FIRING = (
    f"CASE WHEN jsonb_array_length(g.firings) >= {FIRINGS_KEPT} THEN (g.firings - 0) "
    "|| jsonb_build_array(%(firing)s::text) ELSE g.firings || jsonb_build_array(%(firing)s::text) END"
)
_UNSEEN = "AND NOT g.firings @> jsonb_build_array(%(firing)s::text)"
# The same firing delivered again (a repeat_interval, a retry after an outage): seen, not counted.
_SEEN_SQL = f"""
    UPDATE {_TABLE} AS g SET last_seen_at = %(now)s, last_payload = %(payload)s::jsonb
    WHERE {_COLLECTING_SQL} AND g.firings @> jsonb_build_array(%(firing)s::text)
    RETURNING g.incident_id, g.alert_count
"""  # noqa: S608 (table names from _meta; every value is bound)
# Before a retry: a group whose incident no longer collects (resolved, closed, cancelled, or a derived key
# gone quiet) is closed so that a new one can take the key.
_CLOSE_STALE_SQL = f"""
    UPDATE {_TABLE} AS g SET open = false
    WHERE g.integration_id = %(integration)s AND g.dedup_key = %(key)s AND g.open AND NOT ({_COLLECTING_SQL})
"""  # noqa: S608 (table names from _meta; every value is bound)


def _hit_postgresql(
    integration: Integration, *, key: str, kept: dict[str, Any], firing: str, now: datetime
) -> EventResult | None:
    """Count the alert on the open group and record it, in one statement (two for a redelivered firing, which
    is seen but not counted); None if no open group of the key collects."""
    entry = timeline.alert_data(
        event="trigger", integration=integration.name, dedup_key=key, payload=kept, count=0
    )
    params: dict[str, Any] = {
        "integration": integration.pk, "key": key, "now": now, "payload": json.dumps(kept),
        "since": now - timedelta(minutes=integration.grouping_window_minutes),
        "states": list(COLLECTING), "firing": firing, "kind": TimelineEntry.Kind.ALERT, "entry": json.dumps(entry),
    }  # fmt: skip
    hit_sql = _HIT_SQL.replace("FIRINGS", _APPEND_FIRING if firing else "g.firings").replace(
        "UNSEEN", _UNSEEN if firing else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(hit_sql, params)
        row = cursor.fetchone()
        if row is None and firing:
            cursor.execute(_SEEN_SQL, params)
            row = cursor.fetchone()
    return None if row is None else EventResult(key, None, incident_id=row[0])


def _hit_locked(
    integration: Integration, *, key: str, kept: dict[str, Any], firing: str, now: datetime
) -> EventResult | None:
    """The same as _hit_postgresql with a row lock, on databases without jsonb (SQLite); a group whose incident
    no longer collects is closed here."""
    group = (
        AlertGroup.objects.select_for_update(of=("self",))
        .select_related("incident")
        .filter(integration=integration, dedup_key=key, open=True)
        .first()
    )
    if group is None:
        return None
    if not _still_collecting(group, integration, now):
        group.open = False
        group.save(update_fields=["open"])
        return None
    assert group.incident is not None  # noqa: S101 (checked by _still_collecting)
    group.last_seen_at = now
    group.last_payload = kept
    if firing and firing in group.firings:
        group.save(update_fields=["last_seen_at", "last_payload"])
        return EventResult(key, group.incident)
    group.alert_count += 1
    fields = ["alert_count", "last_seen_at", "last_payload"]
    if firing:
        group.firings = [*group.firings, firing][-FIRINGS_KEPT:]
        fields.append("firings")
    if group.held_action:
        # It fired again: what was held (a resolve above all) no longer holds.
        group.held_action, group.held_payload = "", {}
        fields += ["held_action", "held_payload"]
    group.save(update_fields=fields)
    timeline.record_alert(
        incident=group.incident, event="trigger", integration=integration.name, dedup_key=key, payload=kept,
        count=group.alert_count,
    )  # fmt: skip
    return EventResult(key, group.incident)


def _trigger_once(
    integration: Integration,
    *,
    key: str,
    derived: bool,
    payload: dict[str, Any],
    kept: dict[str, Any],
    firing: str,
    retry: bool,
) -> EventResult:
    now = timezone.now()
    if connection.vendor == "postgresql":
        if retry:  # the first attempt follows trigger's own hit
            hit = _hit_postgresql(integration, key=key, kept=kept, firing=firing, now=now)
            if hit is not None:
                return hit
            params: dict[str, Any] = {
                "integration": integration.pk, "key": key,
                "since": now - timedelta(minutes=integration.grouping_window_minutes), "states": list(COLLECTING),
            }  # fmt: skip
            with connection.cursor() as cursor:
                cursor.execute(_CLOSE_STALE_SQL, params)
    else:
        hit = _hit_locked(integration, key=key, kept=kept, firing=firing, now=now)
        if hit is not None:
            return hit
    # The incident first, then the group that claims the key for it (one INSERT): a concurrent trigger of
    # the same key blocks on the unique index until we commit, fails, rolls its incident back and retries
    # as a hit. The first attempt skips closing a stale group; its INSERT fails on one, and the retry closes it.
    # Every timeline entry of the new incident (reported, classified, clocks, chain, this alert) in one INSERT.
    with timeline.batch():
        incident = _open_incident(integration, payload)
        AlertGroup.objects.create(
            integration=integration, dedup_key=key, derived_key=derived, first_seen_at=now, last_seen_at=now,
            last_payload=kept, firings=[firing] if firing else [], incident=incident,
        )  # fmt: skip
        timeline.record_alert(
            incident=incident,
            event="trigger",
            integration=integration.name,
            dedup_key=key,
            payload=kept,
            count=1,
        )
    return EventResult(key, incident)


def _open_group(integration: Integration, key: str) -> AlertGroup | None:
    return (
        AlertGroup.objects.select_for_update(of=("self",))
        .select_related("incident")
        .filter(integration=integration, dedup_key=key, open=True)
        .first()
    )


def _hold(
    group: AlertGroup, integration: Integration, *, action: str, payload: dict[str, Any]
) -> EventResult:
    """Keep an acknowledge or resolve of a received incident for its classification (a resolve is never
    replaced by a later acknowledge)."""
    assert group.incident is not None  # noqa: S101 (callers checked)
    if not (group.held_action == "resolve" and action == "acknowledge"):
        group.held_action, group.held_payload = action, payload
        group.save(update_fields=["held_action", "held_payload"])
    timeline.record_alert(
        incident=group.incident, event=action, integration=integration.name, dedup_key=group.dedup_key,
        payload={**_timeline_payload(payload), "held": True}, count=group.alert_count,
    )  # fmt: skip
    return EventResult(group.dedup_key, group.incident, HELD_MESSAGE.format(action=action))


@transaction.atomic
def acknowledge(integration: Integration, *, dedup_key: str, payload: dict[str, Any]) -> EventResult:
    """Acknowledge the open incident of the key on behalf of the integration.

    Acknowledging twice, or an incident already being worked, changes nothing. An incident nobody has
    classified keeps the acknowledge until it is classified (apply_held).
    """
    group = _open_group(integration, dedup_key)
    if group is None or group.incident is None:
        return EventResult(dedup_key, None, "No open incident has this dedup_key; nothing to acknowledge.")
    incident = group.incident
    if incident.state == State.RECEIVED:
        return _hold(group, integration, action="acknowledge", payload=payload)
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


def _resolve_now(group: AlertGroup, integration: Integration, *, payload: dict[str, Any]) -> Incident:
    """Resolve the group's incident through the lifecycle and close the group. The integration is not a
    responder: if nobody responded, the response clock ends as cleared, and the lifecycle's acknowledge of
    a classified incident (a step the resolve needs) is made as no response (`responded_at` stays unset)."""
    assert group.incident is not None  # noqa: S101 (callers checked)
    incident = group.incident
    now = timezone.now()
    summary = resolution_text(integration, payload, now=now)
    if incident.state in COLLECTING and incident.responded_at is None:
        sla.clear_response(incident, now=now)
    if incident.state == State.CLASSIFIED:
        incident = lifecycle.acknowledge_incident(incident, actor=None, response=False)
    elif incident.state == State.ON_HOLD:
        incident = lifecycle.resume_incident(incident, actor=None)
    if incident.state in COLLECTING:
        incident = lifecycle.resolve_incident(incident, actor=None, summary=summary)
    group.open = False
    group.held_action, group.held_payload = "", {}
    group.save(update_fields=["open", "held_action", "held_payload"])
    timeline.record_alert(
        incident=incident, event="resolve", integration=integration.name, dedup_key=group.dedup_key,
        payload=_timeline_payload(payload), count=group.alert_count,
    )  # fmt: skip
    return incident


@transaction.atomic
def resolve(integration: Integration, *, dedup_key: str, payload: dict[str, Any]) -> EventResult:
    """Resolve the open incident of the key and close the group. The resolution is the event's own text
    (`resolution` in the payload) or "Cleared by <integration> at <time>".

    A classified incident is acknowledged first and a held one resumed, each through the lifecycle, so
    the record shows every step. Resolving twice changes nothing. An incident nobody classified keeps
    the resolve until it is classified (apply_held).
    """
    group = _open_group(integration, dedup_key)
    if group is None or group.incident is None:
        return EventResult(dedup_key, None, "No open incident has this dedup_key; nothing to resolve.")
    if group.incident.state == State.RECEIVED:
        return _hold(group, integration, action="resolve", payload=payload)
    return EventResult(dedup_key, _resolve_now(group, integration, payload=payload))


def apply_held(incident_pk: int) -> None:
    """Apply the acknowledge or resolve held for an incident that has just been classified. Run after the
    classification commits; nothing happens when nothing is held, or when a person got there first."""
    groups = (
        AlertGroup.objects.filter(incident_id=incident_pk, open=True)
        .exclude(held_action="")
        .values_list("pk", flat=True)
    )
    for pk in list(groups):
        try:
            with transaction.atomic():
                group = (
                    AlertGroup.objects.select_for_update(of=("self",))
                    .select_related("incident", "integration")
                    .get(pk=pk)
                )
                if not group.open or not group.held_action or group.incident is None:
                    continue
                if group.incident.state == State.RECEIVED:
                    continue  # not classified after all (a rolled back classification)
                integration, payload = group.integration, dict(group.held_payload)
                if group.held_action == "resolve":
                    _resolve_now(group, integration, payload=payload)
                else:
                    group.held_action, group.held_payload = "", {}
                    group.save(update_fields=["held_action", "held_payload"])
                    if group.incident.state in (State.CLASSIFIED, State.ESCALATED):
                        lifecycle.acknowledge_incident(group.incident, actor=None)
        except (InvalidTransition, ValidationError, PermissionDenied):
            logger.warning("could not apply the held event of alert group %s", pk, exc_info=True)


def on_incident_classified(incident: Incident, **kwargs: Any) -> None:
    """The lifecycle's `classified` hook (incidents.hooks): apply what was held, after
    the classification commits."""
    if kwargs.get("fresh"):
        return  # opened classified just now: its alert group is not even written, nothing can be held
    if incident.channel == Incident.Channel.MONITORING:
        pk = incident.pk
        transaction.on_commit(lambda: apply_held(pk))


ACTIONS = {"trigger": trigger, "acknowledge": acknowledge, "resolve": resolve}


def handle(
    integration: Integration, *, event_action: str, dedup_key: str, payload: dict[str, Any]
) -> EventResult:
    return ACTIONS[event_action](integration, dedup_key=dedup_key, payload=payload)
