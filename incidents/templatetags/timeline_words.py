"""Every timeline entry as a sentence a responder reads without knowing the data model.

"Response clock started: due Thu 3 Dec 11:00 (P3 standard, 4 h)", "Escalated to Network operations
(level 2): needs the router team", "Notified Rosa Ruiz by e-mail: assigned to them". Names, not keys: the
people, teams, categories and domains an entry names by id, username or address are read once per page
(`Names.for_entries`, a fixed number of queries whatever the number of entries), and a confidential
reporter's address is never shown to someone who may not see who reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django import template
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString

from incidents.models import Category, Incident, Team, TimelineEntry
from incidents.notifications import reporter_address

register = template.Library()
User = get_user_model()
S = Incident.State
K = TimelineEntry.Kind

CLOCKS = {"response": "Response", "resolution": "Resolution", "all": "SLA"}
CHANNELS = {"email": "e-mail", "webhook": "webhook", "sms": "SMS", "slack": "Slack"}
NOTIFICATION_EVENTS = {
    "reporter_resolved": "the resolution, to confirm",
    "reporter_closed": "the closing report",
    "reporter_update": "an update of the major incident",
    "assigned": "assigned to them",
    "escalation_step": "an escalation step",
    "oncall_gap": "nobody qualified is on call",
    "escalated": "the escalation",
    "classified": "a new incident for the team",
}
CLOCK_EVENTS = {
    "met": "target met",
    "cleared": "cleared by monitoring before a response",
    "cancelled": "stopped",
    "recomputed": "recomputed",
}
FIELD_LABELS = {
    "title": "title",
    "description": "description",
    "impact": "impact",
    "urgency": "urgency",
    "outcome": "outcome",
    "harm_level": "patient impact",
    "priority": "priority",
    "priority_override_reason": "reason for the priority",
    "team": "team",
    "assignee": "assignee",
    "domain": "domain",
    "category": "category",
}


def _when(value: str | None) -> str:
    """An ISO instant as "Thu 3 Dec 11:00" in the desk's time zone."""
    at = parse_datetime(value) if value else None
    return timezone.localtime(at).strftime("%a %-d %b %H:%M") if at else "not set"


def _minutes(minutes: int | float | None) -> str:
    minutes = int(minutes or 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p) or "0 min"


def _words(key: Any) -> str:
    """A key without a label of its own, made readable ("awaiting_vendor" -> "awaiting vendor")."""
    return str(key or "").replace("_", " ").strip()


def _label(choices: Any, value: Any) -> str:
    return str(dict(choices.choices).get(value, _words(value)))


@dataclass
class Names:
    """Who and what the entries of one page name, read in a few queries (see for_entries)."""

    incident: Incident
    reporter_visible: bool
    users_by_id: dict[int, str] = field(default_factory=dict)
    users_by_name: dict[str, str] = field(default_factory=dict)
    users_by_email: dict[str, str] = field(default_factory=dict)
    categories: dict[int, str] = field(default_factory=dict)

    @classmethod
    def for_entries(
        cls, entries: Iterable[TimelineEntry], incident: Incident, *, reporter_visible: bool
    ) -> Names:
        names = cls(incident, reporter_visible)
        user_ids: set[int] = set()
        usernames: set[str] = set()
        emails: set[str] = set()
        category_ids: set[int] = set()
        for entry in entries:
            data = entry.data or {}
            changes = data.get("changes") or {}
            for key in ("assignee", "from_assignee"):
                if isinstance(data.get(key), str):
                    usernames.add(data[key])
            if isinstance(changes.get("assignee"), list):
                user_ids.update(v for v in changes["assignee"] if isinstance(v, int))
            if isinstance(changes.get("category"), list):
                category_ids.update(v for v in changes["category"] if isinstance(v, int))
            if isinstance(data.get("recipient"), str):
                emails.add(data["recipient"])
            emails.update(r for r in data.get("recipients") or [] if isinstance(r, str))
        if category_ids:
            names.categories = {
                pk: f"{name} ({path})"
                for pk, name, path in Category.objects.filter(pk__in=category_ids).values_list(
                    "id", "name", "path"
                )
            }
        if user_ids or usernames or emails:
            for pk, username, email, first, last in User.objects.filter(
                Q(pk__in=user_ids) | Q(username__in=usernames) | Q(email__in=emails)
            ).values_list("id", "username", "email", "first_name", "last_name"):
                full = f"{first} {last}".strip() or username
                names.users_by_id[pk] = full
                names.users_by_name[username] = full
                if email:
                    names.users_by_email[email.lower()] = full
        return names

    @cached_property
    def _teams(self) -> list[tuple[int, str, str]]:
        """The teams (id, slug, name), read when an entry first names one: most pages name none."""
        return list(Team.objects.values_list("id", "slug", "name"))

    def team(self, key: Any) -> str:
        if isinstance(key, int):
            return next((name for pk, _slug, name in self._teams if pk == key), "another team")
        if not key:
            return "no team"
        return next((name for _pk, slug, name in self._teams if slug == str(key)), _words(key))

    def person(self, username: Any) -> str:
        return self.users_by_name.get(str(username), str(username)) if username else "nobody"

    def recipient(self, address: str) -> str:
        """A person's name for an address; the reporter's address only to those who may see the reporter."""
        if not address:
            return "nobody"
        reporter = reporter_address(self.incident)
        if reporter and address.lower() == reporter.lower():
            if not self.reporter_visible:
                return "the reporter"
            name = self.users_by_email.get(address.lower())
            return f"the reporter ({name or address})"
        return self.users_by_email.get(address.lower(), address)


def _extra(label: str, text: Any) -> SafeString:
    if not text:
        return SafeString("")
    return format_html('<div class="text-break">{}: {}</div>', label, text)


def _state_changed(entry: TimelineEntry, names: Names) -> SafeString:
    data, action = entry.data or {}, entry.action
    to = _label(S, data.get("to"))
    if action == "classify":
        changes = data.get("changes") or {}
        bits = []
        if "category" in changes:
            bits.append(names.categories.get(changes["category"][1], "a category"))
        if "priority" in changes:
            bits.append(f"P{changes['priority'][1]}")
        if "team" in changes:
            bits.append(f"for {names.team(changes['team'][1])}")
        if "assignee" in changes and changes["assignee"][1]:
            bits.append(f"assigned to {names.users_by_id.get(changes['assignee'][1], 'a colleague')}")
        verb = "Classified" if data.get("from") == S.RECEIVED else "Reclassified"
        return format_html("{}{}{}", verb, ": " if bits else "", ", ".join(bits))
    if action == "acknowledge":
        who = names.person(data.get("assignee")) if data.get("assignee") else "the desk"
        return format_html("Acknowledged: {} is working on it ({})", who, to.lower())
    if action == "escalate":
        how = " by the escalation policy" if data.get("by_policy") else ""
        text = format_html(
            "Escalated{} to {} (level {})", how, names.team(data.get("team")), data.get("level", "?")
        )
        if data.get("assignee"):
            text = format_html("{}, assigned to {}", text, names.person(data["assignee"]))
        return format_html("{}{}", text, _extra("Reason", data.get("reason")))
    if action == "hold":
        reason = _label(Incident.HoldReason, data.get("reason")).lower()
        return format_html("Put on hold: {}{}", reason, _extra("Note", data.get("note")))
    if action == "resume":
        paused = _minutes((data.get("paused_seconds") or 0) // 60)
        return format_html("Resumed after {} on hold: {}", paused, to.lower())
    if action == "resolve":
        return format_html("Resolved{}", _extra("Summary", data.get("summary")))
    if action == "reopen":
        return format_html("Reopened: the fix did not hold{}", _extra("Reason", data.get("reason")))
    if action == "close":
        how = " automatically after the quiet period" if data.get("auto") else ""
        code = _label(Incident.ResolutionCode, data.get("resolution_code")).lower()
        return format_html(
            "Closed{} ({}){}{}",
            how,
            code,
            _extra("Cause", data.get("cause")),
            _extra("Measures", data.get("measures")),
        )
    if action == "cancel":
        reason = _label(Incident.CancelReason, data.get("reason")).lower()
        duplicate = f", a duplicate of {data['duplicate_of']}" if data.get("duplicate_of") else ""
        return format_html("Cancelled: {}{}{}", reason, duplicate, _extra("Note", data.get("note")))
    how = " (imported history)" if data.get("imported") else ""
    return format_html("{} → {}{}", _label(S, data.get("from")), to, how)


def _assigned(entry: TimelineEntry, names: Names) -> SafeString:
    data = entry.data or {}
    if data.get("team") != data.get("from_team"):
        text = format_html(
            "Transferred from {} to {}", names.team(data.get("from_team")), names.team(data.get("team"))
        )
        if data.get("assignee"):
            text = format_html("{}, assigned to {}", text, names.person(data["assignee"]))
    else:
        text = format_html("Assigned to {}", names.person(data.get("assignee")))
        if data.get("from_assignee"):
            text = format_html("{} (was {})", text, names.person(data["from_assignee"]))
    return format_html("{}{}", text, _extra("Note", data.get("note")))


def _sla(entry: TimelineEntry) -> SafeString:
    data = entry.data or {}
    kind, _, name = str(data.get("clock", "")).partition(":")
    clock = CLOCKS.get(kind, _words(kind).capitalize()) + (f" ({name})" if name else "")
    event = data.get("event", entry.action)
    if event == "started":
        detail = ", ".join(
            p
            for p in (
                data.get("policy") or "",
                _minutes(data["target_minutes"]) if "target_minutes" in data else "",
            )
            if p
        )
        return format_html(
            "{} clock started: due {}{}", clock, _when(data.get("due_at")), f" ({detail})" if detail else ""
        )
    if event == "paused":
        return format_html(
            "{} clock paused: {}", clock, _label(Incident.HoldReason, data.get("reason")).lower() or "on hold"
        )
    if event == "resumed":
        moved = f", now due {_when(data['due_at'])}" if data.get("due_at") else ""
        return format_html("{} clock running again{}", clock, moved)
    if event == "warning":
        return format_html("Warning: the {} target is near, due {}", clock.lower(), _when(data.get("due_at")))
    if event == "breached":
        return format_html("Breached: the {} target passed at {}", clock.lower(), _when(data.get("due_at")))
    if event == "retargeted":
        return format_html(
            "{} clock re-targeted ({}): due {} instead of {}",
            clock, _words(data.get("reason")), _when(data.get("due_at")), _when(data.get("old_due_at")),
        )  # fmt: skip
    if event == "cancelled" and data.get("reason"):
        return format_html("{} clock stopped: {}", clock, _words(data["reason"]))
    return format_html("{} clock {}", clock, CLOCK_EVENTS.get(event, _words(event)))


def _escalation(entry: TimelineEntry, names: Names) -> SafeString:
    data = entry.data or {}
    event = data.get("event", entry.action)
    if event == "started":
        return format_html("Escalation chain started: {}", data.get("policy") or "the team's policy")
    if event == "step":
        people = ", ".join(names.recipient(r) for r in data.get("recipients") or []) or "nobody"
        repeat = f" (repeat {data['repeat']})" if data.get("repeat") else ""
        return format_html("Escalation step {}{}: told {}", data.get("step", "?"), repeat, people)
    if event == "stopped":
        return format_html("Escalation chain stopped: {}", _words(data.get("reason")))
    if event == "paused":
        left = _minutes((data.get("left") or 0) // 60)
        return format_html(
            "Escalation chain paused while on hold ({} left before step {})", left, data.get("step", "?")
        )
    if event == "no_qualified_on_call":
        return format_html("{}", "Nobody qualified is on call; the team's manager was warned")
    if event == "nobody_to_notify":
        return format_html("Nobody could be told: {}", data.get("detail", ""))
    if event == "notification_dead":
        return format_html(
            "Could not reach {} by {} after {} attempts",
            names.recipient(data.get("recipient", "")), CHANNELS.get(data.get("channel", ""), data.get("channel", "")),
            data.get("attempts", "?"),
        )  # fmt: skip
    return format_html("Escalation: {}", _words(event))


def describe(entry: TimelineEntry, names: Names) -> SafeString:
    """The entry as a sentence (HTML, every value escaped). Comments and attachments keep their own markup."""
    data = entry.data or {}
    kind = entry.kind
    if kind == K.CREATED:
        if data.get("imported"):
            return format_html("Imported from another tool, {}", _label(S, data.get("to")).lower())
        return format_html(
            "Reported through the {}", _label(Incident.Channel, data.get("channel") or "web").lower()
        )
    if kind == K.STATE_CHANGED:
        return _state_changed(entry, names)
    if kind == K.ASSIGNED:
        return _assigned(entry, names)
    if kind == K.FIELDS_CHANGED:
        fields = [FIELD_LABELS.get(f, _words(f)) for f in (data.get("changes") or {})]
        return format_html("Changed the {}", ", ".join(fields) or "record")
    if kind == K.PRIORITY_OVERRIDDEN:
        return format_html(
            "Priority set to P{} instead of the matrix's P{}{}",
            data.get("priority"), data.get("matrix"), _extra("Reason", data.get("reason")),
        )  # fmt: skip
    if kind == K.SLA:
        return _sla(entry)
    if kind == K.ESCALATION:
        return _escalation(entry, names)
    if kind == K.NOTIFICATION:
        what = NOTIFICATION_EVENTS.get(data.get("event", ""), _words(data.get("event")))
        channel = CHANNELS.get(data.get("channel", ""), data.get("channel", ""))
        return format_html("Notified {} by {}: {}", names.recipient(data.get("recipient", "")), channel, what)
    if kind == K.REPORTER_CONFIRMED:
        return format_html("{}", "The reporter confirmed the fix")
    if kind == K.RATING:
        return format_html("The reporter rated the service {} out of 5", data.get("score"))
    if kind == K.PROBLEM:
        event = data.get("event", entry.action)
        words = {
            "linked": "Linked to problem",
            "unlinked": "Unlinked from problem",
            "relinked": "Moved to problem",
        }
        return format_html("{} {}", words.get(event, _words(event).capitalize()), data.get("problem", ""))
    if kind == K.MAJOR_INCIDENT:
        event = data.get("event", "")
        if event == "linked_to_parent":
            return format_html("Became part of major incident {}", data.get("parent"))
        if event == "unlinked_from_parent":
            return format_html("No longer part of major incident {}", data.get("parent"))
        if event == "child_linked":
            return format_html("{} became part of this major incident", data.get("child"))
        if event == "child_unlinked":
            return format_html("{} left this major incident", data.get("child"))
        if event.startswith("children_"):
            followed = ", ".join(data.get("followed") or []) or "none"
            skipped = ", ".join(data.get("skipped") or [])
            return format_html(
                "Children followed ({}): {}{}", _words(event.removeprefix("children_")), followed,
                f"; skipped {skipped}" if skipped else "",
            )  # fmt: skip
        if event.startswith("skipped_"):
            return format_html(
                "Did not follow major incident {}: {}", data.get("parent"), data.get("reason", "")
            )
        return format_html("Major incident: {}", _words(event))
    if kind == K.ALERT:
        return format_html(
            "Monitoring {} from {} (#{}): {}", _words(data.get("event")), data.get("integration"),
            data.get("count"), (data.get("payload") or {}).get("summary", ""),
        )  # fmt: skip
    return format_html("{}", entry.get_kind_display())


def describe_all(entries: list[TimelineEntry], names: Names) -> list[SafeString]:
    return [describe(entry, names) for entry in entries]


@register.simple_tag
def entry_sentence(entry: TimelineEntry, names: Names) -> SafeString:
    return describe(entry, names)
