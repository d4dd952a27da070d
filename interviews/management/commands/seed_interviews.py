"""``python manage.py seed_interviews``: three published demo cases and two finished sessions with two raters.

Idempotent: cases are applied as documents (the same document changes nothing), demo users are created
with get_or_create, and the demo session is recorded once (its candidate's e-mail is the key). The session
is run through the lifecycle and services like a real one, so its log, scores and report are real; it is
replayed on a simulated clock (time-machine), so that its timeline reads in minutes, not milliseconds.
The medical session is a reference session for calibration.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from incidents.models import Domain
from interviews import cases, demo, lifecycle, services
from interviews.models import Candidate, CaseVersion, RetentionPolicy, Session

USERS = {
    "interviewer": ("Ivy", "Interviewer", "lead interviewer; writes cases"),
    "rater": ("Ray", "Rater", "rater on the demo panel"),
    "reviewer": ("Rhea", "Reviewer", "approves and publishes cases (the second person)"),
}
PERMISSIONS = {
    "interviewer": [
        "view_caseversion",
        "add_caseversion",
        "change_caseversion",
        "add_session",
        "view_session",
    ],
    "rater": ["view_caseversion", "view_session"],
    "reviewer": ["view_caseversion", "change_caseversion", "publish_caseversion", "view_session"],
}


def demo_password(username: str) -> str:
    return f"demo-{username}-2026"


class Command(BaseCommand):
    help = "Load the interview demo: three published cases and two finished sessions. Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            self._retention()
            users = self._users()
            versions = [self._case(doc, users) for doc in demo.CASES]
            sessions = [self._session(script, users) for script in demo.SESSIONS]
        if int(options.get("verbosity", 1)):
            self.stdout.write(f"Cases: {', '.join(str(v) for v in versions)}")
            for session in sessions:
                self.stdout.write(f"Finished demo session: {session.pk} ({session.state})")
            for username, (_, _, role) in USERS.items():
                self.stdout.write(f"  {username:12} {demo_password(username):28} {role}")

    def _retention(self) -> None:
        """The medical organisation keeps candidate data for less time than the desk-wide default."""
        medical = Domain.objects.filter(slug="medical").first()
        if medical is not None:
            RetentionPolicy.objects.get_or_create(
                organisation=medical, defaults={"retention_days": demo.MEDICAL_RETENTION_DAYS}
            )

    def _users(self) -> dict[str, Any]:
        User = get_user_model()
        users = {}
        for username, (first, last, _) in USERS.items():
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@example.org"},
            )
            if created:
                user.set_password(demo_password(username))
                user.save(update_fields=["password"])
            user.user_permissions.add(
                *Permission.objects.filter(
                    content_type__app_label="interviews", codename__in=PERMISSIONS[username]
                )
            )
            users[username] = user
        return users

    def _case(self, doc: dict[str, Any], users: dict[str, Any]) -> CaseVersion:
        version, _ = cases.apply_case_document(doc, actor=users["interviewer"])
        if version.status == CaseVersion.Status.DRAFT:
            version = cases.submit_for_review(version, actor=users["interviewer"])
        if version.status == CaseVersion.Status.REVIEW:
            version = cases.approve(version, actor=users["reviewer"])
        return version

    def _session(self, script: demo.DemoSession, users: dict[str, Any]) -> Session:
        """Replay a finished session on a simulated clock (time-machine), so its timeline reads in
        minutes as a real one would. Recorded once: the candidate's e-mail is the key."""
        existing = Session.objects.filter(candidate__email=script.candidate["email"]).first()
        if existing is not None:
            return existing
        version = CaseVersion.objects.get(case__slug=script.case, status=CaseVersion.Status.PUBLISHED)
        try:
            import time_machine  # the `run` extra: demo data only, never the production image
        except ImportError as error:
            raise CommandError("seed_interviews needs the run extra: pip install '.[run]'") from error
        day = timezone.localtime() - timedelta(days=script.days_ago)
        start = day.replace(hour=10, minute=0, second=0, microsecond=0)
        with time_machine.travel(start, tick=False) as clock:
            return self._replay(script, version, users, start, clock)

    def _replay(
        self, script: demo.DemoSession, version: CaseVersion, users: dict[str, Any], start: Any, clock: Any
    ) -> Session:
        lead, rater = users["interviewer"], users["rater"]
        phase_start = start

        def at(minutes: float) -> None:
            clock.move_to(phase_start + timedelta(minutes=minutes))

        def next_phase(session: Session, phase: str) -> Session:
            nonlocal phase_start
            at(script.phases[phase])
            phase_start = phase_start + timedelta(minutes=script.phases[phase])
            return lifecycle.advance_session(session, actor=lead)

        organisation = (
            Domain.objects.filter(slug=script.organisation).first() if script.organisation else None
        )
        candidate = Candidate.objects.filter(
            email=script.candidate["email"]
        ).first() or services.create_candidate(
            name=script.candidate["name"],
            email=script.candidate["email"],
            organisation=organisation,
            consent=True,
            consent_text="Recorded for the demo.",
        )
        session = services.create_session(
            case_version=version, candidate=candidate, lead=lead, raters=[rater], actor=lead
        )
        session = lifecycle.start_session(session, actor=lead)
        session = next_phase(session, "present")  # gather
        reveals = {}
        # Questions and the rater's notes in time order (a note after a question at the same minute).
        moments: list[tuple[float, int, Any]] = sorted(
            [(m, 0, (text, answer, facts)) for m, text, answer, facts in script.script]
            + [(m, 1, (flag, text, dimension)) for m, flag, text, dimension in script.notes],
            key=lambda x: (x[0], x[1]),
        )
        for minutes, kind, item in moments:
            at(minutes)
            if kind == 1:
                flag, note, dimension = item
                services.add_note(session, actor=rater, flag=flag, text=note, dimension=dimension)
                continue
            text, answer, facts = item
            question = services.record_question(session, actor=lead, text=text)
            if answer == "not_available":
                at(minutes + 0.3)
                services.answer_question(session, actor=lead, question=question, answer="not_available")
            for key, level in facts:
                at(minutes + 0.5)
                reveals[key] = services.reveal_fact(
                    session, actor=lead, fact=key, level=level, question=question
                )
        session = next_phase(session, "gather")  # extract
        for minutes, statement, cited, verdict, expected in script.problems:
            at(minutes)
            problem = services.add_candidate_problem(
                session, statement=statement, cited_reveals=[reveals[k].pk for k in cited], by_candidate=True
            )
            at(minutes + 0.5)
            services.map_problem(session, actor=rater, problem=problem, verdict=verdict, expected=expected)
        session = next_phase(session, "extract")  # solve
        for minutes, action, reason, solution_verdict, model in script.solutions:
            at(minutes)
            solution = services.add_candidate_solution(
                session, action=action, reason=reason, by_candidate=True
            )
            at(minutes + 0.5)
            services.map_solution(
                session, actor=rater, solution=solution, verdict=solution_verdict, model=model
            )
        session = next_phase(session, "solve")  # evaluate
        session = next_phase(session, "evaluate")  # rating
        for index, (dimension, (lead_level, rater_level)) in enumerate(script.levels.items()):
            at(2 + index)
            services.rate(
                session,
                rater=lead,
                dimension=dimension,
                level=lead_level,
                evidence=f"{dimension}: as observed.",
            )
            at(2.5 + index)
            services.rate(
                session,
                rater=rater,
                dimension=dimension,
                level=rater_level,
                evidence=f"{dimension}: see my notes.",
            )
        session = next_phase(session, "rating")  # consensus
        for index, (dimension, (consensus_level, discussion)) in enumerate(script.consensus.items()):
            at(1 + index)
            services.record_consensus(
                session, actor=lead, dimension=dimension, level=consensus_level, discussion=discussion
            )
        at(len(script.consensus) + 2)
        session = lifecycle.close_session(
            session, actor=lead, recommendation=script.recommendation, summary=script.summary
        )
        return services.mark_reference(session) if script.reference else session
