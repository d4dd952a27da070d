"""The weekly digest: last week's figures for each manager's teams, e-mailed once per manager and week."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from incidents import hooks
from incidents.models import Team

from . import figures
from .models import DigestSent

logger = logging.getLogger(__name__)


def last_week(now: datetime) -> date:
    """The Monday of the last complete ISO week before `now`, in the desk's time zone."""
    today = timezone.localtime(now).date()
    return today - timedelta(days=today.weekday() + 7)


def duration(seconds: float | None) -> str:
    """A duration for a person to read: minutes up to two hours, then hours."""
    if seconds is None:
        return "-"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _figures_for(manager: Any, teams: list[Team], monday: date) -> list[dict[str, Any]]:
    start, end = figures.day_start(monday), figures.day_start(monday + timedelta(days=7))
    sections = []
    for team in teams:
        data = figures.summary(manager, figures.ReportFilters(start=start, end=end, team=team.slug))
        query = urlencode({"from": monday.isoformat(), "to": (monday + timedelta(days=6)).isoformat(),
                           "team": team.slug})  # fmt: skip
        states = ", ".join(f"{state} {n}" for state, n in data["counts"]["by_state"].items() if n)
        times = {
            f"{name}_{p}": duration(data[name][f"{p}_seconds"])
            for name in ("mtta", "mttr")
            for p in ("median", "p90")
        }
        sections.append(
            {
                "team": team,
                "data": data,
                "states": states,
                "link": f"{settings.SITE_URL}{reverse('reports:dashboard')}?{query}",
                **times,
            }
        )
    return sections


def send_digest(manager: Any, *, monday: date) -> bool:
    """Queue for `manager` the figures of the week starting `monday` for the teams they manage.

    Returns whether a digest was queued. The (manager, week) row and the outbox row are written in one
    transaction: a second call for the same manager and week queues nothing, also when two run at once
    (the second waits on the first's unique key and then finds it). Delivery is the outbox's: a mail
    server that is down is retried with backoff, and the same digest is never mailed twice.
    """
    teams = list(Team.objects.filter(manager=manager).order_by("name"))
    if not teams or not manager.email:
        return False
    sunday = monday + timedelta(days=6)
    try:
        with transaction.atomic():
            DigestSent.objects.create(manager=manager, week=monday)
            sections = _figures_for(manager, teams, monday)
            context = {"manager": manager, "monday": monday, "sunday": sunday, "sections": sections}
            outbox = hooks.outbox()
            ids = outbox.queue_message(
                event="weekly_digest",
                cause=f"digest:{manager.pk}:{monday.isoformat()}",
                address=manager.email,
                subject=f"IncidentDesk weekly report, {monday:%d %b} - {sunday:%d %b %Y}",
                body=render_to_string("reporting/digest.txt", context),
                user_id=manager.pk,
            )
            outbox.deliver_after_commit(ids)
    except IntegrityError:
        return False
    return True


def send_weekly_digests(*, now: datetime) -> int:
    """Queue last week's digest for every active team manager who has not had it yet. Safe to run often."""
    monday = last_week(now)
    managers = (
        get_user_model()
        .objects.filter(is_active=True, managed_teams__isnull=False)
        .exclude(email="")
        .exclude(pk__in=DigestSent.objects.filter(week=monday).values("manager_id"))
        .distinct()
        .order_by("pk")
    )
    sent = 0
    for manager in managers:
        try:
            sent += send_digest(manager, monday=monday)
        except Exception:  # one manager's failure (e.g. their figures) must not stop the others
            logger.exception("weekly digest to %s failed", manager.pk)
    return sent
