"""Writes inside a session other than its state: questions, reveals, problems, solutions, notes, ratings.

Each function locks the session row (so that input and phase changes are serialised), checks that the
session's state takes this input and that the actor holds the role for it, writes, and logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents.models import Domain

from . import log
from .lifecycle import TIMED, SessionClosedForInput, current_phase
from .models import (
    CalibrationRating,
    Candidate,
    CandidateProblem,
    CandidateSolution,
    CaseVersion,
    ConsensusRating,
    ExpectedProblem,
    Fact,
    HarmfulAction,
    InterviewSettings,
    ModelSolution,
    Note,
    Question,
    Rating,
    RetentionPolicy,
    Reveal,
    RubricDimension,
    Session,
    SessionMember,
    new_candidate_token,
)

State = Session.State
Role = SessionMember.Role
Kind = log.Kind

LIVE = frozenset(TIMED)  # a question, a reveal or a candidate's statement needs a running clock
LATE_QUESTION = frozenset({State.EXTRACT, State.SOLVE, State.EVALUATE})
PROBLEM_STATES = frozenset({State.GATHER, State.EXTRACT, State.SOLVE, State.EVALUATE})
SOLUTION_STATES = frozenset({State.EXTRACT, State.SOLVE, State.EVALUATE})
MAPPING_STATES = frozenset({*PROBLEM_STATES, State.RATING, State.CONSENSUS})
RATING_STATES = frozenset({State.EVALUATE, State.RATING})
NOTE_STATES = frozenset({*TIMED, State.PAUSED, State.RATING, State.CONSENSUS})


def _lock(session: Session, accepted: frozenset[str], what: str) -> Session:
    locked = Session.objects.select_for_update().select_related("case_version").get(pk=session.pk)
    if locked.state not in accepted:
        raise SessionClosedForInput(locked, what, accepted)
    return locked


def member(session: Session, user: Any) -> SessionMember | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return SessionMember.objects.filter(session=session, user_id=user.pk).first()


def _require_role(session: Session, user: Any, *roles: str, rates: bool = False) -> SessionMember:
    me = member(session, user)
    if me is None or me.role not in roles or (rates and not me.rates):
        names = " or ".join(Role(r).label.lower() for r in roles)
        raise PermissionDenied(f"Only the session's {names} may do this.")
    return me


def _fact(session: Session, fact: Fact | str) -> Fact:
    key = fact.key if isinstance(fact, Fact) else fact
    found = Fact.objects.filter(version_id=session.case_version_id, key=key).first()
    if found is None or (isinstance(fact, Fact) and fact.version_id != session.case_version_id):
        raise ValidationError({"fact": [f"No fact {key} in this case."]})
    return found


def _touch(session: Session) -> None:
    """Bump the session's version: every client polling it sees that something changed."""
    Session.objects.filter(pk=session.pk).update(version=session.version + 1, updated_at=timezone.now())
    session.version += 1


# --------------------------------------------------------------------------------------------------
# Setting up
# --------------------------------------------------------------------------------------------------


def workers_of_incident(incident: Any) -> tuple[set[int], set[str]]:
    """The accounts and e-mail addresses of everyone who reported, handled or commented on an incident."""
    from django.contrib.auth import get_user_model

    user_ids: set[int] = {pk for pk in (incident.reporter_id, incident.assignee_id) if pk is not None}
    user_ids |= {pk for pk in incident.timeline.values_list("actor_id", flat=True) if pk is not None}
    user_ids |= {pk for pk in incident.comments.values_list("author_id", flat=True) if pk is not None}
    emails = {incident.reporter_email.lower()} - {""}
    emails |= {
        e.lower()
        for e in get_user_model().objects.filter(pk__in=user_ids).values_list("email", flat=True)
        if e
    }
    return user_ids, emails


def candidates_who_worked(incident: Any) -> list[Candidate]:
    """Recorded candidates (not erased) who worked the incident: a case drafted from it would give them
    a conflict warning. The wizard shows them before the draft is written."""
    user_ids, emails = workers_of_incident(incident)
    email_match = Q()
    for email in emails:
        email_match |= Q(email__iexact=email)
    matches = Q(user_id__in=user_ids) | email_match if emails else Q(user_id__in=user_ids)
    return list(Candidate.objects.filter(matches, erased_at__isnull=True).order_by("name", "pk"))


def conflicts_with_source(version: CaseVersion, candidate: Candidate) -> str:
    """A warning when the candidate worked the incident the case was drafted from ('' when not)."""
    incident = version.source_incident
    if incident is None:
        return ""
    user_ids, emails = workers_of_incident(incident)
    if (candidate.user_id is not None and candidate.user_id in user_ids) or (
        candidate.email and candidate.email.lower() in emails
    ):
        # A restricted incident's reference stays out: the panel may not see it, and needs only the fact.
        named = "" if incident.domain is not None and incident.domain.restricted else f" {incident.reference}"
        return (
            f"The candidate worked the source incident{named} of this case: they may know its facts. "
            "Consider another case, or void the session."
        )
    return ""


@transaction.atomic
def create_candidate(
    *,
    name: str,
    email: str = "",
    user: Any = None,
    consent: bool = False,
    consent_text: str = "",
    organisation: Domain | None = None,
) -> Candidate:
    """Record a candidate; consent is recorded with its time and wording, and their data is kept for the
    retention period of their organisation (the desk-wide one without). Twice: two candidates."""
    if not name or not name.strip():
        raise ValidationError({"name": ["This field is required."]})
    now = timezone.now()
    return Candidate.objects.create(
        name=name.strip(),
        email=email.strip(),
        user=user,
        consent_given_at=now if consent else None,
        consent_text=consent_text.strip() if consent else "",
        organisation=organisation,
        created_at=now,
    )


@transaction.atomic
def create_session(
    *,
    case_version: CaseVersion,
    candidate: Candidate,
    lead: Any,
    raters: Sequence[Any] = (),
    observers: Sequence[Any] = (),
    mode: str = Session.Mode.HIRING,
    extra_time_percent: int = 0,
    scheduled_for: Any = None,
    lead_rates: bool = True,
    actor: Any = None,
) -> Session:
    """Schedule a session on a published case version; the version is frozen from now on.

    The candidate must have consented and not been erased. A candidate who worked the case's source
    incident gets a conflict warning on the session (not a refusal: the lead decides).
    """
    version = CaseVersion.objects.select_for_update().get(pk=case_version.pk)
    errors: dict[str, list[str]] = {}
    if version.status != CaseVersion.Status.PUBLISHED:
        errors["case_version"] = [f"Only a published case version can be used; this one is {version.status}."]
    if candidate.erased_at is not None:
        errors["candidate"] = ["This candidate's data was erased."]
    elif candidate.consent_given_at is None:
        errors["candidate"] = ["The candidate has not consented to the interview being recorded."]
    if mode not in Session.Mode.values:
        errors["mode"] = [f"Must be one of: {', '.join(Session.Mode.values)}."]
    if not 0 <= extra_time_percent <= 200:
        errors["extra_time_percent"] = ["From 0 to 200."]
    people = [lead, *raters, *observers]
    if len({u.pk for u in people}) != len(people):
        errors["panel"] = ["Each person has one role on the panel."]
    if errors:
        raise ValidationError(errors)
    if version.frozen_at is None:
        version.frozen_at = timezone.now()
        version.save(update_fields=["frozen_at"])
    session = Session.objects.create(
        case_version=version,
        candidate=candidate,
        mode=mode,
        extra_time_percent=extra_time_percent,
        scheduled_for=scheduled_for,
        conflict_warning=conflicts_with_source(version, candidate),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    SessionMember.objects.create(session=session, user=lead, role=Role.LEAD, rates=lead_rates)
    for user in raters:
        SessionMember.objects.create(session=session, user=user, role=Role.RATER, rates=True)
    for user in observers:
        SessionMember.objects.create(session=session, user=user, role=Role.OBSERVER, rates=False)
    log.record(
        session,
        kind=Kind.CREATED,
        actor=actor,
        data={
            "case": version.case.slug,
            "version": version.number,
            "mode": mode,
            "conflict": bool(session.conflict_warning),
        },
    )
    return session


# --------------------------------------------------------------------------------------------------
# Gathering facts
# --------------------------------------------------------------------------------------------------


@transaction.atomic
def record_question(session: Session, *, actor: Any, text: str) -> Question:
    """The lead records a question the candidate asked. After phase 2 it is allowed and flagged late."""
    session = _lock(session, LIVE, "questions")
    _require_role(session, actor, Role.LEAD)
    if not text or not text.strip():
        raise ValidationError({"text": ["This field is required."]})
    now = timezone.now()
    question = Question.objects.create(
        session=session,
        text=text.strip(),
        asked_at=now,
        phase=session.state,
        late=session.state in LATE_QUESTION,
        recorded_by=actor,
    )
    log.record(
        session,
        kind=Kind.QUESTION,
        actor=actor,
        at=now,
        data={"question": question.pk, "late": question.late},
    )
    _touch(session)
    return question


def _question(session: Session, question: Question | int | None) -> Question | None:
    if question is None:
        return None
    pk = question.pk if isinstance(question, Question) else question
    found = Question.objects.filter(session=session, pk=pk).first()
    if found is None:
        raise ValidationError({"question": ["No such question in this session."]})
    return found


@transaction.atomic
def reveal_fact(
    session: Session,
    *,
    actor: Any,
    fact: Fact | str,
    level: str = Reveal.Level.FULL,
    question: Question | int | None = None,
) -> Reveal:
    """Give the candidate a fact, in full or in part, worded exactly as the case words it.

    The facts it requires must have been revealed first. Revealing the same fact at the same level
    again returns the first reveal and changes nothing.
    """
    session = _lock(session, LIVE, "reveals")
    _require_role(session, actor, Role.LEAD)
    fact = _fact(session, fact)
    asked = _question(session, question)
    if level not in Reveal.Level.values:
        raise ValidationError({"level": [f"Must be one of: {', '.join(Reveal.Level.values)}."]})
    existing = Reveal.objects.filter(session=session, fact=fact, level=level).first()
    if existing is not None:
        return existing
    if level == Reveal.Level.PARTIAL and not fact.partial_text:
        raise ValidationError({"level": [f"Fact {fact.key} has no partial text; reveal it in full."]})
    revealed = set(Reveal.objects.filter(session=session).values_list("fact_id", flat=True))
    missing = [f.key for f in fact.requires.all() if f.pk not in revealed]
    if missing:
        raise ValidationError({"fact": [f"Fact {fact.key} needs {', '.join(missing)} revealed first."]})
    now = timezone.now()
    reveal = Reveal.objects.create(
        session=session,
        fact=fact,
        question=asked,
        level=level,
        text=fact.text if level == Reveal.Level.FULL else fact.partial_text,
        revealed_at=now,
        revealed_by=actor,
    )
    if asked is not None and asked.answer != Question.Answer.REVEALED:
        asked.answer = Question.Answer.REVEALED
        asked.answered_at = now
        asked.save(update_fields=["answer", "answered_at"])
    log.record(
        session,
        kind=Kind.REVEAL,
        actor=actor,
        at=now,
        data={"fact": fact.key, "level": level, "question": asked.pk if asked else None},
    )
    _touch(session)
    return reveal


@transaction.atomic
def answer_question(
    session: Session, *, actor: Any, question: Question | int, answer: str, text: str = ""
) -> Question:
    """Answer without a fact: "not available", or a free answer worded as given (shown to the candidate)."""
    session = _lock(session, LIVE, "answers")
    _require_role(session, actor, Role.LEAD)
    asked = _question(session, question)
    assert asked is not None  # noqa: S101
    if answer not in (Question.Answer.NOT_AVAILABLE, Question.Answer.FREE):
        raise ValidationError({"answer": ["Must be not_available or free."]})
    if answer == Question.Answer.FREE and not text.strip():
        raise ValidationError({"text": ["A free answer needs its text."]})
    now = timezone.now()
    asked.answer = answer
    asked.answer_text = text.strip() if answer == Question.Answer.FREE else ""
    asked.answered_at = now
    asked.save(update_fields=["answer", "answer_text", "answered_at"])
    log.record(session, kind=Kind.ANSWER, actor=actor, at=now, data={"question": asked.pk, "answer": answer})
    _touch(session)
    return asked


@transaction.atomic
def add_note(
    session: Session, *, actor: Any, text: str = "", flag: str = "", dimension: str | None = None
) -> Note:
    """A panel member's quick flag or evidence note (tagged to a rubric dimension). Observers only watch."""
    session = _lock(session, NOTE_STATES, "notes")
    _require_role(session, actor, Role.LEAD, Role.RATER)
    if flag not in Note.Flag.values:
        raise ValidationError({"flag": [f"Must be one of: {', '.join(v for v in Note.Flag.values if v)}."]})
    if not flag and not text.strip():
        raise ValidationError({"text": ["A note needs text or a flag."]})
    dim = None
    if dimension:
        dim = RubricDimension.objects.filter(rubric_id=session.case_version.rubric_id, key=dimension).first()
        if dim is None:
            raise ValidationError({"dimension": [f"No dimension {dimension} in this case's rubric."]})
    note = Note.objects.create(
        session=session,
        author=actor,
        phase=current_phase(session),
        flag=flag,
        dimension=dim,
        text=text.strip(),
    )
    log.record(
        session,
        kind=Kind.NOTE,
        actor=actor,
        at=note.at,
        data={"note": note.pk, "flag": flag, "dimension": dimension or None},
    )
    return note


# --------------------------------------------------------------------------------------------------
# The candidate's statements
# --------------------------------------------------------------------------------------------------


def _candidate_or_lead(session: Session, actor: Any, by_candidate: bool) -> None:
    if not by_candidate:
        _require_role(session, actor, Role.LEAD)


@transaction.atomic
def update_notepad(session: Session, *, text: str) -> Session:
    """The candidate's own notes; kept with the session, erased with the candidate's data."""
    session = _lock(session, frozenset({*TIMED, State.PAUSED}), "notes from the candidate")
    if len(text) > 50_000:
        raise ValidationError({"text": ["50,000 characters at most."]})
    session.candidate_notes = text
    session.save(update_fields=["candidate_notes"])
    return session


@transaction.atomic
def add_candidate_problem(
    session: Session,
    *,
    statement: str,
    cited_reveals: Iterable[int] = (),
    actor: Any = None,
    by_candidate: bool = False,
) -> CandidateProblem:
    """A problem the candidate states, citing facts by the reveals they saw (never by hidden ids).

    Stated after phase 3 it is flagged late.
    """
    session = _lock(session, PROBLEM_STATES, "problems")
    _candidate_or_lead(session, actor, by_candidate)
    if not statement or not statement.strip():
        raise ValidationError({"statement": ["This field is required."]})
    ids = set(cited_reveals)
    reveals = list(Reveal.objects.filter(session=session, pk__in=ids))
    if len(reveals) != len(ids):
        raise ValidationError({"cited_facts": ["Cite only facts revealed in this session."]})
    now = timezone.now()
    problem = CandidateProblem.objects.create(
        session=session,
        statement=statement.strip(),
        stated_at=now,
        phase=session.state,
        late=session.state in (State.SOLVE, State.EVALUATE),
    )
    problem.cited_facts.set({r.fact_id for r in reveals})
    log.record(
        session,
        kind=Kind.PROBLEM,
        actor=None if by_candidate else actor,
        by_candidate=by_candidate,
        at=now,
        data={"problem": problem.pk, "cited": sorted(r.fact.key for r in reveals), "late": problem.late},
    )
    _touch(session)
    return problem


@transaction.atomic
def add_candidate_solution(
    session: Session,
    *,
    action: str,
    reason: str = "",
    rank: int | None = None,
    addresses: Iterable[int] = (),
    actor: Any = None,
    by_candidate: bool = False,
) -> CandidateSolution:
    """A solution with its reason and rank (next rank when none is given), for problems the candidate stated."""
    session = _lock(session, SOLUTION_STATES, "solutions")
    _candidate_or_lead(session, actor, by_candidate)
    if not action or not action.strip():
        raise ValidationError({"action": ["This field is required."]})
    ids = set(addresses)
    problems = list(CandidateProblem.objects.filter(session=session, pk__in=ids))
    if len(problems) != len(ids):
        raise ValidationError({"addresses": ["Name only problems stated in this session."]})
    if rank is None:
        rank = CandidateSolution.objects.filter(session=session).count() + 1
    if not 1 <= rank <= 100:
        raise ValidationError({"rank": ["From 1 to 100."]})
    now = timezone.now()
    solution = CandidateSolution.objects.create(
        session=session,
        action=action.strip(),
        reason=reason.strip(),
        rank=rank,
        stated_at=now,
        phase=session.state,
        late=session.state == State.EVALUATE,
    )
    solution.addresses.set(problems)
    log.record(
        session,
        kind=Kind.SOLUTION,
        actor=None if by_candidate else actor,
        by_candidate=by_candidate,
        at=now,
        data={"solution": solution.pk, "rank": rank, "late": solution.late},
    )
    _touch(session)
    return solution


# --------------------------------------------------------------------------------------------------
# Mapping, rating, consensus
# --------------------------------------------------------------------------------------------------


@transaction.atomic
def map_problem(
    session: Session,
    *,
    actor: Any,
    problem: CandidateProblem | int,
    verdict: str,
    expected: str | None = None,
) -> CandidateProblem:
    """A rater or the lead maps a candidate problem: matched (to an expected problem), novel_valid or invalid."""
    session = _lock(session, MAPPING_STATES, "mapping")
    _require_role(session, actor, Role.LEAD, Role.RATER)
    pk = problem.pk if isinstance(problem, CandidateProblem) else problem
    found = CandidateProblem.objects.filter(session=session, pk=pk).first()
    if found is None:
        raise ValidationError({"problem": ["No such problem in this session."]})
    matched = None
    if verdict not in CandidateProblem.Verdict.values:
        raise ValidationError({"verdict": [f"Must be one of: {', '.join(CandidateProblem.Verdict.values)}."]})
    if verdict == CandidateProblem.Verdict.MATCHED:
        matched = ExpectedProblem.objects.filter(
            version_id=session.case_version_id, key=expected or ""
        ).first()
        if matched is None:
            raise ValidationError({"expected": ["Name the expected problem it matches."]})
    elif expected:
        raise ValidationError({"expected": ["Only a matched problem names an expected problem."]})
    found.verdict = verdict
    found.matched_problem = matched
    found.mapped_by = actor
    found.save(update_fields=["verdict", "matched_problem", "mapped_by"])
    log.record(
        session,
        kind=Kind.MAPPED,
        actor=actor,
        data={"problem": found.pk, "verdict": verdict, "expected": matched.key if matched else None},
    )
    return found


@transaction.atomic
def map_solution(
    session: Session,
    *,
    actor: Any,
    solution: CandidateSolution | int,
    verdict: str,
    model: str | None = None,
    harmful: str | None = None,
) -> CandidateSolution:
    """Map a candidate solution to a model solution, a harmful action, or neither."""
    session = _lock(session, MAPPING_STATES, "mapping")
    _require_role(session, actor, Role.LEAD, Role.RATER)
    pk = solution.pk if isinstance(solution, CandidateSolution) else solution
    found = CandidateSolution.objects.filter(session=session, pk=pk).first()
    if found is None:
        raise ValidationError({"solution": ["No such solution in this session."]})
    if verdict not in CandidateSolution.Verdict.values:
        raise ValidationError(
            {"verdict": [f"Must be one of: {', '.join(CandidateSolution.Verdict.values)}."]}
        )
    matched = harm = None
    if verdict == CandidateSolution.Verdict.MATCHED:
        matched = ModelSolution.objects.filter(version_id=session.case_version_id, key=model or "").first()
        if matched is None:
            raise ValidationError({"model": ["Name the model solution it matches."]})
    if verdict == CandidateSolution.Verdict.HARMFUL:
        harm = HarmfulAction.objects.filter(version_id=session.case_version_id, key=harmful or "").first()
        if harm is None:
            raise ValidationError({"harmful": ["Name the harmful action it is."]})
    found.verdict = verdict
    found.matched_solution = matched
    found.harmful_action = harm
    found.mapped_by = actor
    found.save(update_fields=["verdict", "matched_solution", "harmful_action", "mapped_by"])
    log.record(
        session,
        kind=Kind.MAPPED,
        actor=actor,
        data={
            "solution": found.pk,
            "verdict": verdict,
            "model": matched.key if matched else None,
            "harmful": harm.key if harm else None,
        },
    )
    return found


def _dimension(session: Session, key: str) -> RubricDimension:
    dim = RubricDimension.objects.filter(rubric_id=session.case_version.rubric_id, key=key).first()
    if dim is None:
        raise ValidationError({"dimension": [f"No dimension {key} in this case's rubric."]})
    return dim


def _level(level: Any) -> int:
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5:
        raise ValidationError({"level": ["A level from 1 to 5."]})
    return level


@transaction.atomic
def rate(session: Session, *, rater: Any, dimension: str, level: int, evidence: str) -> Rating:
    """A rater's own level on one dimension, with the evidence for it (required).

    Raters rate alone: until consensus nobody sees another's levels. Rating the same dimension again
    replaces the rater's level and evidence (until the session moves to consensus).
    """
    session = _lock(session, RATING_STATES, "ratings")
    _require_role(session, rater, Role.LEAD, Role.RATER, rates=True)
    dim = _dimension(session, dimension)
    _level(level)
    if not evidence or not evidence.strip():
        raise ValidationError({"evidence": ["A rating needs its evidence: what the candidate did or said."]})
    rating, created = Rating.objects.update_or_create(
        session=session,
        rater=rater,
        dimension=dim,
        defaults={"level": level, "evidence": evidence.strip(), "rated_at": timezone.now()},
    )
    # The level stays out of the log: the log is readable by the whole panel before consensus.
    log.record(session, kind=Kind.RATING, actor=rater, data={"dimension": dim.key, "revised": not created})
    return rating


def level_spread(session: Session, dimension: RubricDimension) -> int:
    levels = list(Rating.objects.filter(session=session, dimension=dimension).values_list("level", flat=True))
    return max(levels) - min(levels) if levels else 0


@transaction.atomic
def record_consensus(
    session: Session, *, actor: Any, dimension: str, level: int, discussion: str = ""
) -> ConsensusRating:
    """The lead records the panel's level for a dimension.

    Where the raters' levels differ by two or more, the panel must have discussed it: the discussion
    note is required. Recording it again replaces it (until the session is closed).
    """
    session = _lock(session, frozenset({State.CONSENSUS}), "consensus ratings")
    _require_role(session, actor, Role.LEAD)
    dim = _dimension(session, dimension)
    _level(level)
    spread = level_spread(session, dim)
    if spread >= 2 and not discussion.strip():
        raise ValidationError(
            {
                "discussion": [
                    f"The raters differ by {spread} levels on {dim.key}: record what the panel discussed."
                ]
            }
        )
    consensus, _ = ConsensusRating.objects.update_or_create(
        session=session,
        dimension=dim,
        defaults={
            "level": level,
            "discussion": discussion.strip(),
            "decided_by": actor,
            "decided_at": timezone.now(),
        },
    )
    log.record(
        session,
        kind=Kind.CONSENSUS,
        actor=actor,
        data={"dimension": dim.key, "level": level, "spread": spread},
    )
    return consensus


@transaction.atomic
def rate_for_calibration(
    session: Session, *, rater: Any, dimension: str, level: int, evidence: str
) -> CalibrationRating:
    """A rater scores a recorded reference session, to compare with its consensus. Raters must not have
    been on its panel (they would know the answer)."""
    session = Session.objects.select_for_update().select_related("case_version").get(pk=session.pk)
    if not session.is_reference or session.state != State.CLOSED:
        raise ValidationError({"session": ["Only a closed reference session is used for calibration."]})
    if member(session, rater) is not None:
        raise PermissionDenied("Panel members of a reference session do not calibrate on it.")
    dim = _dimension(session, dimension)
    _level(level)
    if not evidence or not evidence.strip():
        raise ValidationError({"evidence": ["A rating needs its evidence."]})
    rating, _ = CalibrationRating.objects.update_or_create(
        session=session,
        rater=rater,
        dimension=dim,
        defaults={"level": level, "evidence": evidence.strip(), "rated_at": timezone.now()},
    )
    return rating


@transaction.atomic
def mark_reference(session: Session, *, reference: bool = True) -> Session:
    """Make a closed session with a consensus a reference for calibration, or stop it being one.

    Marking twice changes nothing the second time.
    """
    session = Session.objects.select_for_update().get(pk=session.pk)
    if reference and (session.state != State.CLOSED or not session.consensus.exists()):
        raise ValidationError({"session": ["Only a closed session with a consensus can be a reference."]})
    if session.is_reference != reference:
        session.is_reference = reference
        session.save(update_fields=["is_reference"])
    return session


# --------------------------------------------------------------------------------------------------
# Candidate data: erasure and retention
# --------------------------------------------------------------------------------------------------

ERASED = "[erased]"


@transaction.atomic
def erase_candidate(candidate: Candidate, *, actor: Any = None) -> Candidate:
    """Delete a candidate's personal data on request, keeping anonymous statistics for case analytics.

    Kept: which facts were revealed when, question times and counts, verdicts, levels, phase times.
    Erased: name, e-mail, account link, the wording of their questions, problems, solutions and notes,
    and the panel's evidence notes about them. Erasing twice changes nothing the second time.
    """
    candidate = Candidate.objects.select_for_update().get(pk=candidate.pk)
    if candidate.erased_at is not None:
        return candidate
    now = timezone.now()
    sessions = list(Session.objects.filter(candidate=candidate))
    Session.objects.filter(candidate=candidate).update(candidate_notes="", conflict_warning="", summary="")
    Question.objects.filter(session__in=sessions).update(text=ERASED, answer_text="")
    CandidateProblem.objects.filter(session__in=sessions).update(statement=ERASED)
    CandidateSolution.objects.filter(session__in=sessions).update(action=ERASED, reason="")
    Note.objects.filter(session__in=sessions).update(text="")
    Rating.objects.filter(session__in=sessions).update(evidence=ERASED)
    ConsensusRating.objects.filter(session__in=sessions).exclude(discussion="").update(discussion=ERASED)
    candidate.name = f"Erased candidate {candidate.pk}"
    candidate.email = ""
    candidate.user = None
    candidate.consent_text = ""
    candidate.erased_at = now
    candidate.save(update_fields=["name", "email", "user", "consent_text", "erased_at"])
    for session in sessions:
        # The candidate's link stops working: what it showed was theirs.
        Session.objects.filter(pk=session.pk).update(candidate_token=new_candidate_token())
        log.record(session, kind=Kind.ERASED, actor=actor, at=now, data={})
    return candidate


def _expired(today: date) -> Q:
    """Candidates past their retention: their recorded date has passed, or their organisation's current
    period has (a period shortened since they were recorded applies to them too)."""
    moment = timezone.make_aware(datetime.combine(today, time.min))
    expired = Q(retain_until__lt=today)
    policies = dict(RetentionPolicy.objects.values_list("organisation_id", "retention_days"))
    for organisation_id, days in policies.items():
        expired |= Q(organisation_id=organisation_id, created_at__lt=moment - timedelta(days=days))
    default = InterviewSettings.current().retention_days
    without_policy = Q(organisation__isnull=True) | ~Q(organisation_id__in=list(policies))
    return expired | (without_policy & Q(created_at__lt=moment - timedelta(days=default)))


def erase_expired_candidates(*, today: date | None = None) -> int:
    """Erase every candidate past their organisation's retention whose sessions are all over.

    Safe to repeat: an erased candidate is not erased again.
    """
    today = today or timezone.localdate()
    open_states = [s for s in Session.State.values if s not in Session.FINAL_STATES]
    due = (
        Candidate.objects.filter(_expired(today), erased_at__isnull=True)
        .exclude(sessions__state__in=open_states)
        .distinct()
    )
    count = 0
    for candidate in due:
        erase_candidate(candidate)
        count += 1
    return count
