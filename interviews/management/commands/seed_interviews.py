"""``python manage.py seed_interviews``: two published demo cases and a finished session with two raters.

Idempotent: cases are applied as documents (the same document changes nothing), demo users are created
with get_or_create, and the demo session is recorded once (its candidate's e-mail is the key). The session
is run through the lifecycle and services like a real one, so its log, scores and report are real.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction

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
    help = "Load the interview demo: two published cases and a finished session with two raters. Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            self._retention()
            users = self._users()
            versions = [self._case(doc, users) for doc in demo.CASES]
            session = self._session(versions[0], users)
        if int(options.get("verbosity", 1)):
            self.stdout.write(f"Cases: {', '.join(str(v) for v in versions)}")
            self.stdout.write(f"Finished demo session: {session.pk} ({session.state})")
            self.stdout.write(f"Candidate link: /api/v1/interviews/candidate/{session.candidate_token}/")
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

    def _session(self, version: CaseVersion, users: dict[str, Any]) -> Session:
        existing = Session.objects.filter(candidate__email=demo.SESSION_CANDIDATE["email"]).first()
        if existing is not None:
            return existing
        lead, rater = users["interviewer"], users["rater"]
        candidate = Candidate.objects.filter(
            email=demo.SESSION_CANDIDATE["email"]
        ).first() or services.create_candidate(
            name=demo.SESSION_CANDIDATE["name"],
            email=demo.SESSION_CANDIDATE["email"],
            consent=True,
            consent_text="Recorded for the demo.",
        )
        session = services.create_session(
            case_version=version, candidate=candidate, lead=lead, raters=[rater], actor=lead
        )
        session = lifecycle.start_session(session, actor=lead)
        session = lifecycle.advance_session(session, actor=lead)  # gather
        reveals = {}
        for text, answer, facts in demo.SESSION_SCRIPT:
            question = services.record_question(session, actor=lead, text=text)
            if answer == "not_available":
                services.answer_question(session, actor=lead, question=question, answer="not_available")
            for key, level in facts:
                reveals[key] = services.reveal_fact(
                    session, actor=lead, fact=key, level=level, question=question
                )
        services.add_note(
            session, actor=rater, flag="chasing_red_herring", text="Asked about Windows updates early."
        )
        services.add_note(
            session,
            actor=rater,
            text="Went to the logs, then the directory.",
            dimension="information_gathering",
        )
        session = lifecycle.advance_session(session, actor=lead)  # extract
        for statement, cited, verdict, expected in demo.SESSION_PROBLEMS:
            problem = services.add_candidate_problem(
                session, statement=statement, cited_reveals=[reveals[k].pk for k in cited], by_candidate=True
            )
            services.map_problem(session, actor=rater, problem=problem, verdict=verdict, expected=expected)
        session = lifecycle.advance_session(session, actor=lead)  # solve
        for action, reason, solution_verdict, model in demo.SESSION_SOLUTIONS:
            solution = services.add_candidate_solution(
                session, action=action, reason=reason, by_candidate=True
            )
            services.map_solution(
                session, actor=rater, solution=solution, verdict=solution_verdict, model=model
            )
        session = lifecycle.advance_session(session, actor=lead)  # evaluate
        session = lifecycle.advance_session(session, actor=lead)  # rating
        for dimension, (lead_level, rater_level) in demo.SESSION_LEVELS.items():
            services.rate(
                session,
                rater=lead,
                dimension=dimension,
                level=lead_level,
                evidence=f"{dimension}: as observed.",
            )
            services.rate(
                session,
                rater=rater,
                dimension=dimension,
                level=rater_level,
                evidence=f"{dimension}: see my notes.",
            )
        session = lifecycle.advance_session(session, actor=lead)  # consensus
        for dimension, (consensus_level, discussion) in demo.SESSION_CONSENSUS.items():
            services.record_consensus(
                session, actor=lead, dimension=dimension, level=consensus_level, discussion=discussion
            )
        return lifecycle.close_session(
            session, actor=lead, recommendation="yes", summary="Found the cause quickly; prevention was thin."
        )
