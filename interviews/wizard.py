"""Draft a case from a closed incident (INTERVIEWS.md, "A case from a closed incident").

The first report becomes the presentation, timeline entries become facts with T+ offsets, the recorded
cause becomes the expected problem, the measures become model solutions and the outcome the debrief.
Every text goes through one `Pseudonymiser`, so a person, host or address keeps one pseudonym across the
whole case. The draft is an ordinary draft: an author completes it, and a second person approves it,
which `cases.approve` refuses while a detector still finds something.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from incidents.models import Incident, Membership, TimelineEntry
from incidents.selectors import incidents_handled_by

from . import cases
from .models import Case, CaseVersion, Fact
from .pseudonymise import Pseudonymiser, detect, format_offset, sentence_spans

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
    user_ids |= set(incident.attachments.values_list("uploaded_by_id", flat=True))
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
        # A file name often carries a name or a record number ("Befund_Maria_Schulz.pdf"): only its type.
        suffix = str(data.get("filename", "")).rpartition(".")[2].lower()
        kind = f"a {suffix} file" if suffix.isalnum() and 0 < len(suffix) <= 5 else "a file"
        return Fact.Category.MONITORING, f"{kind[0].upper()}{kind[1:]} was attached."
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


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of `text`; the texts are cut at them, never re-joined, so no token changes."""
    return [(s, e) for s, e in sentence_spans(text or "") if text[s:e].strip(" .!?")]


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
    and the names it knows). Writes nothing: the wizard's preview and the draft share it.

    Every text is read for names first (`Pseudonymiser.learn`), then replaced: a person named only in
    the last comment is the same pseudonym in the title."""
    anchor = incident.received_at
    pseudo = Pseudonymiser(
        people=people_of_incident(incident), anchor=anchor, tz=timezone.get_current_timezone()
    )

    description = incident.description or ""
    spans = _sentences(description)
    title = incident.title.strip().rstrip(".") + "."
    if spans:
        head, rest = spans[:4], spans[4:]
        presentation = f"{title} {description[head[0][0] : head[-1][1]]}"
    else:
        rest = []
        presentation = f"{title} It was reported at T+0 min."
    entries = incident.timeline.select_related("comment", "incident").exclude(
        kind__in=[TimelineEntry.Kind.CREATED, TimelineEntry.Kind.NOTIFICATION, TimelineEntry.Kind.SLA]
    )
    described = [(entry, _entry_text(entry)) for entry in entries]
    events = [(entry, d) for entry, d in described if d is not None and d[1].strip()]
    measures_text = incident.measures or ""
    measures = [measures_text[s:e] for s, e in _sentences(measures_text)] or [
        measures_text or "Measures to be written."
    ]
    outcome = "\n\n".join(
        part
        for part in (
            f"Resolution: {incident.resolution_summary}" if incident.resolution_summary else "",
            f"Cause: {incident.cause}" if incident.cause else "",
            f"Measures: {incident.measures}" if incident.measures else "",
        )
        if part
    )
    pseudo.learn(
        [incident.title, presentation, description, outcome, incident.cause or "", *measures]
        + [text for _entry, (_category, text) in events]
    )

    facts = []
    if rest:
        facts.append(
            {
                "key": "F1",
                "title": "The rest of the first report",
                "text": pseudo(description[rest[0][0] : rest[-1][1]]),
                "category": Fact.Category.TIMELINE,
                "importance": Fact.Importance.SUPPORTING,
                "offset_minutes": 0,
            }
        )
    for entry, (category, text) in events:
        offset = round((entry.at - anchor).total_seconds() / 60)
        clean = pseudo(text.strip())
        facts.append(
            {
                "key": f"F{len(facts) + 1}",
                "title": _short(clean),
                "text": f"{format_offset(offset)}: {clean}",
                "category": category,
                "importance": Fact.Importance.SUPPORTING,
                "offset_minutes": offset,
            }
        )
    fact_keys = [f["key"] for f in facts]
    doc = {
        "slug": _unique_slug(f"from-{incident.reference.lower()}"),
        "title": _short(pseudo(incident.title), 200),
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


def _short(text: str, limit: int = 80) -> str:
    """At most `limit` characters, cut at a space rather than inside a word or a pseudonym."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


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
    people = pseudo.all_people
    if key.startswith("#") and key[1:].isdigit() and int(key[1:]) < len(people):
        return " / ".join(people[int(key[1:])])
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


def _pseudonym_keys(pseudo: Pseudonymiser) -> dict[str, str]:
    """Keyed digests of every original (each alias of each person) -> the pseudonym it was given."""
    keys: dict[str, str] = {}
    people = pseudo.all_people
    for (kind, original), pseudonym in pseudo.mapping.items():
        if kind == "person" and original.startswith("#") and original[1:].isdigit():
            for alias in people[int(original[1:])] if int(original[1:]) < len(people) else []:
                keys[cases.original_key(kind, alias)] = pseudonym
        else:
            keys[cases.original_key(kind, original)] = pseudonym
    return keys


@transaction.atomic
def draft_case_from_incident(incident: Incident, *, actor: Any) -> tuple[CaseVersion, list[str]]:
    """A draft case from a closed incident the actor may see; returns it and its open findings, which a
    reviewer accepts or replaces one by one before it can be published.

    Each call drafts a new case (the author may draft again after the incident's record improved).
    """
    _check_draftable(incident, actor=actor)
    doc, pseudo = case_document_from_incident(incident)
    version, _ = cases.apply_case_document(doc, actor=actor, source_incident=incident)
    version.pseudonyms = {pseudonym: kind for (kind, _original), pseudonym in pseudo.mapping.items()}
    version.pseudonym_keys = _pseudonym_keys(pseudo)
    version.save(update_fields=["pseudonyms", "pseudonym_keys"])
    open_ = cases.refresh_findings(version)
    return version, [f"{', '.join(f.locations)}: {f.kind} {f.text!r}" for f in open_]
