"""Builders for interview tests: a small, complete case, published versions, sessions in any state."""

from __future__ import annotations

import copy
import io
import itertools
from typing import Any

from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from interviews import cases, lifecycle, services
from interviews.models import CaseVersion, Rubric, Session
from tests.factories import UserFactory

SECRET_FACT_TEXT = "SECRET-FACT: the certificate of the payment gateway expired at T+0 min."
SECRET_PARTIAL = "SECRET-PARTIAL: something about certificates."
SECRET_PROBLEM = "SECRET-PROBLEM: nobody owned certificate renewal."
SECRET_SOLUTION = "SECRET-SOLUTION: automate certificate renewal."
SECRET_OUTCOME = "SECRET-OUTCOME: renewed by hand after 3 hours."
SECRET_HARM = "SECRET-HARM: restart every server at once."

BASE_DOC: dict[str, Any] = {
    "slug": "expired-cert",
    "title": "Payments fail at noon",
    "domain": "it_service",
    "tags": ["tls", "payments"],
    "difficulty": 2,
    "target_role": "Service desk agent",
    "presentation": "At noon the web shop stops taking card payments. Customers see an error page.",
    "brief": "Find out what happened, state the problems and propose what to do.",
    "time_boxes": {"present": 180, "gather": 900, "extract": 420, "solve": 600, "evaluate": 600},
    "actual_outcome": SECRET_OUTCOME,
    "rubric": "incident-process",
    "facts": [
        {
            "key": "F1",
            "title": "Error in the gateway log",
            "text": "The gateway log shows TLS handshake failures from 12:00 on.",
            "category": "monitoring",
            "importance": "key",
            "triggers": ["What do the logs say?"],
            "keywords": ["log", "logs", "error"],
        },
        {
            "key": "F2",
            "title": "Certificate expired",
            "text": SECRET_FACT_TEXT,
            "partial_text": SECRET_PARTIAL,
            "category": "change",
            "importance": "key",
            "triggers": ["Did any certificate expire?"],
            "keywords": ["certificate", "tls", "expire"],
            "requires": ["F1"],
        },
        {
            "key": "F3",
            "title": "No renewal owner",
            "text": "Renewals were done by a colleague who left last year.",
            "category": "people",
            "importance": "supporting",
            "keywords": ["owner", "renewal", "who"],
        },
        {
            "key": "F4",
            "title": "Weather",
            "text": "It was raining.",
            "category": "timeline",
            "importance": "noise",
            "keywords": ["weather"],
        },
        {
            "key": "F5",
            "title": "Database upgrade last week",
            "text": "The database was upgraded last week without problems.",
            "category": "change",
            "importance": "red_herring",
            "keywords": ["database", "upgrade", "change"],
        },
    ],
    "problems": [
        {
            "key": "P1",
            "statement": "The payment gateway's certificate expired.",
            "kind": "trigger",
            "weight": 2,
            "required_facts": ["F1", "F2"],
            "paraphrases": ["expired TLS certificate"],
        },
        {
            "key": "P2",
            "statement": SECRET_PROBLEM,
            "kind": "process_gap",
            "weight": 1,
            "required_facts": ["F3"],
        },
    ],
    "solutions": [
        {
            "key": "S1",
            "action": "Renew the certificate now.",
            "type": "mitigate",
            "rank": 1,
            "weight": 2,
            "addresses": ["P1"],
        },
        {
            "key": "S2",
            "action": "Tell customers payments work again.",
            "type": "communicate",
            "rank": 2,
            "weight": 1,
            "addresses": ["P1"],
        },
        {
            "key": "S3",
            "action": SECRET_SOLUTION,
            "type": "prevent",
            "rank": 3,
            "weight": 1,
            "addresses": ["P2"],
        },
    ],
    "harmful_actions": [
        {"key": "H1", "action": SECRET_HARM, "why": "Takes the whole shop down.", "penalty": 2}
    ],
}
SECRETS = (SECRET_FACT_TEXT, SECRET_PARTIAL, SECRET_PROBLEM, SECRET_SOLUTION, SECRET_OUTCOME, SECRET_HARM)


def case_doc(**overrides: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE_DOC)
    doc.update(overrides)
    return doc


def interviewer(**kwargs: Any):
    """A user who may read and edit the case library and run sessions."""
    user = UserFactory(**kwargs)
    codenames = ["view_caseversion", "change_caseversion", "add_caseversion", "view_session", "add_session"]
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="interviews", codename__in=codenames)
    )
    return type(user).objects.get(pk=user.pk)


def publisher(**kwargs: Any):
    user = interviewer(**kwargs)
    user.user_permissions.add(Permission.objects.get(codename="publish_caseversion"))
    return type(user).objects.get(pk=user.pk)


_slugs = itertools.count(1)


def png_bytes(*, size: tuple[int, int] = (40, 30), text: str = "") -> bytes:
    """A small PNG; `text` goes into a tEXt metadata chunk (what a careless author might leave there)."""
    from PIL import Image, PngImagePlugin

    image = Image.new("RGB", size, (200, 40, 40))
    image.putpixel((1, 1), (0, 0, 255))
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("Comment", text)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def published_version(doc: dict[str, Any] | None = None, *, image: bytes | None = None) -> CaseVersion:
    """A new case, published (each call a case of its own unless `doc` names an existing slug)."""
    author = interviewer()
    version, _ = cases.apply_case_document(doc or case_doc(slug=f"expired-cert-{next(_slugs)}"), actor=author)
    if image is not None:
        version = cases.set_image(version, upload=SimpleUploadedFile("slide.png", image), actor=author)
    cases.submit_for_review(version, actor=author)
    return cases.approve(version, actor=publisher())


def rubric_keys() -> list[str]:
    return list(Rubric.objects.get(slug="incident-process").dimensions.values_list("key", flat=True))


def new_session(
    version: CaseVersion | None = None, *, raters: int = 1, observers: int = 0, **kwargs: Any
) -> Session:
    version = version or published_version()
    candidate = services.create_candidate(
        name="Casey Candidate", email="casey@example.org", consent=True, consent_text="ok"
    )
    lead = interviewer()
    session = services.create_session(
        case_version=version,
        candidate=candidate,
        lead=lead,
        raters=[interviewer() for _ in range(raters)],
        observers=[interviewer() for _ in range(observers)],
        actor=lead,
        **kwargs,
    )
    return session


def lead_of(session: Session):
    return session.members.get(role="lead").user


def raters_of(session: Session) -> list:
    return [m.user for m in session.members.filter(rates=True).order_by("id")]


def rate_all(session: Session, levels: dict[str, list[int]] | None = None) -> None:
    """Every rater rates every dimension (level 3 unless `levels[key][rater_index]` says otherwise)."""
    for index, rater in enumerate(raters_of(session)):
        for key in rubric_keys():
            level = (levels or {}).get(key, [3] * 10)[index]
            services.rate(session, rater=rater, dimension=key, level=level, evidence=f"evidence for {key}")


def session_in(state: str, session: Session | None = None, **kwargs: Any) -> Session:
    """A session moved to `state` through the lifecycle, as a lead would."""
    session = session or new_session(**kwargs)
    lead = lead_of(session)
    order = [
        "scheduled",
        "present",
        "gather",
        "extract",
        "solve",
        "evaluate",
        "rating",
        "consensus",
        "closed",
    ]
    if state == "void":
        return lifecycle.void_session(session, actor=lead, reason="no-show")
    if state == "paused":
        session = session_in("gather", session)
        return lifecycle.pause_session(session, actor=lead, reason="fire alarm")
    while session.state != state:
        current = order.index(session.state)
        if session.state == "scheduled":
            session = lifecycle.start_session(session, actor=lead)
        elif session.state == "rating":
            rate_all(session)
            session = lifecycle.advance_session(session, actor=lead)
        elif session.state == "consensus":
            for key in rubric_keys():
                services.record_consensus(session, actor=lead, dimension=key, level=3, discussion="")
            session = lifecycle.close_session(session, actor=lead, recommendation="yes", summary="Solid.")
        else:
            session = lifecycle.advance_session(session, actor=lead)
        assert order.index(session.state) > current
    return session
