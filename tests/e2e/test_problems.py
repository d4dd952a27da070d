"""In a real browser: a responder works a problem record; a reporter answers the survey from the closing mail."""

from __future__ import annotations

import re

from django.core import mail
from playwright.sync_api import Browser, Page, expect

from escalation.delivery import deliver
from escalation.models import Notification
from incidents import problems
from incidents.models import Incident, Membership, Problem
from tests.factories import TeamFactory, incident_in

from .conftest import e2e, fresh_user, sign_in

pytestmark = e2e


def test_problem_record_and_satisfaction_survey(
    live_server, page: Page, browser: Browser, console_errors, shoot
):
    agent = fresh_user("alex", first_name="Alex")
    Membership.objects.create(team=TeamFactory(slug="service-desk"), user=agent)
    incident = incident_in(Incident.State.CLOSED, reporter_email="pat@example.org", title="Mail relay down")
    problem = problems.create_problem(
        actor=agent, title="Mail relay disk fills up", root_cause="Log rotation off", incidents=[incident]
    )
    problems.add_follow_up(
        problem, actor=agent, title="Turn log rotation on", owner=agent, due_date="2026-07-01"
    )

    sign_in(page.context, live_server, agent)
    page.goto(f"{live_server.url}/desk/problems/")
    page.get_by_role("link", name=re.compile("Mail relay disk fills up")).click()
    expect(page.locator("#linked-incidents")).to_contain_text(incident.reference)
    page.get_by_role("button", name="Mark done").click()
    expect(page.locator("#follow-ups s")).to_have_text("Turn log rotation on")
    page.get_by_role("button", name="Resolved").click()
    expect(page.locator("#problem-state")).to_have_text("Resolved")
    shoot(page, "30-problem")

    # the reporter follows the survey link of the closing mail, as delivered through the outbox
    row = Notification.objects.get(incident=incident, event="reporter_closed")
    assert deliver(row.pk) == "sent"
    link = re.search(r"(/survey/[^/\s]+/)\?score=4", mail.outbox[-1].body)
    assert link is not None
    reporter_context = browser.new_context()
    reporter = reporter_context.new_page()
    reporter_errors: list[str] = []
    reporter.on("console", lambda m: reporter_errors.append(m.text) if m.type == "error" else None)
    try:
        reporter.goto(f"{live_server.url}{link.group(1)}?score=4")
        expect(reporter.locator("#score-4")).to_be_checked()
        reporter.get_by_label("Anything you want to tell us? (optional)").fill("Fast, thank you.")
        reporter.get_by_role("button", name="Send my rating").click()
        expect(reporter.locator("#survey-thanks")).to_be_visible()
        shoot(reporter, "31-survey")
    finally:
        reporter_context.close()
    incident.refresh_from_db()
    assert (incident.rating.score, incident.rating.comment) == (4, "Fast, thank you.")
    assert Problem.objects.get(pk=problem.pk).state == "resolved"
    assert console_errors == []
    assert reporter_errors == []
