"""The CSV export of the incident list (SPEC sections 8 and 9), streamed row by row.

One row per incident, in the columns of ``COLUMNS``. The file is written while the database is read
(a server-side cursor on PostgreSQL), so a million rows never sit in memory, and it round-trips through
``import_incidents`` with the mapping ``incidents/import_mappings/desk-export.yaml``.

The rows are read from the reports database when one is configured (config.dbrouter). Behind PgBouncer in
transaction pooling mode (``DATABASE_POOLING=transaction``, which sets ``DISABLE_SERVER_SIDE_CURSORS``) a
cursor may not outlive its transaction, so the export then reads the ordered primary keys first (8 bytes
a row on the server, about 36 bytes in Python) and the rows in chunks of ``CHUNK_SIZE`` by key.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from config.dbrouter import reports_reads

from .models import Incident
from .selectors import DeskUser

CHUNK_SIZE = 2000
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection). Such a cell gets a
# leading apostrophe; so does a cell that already starts with one, so that the importer can take exactly
# one apostrophe off again (``unescape_cell``) and the round trip is exact.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _reporter(incident: Incident, me: DeskUser) -> str:
    if not me.can_see_reporter(incident):
        return ""  # a confidential report: responders do not learn who made it
    if incident.reporter is not None:
        return incident.reporter.get_username()
    return incident.reporter_email


def _reporter_email(incident: Incident, me: DeskUser) -> str:
    return incident.reporter_email if me.can_see_reporter(incident) else ""


Column = tuple[str, Callable[[Incident, DeskUser], Any]]

# name, value. Times are ISO 8601 with offset and microseconds; empty cells are empty strings.
COLUMNS: list[Column] = [
    ("reference", lambda i, me: i.reference),
    ("external_id", lambda i, me: i.external_id or ""),
    ("title", lambda i, me: i.title),
    ("description", lambda i, me: i.description),
    ("state", lambda i, me: i.state),
    ("domain", lambda i, me: i.domain.slug if i.domain else ""),
    ("category", lambda i, me: i.category.path if i.category else ""),
    ("outcome", lambda i, me: i.outcome),
    ("harm_level", lambda i, me: i.harm_level),
    ("impact", lambda i, me: i.impact or ""),
    ("urgency", lambda i, me: i.urgency or ""),
    ("priority", lambda i, me: i.priority or ""),
    ("channel", lambda i, me: i.channel),
    ("reporter", _reporter),
    ("reporter_email", _reporter_email),
    ("confidential", lambda i, me: "true" if i.confidential else "false"),
    ("team", lambda i, me: i.team.slug if i.team else ""),
    ("assignee", lambda i, me: i.assignee.get_username() if i.assignee else ""),
    ("escalation_level", lambda i, me: i.escalation_level),
    ("reopen_count", lambda i, me: i.reopen_count),
    ("sla_response", lambda i, me: i.sla_response),
    ("sla_resolution", lambda i, me: i.sla_resolution),
    ("received_at", lambda i, me: _iso(i.received_at)),
    ("classified_at", lambda i, me: _iso(i.classified_at)),
    ("responded_at", lambda i, me: _iso(i.responded_at)),
    ("escalated_at", lambda i, me: _iso(i.escalated_at)),
    ("held_at", lambda i, me: _iso(i.held_at)),
    ("resolved_at", lambda i, me: _iso(i.resolved_at)),
    ("closed_at", lambda i, me: _iso(i.closed_at)),
    ("cancelled_at", lambda i, me: _iso(i.cancelled_at)),
    ("response_due_at", lambda i, me: _iso(i.response_due_at)),
    ("resolution_due_at", lambda i, me: _iso(i.resolution_due_at)),
    ("resolution_summary", lambda i, me: i.resolution_summary),
    ("cause", lambda i, me: i.cause),
    ("measures", lambda i, me: i.measures),
    ("resolution_code", lambda i, me: i.resolution_code),
    ("cancel_reason", lambda i, me: i.cancel_reason),
    ("created_at", lambda i, me: _iso(i.created_at)),
    ("updated_at", lambda i, me: _iso(i.updated_at)),
    # An imported history the export cut at its start: its milestones before it are unknown (docs/reporting.md).
    ("history_started_late", lambda i, me: "true" if i.history_started_late else "false"),
]
COLUMN_NAMES = [name for name, _ in COLUMNS]


def escape_cell(value: Any) -> Any:
    """Neutralise a cell a spreadsheet would evaluate: ``=cmd|...`` becomes ``'=cmd|...``."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo ``escape_cell``: the importer reads back exactly what was exported."""
    if value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS):
        return value[1:]
    return value


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def export_queryset(qs: QuerySet[Incident]) -> QuerySet[Incident]:
    """The columns' relations joined in, so a row costs no query of its own."""
    return qs.select_related("domain", "category", "team", "assignee", "reporter")


def csv_rows(incidents: Iterable[Incident], me: DeskUser) -> Iterator[str]:
    """The header, then one CSV line per incident, produced lazily."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMN_NAMES)
    for incident in incidents:
        yield writer.writerow([escape_cell(value(incident, me)) for _, value in COLUMNS])


def _keyset_chunks(qs: QuerySet[Incident]) -> Iterator[Incident]:
    """The rows of `qs` in its order without a server-side cursor: keys first, then rows by key in chunks.

    A row deleted between the two reads is left out; one changed in between is exported as it is then.
    """
    keys = list(qs.values_list("pk", flat=True))
    for start in range(0, len(keys), CHUNK_SIZE):
        chunk = keys[start : start + CHUNK_SIZE]
        rows = {incident.pk: incident for incident in export_queryset(qs).filter(pk__in=chunk).order_by()}
        yield from (rows[pk] for pk in chunk if pk in rows)


def _rows(qs: QuerySet[Incident]) -> Iterator[Incident]:
    # The block is entered when the response starts to iterate, not when the view returns it.
    with reports_reads() as alias:
        if connections[alias].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
            yield from _keyset_chunks(qs)
        else:
            yield from export_queryset(qs).iterator(chunk_size=CHUNK_SIZE)


def stream_csv(qs: QuerySet[Incident], me: DeskUser) -> Iterator[str]:
    """Stream the incidents of `qs` (already filtered to what `me` may see) through a server-side cursor,
    or in keyset chunks behind a transaction-pooling PgBouncer; from the reports database if there is one."""
    return csv_rows(_rows(qs), me)
