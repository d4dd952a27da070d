"""Integrations as configuration-as-code, for `python manage.py desk_config` (SPEC section 8).

Routing keys are secrets and never exported. An integration created by `apply` gets a key that nobody
knows: rotate it in the admin or the API (`POST /api/v1/integrations/{slug}/rotate_key/`) to get one.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from incidents.models import Category, Domain, Team

from . import events
from .models import Integration, validate_severity_mapping

FIELDS = (
    "name",
    "domain",
    "category",
    "team",
    "severity_mapping",
    "grouping_window_minutes",
    "rate_limit_per_minute",
    "active",
)


def export_integrations() -> list[dict[str, Any]]:
    """Every integration, by slug, without its routing key."""
    return [
        {
            "slug": i.slug,
            "name": i.name,
            "domain": i.domain.slug if i.domain else None,
            "category": i.category.path if i.category else None,
            "team": i.team.slug if i.team else None,
            "severity_mapping": i.severity_mapping,
            "grouping_window_minutes": i.grouping_window_minutes,
            "rate_limit_per_minute": i.rate_limit_per_minute,
            "active": i.active,
        }
        for i in Integration.objects.select_related("domain", "category", "team").order_by("slug")
    ]


def _error(index: int, field: str, message: str) -> ValueError:
    return ValueError(f"integrations[{index}].{field}: {message}")


def _positive(index: int, field: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _error(index, field, "must be a positive whole number")
    return value


def _values(index: int, item: Any) -> tuple[str, dict[str, Any]]:
    """Check one item and turn its names (slugs, path) into objects."""
    if not isinstance(item, dict):
        raise ValueError(f"integrations[{index}]: must be a mapping")
    unknown = sorted(set(item) - {"slug", *FIELDS})
    if unknown:
        raise _error(index, unknown[0], "unknown field")
    slug = item.get("slug")
    if not isinstance(slug, str) or not slug.strip():
        raise _error(index, "slug", "is required")
    name = item.get("name", slug)
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise _error(index, "name", "must be a non-empty text of at most 120 characters")
    values: dict[str, Any] = {"name": name.strip()}
    domain = None
    if item.get("domain") is not None:
        domain = Domain.objects.filter(slug=item["domain"]).first()
        if domain is None:
            raise _error(index, "domain", f"no domain {item['domain']!r}")
    values["domain"] = domain
    values["category"] = None
    if item.get("category") is not None:
        if domain is None:
            raise _error(index, "category", "needs the domain")
        values["category"] = Category.objects.filter(
            domain=domain, path=str(item["category"]).strip("/")
        ).first()
        if values["category"] is None:
            raise _error(index, "category", f"no category {item['category']!r} in domain {domain.slug}")
    values["team"] = None
    if item.get("team") is not None:
        values["team"] = Team.objects.filter(slug=item["team"]).first()
        if values["team"] is None:
            raise _error(index, "team", f"no team {item['team']!r}")
    if "severity_mapping" in item:
        try:
            validate_severity_mapping(item["severity_mapping"])
        except ValidationError as exc:
            raise _error(index, "severity_mapping", " ".join(exc.messages)) from exc
        values["severity_mapping"] = item["severity_mapping"]
    for field in ("grouping_window_minutes", "rate_limit_per_minute"):
        if field in item:
            values[field] = _positive(index, field, item[field])
    if "active" in item:
        if not isinstance(item["active"], bool):
            raise _error(index, "active", "must be true or false")
        values["active"] = item["active"]
    return slug.strip(), values


def apply_integrations(items: list[dict[str, Any]], *, dry_run: bool) -> list[str]:
    """Create or update integrations by slug so they match `items`; return what changed, one line each.

    Idempotent: applying the same items twice reports nothing the second time. Integrations not named
    are left alone. Every item is checked before anything is written; with dry_run nothing is written.
    """
    if not isinstance(items, list):
        raise ValueError("integrations: must be a list")
    checked = [_values(index, item) for index, item in enumerate(items)]
    seen: set[str] = set()
    for index, (slug, _) in enumerate(checked):
        if slug in seen:
            raise _error(index, "slug", f"{slug!r} is listed twice")
        seen.add(slug)
    changes: list[str] = []
    with transaction.atomic():
        for index, (slug, values) in enumerate(checked):
            changes += _apply_one(index, slug, values, dry_run=dry_run)
        if dry_run:
            transaction.set_rollback(True)
    return changes


def _apply_one(index: int, slug: str, values: dict[str, Any], *, dry_run: bool) -> list[str]:
    integration = Integration.objects.filter(slug=slug).first()
    creating = integration is None
    if integration is None:
        integration = Integration(slug=slug)
        integration.set_new_key()  # unknown to anyone until rotated
    diff = []
    for field, value in values.items():
        current = getattr(integration, field)
        if creating or current != value:
            diff.append(field)
            setattr(integration, field, value)
    if not diff:
        return []
    try:
        integration.full_clean()
    except ValidationError as exc:
        field, messages = (
            next(iter(exc.message_dict.items())) if hasattr(exc, "error_dict") else ("slug", exc.messages)
        )
        raise _error(index, field if field != "__all__" else "slug", " ".join(messages)) from exc
    if not dry_run:
        integration.save()
        events.service_user(integration)
    if creating:
        return [f"integration {slug}: created (rotate its routing key to get one)"]
    return [f"integration {slug}: {', '.join(sorted(diff))} changed"]
