"""Inbound e-mail to incidents: a new message opens one, a reply becomes a comment on its incident.

Threading: `[INC-000042]` in the subject, or an In-Reply-To/References naming the Message-ID of a
notification we sent (`<{Notification.key}@{domain}>`, escalation.delivery). Only the reporter (or a
responder who may see the incident) comments by e-mail: a stranger who quotes a reference is recorded
and ignored. Machines (auto-replies, bounces) are recorded and never answered.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction

from escalation.models import Notification
from incidents import lifecycle, services
from incidents.errors import InvalidTransition
from incidents.models import Incident
from incidents.selectors import desk_user, incidents_handled_by
from incidents.timeline import Actor

from .mail import MessageRefused, MessageTooLarge, ParsedMessage, envelope, parse
from .models import InboundEmail

logger = logging.getLogger(__name__)
Outcome = InboundEmail.Outcome
REFERENCE_IN_SUBJECT = re.compile(r"\[(INC-\d{1,12})\]", re.IGNORECASE)
REPLY_PREFIX = re.compile(r"^((re|fwd?|aw|sv|antw|réf)\s*:\s*)+", re.IGNORECASE)
QUOTE_HEADER = re.compile(r"^(On .+ wrote:|-----Original Message-----|From: .+)$", re.IGNORECASE)


def _record(
    parsed: ParsedMessage | None,
    *,
    raw_size: int,
    source: str,
    outcome: str,
    detail: str = "",
    incident: Incident | None = None,
) -> InboundEmail:
    return InboundEmail.objects.create(
        message_id=parsed.message_id if parsed else "",
        sender=parsed.sender if parsed else "",
        subject=(parsed.subject if parsed else "")[:255],
        size=raw_size,
        source=source,
        outcome=outcome,
        detail=detail[:4000],
        incident=incident,
    )


def record_refused(raw: bytes, *, source: str, detail: str, read_headers: bool = True) -> InboundEmail:
    """Record a message that was refused before it could be read, with what its headers say of it (the
    headers of a message over the size limit are not read: the limit exists so that nothing of it is)."""
    head = None
    if read_headers:
        try:
            head = envelope(raw)
        except Exception:  # headers too broken to read: the refusal is recorded all the same
            logger.warning("the headers of a refused message could not be read", exc_info=True)
    return InboundEmail.objects.create(
        message_id=head.message_id if head else "",
        sender=head.sender if head else "",
        subject=head.subject[:255] if head else "",
        size=len(raw),
        source=source,
        outcome=Outcome.REFUSED,
        detail=detail[:4000],
    )


def thread_of(parsed: ParsedMessage) -> Incident | None:
    """The incident a reply belongs to: by the reference in the subject, else by a notification's Message-ID."""
    match = REFERENCE_IN_SUBJECT.search(parsed.subject)
    if match:
        incident = Incident.objects.by_reference(match.group(1)).first()
        if incident is not None:
            return incident
    keys = [ref.split("@", 1)[0] for ref in parsed.references if "@" in ref]
    if keys:
        notification = Notification.objects.filter(key__in=keys).select_related("incident").first()
        if notification is not None:
            return notification.incident
    return None


def new_text(text: str) -> str:
    """The reply without the quoted message below it."""
    kept = []
    for line in text.splitlines():
        if line.startswith(">") or QUOTE_HEADER.match(line.strip()):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _says_still_broken(text: str) -> bool:
    mode = settings.INTAKE_EMAIL_REOPEN
    if mode == "always":
        return True
    if mode != "keywords":
        return False
    lowered = new_text(text).lower()
    return any(keyword.lower() in lowered for keyword in settings.INTAKE_EMAIL_REOPEN_KEYWORDS)


def _user_for(address: str) -> Any:
    if not address:
        return None
    return get_user_model().objects.filter(email__iexact=address, is_active=True).order_by("pk").first()


def _is_reporter(incident: Incident, address: str, user: Actor) -> bool:
    if user is not None and incident.reporter_id == user.pk:
        return True
    return bool(address) and incident.reporter_email.lower() == address


def _attach(
    incident: Incident, parsed: ParsedMessage, uploaded_by: Actor, *, public: bool = True
) -> list[str]:
    """Attachments pass the same checks as web uploads; a refused one is named in the record, not fatal.
    They are as public as the message they came with: a responder's reply is an internal note, and so
    are its files."""
    problems = []
    for item in parsed.attachments:
        upload = SimpleUploadedFile(item.filename, item.data, content_type=item.content_type)
        try:
            with transaction.atomic():
                services.add_attachment(incident, uploaded_by=uploaded_by, upload=upload, public=public)
        except ValidationError as exc:
            problems.append(f"{item.filename}: {' '.join(exc.messages)}")
    return problems


def _open(parsed: ParsedMessage, user: Actor, *, source: str, raw_size: int, note: str = "") -> InboundEmail:
    title = REPLY_PREFIX.sub("", parsed.subject).strip() or "(no subject)"
    description = parsed.text or "(The message had no text.)"
    if note:
        description = f"{note}\n\n{description}"
    incident = services.create_incident(
        title=title[:200],
        description=description,
        reporter=user,
        reporter_email=parsed.sender,
        channel=Incident.Channel.EMAIL,
    )
    problems = _attach(incident, parsed, user)
    return _record(
        parsed,
        raw_size=raw_size,
        source=source,
        outcome=Outcome.CREATED,
        detail="\n".join(problems),
        incident=incident,
    )


def _reply(
    incident: Incident, parsed: ParsedMessage, user: Actor, *, source: str, raw_size: int
) -> InboundEmail:
    reporter = _is_reporter(incident, parsed.sender, user)
    responder = (
        user is not None
        and desk_user(user).is_responder
        and incidents_handled_by(user).filter(pk=incident.pk).exists()
    )
    if not reporter and not responder:
        return _record(
            parsed, raw_size=raw_size, source=source, outcome=Outcome.REFUSED, incident=None,
            detail=f"{parsed.sender} is neither the reporter of {incident.reference} nor a responder who may see it.",
        )  # fmt: skip
    if incident.is_final:
        note = f"Follow-up by e-mail to {incident.reference}, which is {incident.state}."
        return _open(parsed, user, source=source, raw_size=raw_size, note=note)
    body = new_text(parsed.text) or parsed.text or "(The reply had no text.)"
    # The reporter's reply is public; a responder's reply by e-mail stays an internal note.
    services.add_comment(incident, author=user, body=body, public=reporter)
    problems = _attach(incident, parsed, user, public=reporter)
    outcome = Outcome.COMMENTED
    if reporter and incident.state == Incident.State.RESOLVED and _says_still_broken(parsed.text):
        try:
            lifecycle.reopen_incident(
                incident, actor=user, reason=f"The reporter replied by e-mail: {body[:400]}"
            )
            outcome = Outcome.REOPENED
        except (InvalidTransition, PermissionDenied) as exc:
            problems.append(f"not reopened: {exc}")
    return _record(
        parsed,
        raw_size=raw_size,
        source=source,
        outcome=outcome,
        detail="\n".join(problems),
        incident=incident,
    )


def ingest(raw: bytes, *, source: str = "pipe") -> InboundEmail:
    """Turn one message into an incident or a comment, and record what happened.

    Reading the same message twice (same Message-ID) records a duplicate and changes nothing else.
    A message over INTAKE_EMAIL_MAX_BYTES, nested deeper than INTAKE_EMAIL_MAX_MIME_DEPTH or with more
    than INTAKE_EMAIL_MAX_ATTACHMENTS attachments is refused and recorded (MessageRefused is raised
    after the record is committed, so callers can bounce it or move it aside).
    """
    try:
        parsed = parse(raw, limit=settings.INTAKE_EMAIL_MAX_BYTES)
    except MessageRefused as exc:
        record_refused(raw, source=source, detail=str(exc), read_headers=not isinstance(exc, MessageTooLarge))
        raise
    try:
        try:
            return _ingest_parsed(parsed, raw_size=len(raw), source=source)
        except IntegrityError:
            # Handled at this moment by another reader of the same message: now it is a duplicate.
            return _ingest_parsed(parsed, raw_size=len(raw), source=source)
    except ValidationError as exc:
        # Input the desk cannot take (say, a sender address Django does not accept): recorded, never a crash.
        return _record(
            parsed, raw_size=len(raw), source=source, outcome=Outcome.REFUSED, detail=" ".join(exc.messages)
        )


@transaction.atomic
def _ingest_parsed(parsed: ParsedMessage, *, raw_size: int, source: str) -> InboundEmail:
    if parsed.message_id:
        earlier = (
            InboundEmail.objects.select_for_update()
            .filter(message_id=parsed.message_id)
            .filter(outcome__in=InboundEmail.HANDLED)
            .first()
        )
        if earlier is not None:
            return _record(
                parsed,
                raw_size=raw_size,
                source=source,
                outcome=Outcome.DUPLICATE,
                incident=earlier.incident,
                detail=f"Already handled as #{earlier.pk}.",
            )
    if parsed.machine:
        outcome = Outcome.BOUNCE if parsed.machine == "bounce" else Outcome.AUTO_REPLY
        logger.info("ignored %s from %s: %s", parsed.machine, parsed.sender, parsed.subject)
        return _record(parsed, raw_size=raw_size, source=source, outcome=outcome, incident=thread_of(parsed))
    if not parsed.sender or "@" not in parsed.sender:
        return _record(
            parsed, raw_size=raw_size, source=source, outcome=Outcome.REFUSED, detail="No sender address."
        )
    user = _user_for(parsed.sender)
    incident = thread_of(parsed)
    if incident is not None:
        return _reply(incident, parsed, user, source=source, raw_size=raw_size)
    return _open(parsed, user, source=source, raw_size=raw_size)
