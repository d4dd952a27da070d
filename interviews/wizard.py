"""Draft a case from a closed incident (INTERVIEWS.md, "A case from a closed incident").

The first report becomes the presentation, timeline entries become facts with T+ offsets, the recorded
cause becomes the expected problem, the measures become model solutions and the outcome the debrief.
Every text goes through one `Pseudonymiser`, so a person, host or address keeps one pseudonym across the
whole case. The draft is an ordinary draft: an author completes it, and a second person approves it,
which `cases.approve` refuses while a detector still finds something.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from incidents.models import Incident, Membership, TimelineEntry
from incidents.selectors import incidents_handled_by

from . import cases
from .models import Case, CaseVersion, Fact
from .pseudonymise import Pseudonymiser, detect, format_offset

# Usernames that are ordinary words: replacing them everywhere would garble the text ("the agent").
GENERIC_USERNAMES = frozenset(
    [
        "admin",
        "agent",
        "nurse",
        "doctor",
        "manager",
        "reporter",
        "privacy",
        "specialist",
        "user",
        "support",
        "desk",
        "root",
        "test",
        "oncall",
        "system",
        "ops",
        "operator",
        "service",
        "security",
    ]
)
SENTENCE_RE = re.compile(r"[^.!?\n]+[.!?]?")

FACT_CATEGORY = {
    "classify": Fact.Category.IMPACT,
    "escalate": Fact.Category.PEOPLE,
    "acknowledge": Fact.Category.PEOPLE,
    "hold": Fact.Category.DEPENDENCY,
    "resume": Fact.Category.TIMELINE,
    "resolve": Fact.Category.TIMELINE,
    "reopen": Fact.Category.TIMELINE,
}


def _aliases(user: Any) -> list[str]:
    names = [user.get_full_name(), user.first_name, user.last_name, user.email]
    username = user.get_username()
    if username.lower() not in GENERIC_USERNAMES:
        names.append(username)
    return [n for n in names if n and len(n.strip()) >= 3]


def people_of_incident(incident: Incident) -> list[list[str]]:
    """Everyone the incident names or involves, each as their aliases (name, username, e-mail)."""
    user_ids = {incident.reporter_id, incident.assignee_id}
    user_ids |= set(incident.timeline.values_list("actor_id", flat=True))
    user_ids |= set(incident.comments.values_list("author_id", flat=True))
    if incident.team_id is not None:
        user_ids |= set(Membership.objects.filter(team_id=incident.team_id).values_list("user_id", flat=True))
        if incident.team and incident.team.manager_id:
            user_ids.add(incident.team.manager_id)
    users = get_user_model().objects.filter(pk__in=[pk for pk in user_ids if pk is not None]).order_by("pk")
    people = [aliases for aliases in (_aliases(u) for u in users) if aliases]
    if incident.reporter_email:
        people.append([incident.reporter_email])
    return people


def _entry_text(entry: TimelineEntry) -> tuple[str, str] | None:
    """(category, text) of a timeline entry that tells the candidate something; None for the rest."""
    data = entry.data or {}
    if entry.kind == TimelineEntry.Kind.COMMENT and entry.comment is not None:
        return Fact.Category.TIMELINE, entry.comment.body
    if entry.kind == TimelineEntry.Kind.ATTACHMENT:
        return Fact.Category.MONITORING, f"A file was attached: {data.get('filename', 'a file')}."
    if entry.kind == TimelineEntry.Kind.FIELDS_CHANGED:
        changes = data.get("changes", {})
        parts = [f"{field} changed from {old!s} to {new!s}" for field, (old, new) in changes.items()]
        return (Fact.Category.CHANGE, "; ".join(parts) + ".") if parts else None
    if entry.kind == TimelineEntry.Kind.PRIORITY_OVERRIDDEN:
        return Fact.Category.IMPACT, f"Priority set to {data.get('priority')}: {data.get('reason', '')}"
    if entry.kind != TimelineEntry.Kind.STATE_CHANGED or entry.action in ("close", "cancel", ""):
        return None
    action = entry.action
    text = {
        "classify": "The incident was classified"
        + (f" with priority {entry.incident.priority}" if entry.incident.priority else "")
        + ".",
        "acknowledge": "A responder took the incident on.",
        "escalate": f"Escalated to {data.get('team', 'another team')}: {data.get('reason', '')}",
        "hold": f"Put on hold ({str(data.get('reason', '')).replace('_', ' ')}). {data.get('note', '')}",
        "resume": f"Work resumed after {int(data.get('paused_seconds', 0)) // 60} min on hold.",
        "resolve": f"Service restored: {data.get('summary', '')}",
        "reopen": f"Reopened: {data.get('reason', '')}",
    }.get(action)
    return (FACT_CATEGORY.get(action, Fact.Category.TIMELINE), text) if text else None


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_RE.findall(text or "") if s.strip(" .!?")]


def _unique_slug(base: str) -> str:
    slug, n = base, 1
    while Case.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _check_draftable(incident: Incident, *, actor: Any) -> None:
    if not incidents_handled_by(actor).filter(pk=incident.pk).exists():
        raise PermissionDenied("You may not see this incident.")
    if incident.state != Incident.State.CLOSED:
        raise ValidationError(
            {
                "incident": [
                    f"Only a closed incident becomes a case; {incident.reference} is {incident.state}."
                ]
            }
        )


def case_document_from_incident(incident: Incident) -> tuple[dict[str, Any], Pseudonymiser]:
    """The pseudonymised case document of an incident, and the pseudonymiser that made it (its mapping
    and the names it knows). Writes nothing: the wizard's preview and the draft share it."""
    anchor = incident.received_at
    pseudo = Pseudonymiser(people=people_of_incident(incident), anchor=anchor)

    sentences = _sentences(incident.description)
    title = incident.title.strip().rstrip(".") + "."
    presentation = " ".join([title, *sentences[:4]]) if sentences else f"{title} It was reported at T+0 min."
    facts = []
    if len(sentences) > 4:
        facts.append(
            {
                "key": "F1",
                "title": "The rest of the first report",
                "text": pseudo(" ".join(sentences[4:])),
                "category": Fact.Category.TIMELINE,
                "importance": Fact.Importance.SUPPORTING,
                "offset_minutes": 0,
            }
        )
    entries = incident.timeline.select_related("comment", "incident").exclude(
        kind__in=[TimelineEntry.Kind.CREATED, TimelineEntry.Kind.NOTIFICATION, TimelineEntry.Kind.SLA]
    )
    for entry in entries:
        described = _entry_text(entry)
        if described is None or not described[1].strip():
            continue
        category, text = described
        offset = round((entry.at - anchor).total_seconds() / 60)
        clean = pseudo(text.strip())
        facts.append(
            {
                "key": f"F{len(facts) + 1}",
                "title": clean[:80],
                "text": f"{format_offset(offset)}: {clean}",
                "category": category,
                "importance": Fact.Importance.SUPPORTING,
                "offset_minutes": offset,
            }
        )
    fact_keys = [f["key"] for f in facts]
    measures = _sentences(incident.measures) or [incident.measures or "Measures to be written."]
    outcome = "\n\n".join(
        part
        for part in (
            f"Resolution: {incident.resolution_summary}" if incident.resolution_summary else "",
            f"Cause: {incident.cause}" if incident.cause else "",
            f"Measures: {incident.measures}" if incident.measures else "",
        )
        if part
    )
    doc = {
        "slug": _unique_slug(f"from-{incident.reference.lower()}"),
        "title": pseudo(incident.title)[:200],
        "domain": incident.domain.slug if incident.domain else None,
        "tags": ["from-incident"],
        "presentation": pseudo(presentation),
        "brief": "Ask for the facts you need, state the problems you see, and propose what to do, with reasons.",
        "actual_outcome": pseudo(outcome),
        "facts": facts,
        "problems": [
            {
                "key": "P1",
                "statement": pseudo(incident.cause or "The cause, as recorded."),
                "kind": "root_cause",
                "weight": 1,
                "required_facts": fact_keys[-2:],
            }
        ],
        "solutions": [
            {"key": f"S{i}", "action": pseudo(m), "type": "fix", "rank": i, "weight": 1, "addresses": ["P1"]}
            for i, m in enumerate(measures, start=1)
        ],
    }
    return doc, pseudo


def document_texts(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) for every text of a case document, as `cases.case_texts` lists a version's."""
    texts = [
        (name, str(doc.get(name) or "")) for name in ("title", "presentation", "brief", "actual_outcome")
    ]
    for f in doc.get("facts", []):
        texts += [(f"fact {f['key']}", f.get("title", "")), (f"fact {f['key']}", f.get("text", ""))]
    texts += [(f"problem {p['key']}", p.get("statement", "")) for p in doc.get("problems", [])]
    texts += [(f"solution {s['key']}", s.get("action", "")) for s in doc.get("solutions", [])]
    return [(where, text) for where, text in texts if text]


@dataclass
class Preview:
    """What the wizard would draft, before anything is written."""

    document: dict[str, Any]
    # (kind, original, pseudonym) for each thing the detectors found and replaced. Originals are shown
    # only here, to the author who may see the incident; the case itself never stores them.
    replacements: list[tuple[str, str, str]]
    findings: list[str]  # what the detectors still find in the draft: it blocks publication


def _original(pseudo: Pseudonymiser, key: str) -> str:
    # A known person is keyed by their index in `people` ("#0"), so that all their aliases share one label.
    if key.startswith("#") and key[1:].isdigit() and int(key[1:]) < len(pseudo.people):
        return " / ".join(pseudo.people[int(key[1:])])
    return key


def preview_case_from_incident(incident: Incident, *, actor: Any) -> Preview:
    """The draft the wizard would write, with what the detectors still find in it. Writes nothing."""
    _check_draftable(incident, actor=actor)
    doc, pseudo = case_document_from_incident(incident)
    findings = [
        f"{where}: {finding.kind} {finding.text!r}"
        for where, text in document_texts(doc)
        for finding in detect(text, known_names=pseudo.known_names)
    ]
    replacements = sorted(
        (kind, _original(pseudo, original), pseudonym)
        for (kind, original), pseudonym in pseudo.mapping.items()
    )
    return Preview(document=doc, replacements=replacements, findings=findings)


@transaction.atomic
def draft_case_from_incident(incident: Incident, *, actor: Any) -> tuple[CaseVersion, list[str]]:
    """A draft case from a closed incident the actor may see; returns it and what detectors still find.

    Each call drafts a new case (the author may draft again after the incident's record improved).
    """
    _check_draftable(incident, actor=actor)
    doc, pseudo = case_document_from_incident(incident)
    version, _ = cases.apply_case_document(doc, actor=actor, source_incident=incident)
    version.pseudonyms = {pseudonym: kind for (kind, _original), pseudonym in pseudo.mapping.items()}
    version.save(update_fields=["pseudonyms"])
    return version, cases.identifying_findings(version)
