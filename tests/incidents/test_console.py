"""The queue page's precomputed parts: rows, choices and the capped attention counts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from escalation.engine import sweep
from incidents import console, lifecycle
from incidents.models import Incident, Membership
from incidents.selectors import incident_list
from tests.factories import (
    CategoryFactory,
    TeamFactory,
    UserFactory,
    agent,
    classified,
    domain,
    incident_in,
    report,
    sla_policy,
)

pytestmark = pytest.mark.django_db
S = Incident.State


def rows_for(user, *incidents: Incident) -> list[str]:
    qs = incident_list(user).filter(pk__in=[i.pk for i in incidents]).order_by("-id")
    return [str(row) for row in console.queue_rows(console.queue_page(qs, 50))]


def test_a_row_shows_the_incident_and_escapes_what_people_typed():
    viewer = agent(TeamFactory(domains=["it_service"]))
    incident = report(
        title='<img src=x onerror="alert(1)"> & co', domain=domain("it_service"), confidential=True
    )
    (row,) = rows_for(viewer, incident)
    assert f'data-ref="{incident.reference}"' in row
    assert f'href="/desk/incidents/{incident.reference}/"' in row
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co" in row
    assert "<img" not in row
    assert 'data-state="received"' in row
    assert "No priority" in row  # not prioritised yet
    assert "P-" not in row
    assert "unassigned" in row
    assert "confidential" in row
    assert "<1 min ago" in row


def test_a_worked_row_shows_team_full_name_category_and_the_running_clock_as_a_countdown():
    incident = incident_in(S.RESPONDING)
    incident.assignee.first_name, incident.assignee.last_name = "Rosa", "Ruiz"
    incident.assignee.save()
    now = timezone.now()
    due = now + dt.timedelta(hours=2, minutes=10, seconds=30)
    Incident.objects.filter(pk=incident.pk).update(
        sla_response="met", sla_resolution="warning", resolution_due_at=due
    )
    qs = incident_list(incident.assignee).filter(pk=incident.pk)
    (row,) = [str(r) for r in console.queue_rows(console.queue_page(qs, 50), now=now)]
    assert incident.team.name in row
    assert "Rosa Ruiz" in row
    assert incident.category.path in row
    assert 'class="sla sla-warning sla-countdown"' in row
    assert f'data-due="{timezone.localtime(due).isoformat()}"' in row
    assert 'Resolution</span> <span class="sla-left">2 h 10 m left' in row
    assert "R: " not in row
    assert "F: " not in row
    assert 'class="badge prio-3"' in row


def test_a_breached_clock_says_how_long_ago_and_a_paused_one_says_so():
    incident = incident_in(S.CLASSIFIED)
    now = timezone.now()
    Incident.objects.filter(pk=incident.pk).update(
        sla_response="breached", response_due_at=now - dt.timedelta(minutes=35, seconds=5)
    )
    qs = incident_list(incident.assignee or agent(incident.team)).filter(pk=incident.pk)
    (row,) = [str(r) for r in console.queue_rows(console.queue_page(qs, 50), now=now)]
    assert "breached 35 m ago" in row
    assert "sla-breached" in row
    Incident.objects.filter(pk=incident.pk).update(sla_response="paused")
    (row,) = [str(r) for r in console.queue_rows(console.queue_page(qs, 50), now=now)]
    assert "Response paused (on hold)" in row
    assert "data-due" not in row


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "<1 m"),
        (59, "<1 m"),
        (60, "1 m"),
        (7800, "2 h 10 m"),
        (86400 * 2 + 3 * 3600, "2 d 3 h"),
        (-2100, "35 m"),
    ],
)
def test_countdown_durations_are_short(seconds, shown):
    assert console.duration(seconds) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "<1 min"), (59, "<1 min"), (60, "1 min"), (7200, "2 h"), (86400 * 3, "3 d"), (86400 * 15, "2 w")],
)
def test_age_is_short(seconds, shown):
    assert console.age(seconds) == shown


def test_capped_counts_stop_at_the_cap_in_one_query(django_assert_num_queries):
    for i in range(4):
        report(title=f"r{i}")
    with django_assert_num_queries(1):
        counts = console.capped_counts(
            {
                "all": Incident.objects.all(),
                "none": Incident.objects.none(),
                "vpn": Incident.objects.filter(title="r1"),
            },
            cap=3,
        )
    assert counts == {"all": 3, "none": 0, "vpn": 1}


def test_attention_counts_follow_the_engine_and_visibility():
    sla_policy(priority=1, response=20, resolution=240)
    t0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(t0, tick=False):
        warned, actor = classified()
        breached, _ = classified(team=warned.team)
        secret, _ = classified(domain_slug="security")
    report(title="to classify", domain=domain("it_service"))
    report(title="hidden", domain=domain("security"))
    sweep(now=t0 + dt.timedelta(minutes=16))  # 80 % of the response target: warning
    Incident.objects.filter(pk=breached.pk).update(sla_response="breached")  # as a later sweep would
    closed = incident_in(S.CLOSED)
    Incident.objects.filter(pk=closed.pk).update(sla_resolution="breached")  # closed: not attention
    counts = console.attention_counts(actor, cap=100)
    assert counts == {"unclassified": 1, "breached": 1, "warning": 1}
    Incident.objects.filter(pk=secret.pk).update(sla_response="breached")
    assert console.attention_counts(actor, cap=100)["breached"] == 1  # the security one is not visible


def test_choices_come_from_the_small_tables_once_per_person(django_assert_num_queries):
    ops, desk = TeamFactory(name="Ops"), TeamFactory(name="Desk")
    both = agent(ops, username="both", first_name="Bo", last_name="Th")
    Membership.objects.create(team=desk, user=both)
    agent(desk, username="gone", is_active=False)
    UserFactory(username="outsider")
    CategoryFactory(slug="vpn")
    with django_assert_num_queries(4):
        choices = console.queue_choices()
    assert choices.assignees == [(both.pk, "both", "Bo Th (both)")]
    assert {name for _, _, name in choices.teams} >= {"Ops", "Desk"}
    assert any("(vpn)" in label or "/vpn" in label for _, label in choices.categories)
    assert {slug for _, slug, _ in choices.domains} >= {"it_service", "security", "medical"}


def test_a_reclassified_incident_shows_its_new_priority():
    incident = incident_in(S.CLASSIFIED)
    lifecycle.classify_incident(
        incident,
        actor=agent(incident.team),
        domain=incident.domain,
        category=incident.category,
        impact=1,
        urgency=1,
        team=incident.team,
    )
    (row,) = rows_for(agent(incident.team), incident)
    assert 'class="badge prio-1"' in row
    assert timezone.localtime(incident.received_at).strftime("%-d %b %Y") in row


@pytest.mark.postgres
def test_queue_indexes_serve_the_priority_keyset_and_the_received_count():
    """The row comparison of the priority cursor and the capped count of received incidents are index
    ranges (with sequential scans off, since a test table is too small for the planner to care)."""
    from incidents.views.desk_queue import _keyset

    user = agent(TeamFactory(domains=["it_service"]))
    report(title="x")
    qs = incident_list(user).order_by(*console_sort())
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        plans = []
        for query in (
            _keyset(qs, "priority", "3.10").values("pk")[:51],
            _keyset(qs, "priority", "n.10", before=True).reverse().values("pk")[:51],
            incident_list(user).filter(state=S.RECEIVED).order_by().values("pk")[:100],
        ):
            sql, params = query.query.sql_with_params()
            cursor.execute("EXPLAIN " + sql, params)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    assert "incident_priority_key_idx" in plans[0]
    # the cursor bounds the index scan (an Index Cond), rather than filtering every row before it
    assert re.search(r"Index Cond: \(ROW\(COALESCE\(.*priority.*, 6\), id\) > ROW\(3, 10\)\)", plans[0])
    assert "Index Scan Backward using incident_priority_key_idx" in plans[1]
    assert "incident_received_idx" in plans[2]


def console_sort():
    from incidents.views.desk_queue import SORTS

    return SORTS["priority"][1]


@pytest.mark.postgres
@pytest.mark.parametrize("sort", ["newest", "oldest", "priority", "deadline"])
def test_a_first_page_from_the_remembered_statement_is_the_pages_rows(sort):
    """queue_page with a memo_key runs the statement compiled once, without the ORM: the rows must be the very
    dicts values() makes (types, time zones, the deadline key), the first time and when remembered."""
    from incidents.views.desk_queue import SORTS, _open_and_sorted

    viewer = agent(TeamFactory(domains=["it_service"]))
    for state in (S.RECEIVED, S.RESPONDING, S.ON_HOLD, S.RESOLVED):
        incident_in(state)
    report(title="No domain yet")
    params = {"open": "1", "sort": sort}

    def page(memo_key):
        from django.http import QueryDict

        qs = _open_and_sorted(incident_list(viewer), QueryDict("open=1"), sort)
        return console.queue_page(qs, 51, memo_key=memo_key)

    expected = page(None)
    assert len(expected) == 5
    assert sort in SORTS
    key = ("test", viewer.pk, *params.values())
    assert page(key) == expected  # compiled now
    assert page(key) == expected  # remembered
    incident_in(S.ESCALATED)  # a new row shows: only the statement is remembered, never its rows
    assert len(page(key)) == 6 == len(page(None))


def test_options_mark_the_chosen_values_and_escape_the_labels():
    html = console.options_html([("a", "<b>A & B</b>"), (2, "Two"), ("c", "C")], ["2", "c"])
    assert html == (
        '<option value="a">&lt;b&gt;A &amp; B&lt;/b&gt;</option>'
        '<option value="2" selected>Two</option>'
        '<option value="c" selected>C</option>'
    )
