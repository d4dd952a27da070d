"""Writes other than state changes: reporting an incident, editing it, comments and attachments."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import filetype
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import CheckConstraint
from django.utils import timezone

from . import hooks, timeline, writes
from .errors import InvalidTransition
from .hooks import Event
from .lifecycle import allowed_actions, classification_errors, priority_for
from .major import forward_public_update
from .markup import render_markdown
from .models import Attachment, Category, Comment, Domain, Incident, SatisfactionRating, Team
from .problems import check_recurrence_after_commit
from .selectors import desk_user
from .timeline import Actor

EDITABLE_FIELDS = ("title", "description", "category", "impact", "urgency", "outcome")
ADMIN_EDITABLE_FIELDS = (*EDITABLE_FIELDS, "harm_level", "confidential")
# Content that a browser could run if it were ever served inline: refused whatever the extension says.
ACTIVE_CONTENT_MARKERS = (b"<script", b"<html", b"<svg", b"<!doctype html", b"<?php", b"<iframe")
EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"#!")


def _check_category(domain: Domain | None, category: Category | None) -> None:
    if category is not None and domain is not None and category.domain_id != domain.pk:
        raise ValidationError({"category": [f"Category {category.path} is not in domain {domain.slug}."]})


@transaction.atomic
def create_incident(
    *,
    title: str,
    description: str = "",
    reporter: Actor = None,
    reporter_email: str = "",
    domain: Domain | None = None,
    category: Category | None = None,
    impact: int | None = None,
    urgency: int | None = None,
    outcome: str = "",
    harm_level: str = "",
    confidential: bool = False,
    channel: str = Incident.Channel.WEB,
    external_id: str | None = None,
) -> Incident:
    """Report an incident; it starts in ``received`` with one timeline entry.

    A category implies its domain. A preliminary priority is derived when impact and urgency are
    both given; classification confirms or changes it. Calling it twice reports two incidents.
    """
    if reporter is not None and not reporter.is_authenticated:
        reporter = None
    if reporter is None and not reporter_email:
        raise ValidationError({"reporter_email": ["An anonymous report needs an e-mail address."]})
    if category is not None and domain is None:
        domain = category.domain
    _check_category(domain, category)
    incident = Incident(
        title=title.strip(),
        description=description,
        description_html=render_markdown(description),
        reporter=reporter,
        reporter_email=reporter_email or (reporter.email if reporter is not None else ""),
        domain=domain,
        category=category,
        impact=impact,
        urgency=urgency,
        priority=priority_for(impact, urgency) if impact and urgency else None,
        outcome=outcome,
        harm_level=harm_level,
        confidential=confidential,
        channel=channel,
        external_id=external_id,
    )
    # The field checks (choices cover state, impact and urgency; priority comes from priority_for) run in
    # Python; the CheckConstraints are not validated again with a query each but enforced by the database,
    # whose refusal becomes the same ValidationError (see _save_checked).
    incident.full_clean(
        exclude=["tracking_token", "reporter", "domain", "category", "parent", "team", "assignee"],
        validate_constraints=False,
    )
    _save_checked(incident)
    timeline.record_created(incident=incident, actor=reporter, at=incident.received_at)
    hooks.announce(Event.CREATED, incident, now=incident.received_at)
    return incident


def create_classified_incident(
    *,
    title: str,
    description: str,
    reporter: Actor,
    domain: Domain,
    category: Category,
    impact: int,
    urgency: int,
    team: Team,
    channel: str,
) -> Incident:
    """Report an incident and classify it in one step: what `create_incident` followed by
    `lifecycle.classify_incident` (actor None, no assignee, the matrix's priority) leave, written at once.

    The row is inserted classified (one INSERT, version 2 as after the two steps); the timeline gets the
    `created` and the `classify` entries the two steps write, and the receivers hear `created` and then
    `classified` (first, with `fresh=True`: nothing of the incident exists yet, so they insert rather than
    look for clocks, chains and timers to change). Every entry recorded meanwhile is written in one INSERT.
    The recurrence check that classifying into a category schedules (incidents.problems) runs after commit.
    A classification the lifecycle would refuse raises ValidationError before anything is written (the
    caller then reports it unclassified). For a reporter who is a user (a monitoring integration's
    service account); calling it twice reports two incidents.
    """
    errors = classification_errors(domain=domain, category=category, team=team)
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})
    reporter = reporter if reporter is not None and reporter.is_authenticated else None
    if reporter is None:
        raise ValidationError({"reporter": ["An incident opened classified has a reporter."]})
    priority = priority_for(impact, urgency)
    with transaction.atomic(savepoint=False), timeline.batch():
        incident = Incident(
            title=title.strip(), description=description, description_html=render_markdown(description),
            reporter=reporter, reporter_email=reporter.email, domain=domain, category=category,
            impact=impact, urgency=urgency, priority=priority, channel=channel,
        )  # fmt: skip
        incident.full_clean(
            exclude=["tracking_token", "reporter", "domain", "category", "parent", "team", "assignee"],
            validate_constraints=False,
        )
        received = incident.received_at
        # The classification, as classify_incident writes it: its entry names what changed since the report.
        new_values = {"team_id": team.pk, "priority_override_reason": ""}
        changes = {k: [getattr(incident, k), v] for k, v in new_values.items() if getattr(incident, k) != v}
        now = timezone.now()
        incident.team = team
        incident.state = Incident.State.CLASSIFIED
        incident.classified_at = now
        incident.version = 2
        incident.updated_at = now
        hooks.announce(Event.OPENING, incident, now=now)
        _save_checked(incident)
        # What was reported, as `create_incident` leaves it: the `created` entry and receivers see that.
        reported = copy.copy(incident)
        reported.team, reported.state, reported.classified_at = None, Incident.State.RECEIVED, None
        reported.version, reported.updated_at = 1, received
        timeline.record_created(incident=reported, actor=reporter, at=received)
        hooks.announce(Event.CREATED, reported, now=received)
        timeline.record_state_changed(
            incident=incident, actor=None, action="classify", old=Incident.State.RECEIVED,
            new=Incident.State.CLASSIFIED, at=now,
            data={"changes": {k.removesuffix("_id"): v for k, v in changes.items()}},
        )  # fmt: skip
        hooks.announce(Event.CLASSIFIED, incident, now=now, first=True, fresh=True)
        # classify_incident's recurrence check of a new category, once this commits (its failure is logged and
        # never undoes the incident; it runs not at all if the caller rolls back).
        check_recurrence_after_commit(incident, fresh=True)
    return incident


def _save_checked(incident: Incident) -> None:
    """Insert the new incident; a CHECK constraint the database refuses is a ValidationError naming it.

    The enclosing transaction is rolled back by the exception, as after any other ValidationError.
    """
    try:
        incident.save(force_insert=True)
    except IntegrityError as exc:
        for constraint in Incident._meta.constraints:
            if isinstance(constraint, CheckConstraint) and constraint.name in str(exc):
                raise ValidationError(constraint.get_violation_error_message(), code="constraint") from exc
        raise


@transaction.atomic
def edit_incident(incident: Incident, *, actor: Actor, version: int, **changes: Any) -> Incident:
    """Edit title, description, category, impact, urgency or outcome under optimistic locking.

    ``version`` must match the stored one, or StaleVersion. A closed or cancelled record is frozen.
    Sending the values it already has changes nothing and keeps the version.
    """
    if not desk_user(actor).as_responder(incident):
        raise PermissionDenied("Only responders edit an incident.")
    return _edit(incident, actor=actor, version=version, allowed=EDITABLE_FIELDS, changes=changes)


@transaction.atomic
def correct_incident(incident: Incident, *, actor: Actor, version: int, **changes: Any) -> Incident:
    """An administrator's correction (the Django admin): the fields of `edit_incident` plus the harm level
    and the confidentiality flag, with the same version check, timeline entry and derived fields.

    Staff only. State, milestones, team and assignee change only through the lifecycle.
    """
    if actor is None or not actor.is_authenticated or not actor.is_staff:
        raise PermissionDenied("Only administrators correct an incident.")
    return _edit(incident, actor=actor, version=version, allowed=ADMIN_EDITABLE_FIELDS, changes=changes)


def _edit(
    incident: Incident, *, actor: Actor, version: int, allowed: tuple[str, ...], changes: dict[str, Any]
) -> Incident:
    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValidationError({field: ["This field cannot be edited."] for field in sorted(unknown)})
    incident = writes.lock(incident, version=version)
    if incident.is_final:
        raise InvalidTransition(incident, "edit", allowed_actions(incident))
    if "category" in changes and changes["category"] is not None:
        _check_category(incident.domain, changes["category"])
    diff = {}
    for field, value in changes.items():
        current = getattr(incident, field)
        if current != value:
            diff[field] = [
                str(current) if field == "category" and current else current,
                str(value) if field == "category" and value else value,
            ]
            setattr(incident, field, value)
    if not diff:
        return incident
    fields = set(diff)
    if "description" in diff:
        incident.description_html = render_markdown(incident.description)
        fields.add("description_html")
    if (
        ({"impact", "urgency"} & fields)
        and incident.impact
        and incident.urgency
        and not incident.priority_override_reason
    ):
        incident.priority = priority_for(incident.impact, incident.urgency)
        fields.add("priority")
    incident.full_clean(
        exclude=["tracking_token", "reporter", "domain", "category", "parent", "team", "assignee"]
    )
    saved = writes.save(
        incident,
        fields=fields,
        record=lambda row, at: timeline.record_fields_changed(incident=row, actor=actor, changes=diff, at=at),
    )
    # Moved into a category after classification: counted there, as classify_incident's category change is.
    if "category" in diff and saved.category_id is not None and saved.classified_at is not None:
        check_recurrence_after_commit(saved)
    return saved


def _refuse_if_frozen(incident: Incident, action: str) -> None:
    """A closed or cancelled record is frozen: no comment or attachment is added to it."""
    if incident.is_final:
        raise InvalidTransition(incident, action, allowed_actions(incident))


@transaction.atomic
def add_comment(incident: Incident, *, author: Actor, body: str, public: bool) -> Comment:
    """Add a Markdown comment. Reporters' comments are always public; internal notes are for responders.

    A responder's first public reply counts as the first response. Each call adds a comment.
    """
    if not body.strip():
        raise ValidationError({"body": ["This field is required."]})
    me = desk_user(author)
    if me.is_authenticated and not me.may_see(incident):
        # The same rule as every read (the holder of the private link comments with author None).
        raise PermissionDenied("You may not see this incident.")
    responder = me.as_responder(incident)
    if not responder:
        public = True
    locked = writes.lock(incident)
    _refuse_if_frozen(locked, "comment")
    comment = Comment.objects.create(
        incident=locked,
        author=author if author is not None and author.is_authenticated else None,
        body=body,
        body_html=render_markdown(body),
        public=public,
    )
    fields = []
    first_response = public and responder and locked.responded_at is None and locked.reporter_id != me.user_id
    if first_response:
        locked.responded_at = comment.created_at
        fields.append("responded_at")
    # A comment is part of the incident: it is a new version (a client editing an older one is told).
    writes.save(
        locked,
        fields=fields,
        now=comment.created_at,
        record=lambda row, at: timeline.record_comment(incident=row, comment=comment),
    )
    if first_response:
        hooks.announce(Event.PUBLIC_REPLY, locked, now=comment.created_at)
    if public:
        hooks.announce(Event.PUBLIC_COMMENT, locked, now=comment.created_at, comment=comment)
    if public and responder:
        forward_public_update(locked, comment=comment)
    return comment


def validate_upload(upload: UploadedFile) -> tuple[str, str]:
    """Check size, extension and content of an upload; return (safe file name, content type)."""
    name = (upload.name or "file").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\u202e\u202d\u200f\u200e") or "file"
    size = upload.size or 0
    limit = settings.ATTACHMENT_MAX_BYTES
    if size == 0:
        raise ValidationError({"file": ["The file is empty."]})
    if size > limit:
        raise ValidationError({"file": [f"The file is larger than {limit // (1024 * 1024)} MB."]})
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = settings.ATTACHMENT_ALLOWED_EXTENSIONS
    if extension not in allowed:
        raise ValidationError(
            {"file": [f"Files of type .{extension or '?'} are not accepted ({', '.join(allowed)})."]}
        )
    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    lowered = head.lower()
    if head.startswith(EXECUTABLE_MAGIC) or any(marker in lowered for marker in ACTIVE_CONTENT_MARKERS):
        raise ValidationError({"file": ["The file holds executable or active content and is refused."]})
    kind = filetype.guess(head)
    if kind is not None:
        if kind.extension not in allowed and not (kind.extension == "zip" and extension in allowed):
            raise ValidationError({"file": [f"The content is {kind.mime}, which is not accepted."]})
        if extension in {"png", "jpg", "jpeg", "gif", "webp", "pdf"} and kind.extension.replace(
            "jpeg", "jpg"
        ) != extension.replace("jpeg", "jpg"):
            raise ValidationError(
                {"file": [f"The content ({kind.mime}) does not match the extension .{extension}."]}
            )
        return name, kind.mime
    if extension in {"png", "jpg", "jpeg", "gif", "webp", "pdf", "zip"}:
        raise ValidationError({"file": [f"The content does not look like a .{extension} file."]})
    return name, "text/plain" if extension in {
        "txt",
        "log",
    } else f"application/{extension}" if extension != "csv" else "text/csv"


@transaction.atomic
def add_attachment(
    incident: Incident, *, uploaded_by: Actor, upload: UploadedFile, public: bool = True
) -> Attachment:
    """Store an upload under a random name outside any public URL. Each call stores one file."""
    _refuse_if_frozen(incident, "attach")
    name, content_type = validate_upload(upload)
    if not desk_user(uploaded_by).as_responder(incident):
        public = True
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    attachment = Attachment(
        incident=incident,
        uploaded_by=uploaded_by if uploaded_by is not None and uploaded_by.is_authenticated else None,
        filename=name[:255],
        content_type=content_type,
        size=upload.size or 0,
        sha256=digest.hexdigest(),
        public=public,
    )
    attachment.file.save(name, upload, save=False)
    attachment.save()
    timeline.record_attachment(incident=incident, attachment=attachment)
    return attachment


@transaction.atomic
def rate_incident(incident: Incident, *, score: int, comment: str = "") -> SatisfactionRating:
    """The reporter's satisfaction rating of a closed incident (1 poor .. 5 excellent, optional comment).

    The last rating counts; each change is a timeline entry. Rating again with the same score and
    comment changes nothing.
    """
    locked = writes.lock(incident)
    errors: dict[str, list[str]] = {}
    if locked.state != Incident.State.CLOSED:
        raise InvalidTransition(locked, "rate", allowed_actions(locked))
    if not isinstance(score, int) or not 1 <= score <= 5:
        errors["score"] = ["Rate from 1 (poor) to 5 (excellent)."]
    if len(comment) > 2000:
        errors["comment"] = ["At most 2000 characters."]
    if errors:
        raise ValidationError(errors)
    comment = comment.strip()
    now = timezone.now()
    rating = SatisfactionRating.objects.filter(incident=locked).first()
    if rating is not None and rating.score == score and rating.comment == comment:
        return rating
    if rating is None:
        rating = SatisfactionRating.objects.create(incident=locked, score=score, comment=comment)
    else:
        rating.score, rating.comment, rating.updated_at = score, comment, now
        rating.save(update_fields=["score", "comment", "updated_at"])
    timeline.record_rating(incident=locked, score=score, comment=comment)
    return rating
