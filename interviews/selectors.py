"""Reads shared by the API, the browser screens and reports. Who sees what lives here.

- The case library (hidden facts, expected problems, model solutions) is for users with the
  `interviews.view_caseversion` permission. A version drafted from an incident of a restricted domain, until
  it is published (its findings decided by a second person), and the reference of that source incident at
  any time, are only for those whose teams handle the domain (incidents.selectors, SPEC section 1): a draft
  may still carry raw names and hosts of a restricted incident.
- A session is visible to its panel (lead, raters, observers) and to users with `interviews.view_session`.
- Raters are blind: until the session reaches consensus a rater sees only their own ratings.
- The candidate sees `candidate_view(session)` and nothing else: it is built from an allow-list, so a field
  added to a model never reaches the candidate by accident.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse

from incidents.selectors import desk_user, hidden_domains

from . import lifecycle
from .models import (
    CandidateProblem,
    CandidateSolution,
    CaseVersion,
    Question,
    Rating,
    Reveal,
    Session,
    SessionMember,
)

State = Session.State
RATINGS_OPEN_STATES = frozenset({State.CONSENSUS, State.CLOSED})
OUTCOME_STATES = frozenset({State.EVALUATE, State.RATING, State.CONSENSUS, State.CLOSED})


def _authenticated(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def can_use_library(user: Any) -> bool:
    return _authenticated(user) and user.has_perm("interviews.view_caseversion")


def may_use_interviews(user: Any) -> bool:
    """Whether the interviews pages have something for the user: a panel seat, the sessions of others to
    manage, or the case library."""
    if not _authenticated(user):
        return False
    return bool(
        user.has_perm("interviews.view_session")
        or user.has_perm("interviews.view_caseversion")
        or SessionMember.objects.filter(user_id=user.pk).exists()
    )


def interview_role(user: Any) -> str:
    """What the user mostly does in interviews, for their landing page: "manager" (sees every session or
    keeps the library), "interviewer" (leads a panel), "rater" (only rates or observes), or ""."""
    if not _authenticated(user):
        return ""
    if user.has_perm("interviews.view_session") or user.has_perm("interviews.view_caseversion"):
        return "manager"
    roles = set(SessionMember.objects.filter(user_id=user.pk).values_list("role", flat=True))
    if SessionMember.Role.LEAD in roles:
        return "interviewer"
    return "rater" if roles else ""


def case_versions_visible_to(user: Any) -> QuerySet[CaseVersion]:
    if not can_use_library(user):
        return CaseVersion.objects.none()
    reviewed = (CaseVersion.Status.PUBLISHED, CaseVersion.Status.RETIRED)
    return CaseVersion.objects.select_related("case", "domain", "rubric", "source_incident__domain").filter(
        Q(source_incident__isnull=True)
        | Q(status__in=reviewed)
        | Q(source_incident__domain_id__isnull=True)
        | ~Q(source_incident__domain_id__in=hidden_domains(user))
    )


def sees_source_incident(version: CaseVersion, user: Any) -> bool:
    """Whether `user` may know which incident `version` was drafted from (its reference, who worked it)."""
    incident = version.source_incident
    if incident is None:
        return False
    return desk_user(user).reaches_domain(incident)


def sessions_visible_to(user: Any) -> QuerySet[Session]:
    """Sessions on whose panel the user sits, or every session for managers (`view_session`)."""
    qs = Session.objects.select_related("case_version__case", "case_version__rubric", "candidate")
    if not _authenticated(user):
        return qs.none()
    if user.has_perm("interviews.view_session"):
        return qs
    return qs.filter(Q(members__user=user)).distinct()


def role_in(session: Session, user: Any) -> str | None:
    if not _authenticated(user):
        return None
    member = SessionMember.objects.filter(session=session, user_id=user.pk).first()
    return member.role if member else None


def ratings_visible_to(session: Session, user: Any) -> QuerySet[Rating]:
    """Blind rating: before consensus, each rater sees their own ratings only (the lead too)."""
    qs = Rating.objects.filter(session=session).select_related("rater", "dimension")
    if session.state in RATINGS_OPEN_STATES:
        return qs
    return qs.filter(rater_id=user.pk) if _authenticated(user) else qs.none()


def session_by_token(token: str) -> Session | None:
    if not token or len(token) > 64:
        return None
    return Session.objects.select_related("case_version").filter(candidate_token=token).first()


def candidate_view(session: Session) -> dict[str, Any]:
    """Everything the candidate may see, and nothing else.

    Facts appear only as revealed, worded exactly as revealed, without their keys, titles or importance.
    No expected problem, model solution, harmful action, verdict, rating, note or panel member appears;
    the real outcome appears only in a training session from phase 5 on.
    """
    version = session.case_version
    clock = lifecycle.clock(session)
    reveals = list(Reveal.objects.filter(session=session).order_by("revealed_at", "id"))
    reveal_ids_by_fact: dict[int, list[int]] = {}
    for r in reveals:
        reveal_ids_by_fact.setdefault(r.fact_id, []).append(r.pk)
    started = session.state != State.SCHEDULED
    answered = (
        Question.objects.filter(session=session).exclude(answer=Question.Answer.PENDING).order_by("asked_at")
    )
    problems = CandidateProblem.objects.filter(session=session).prefetch_related("cited_facts")
    return {
        "state": session.state,
        "phase": lifecycle.current_phase(session),
        "mode": session.mode,
        "version": session.version,
        "case": {
            "title": version.title if started else "",
            "presentation": version.presentation if started else "",
            "brief": version.brief if started else "",
            "image": reverse("api:interview-candidate-image", kwargs={"token": session.candidate_token})
            if started and version.image
            else "",
        },
        "clock": {
            "phase": clock.phase,
            "deadline": clock.deadline,
            "budget_seconds": clock.budget_seconds,
            "remaining_seconds": clock.remaining_seconds,
            "warning": clock.warning,
            "paused": clock.paused,
        },
        "pause_reason": session.pause_reason if session.state == State.PAUSED else "",
        "reveals": [
            {"id": r.pk, "text": r.text, "level": r.level, "revealed_at": r.revealed_at} for r in reveals
        ],
        "answers": [
            {
                "question": q.text,
                "asked_at": q.asked_at,
                "answer": q.answer,
                "text": q.answer_text,
                "reveals": [r.pk for r in reveals if r.question_id == q.pk],
            }
            for q in answered
        ],
        "problems": [
            {
                "id": p.pk,
                "statement": p.statement,
                "cited": sorted(pk for f in p.cited_facts.all() for pk in reveal_ids_by_fact.get(f.pk, [])),
                "stated_at": p.stated_at,
            }
            for p in problems
        ],
        "solutions": [
            {
                "id": s.pk,
                "action": s.action,
                "reason": s.reason,
                "rank": s.rank,
                "addresses": sorted(p.pk for p in s.addresses.all()),
            }
            for s in CandidateSolution.objects.filter(session=session).prefetch_related("addresses")
        ],
        "notepad": session.candidate_notes,
        "outcome": version.actual_outcome
        if session.mode == Session.Mode.TRAINING and session.state in OUTCOME_STATES
        else "",
    }
