"""Problem records: their state table, linked incidents, follow-up reminders and the recurrence proposal."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from escalation.delivery import deliver
from escalation.models import Notification
from incidents import lifecycle, problems, services
from incidents.models import Incident, Membership, Problem, TimelineEntry
from incidents.tasks import remind_follow_ups
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, domain, incident_in, report

pytestmark = pytest.mark.django_db
PS = Problem.State
TODAY = dt.date(2026, 6, 10)


def new_problem(**kwargs):
    actor = kwargs.pop("actor", None) or agent()
    return problems.create_problem(actor=actor, title=kwargs.pop("title", "VPN drops"), **kwargs), actor


def test_a_problem_opens_with_its_incidents_linked_and_their_versions_bumped():
    incident = incident_in(Incident.State.RESPONDING)
    version = incident.version
    problem, _actor = new_problem(incidents=[incident])
    incident.refresh_from_db()
    assert problem.state == PS.OPEN
    assert problem.reference.startswith("PRB-")
    assert incident.problem_id == problem.pk
    assert incident.version == version + 1
    entry = TimelineEntry.objects.get(incident=incident, kind="problem")
    assert entry.data["problem"] == problem.reference


def test_only_responders_manage_problems():
    with pytest.raises(PermissionDenied):
        problems.create_problem(actor=UserFactory(), title="x")


def test_known_error_needs_root_cause_and_workaround_and_keeps_the_flag():
    problem, actor = new_problem()
    with pytest.raises(ValidationError) as error:
        problems.change_state(problem, actor=actor, state=PS.KNOWN_ERROR)
    assert set(error.value.message_dict) == {"root_cause", "workaround"}
    problem = problems.edit_problem(
        problem, actor=actor, version=problem.version, root_cause="Firmware leak", workaround="Reboot nightly"
    )
    problem = problems.change_state(problem, actor=actor, state=PS.KNOWN_ERROR, version=problem.version)
    assert problem.known_error
    problem = problems.change_state(problem, actor=actor, state=PS.RESOLVED)
    assert problem.known_error  # a known error stays known
    assert problem.resolved_at is not None


def test_the_state_table_refuses_other_moves_and_stale_versions():
    problem, actor = new_problem()
    with pytest.raises(problems.ProblemTransitionRefused) as refused:
        problems.change_state(problem, actor=actor, state=PS.PROPOSED)
    assert refused.value.allowed_actions == ["closed", "known_error", "resolved"]
    with pytest.raises(problems.StaleProblemVersion):
        problems.change_state(problem, actor=actor, state=PS.CLOSED, version=problem.version + 1)
    same = problems.change_state(problem, actor=actor, state=PS.OPEN)
    assert same.version == problem.version  # already open: nothing changes


def test_closing_needs_every_follow_up_done_and_freezes_the_record():
    problem, actor = new_problem()
    action = problems.add_follow_up(
        problem, actor=actor, title="Upgrade firmware", owner=actor, due_date=TODAY
    )
    with pytest.raises(ValidationError) as error:
        problems.change_state(problem, actor=actor, state=PS.CLOSED)
    assert "state" in error.value.message_dict
    problems.complete_follow_up(action, actor=actor)
    problem = problems.change_state(problem, actor=actor, state=PS.CLOSED)
    assert problem.closed_at is not None
    with pytest.raises(problems.ProblemTransitionRefused):
        problems.edit_problem(problem, actor=actor, title="changed")
    with pytest.raises(problems.ProblemTransitionRefused):
        problems.add_follow_up(problem, actor=actor, title="more", owner=actor, due_date=TODAY)


def test_completing_a_follow_up_is_a_change_of_the_problem_a_new_version_once():
    """A follow-up is part of its problem: adding it and marking it done each make a new version of the record (so a
    form read before is stale), and marking it done again changes nothing."""
    problem, actor = new_problem()
    action = problems.add_follow_up(
        problem, actor=actor, title="Patch the gateways", owner=actor, due_date=TODAY
    )
    added = Problem.objects.get(pk=problem.pk).version
    problems.complete_follow_up(action, actor=actor)
    done = Problem.objects.get(pk=problem.pk).version
    problems.complete_follow_up(action, actor=actor)
    assert (done, Problem.objects.get(pk=problem.pk).version) == (added + 1, added + 1)
    with pytest.raises(problems.StaleProblemVersion):
        problems.edit_problem(problem, actor=actor, title="changed", version=added)


def test_unlinking_clears_the_link_and_an_invisible_incident_is_unknown():
    incident = incident_in(Incident.State.RESPONDING)
    problem, actor = new_problem(incidents=[incident])
    assert problems.unlink_incidents(problem, actor=actor, incidents=[incident]) == [incident.reference]
    assert problems.unlink_incidents(problem, actor=actor, incidents=[incident]) == []
    incident.refresh_from_db()
    assert incident.problem_id is None
    hidden = incident_in(Incident.State.RESPONDING, domain_slug="security")  # actor's team handles IT only
    with pytest.raises(ValidationError) as error:
        problems.link_incidents(problem, actor=actor, incidents=[hidden])
    assert "incidents" in error.value.message_dict


# --- follow-up reminders -----------------------------------------------------------------------------


def reminders():
    return Notification.objects.filter(event="follow_up_reminder")


def test_an_owner_is_reminded_once_a_day_until_the_action_is_done():
    problem, actor = new_problem()
    owner = UserFactory(email="owner@example.org")
    action = problems.add_follow_up(problem, actor=actor, title="Patch", owner=owner, due_date=TODAY)
    later = problems.add_follow_up(
        problem, actor=actor, title="Later", owner=owner, due_date=TODAY + dt.timedelta(days=30)
    )

    assert problems.remind_follow_ups(today=TODAY) == 1
    problems.remind_follow_ups(today=TODAY)  # the same day again (a second beat): no second row
    (row,) = reminders()
    assert row.problem_id == problem.pk
    assert row.incident_id is None
    assert row.recipient == "owner@example.org"
    assert deliver(row.pk) == "sent"
    assert mail.outbox[0].extra_headers["X-IncidentDesk-Reference"] == problem.reference
    assert "Patch" in mail.outbox[0].subject

    assert deliver(row.pk) == "skipped"  # sent once
    assert problems.remind_follow_ups(today=TODAY + dt.timedelta(days=1)) == 1  # overdue: every day
    assert "overdue" in reminders().last().subject
    problems.complete_follow_up(action, actor=actor)
    assert problems.remind_follow_ups(today=TODAY + dt.timedelta(days=2)) == 0
    assert reminders().count() == 2
    assert not reminders().filter(body__contains=later.title).exists()


def test_a_reminder_that_cannot_be_sent_dies_without_an_incident_timeline(settings, monkeypatch):
    from escalation import delivery

    settings.NOTIFICATION_BACKOFF_SECONDS = []
    problem, actor = new_problem()
    problems.add_follow_up(problem, actor=actor, title="Patch", owner=actor, due_date=TODAY)
    problems.remind_follow_ups(today=TODAY)

    def smtp_down(row):
        raise ConnectionError("smtp down")

    monkeypatch.setattr(delivery, "send", smtp_down)
    (row,) = reminders()
    assert deliver(row.pk) == "dead"
    row.refresh_from_db()
    assert "smtp down" in row.last_error


def test_the_beat_task_reminds_through_the_domain(settings):
    problem, actor = new_problem()
    problems.add_follow_up(problem, actor=actor, title="Patch", owner=actor, due_date=dt.date(2000, 1, 1))
    assert remind_follow_ups() == 1
    assert "remind-problem-follow-ups" in settings.CELERY_BEAT_SCHEDULE


# --- recurrence ---------------------------------------------------------------------------------------


@pytest.fixture
def recurring(settings):
    """A category with a default team, and a function that reports and classifies one incident in it."""
    settings.RECURRENCE_THRESHOLD = 3
    settings.RECURRENCE_WINDOW = dt.timedelta(hours=24)
    team = TeamFactory()
    Membership.objects.create(team=team, user=UserFactory(email="member@example.org"))
    category = CategoryFactory(default_team=team, name="VPN")
    actor = agent(team)

    def classify(title="VPN drops"):
        incident = report(title=title, domain=domain("it_service"))
        return lifecycle.classify_incident(
            incident, actor=actor, domain=category.domain, category=category, impact=2, urgency=2, team=team
        )

    return category, team, classify


def test_the_third_incident_of_a_category_proposes_a_problem_to_its_team_once(
    recurring, django_capture_on_commit_callbacks
):
    category, team, classify = recurring
    with django_capture_on_commit_callbacks(execute=True):
        first, second = classify(), classify()
    assert not Problem.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        third = classify()
    problem = Problem.objects.get()
    assert problem.state == PS.PROPOSED
    assert problem.team == team
    assert problem.category == category
    assert set(problem.incidents.values_list("pk", flat=True)) == {first.pk, second.pk, third.pk}
    told = Notification.objects.filter(event="problem_proposed")
    assert "member@example.org" in set(told.values_list("recipient", flat=True))
    assert TimelineEntry.objects.filter(incident=third, kind="problem", data__event="recurrence").exists()

    with django_capture_on_commit_callbacks(execute=True):
        classify(), classify(), classify()
    assert Problem.objects.count() == 1  # once: the open proposal covers the category


def test_incidents_reported_in_their_category_and_classified_as_they_are_propose_a_problem(
    recurring, django_capture_on_commit_callbacks
):
    """The reporter chose the category and the desk kept it: the first classification checks too."""
    category, team, _classify = recurring
    actor = agent(team)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            incident = report(title="VPN drops", domain=category.domain, category=category)
            lifecycle.classify_incident(
                incident,
                actor=actor,
                domain=category.domain,
                category=category,
                impact=2,
                urgency=2,
                team=team,
            )
    problem = Problem.objects.get()
    assert problem.category == category
    assert problem.incidents.count() == 3


@pytest.mark.parametrize("path", ["edit", "admin correction"])
def test_a_category_changed_after_classification_counts_in_its_new_category(
    recurring, path, django_capture_on_commit_callbacks
):
    """Classified elsewhere, then moved into the category by a responder's edit or an administrator's
    correction: the move is checked as a classification's category change is."""
    category, team, classify = recurring
    with django_capture_on_commit_callbacks(execute=True):
        classify(title="VPN drops at night")
        classify(title="Tunnel resets every hour")
        other = CategoryFactory(default_team=team, name="Mail", domain=category.domain)
        moved = lifecycle.classify_incident(
            report(title="Client cannot reach the intranet", domain=category.domain),
            actor=agent(team), domain=category.domain, category=other, impact=2, urgency=2, team=team,
        )  # fmt: skip
    assert not Problem.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        if path == "edit":
            services.edit_incident(moved, actor=agent(team), version=moved.version, category=category)
        else:
            services.correct_incident(
                moved, actor=UserFactory(is_staff=True), version=moved.version, category=category
            )
    problem = Problem.objects.get()
    assert problem.category == category
    assert set(problem.incidents.all()) == set(Incident.objects.filter(category=category))
    assert problem.incidents.count() == 3


def test_the_proposal_key_stops_a_concurrent_second_proposal(recurring):
    category, _team, classify = recurring
    incidents = [classify() for _ in range(3)]
    Problem.objects.create(
        title="turned down", state=PS.CLOSED, category=category,
        proposal_key=f"recurrence:category:{category.pk}:{incidents[0].pk}",
    )  # fmt: skip
    assert problems.check_recurrence(incidents[-1]) is None
    assert Problem.objects.count() == 1


def test_incidents_outside_the_window_or_cancelled_do_not_count(recurring, settings):
    _category, _team, classify = recurring
    old = classify()
    Incident.objects.filter(pk=old.pk).update(received_at=old.received_at - dt.timedelta(days=2))
    cancelled = classify()
    lifecycle.cancel_incident(cancelled, actor=None, reason="spam")
    classify()
    last = classify()
    assert problems.check_recurrence(last) is None
    assert len(problems.recurrence_cluster(last)) == 2


def test_a_failing_recurrence_check_never_undoes_the_classification(
    recurring, monkeypatch, django_capture_on_commit_callbacks
):
    _category, _team, classify = recurring

    def broken(incident, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(problems, "check_recurrence", broken)
    with django_capture_on_commit_callbacks(execute=True):
        incident = classify()
    incident.refresh_from_db()
    assert incident.state == Incident.State.CLASSIFIED


def test_similar_titles_across_categories_propose_a_problem_once(
    settings, django_capture_on_commit_callbacks
):
    settings.RECURRENCE_THRESHOLD = 3
    titles = [
        "Outlook crashes when opening the calendar",
        "Outlook crashes opening calendar",
        "Outlook calendar crashes on opening",
    ]
    incident_in(Incident.State.CLASSIFIED, domain_slug="security", title=titles[0])  # another domain
    with django_capture_on_commit_callbacks(execute=True):
        found = [incident_in(Incident.State.CLASSIFIED, title=title) for title in titles]  # three categories
    problem = Problem.objects.get()
    assert problem.state == PS.PROPOSED
    assert problem.proposal_key == f"recurrence:text:{found[0].pk}"
    assert set(problem.incidents.values_list("pk", flat=True)) == {i.pk for i in found}
    with django_capture_on_commit_callbacks(execute=True):
        incident_in(Incident.State.CLASSIFIED, title="Outlook crashes opening the calendar again")
    assert Problem.objects.count() == 1  # the linked ones never count twice


# --- recurrence cost: the same at any size of the window ----------------------------------------------------


def _copies(template: Incident, count: int, **changes) -> None:
    """`count` more incidents like `template`, received just after it (one INSERT)."""
    import uuid

    rows = []
    fields = {
        f.attname: getattr(template, f.attname) for f in Incident._meta.concrete_fields if not f.primary_key
    }
    for n in range(count):
        row = Incident(**fields)
        row.tracking_token = uuid.uuid4().hex
        row.received_at = template.received_at + dt.timedelta(seconds=n + 1)
        for field, value in changes.items():
            setattr(row, field, value)
        rows.append(row)
    Incident.objects.bulk_create(rows)


def _leaf_rows(plan: dict) -> int:
    children = plan.get("Plans", [])
    if not children:
        return int(plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1))
    return sum(_leaf_rows(child) for child in children)


def _probe_cost(check) -> tuple[int, int]:
    """(statements, rows the scans read) of `check()`: each SELECT explained with ANALYZE on PostgreSQL, the
    rows of its leaf nodes (index and table scans) summed."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE incidents_incident")
    with CaptureQueriesContext(connection) as queries:
        check()
    rows = 0
    with connection.cursor() as cursor:
        # Plan as on a large table (a small one is cheaper to scan whole), for the rest of this test's transaction.
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries.captured_queries:
            if query["sql"].lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query["sql"])
                rows += _leaf_rows(cursor.fetchone()[0][0]["Plan"])
    return len(queries.captured_queries), rows


@pytest.mark.postgres
def test_a_decided_category_costs_the_same_at_20_and_600_incidents_in_the_window(recurring):
    category, _team, classify = recurring
    incidents = [classify() for _ in range(3)]
    assert problems.check_recurrence(incidents[-1]) is not None  # the proposal covers the category now
    costs = []
    for more in (20, 580):
        _copies(incidents[-1], more)
        last = Incident.objects.filter(category=category).latest("received_at")
        costs.append(_probe_cost(lambda last=last: problems.check_recurrence(last)))
    # the threshold probe (stops at 3 rows) and the open problem of the category, in one statement; no text probe
    assert costs[0] == costs[1]
    assert costs[0][0] == 1


@pytest.mark.postgres
def test_the_text_probe_costs_the_same_at_1100_and_2200_similar_incidents_in_the_window(settings):
    settings.RECURRENCE_THRESHOLD = 3
    first = incident_in(Incident.State.CLASSIFIED, title="Checkout 5xx over 5 % on lb1")
    costs = []
    for more in (1100, 1100):
        # Similar titles in other categories: the category probe does not decide, the text probe does.
        _copies(first, more, category=None)
        # Proposed already (the key of the cluster's oldest), so each check probes and stops there.
        oldest = problems.similar_text_cluster(first)[0]
        Problem.objects.get_or_create(
            proposal_key=f"recurrence:text:{oldest.pk}", defaults={"title": "taken"}
        )
        fresh = Incident.objects.select_related("category__default_team", "team").get(pk=first.pk)
        costs.append(_probe_cost(lambda fresh=fresh: problems.check_recurrence(fresh)))
    # the category probe, the text probe, the proposal refused by its key (savepoint, insert, rollback, release)
    assert costs[0][0] == costs[1][0] == 6
    # Both windows hold more than RECURRENCE_SCAN_LIMIT similar incidents: the scans read as many rows.
    assert costs[0][1] == costs[1][1] <= 2 * problems.RECURRENCE_SCAN_LIMIT
