"""A hypothesis state machine over the desk (issue 11, "Prove it").

Random sequences of reports (public or confidential, any domain or none), classifications and
reclassifications across domains, parent links and unlinks, public and internal comments, acknowledge,
resolve, close, reopen, problems and admin edits, each by a random actor. After every step, for every user:

- list, detail, timeline, comments, search, CSV export and report counts show exactly what SPEC section 1
  says (the oracle below, written independently of incidents.selectors);
- an action succeeded only for someone allowed to take it (a responder of the incident, or its reporter
  for the reporter's own actions);
- the outbox holds no incident content for a recipient who may not see it, and no internal note for
  one who sees the incident as its reporter;
- versions only grow, and every change left a timeline entry.

Bounded by SM_EXAMPLES x SM_STEPS (defaults 8 x 10), about a minute or two on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.exceptions import ValidationError as ApiValidationError

from escalation.models import Notification
from incidents import export, lifecycle, major, problems, selectors, services
from incidents.api.serializers import REPORTER_FIELDS, IncidentSerializer, TimelineEntrySerializer
from incidents.models import Incident, Membership, Team
from reporting import figures
from tests.factories import CategoryFactory, TeamFactory, UserFactory, domain, privacy_officer

pytestmark = pytest.mark.django_db(transaction=False)

EXAMPLES = int(os.environ.get("SM_EXAMPLES", "8"))
STEPS = int(os.environ.get("SM_STEPS", "10"))
DOMAINS = ("it_service", "security", "medical")
PEOPLE = ("reporter_a", "reporter_b", "agent_it", "security", "medical", "officer", "root")
REFUSALS = (PermissionDenied, ValidationError, ApiValidationError)
REFUSAL_NAMES = {"InvalidTransition", "StaleVersion", "DomainError", "Conflict"}


def _refused(exc: Exception) -> bool:
    return isinstance(exc, REFUSALS) or any(c.__name__ in REFUSAL_NAMES for c in type(exc).__mro__)


class Desk(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.teams = {slug: TeamFactory(domains=[slug]) for slug in DOMAINS}
        self.categories = {slug: CategoryFactory(domain=domain(slug)) for slug in DOMAINS}
        self.users: dict[str, Any] = {
            "reporter_a": UserFactory(),
            "reporter_b": UserFactory(),
            "officer": privacy_officer(self.teams["it_service"]),
            "root": UserFactory(is_superuser=True, is_staff=True),
        }
        for name, slug in (("agent_it", "it_service"), ("security", "security"), ("medical", "medical")):
            user = UserFactory()
            Membership.objects.create(team=self.teams[slug], user=user)
            self.users[name] = user
        self.incidents: list[int] = []
        self.internal: dict[int, set[str]] = {}
        self.versions: dict[int, int] = {}
        self.entries: dict[int, int] = {}
        self.counter = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers -------------------------------------------------------------------------------------------

    def _fresh(self, pk: int) -> Incident:
        return Incident.objects.select_related("domain", "reporter").get(pk=pk)

    def _marker(self, kind: str) -> str:
        self.counter += 1
        return f"sm{kind}{self.counter:03d}x"

    def _changed(self, pk: int, before_entries: int) -> None:
        """A successful change: the version did not go down and the timeline grew."""
        incident = self._fresh(pk)
        assert incident.timeline.count() > before_entries, "a change without a timeline entry"
        self.entries[pk] = incident.timeline.count()

    # --- the oracle (SPEC section 1) ---------------------------------------------------------------------

    def sees_as(self, name: str, incident: Incident) -> str | None:
        user = self.users[name]
        if user.is_superuser:
            return "responder"
        teams = Team.objects.filter(memberships__user=user)
        if teams.exists():
            dom = incident.domain
            if dom is None or not dom.restricted or teams.filter(domains=dom).exists():
                return "responder"
        return "reporter" if incident.reporter_id == user.pk else None

    # --- rules ------------------------------------------------------------------------------------------------

    @rule(reporter=st.sampled_from(("reporter_a", "reporter_b", "agent_it", "security")),
          dom=st.sampled_from((None, *DOMAINS)), confidential=st.booleans())  # fmt: skip
    def report(self, reporter: str, dom: str | None, confidential: bool) -> None:
        incident = services.create_incident(
            reporter=self.users[reporter], title=f"Case {self._marker('t')}", description="It broke.",
            domain=domain(dom) if dom else None, confidential=confidential,
        )  # fmt: skip
        self.incidents.append(incident.pk)
        self.internal[incident.pk] = set()
        self.versions[incident.pk] = incident.version
        self.entries[incident.pk] = incident.timeline.count()

    @precondition(lambda self: self.incidents)
    @rule(data=st.data(), dom=st.sampled_from(DOMAINS), actor=st.sampled_from(PEOPLE))
    def classify(self, data: Any, dom: str, actor: str) -> None:
        pk = data.draw(st.sampled_from(self.incidents))
        self._act(pk, actor, "classify", lambda i, a: lifecycle.classify_incident(
            i, actor=a, domain=domain(dom), category=self.categories[dom], impact=2, urgency=2,
            team=self.teams[dom], harm_level="1" if domain(dom).requires_harm_level else "",
        ))  # fmt: skip

    @precondition(lambda self: self.incidents)
    @rule(data=st.data(), actor=st.sampled_from(PEOPLE),
          action=st.sampled_from(("acknowledge", "resolve", "close", "reopen", "edit")))  # fmt: skip
    def act(self, data: Any, actor: str, action: str) -> None:
        pk = data.draw(st.sampled_from(self.incidents))
        calls = {
            "acknowledge": lambda i, a: lifecycle.acknowledge_incident(i, actor=a, assignee=None),
            "resolve": lambda i, a: lifecycle.resolve_incident(
                i, actor=a, summary=f"Fixed {self._marker('r')}"
            ),
            "close": lambda i, a: lifecycle.close_incident(
                i, actor=a, cause="Cause", measures="Measures", resolution_code="fixed"
            ),
            "reopen": lambda i, a: lifecycle.reopen_incident(i, actor=a, reason="Still broken"),
            # the admin's edit (an admin is a superuser here): through the service, like the admin form
            "edit": lambda i, a: services.edit_incident(
                i, actor=a, version=i.version, title=f"Edited {i.title}"
            ),
        }
        self._act(pk, actor, action, calls[action])

    def _act(self, pk: int, actor: str, action: str, call: Any) -> None:
        incident = self._fresh(pk)
        before = incident.timeline.count()
        view = self.sees_as(actor, incident)
        try:
            call(incident, self.users[actor])
        except Exception as exc:
            if not _refused(exc):
                raise
            return
        allowed = view == "responder" or (view == "reporter" and action == "reopen")
        assert allowed, f"{actor} (sees it as {view}) could {action} {incident.reference}"
        self._changed(pk, before)

    @precondition(lambda self: self.incidents)
    @rule(data=st.data(), actor=st.sampled_from(PEOPLE), public=st.booleans())
    def comment(self, data: Any, actor: str, public: bool) -> None:
        pk = data.draw(st.sampled_from(self.incidents))
        incident = self._fresh(pk)
        view = self.sees_as(actor, incident)
        before = incident.timeline.count()
        marker = self._marker("c")
        try:
            comment = services.add_comment(
                incident, author=self.users[actor], body=f"Note {marker}", public=public
            )
        except Exception as exc:
            if not _refused(exc):
                raise
            return
        assert view is not None, f"{actor} commented on {incident.reference}, which they may not see"
        if view == "reporter":
            assert comment.public, "a comment of someone who sees it as its reporter is public"
        if not comment.public:
            self.internal[pk].add(marker)
        self._changed(pk, before)

    @precondition(lambda self: len(self.incidents) >= 2)
    @rule(data=st.data(), unlink=st.booleans())
    def link(self, data: Any, unlink: bool) -> None:
        child_pk = data.draw(st.sampled_from(self.incidents))
        child = self._fresh(child_pk)
        before = child.timeline.count()
        parent = None if unlink else self._fresh(data.draw(st.sampled_from(self.incidents)))
        try:
            major.set_parent(child, parent=parent, actor=self.users["root"])
        except Exception as exc:
            if not _refused(exc):
                raise
            return
        if self._fresh(child_pk).timeline.count() != before:
            self.entries[child_pk] = self._fresh(child_pk).timeline.count()

    @precondition(lambda self: self.incidents)
    @rule(data=st.data(), actor=st.sampled_from(("agent_it", "security", "medical", "root")))
    def problem(self, data: Any, actor: str) -> None:
        pk = data.draw(st.sampled_from(self.incidents))
        incident = self._fresh(pk)
        view = self.sees_as(actor, incident)
        try:
            problems.create_problem(
                actor=self.users[actor], title=f"Problem {self._marker('p')}", incidents=[incident]
            )
        except Exception as exc:
            if not _refused(exc):
                raise
            return
        assert view == "responder", f"{actor} linked {incident.reference} ({view}) to a problem"

    # --- invariants ------------------------------------------------------------------------------------------

    @invariant()
    def versions_only_grow(self) -> None:
        for pk, version in Incident.objects.filter(pk__in=self.incidents).values_list("pk", "version"):
            assert version >= self.versions[pk], f"version of {pk} went down"
            self.versions[pk] = version

    @invariant()
    def every_read_path_shows_what_the_policy_says(self) -> None:
        if not self.incidents:
            return
        incidents = [self._fresh(pk) for pk in self.incidents]
        for name, user in self.users.items():
            user = type(user).objects.get(pk=user.pk)  # fresh: the policy is cached per user object
            views = {i.pk: self.sees_as(name, i) for i in incidents}
            visible = {pk for pk, v in views.items() if v is not None}
            handled = {pk for pk, v in views.items() if v == "responder"}
            listed = set(
                selectors.incident_list(user).filter(pk__in=self.incidents).values_list("pk", flat=True)
            )
            assert listed == visible, f"{name}: list {sorted(listed)} != {sorted(visible)}"
            request = SimpleNamespace(user=user)
            for incident in incidents:
                view = views[incident.pk]
                if view is None:
                    assert not selectors.search_incidents(
                        selectors.incident_list(user), incident.title
                    ).exists()
                    continue
                self._check_detail(name, user, request, incident, view)
            if handled or selectors.desk_user(user).is_responder:
                self._check_export_and_report(name, user, incidents, handled)

    def _check_detail(self, name: str, user: Any, request: Any, incident: Incident, view: str) -> None:
        body = IncidentSerializer(incident, context={"request": request}).data
        if view == "reporter":
            assert set(body) <= REPORTER_FIELDS, f"{name} sees internal fields of {incident.reference}"
        else:
            assert "team" in body
            assert "assignee" in body
        privileged = user.is_superuser or user.has_perm("incidents.view_confidential_reporter")
        if incident.confidential and not privileged and incident.reporter_id != user.pk:
            assert "reporter" not in body
            assert "reporter_email" not in body
        entries = selectors.timeline_for(incident, user)
        data = TimelineEntrySerializer(
            entries, many=True, context={"request": request, "incident": incident}
        ).data
        text = str(data) + "".join(c.body for c in incident.comments.all() if c.public or view == "responder")
        if view == "reporter":
            assert all(entry["public"] for entry in data), f"{name} reads an internal entry"
            for marker in self.internal[incident.pk]:
                assert marker not in str(data), f"{name} reads an internal note"
        if incident.confidential and not privileged and incident.reporter_id != user.pk and incident.reporter:
            assert incident.reporter.email not in str(data)
        assert text is not None

    def _check_export_and_report(
        self, name: str, user: Any, incidents: list[Incident], handled: set[int]
    ) -> None:
        me = selectors.desk_user(user)
        rows = csv.DictReader(
            io.StringIO("".join(export.stream_csv(selectors.incidents_handled_by(user), me)))
        )
        exported = {Incident.pk_from_reference(row["reference"]) for row in rows} & set(self.incidents)
        assert exported == handled, f"{name}: export {sorted(exported)} != {sorted(handled)}"
        period = figures.ReportFilters(
            start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC)
        )
        summary = figures.summary(user, period)
        # Every incident of the machine is in the period; the report counts exactly those handled.
        assert summary["counts"]["total"] == len(handled), f"{name}: report counts what they do not handle"

    @invariant()
    def the_outbox_tells_nobody_what_they_may_not_see(self) -> None:
        for row in Notification.objects.filter(incident_id__in=self.incidents).select_related("user"):
            if row.user is None:
                continue
            incident = self._fresh(row.incident_id)
            name = next((n for n, u in self.users.items() if u.pk == row.user_id), None)
            if name is None:
                continue
            view = self.sees_as(name, incident)
            content = f"{row.subject}\n{row.body}\n{row.payload}"
            if view is None:
                assert incident.title not in content, (
                    f"{name} was mailed {incident.reference}, which they may not see"
                )
            if view != "responder":
                for marker in self.internal[incident.pk]:
                    assert marker not in content, f"{name} was mailed an internal note"


def test_the_desk_keeps_its_promises_under_random_sequences(attachment_dir):
    Desk.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    run_state_machine_as_test(Desk, settings=Desk.TestCase.settings)
