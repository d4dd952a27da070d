"""The audit trail of configuration writes (users, teams, categories, tokens, webhooks, calendars, SLA and
escalation policies, schedules): Django's admin log.

Every write made through the API leaves one `LogEntry`: who (`user`), when (`action_time`), which object
(`content_type`, `object_id`, `object_repr`) and what (`change_message`, in the admin's JSON format, so
the admin's history page of the object shows API changes beside admin ones).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

FLAGS = {"create": ADDITION, "change": CHANGE, "delete": DELETION}


def record_change(
    *, actor: Any, obj: models.Model, action: str, fields: Iterable[str] = (), note: str = ""
) -> LogEntry:
    """One audit row for a write by `actor` on `obj` (`action` is create, change or delete)."""
    message: list[dict[str, Any]]
    if action == "create":
        message = [{"added": {}}]
    elif action == "delete":
        message = [{"deleted": {"name": str(obj._meta.verbose_name), "object": str(obj)}}]
    else:
        message = [{"changed": {"fields": sorted(fields)}}]
    if note:
        message.append({"note": note})
    return LogEntry.objects.create(
        user_id=actor.pk,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=FLAGS[action],
        change_message=json.dumps(message),
    )


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two representations of one object."""
    if before is None:
        return sorted(after)
    return sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
