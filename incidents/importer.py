"""Bring in incident history from another tool (SPEC section 9): JSON Lines or a CSV event log.

Each incident is checked whole in Python first (known states, timestamps, domains, categories, teams),
then written with its timeline in batches by ``bulk_create`` — no query per row. A batch is one
transaction of whole incidents; if the database refuses one (a concurrent import of the same
external_id), the batch is written again an incident at a time, so nothing is ever half-imported.

Imported incidents are history: they keep their own timestamps, their channel is ``import``, every
timeline entry carries ``"imported": true``, and no SLA clock, timer or notification starts for them.
Re-importing skips every ``external_id`` that already exists.
"""

from __future__ import annotations

import csv
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction

from . import timeline
from .export import unescape_cell
from .lifecycle import priority_for, replay_history
from .markup import render_markdown
from .models import Category, Domain, Incident, SlaStatus, Team, TimelineEntry

State = Incident.State
BATCH_SIZE = 500
MILESTONE_FIELDS = (
    "received_at", "classified_at", "responded_at", "acknowledged_at", "escalated_at", "held_at",
    "resolved_at", "closed_at", "cancelled_at",
)  # fmt: skip

EXTERNAL_ID_MAX = 120  # Incident.external_id


class RowError(Exception):
    """A problem with one incident of the file; it is reported with its line and skipped."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass
class Event:
    line: int
    at: datetime
    state: str | None
    changes: dict[str, Any]


@dataclass
class Record:
    """One incident as read from the file, before it is checked."""

    line: int
    external_id: str
    fields: dict[str, Any]
    events: list[Event]
    errors: list[RowError] = field(default_factory=list)


@dataclass
class Mapping:
    """How a CSV file's columns map to an incident (the mapping file, YAML or JSON)."""

    case_id: list[str]
    timestamp: str = ""
    state: str = ""
    state_timestamps: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    state_values: dict[str, str] = field(default_factory=dict)
    timestamp_format: str = ""
    time_zone: str = "UTC"
    delimiter: str = ","
    unescape_formulas: bool = False


@dataclass
class Result:
    imported: int = 0
    events: int = 0
    existing: int = 0
    errors: list[RowError] = field(default_factory=list)


# --- reading -------------------------------------------------------------------------------------------


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; a ValueError names the key that is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"Cannot read the mapping {path}: {error}") from error
    if not isinstance(data, dict):
        raise ValueError("The mapping is a YAML or JSON object.")
    known = set(Mapping.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key; use {', '.join(sorted(known))}.")
    case_id = data.get("case_id")
    if isinstance(case_id, str):
        case_id = [case_id]
    if not case_id or not all(isinstance(c, str) and c for c in case_id):
        raise ValueError("case_id: the column (or list of columns) holding the incident's id is required.")
    mapping = Mapping(**{**data, "case_id": case_id})
    if not mapping.state_timestamps and not (mapping.timestamp and mapping.state):
        raise ValueError("timestamp, state: a CSV event log needs both (or state_timestamps).")
    for name in ("state_timestamps", "fields", "state_values"):
        value = getattr(mapping, name)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError(f"{name}: an object of names to column names.")
    bad_states = sorted(set(mapping.state_timestamps) - set(State.values))
    if bad_states:
        raise ValueError(f"state_timestamps.{bad_states[0]}: not a state of the desk.")
    bad_fields = sorted(set(mapping.fields) - set(FIELDS))
    if bad_fields:
        raise ValueError(f"fields.{bad_fields[0]}: not a field the importer knows.")
    try:
        ZoneInfo(mapping.time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"time_zone: unknown time zone {mapping.time_zone!r}.") from error
    return mapping


def parse_time(value: Any, *, fmt: str = "", zone: str = "UTC") -> datetime:
    """ISO 8601 (or `fmt`); a time without an offset is in `zone`."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        parsed = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text.replace("Z", "+00:00"))
    else:
        raise ValueError("missing timestamp")
    aware = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=ZoneInfo(zone))
    try:
        return aware.astimezone(UTC)  # as stored; a time at the edge of the calendar cannot be
    except OverflowError as error:
        raise ValueError(f"{value!s}: out of range") from error


def read_jsonl(lines: Iterable[str]) -> Iterator[Record]:
    """One incident a line: its fields, an `external_id` and `events` [{at, state, <changed fields>}]."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as error:
            yield Record(number, "", {}, [], [RowError(number, f"not JSON: {error.msg}")])
            continue
        if not isinstance(doc, dict):
            yield Record(number, "", {}, [], [RowError(number, "not a JSON object")])
            continue
        yield _record_from_document(number, doc)


def _record_from_document(number: int, doc: dict[str, Any]) -> Record:
    record = Record(number, str(doc.get("external_id") or "").strip(), {}, [])
    if len(record.external_id) > EXTERNAL_ID_MAX:
        record.errors.append(RowError(number, f"external_id: at most {EXTERNAL_ID_MAX} characters"))
    raw_events = doc.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        record.errors.append(RowError(number, "events: at least one event {at, state} is required"))
        raw_events = []
    for i, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            record.errors.append(RowError(number, f"events[{i}]: not an object"))
            continue
        try:
            at = parse_time(raw.get("at"))
        except ValueError as error:
            record.errors.append(RowError(number, f"events[{i}].at: {error}"))
            continue
        state = raw.get("state")
        if state is not None and not isinstance(state, str):
            record.errors.append(
                RowError(number, f"events[{i}].state: a state name, not {type(state).__name__}")
            )
            continue
        changes = {k: v for k, v in raw.items() if k not in ("at", "state")}
        record.events.append(Event(number, at, state or None, changes))
    # The incident's values: the last change of each field in its events, unless the line states it.
    for event in sorted(record.events, key=lambda e: e.at):
        record.fields.update(event.changes)
    record.fields.update({k: v for k, v in doc.items() if k not in ("external_id", "events")})
    return record


def read_csv(lines: Iterable[str], mapping: Mapping) -> Iterator[Record]:
    """A CSV event log: rows grouped by case id (in any order), one event per row and per state column.

    The whole file is grouped before the first incident is checked, since the rows of one case may be
    anywhere in it (event logs are usually sorted by time).
    """
    reader = csv.DictReader(lines, delimiter=mapping.delimiter)
    missing = [
        c
        for c in [
            *mapping.case_id,
            mapping.timestamp,
            mapping.state,
            *mapping.state_timestamps.values(),
            *mapping.fields.values(),
        ]
        if c and c not in (reader.fieldnames or [])
    ]
    if missing:
        raise ValueError(f"The CSV has no column {missing[0]!r} (named in the mapping).")
    records: dict[str, Record] = {}
    for row in reader:
        number = reader.line_num
        if mapping.unescape_formulas:
            row = {k: unescape_cell(v) if isinstance(v, str) else v for k, v in row.items()}
        case = next((row[c].strip() for c in mapping.case_id if (row.get(c) or "").strip()), "")
        if not case:
            records[f"\0{number}"] = Record(number, "", {}, [], [RowError(number, "no case id")])
            continue
        record = records.setdefault(case, Record(number, case, {}, []))
        _add_row(record, row, number, mapping)
    yield from records.values()


def _add_row(record: Record, row: dict[str, Any], number: int, mapping: Mapping) -> None:
    changes = {name: row[column] for name, column in mapping.fields.items() if (row.get(column) or "") != ""}
    stamp = {"fmt": mapping.timestamp_format, "zone": mapping.time_zone}
    for name in set(changes) & TIME_FIELDS:  # times in the mapping's format and zone, like the events'
        try:
            changes[name] = parse_time(changes[name], **stamp)
        except ValueError as error:
            record.errors.append(RowError(number, f"{mapping.fields[name]}: {error}"))
    record.fields.update(changes)
    events: list[Event] = []
    for state, column in mapping.state_timestamps.items():
        if row.get(column):
            try:
                events.append(Event(number, parse_time(row[column], **stamp), state, {}))
            except ValueError as error:
                record.errors.append(RowError(number, f"{column}: {error}"))
    if mapping.state and (raw_state := (row.get(mapping.state) or "").strip()):
        state = mapping.state_values.get(raw_state, raw_state)
        try:
            at = parse_time(row.get(mapping.timestamp), **stamp)
        except ValueError as error:
            record.errors.append(RowError(number, f"{mapping.timestamp}: {error}"))
            return
        latest = max(events, key=lambda e: e.at) if events else None
        # One row per incident (the desk's own export): the current state closes the history, unless the
        # state columns already end in it.
        if not mapping.state_timestamps or latest is None or latest.state != state:
            events.append(Event(number, at, state, changes if not mapping.state_timestamps else {}))
    elif mapping.state and not mapping.state_timestamps:
        record.errors.append(RowError(number, f"{mapping.state}: missing state"))
    record.events.extend(events)


# --- checking ------------------------------------------------------------------------------------------


@dataclass
class Lookups:
    """The small tables an incident refers to, loaded once per run: no query per row."""

    domains: dict[str, Domain]
    categories: dict[tuple[int, str], int]
    teams: dict[str, int]
    users: dict[str, int]

    @classmethod
    def load(cls) -> Lookups:
        return cls(
            domains={d.slug: d for d in Domain.objects.all()},
            categories={(c.domain_id, c.path): c.pk for c in Category.objects.only("id", "domain", "path")},
            teams=dict(Team.objects.values_list("slug", "pk")),
            users=dict(get_user_model().objects.values_list("username", "pk")),
        )


def _text(limit: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = "" if value is None else str(value)
        if len(text) > limit:
            raise ValueError(f"longer than {limit} characters")
        return text

    return parse


def _choice(choices: list[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = "" if value is None else str(value).strip()
        if text and text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _number(low: int, high: int) -> Callable[[Any], int | None]:
    def parse(value: Any) -> int | None:
        if value in (None, ""):
            return None
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"must be from {low} to {high}")
        return number

    return parse


def _count(value: Any) -> int | None:
    return None if value in (None, "") else max(0, int(value))


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no", "n", "f"):
        return False
    if text in ("1", "true", "yes", "y", "t"):
        return True
    raise ValueError(f"{value!r} is not true or false")


def _time(value: Any) -> datetime | None:
    return None if value in (None, "") else parse_time(value)


# The fields an imported incident may carry, each with its parser (a ValueError names the problem).
# domain, category, team, assignee and reporter are names resolved through Lookups.
FIELDS: dict[str, Callable[[Any], Any]] = {
    "title": _text(200),
    "description": _text(100_000),
    "outcome": _choice(Incident.Outcome.values),
    "harm_level": _choice(Incident.HarmLevel.values),
    "impact": _number(1, 3),
    "urgency": _number(1, 3),
    "priority": _number(1, 5),
    "reporter_email": _text(254),
    "confidential": _bool,
    "resolution_summary": _text(100_000),
    "cause": _text(100_000),
    "measures": _text(100_000),
    "resolution_code": _choice(Incident.ResolutionCode.values),
    "cancel_reason": _choice(Incident.CancelReason.values),
    "hold_reason": _choice(Incident.HoldReason.values),
    "sla_response": _choice(SlaStatus.values),
    "sla_resolution": _choice(SlaStatus.values),
    "response_due_at": _time,
    "resolution_due_at": _time,
    "escalation_level": _count,
    "reopen_count": _count,
    **dict.fromkeys(MILESTONE_FIELDS, _time),
    "created_at": _time,
    "updated_at": _time,
    "domain": str,
    "category": str,
    "team": str,
    "assignee": str,
    "reporter": str,
}
REFERENCE_FIELDS = ("domain", "category", "team", "assignee", "reporter")
TIME_FIELDS = {name for name, parse in FIELDS.items() if parse is _time}


@dataclass
class Built:
    """An incident and its timeline, checked and ready for bulk_create."""

    line: int
    incident: Incident
    entries: list[TimelineEntry]


def build(record: Record, lookups: Lookups) -> Built:
    """Check one record whole and build its rows; RowError on the first problem (nothing is written)."""
    if record.errors:
        raise record.errors[0]
    if not record.external_id:
        raise RowError(record.line, "external_id: missing")
    values = _parse_fields(record, lookups)
    steps = _steps(record)
    history = replay_history([(e.at, e.state or "") for e in steps])
    incident = _incident(record, values, steps, history)
    entries = _entries(incident, record, steps, history.actions, people=values["source_people"])
    return Built(record.line, incident, entries)


def _parse_fields(record: Record, lookups: Lookups) -> dict[str, Any]:
    values: dict[str, Any] = {}
    unknown = sorted(set(record.fields) - set(FIELDS))
    if unknown:
        raise RowError(record.line, f"{unknown[0]}: not a field the importer knows")
    for name, raw in record.fields.items():
        if name in REFERENCE_FIELDS:
            continue
        try:
            values[name] = FIELDS[name](raw)
        except (TypeError, ValueError, OverflowError) as error:
            raise RowError(record.line, f"{name}: {error}") from error
    if not (values.get("title") or "").strip():
        raise RowError(record.line, "title: missing")
    values["title"] = values["title"].strip()
    refs = {name: str(record.fields.get(name) or "").strip() for name in REFERENCE_FIELDS}
    domain = lookups.domains.get(refs["domain"]) if refs["domain"] else None
    if refs["domain"] and domain is None:
        raise RowError(record.line, f"domain: unknown domain {refs['domain']!r}")
    values["domain_id"] = domain.pk if domain else None
    values["category_id"] = None
    if refs["category"]:
        if domain is None:
            raise RowError(record.line, "category: a category needs its domain")
        values["category_id"] = lookups.categories.get((domain.pk, refs["category"].strip("/")))
        if values["category_id"] is None:
            raise RowError(record.line, f"category: unknown category {refs['category']!r} in {domain.slug}")
    values["team_id"] = lookups.teams.get(refs["team"]) if refs["team"] else None
    if refs["team"] and values["team_id"] is None:
        raise RowError(record.line, f"team: unknown team {refs['team']!r}")
    # People of the other tool need not exist here: they are kept by name in the timeline, not linked.
    values["assignee_id"] = lookups.users.get(refs["assignee"])
    values["reporter_id"] = lookups.users.get(refs["reporter"])
    values["source_people"] = {k: refs[k] for k in ("assignee", "reporter") if refs[k]}
    if not values.get("reporter_email") and "@" in refs["reporter"]:
        values["reporter_email"] = refs["reporter"]
    return values


def _steps(record: Record) -> list[Event]:
    """The events oldest first (ties in lifecycle order), unknown states refused, repeats folded."""
    order = {state: i for i, state in enumerate(State.values)}
    for event in record.events:
        if event.state is not None and event.state not in order:
            raise RowError(event.line, f"unknown state {event.state!r}")
    events = sorted(record.events, key=lambda e: (e.at, order.get(e.state or "", len(order))))
    if not events:
        raise RowError(record.line, "events: at least one event {at, state} is required")
    steps: list[Event] = []
    for event in events:
        state = event.state or (steps[-1].state if steps else State.RECEIVED)
        if steps and state == steps[-1].state and not event.changes:
            continue
        steps.append(Event(event.line, event.at, state, event.changes))
    return steps


def _incident(record: Record, values: dict[str, Any], steps: list[Event], history: Any) -> Incident:
    milestones = {**history.milestones, "received_at": steps[0].at}
    for name in MILESTONE_FIELDS:
        if values.get(name) is not None:  # the other tool's own timestamps win over the replay
            milestones[name] = values[name]
    impact, urgency = values.get("impact"), values.get("urgency")
    priority = values.get("priority") or (priority_for(impact, urgency) if impact and urgency else None)
    description = values.get("description") or ""
    scalar = {
        k: v
        for k, v in values.items()
        if k in FIELDS
        and k not in MILESTONE_FIELDS
        and k not in ("priority", "escalation_level", "reopen_count", "created_at", "updated_at")
    }
    return Incident(
        **scalar,
        description_html=render_markdown(description) if description else "",
        state=history.state,
        priority=priority,
        channel=Incident.Channel.IMPORT,
        domain_id=values["domain_id"],
        category_id=values["category_id"],
        team_id=values["team_id"],
        assignee_id=values["assignee_id"],
        reporter_id=values["reporter_id"],
        held_from=history.held_from if history.state == State.ON_HOLD else "",
        escalation_level=values.get("escalation_level") or history.escalation_level,
        reopen_count=values.get("reopen_count") or history.reopen_count,
        external_id=record.external_id,
        tracking_token=secrets.token_urlsafe(32),
        created_at=values.get("created_at") or milestones["received_at"],
        updated_at=values.get("updated_at") or max(steps[-1].at, *(m for m in milestones.values() if m)),
        version=len(steps),
        **milestones,
    )


def _entries(
    incident: Incident, record: Record, steps: list[Event], actions: list[str], *, people: dict[str, str]
) -> list[TimelineEntry]:
    source = {"external_id": record.external_id, **people}
    first = steps[0]
    entries = [
        timeline.imported_created(incident=incident, at=first.at, state=first.state or "", source=source)
    ]
    current = _plain(first.changes)
    for previous, step, action in zip(steps, steps[1:], actions[1:], strict=False):
        new = _plain(step.changes)
        changes = {k: [current.get(k), v] for k, v in new.items() if current.get(k) != v}
        current.update(new)
        if step.state != previous.state:
            entry = timeline.imported_state_changed(
                incident=incident, at=step.at, action=action, old=previous.state or "",
                new=step.state or "", changes=changes,
            )  # fmt: skip
        elif changes:
            entry = timeline.imported_fields_changed(incident=incident, at=step.at, changes=changes)
        else:
            continue
        entries.append(entry)
    return entries


def _plain(changes: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe values for the timeline's data."""
    return {
        k: v if isinstance(v, str | int | float | bool) or v is None else str(v) for k, v in changes.items()
    }


# --- writing -------------------------------------------------------------------------------------------


class Importer:
    """Checks and writes records in batches; `dry_run` checks everything and writes nothing."""

    def __init__(self, *, dry_run: bool = False, batch_size: int = BATCH_SIZE) -> None:
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.lookups = Lookups.load()
        self.result = Result()
        self._seen: dict[str, int] = {}
        self._batch: list[Record] = []

    def add(self, record: Record) -> None:
        if record.external_id and not record.errors:
            first = self._seen.setdefault(record.external_id, record.line)
            if first != record.line:
                self.result.errors.append(
                    RowError(record.line, f"external_id {record.external_id!r} repeats line {first}")
                )
                return
        self._batch.append(record)
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        ids = [r.external_id for r in batch if r.external_id]
        existing = set(Incident.objects.filter(external_id__in=ids).values_list("external_id", flat=True))
        built: list[Built] = []
        for record in batch:
            if record.external_id in existing:
                self.result.existing += 1
                continue
            try:
                built.append(build(record, self.lookups))
            except RowError as error:
                self.result.errors.append(error)
            except Exception as error:  # a value no check foresaw (out of range, odd types): that line only
                self.result.errors.append(RowError(record.line, f"{type(error).__name__}: {error}"))
        if self.dry_run:
            self._count(built)
            return
        try:
            with transaction.atomic():
                _write(built)
            self._count(built)
        except DatabaseError:  # a unique key taken meanwhile, or a value the database refuses
            self._write_one_by_one(built)

    def _write_one_by_one(self, built: list[Built]) -> None:
        for item in built:
            try:
                with transaction.atomic():
                    _reset(item)
                    _write([item])
                self._count([item])
            except DatabaseError as error:
                if Incident.objects.filter(external_id=item.incident.external_id).exists():
                    self.result.existing += 1  # imported meanwhile by someone else
                else:
                    self.result.errors.append(RowError(item.line, f"refused by the database: {error}"))

    def _count(self, built: list[Built]) -> None:
        self.result.imported += len(built)
        self.result.events += sum(len(b.entries) for b in built)


def _reset(item: Built) -> None:
    """Forget the ids a rolled-back bulk_create handed out, to insert the rows again."""
    for obj in (item.incident, *item.entries):
        obj.pk = None
        obj._state.adding = True


def _write(built: list[Built]) -> None:
    """Two INSERTs for the whole batch: the incidents (their ids come back), then their timelines."""
    Incident.objects.bulk_create([b.incident for b in built])
    entries = []
    for item in built:
        for entry in item.entries:
            entry.incident_id = item.incident.pk
            entries.append(entry)
    TimelineEntry.objects.bulk_create(entries)


def records_from(mapping: Mapping | None, lines: Iterable[str]) -> Iterator[Record]:
    """JSON Lines unless a mapping says it is a CSV event log."""
    return read_csv(lines, mapping) if mapping is not None else read_jsonl(lines)
