"""The one way an incident row is written after it was reported.

Every change (the lifecycle's actions, an edit, a comment, a parent or problem link, an admin edit) does
the same four things in one transaction: lock the row, refuse a stale version, save the changed fields
with version + 1 and a new `updated_at`, and write the timeline entry that records the change. `lock`
and `save` are those steps; nothing else calls `Incident.save` on an existing incident or bumps a version.

    locked = writes.lock(incident, version=version)      # SELECT ... FOR UPDATE; StaleVersion
    locked.title = "..."
    writes.save(locked, fields=["title"], record=lambda row, at: timeline.record_...(incident=row, at=at))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from .errors import StaleVersion
from .models import Incident

# Writes the timeline entry of the change: called with the saved row and the change's time.
Record = Callable[[Incident, datetime], Any]


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("An incident is written inside a transaction (its lock lasts until commit).")


def lock(incident: Incident | int, *, version: int | None = None) -> Incident:
    """Lock the incident's row until the transaction ends and return it fresh from the database.

    `version` (when given) must be the stored one, else StaleVersion: the caller read an older state.
    """
    _require_transaction()
    pk = incident.pk if isinstance(incident, Incident) else incident
    return check_version(Incident.objects.select_for_update().get(pk=pk), version)


def check_version(locked: Incident, version: int | None) -> Incident:
    """StaleVersion unless `version` (when given) is the locked row's: the caller read an older state."""
    if version is not None and version != locked.version:
        raise StaleVersion(locked, version)
    return locked


def lock_many(incidents: QuerySet[Incident] | Iterable[int]) -> list[Incident]:
    """Lock several rows (a queryset, or primary keys) in primary-key order, the order every writer takes
    (no deadlock), and return them fresh from the database."""
    _require_transaction()
    qs = incidents if isinstance(incidents, QuerySet) else Incident.objects.filter(pk__in=set(incidents))
    return list(qs.select_for_update().order_by("pk"))


def save(locked: Incident, *, fields: Iterable[str], record: Record, now: datetime | None = None) -> Incident:
    """Save the changed `fields` of a row from `lock`, with version + 1 and `updated_at`, and record it.

    `record(row, at)` writes the change's timeline entry (in this transaction, with the new version). Each
    call is one new version: callers that find nothing changed return before calling it.
    """
    _require_transaction()
    now = now or timezone.now()
    locked.version += 1
    locked.updated_at = now
    locked.save(update_fields=sorted({*fields, "version", "updated_at"}))
    record(locked, now)
    return locked


def save_many(
    locked: Iterable[Incident], *, values: dict[str, Any], record: Record, now: datetime | None = None
) -> list[Incident]:
    """`save` for many locked rows that all get the same `values` (one UPDATE, one entry each).

    The rows' in-memory fields are updated as well, after `record` saw their old values.
    """
    _require_transaction()
    now = now or timezone.now()
    rows = list(locked)
    if not rows:
        return rows
    Incident.objects.filter(pk__in=[row.pk for row in rows]).update(
        **values, version=F("version") + 1, updated_at=now
    )
    for row in rows:
        row.version += 1
        row.updated_at = now
        record(row, now)
        for name, value in values.items():
            setattr(row, name, value)
    return rows
