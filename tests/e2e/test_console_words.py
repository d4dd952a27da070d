"""Issue 13 in a real browser: the queue's live SLA countdowns, the timeline in words, the classify form that
follows the domain and team, problems from the console, and interviews reachable on every screen size.

The screenshots these tests take go to test-results/screenshots/; the README's, under docs/screenshots/, are taken
from the demo data by `make screenshots` (scripts/screenshots.py).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from escalation.engine import sweep
from incidents import lifecycle, services
from incidents.models import Incident, Membership, Problem, Qualification, QualificationHolder
from tests.factories import CategoryFactory, TeamFactory, domain, sla_policy

from .conftest import e2e, fresh_user, sign_in

pytestmark = e2e
S = Incident.State
DOCS = Path(__file__).resolve().parent.parent.parent / "test-results" / "screenshots"
SCREENS = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def doc_shot(page: Page, name: str, *, full_page: bool = False) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=full_page)


def fits(page: Page, width: int) -> None:
    """No sideways scrolling: the document is no wider than the screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _desk():
    it = domain("it_service")
    med = domain("medical")
    desk = TeamFactory(slug="service-desk", name="Service desk", domains=["it_service"])
    network = TeamFactory(slug="network-ops", name="Network operations", tier=2, domains=["it_service"])
    ward = TeamFactory(slug="patient-safety", name="Patient safety", domains=["medical"])
    agent = fresh_user("alex", first_name="Alex", last_name="Agent")
    rosa = fresh_user("rosa", first_name="Rosa", last_name="Ruiz")
    sam = fresh_user("sam", first_name="Sam", last_name="Stone")
    for team, user in ((desk, agent), (desk, rosa), (network, sam), (ward, agent)):
        Membership.objects.create(team=team, user=user)
    clearance = Qualification.objects.create(slug="vpn-admin", name="VPN administration")
    clearance.holders.add(rosa)
    vpn = CategoryFactory(
        slug="vpn", name="VPN", domain=it, default_team=desk, required_qualification=clearance
    )
    mail = CategoryFactory(slug="mail", name="Mail", domain=it, default_team=desk)
    falls = CategoryFactory(slug="falls", name="Patient fall", domain=med, default_team=ward)
    return {"it": it, "med": med, "desk": desk, "network": network, "ward": ward, "agent": agent,
            "rosa": rosa, "sam": sam, "vpn": vpn, "mail": mail, "falls": falls}  # fmt: skip


def test_queue_counts_down_the_sla_and_the_timeline_reads_as_sentences(
    live_server, page: Page, console_errors
):
    d = _desk()
    sla_policy(priority=2, response=30, resolution=240)
    sla_policy(priority=3, response=60, resolution=480)

    def work(title: str, impact: int, urgency: int, category, *, ack: bool = False) -> Incident:
        incident = services.create_incident(title=title, reporter_email="kim@example.org", domain=d["it"])
        incident = lifecycle.classify_incident(
            incident, actor=d["agent"], domain=d["it"], category=category, impact=impact, urgency=urgency,
            team=d["desk"],
        )  # fmt: skip
        return lifecycle.acknowledge_incident(incident, actor=d["agent"]) if ack else incident

    t0 = timezone.now() - dt.timedelta(minutes=50)
    with time_machine.travel(t0, tick=False):
        late = work("Payroll login fails for all users", 2, 1, d["mail"])  # P2: response due in 30 min
        soon = work("Shared drive quota exceeded", 2, 2, d["mail"])  # P3: response due in 60 min
        calm = work("Mail delivery delayed for finance", 2, 2, d["mail"], ack=True)
    sweep(now=t0 + dt.timedelta(minutes=46))
    with time_machine.travel(t0 + dt.timedelta(minutes=47), tick=False):
        lifecycle.assign_incident(calm, actor=d["agent"], assignee=d["rosa"], note="Rosa knows the VPN")
        lifecycle.escalate_incident(calm, actor=d["agent"], team=d["network"], reason="Core router")
    sign_in(page.context, live_server, d["agent"])
    page.set_viewport_size(SCREENS["laptop"])
    # The page's clock is Playwright's (it starts at the real present): the countdown is driven forward below.
    page.clock.install()
    page.goto(f"{live_server.url}/desk/?sort=deadline&open=1")
    rows = page.locator(".queue-row")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-ref") for i in range(3)] == [
        late.reference, soon.reference, calm.reference,
    ]  # fmt: skip
    late_clock = page.locator(f'.queue-row[data-ref="{late.reference}"] .sla-countdown')
    expect(late_clock).to_have_class(re.compile("sla-breached"))
    expect(late_clock).to_contain_text("breached")
    expect(late_clock).to_contain_text("ago")
    expect(page.locator(f'.queue-row[data-ref="{soon.reference}"] .sla-countdown')).to_contain_text("left")
    expect(page.locator(f'.queue-row[data-ref="{soon.reference}"] .sla-countdown')).to_have_class(
        re.compile("sla-warning")
    )
    expect(page.locator("#queue-table")).not_to_contain_text("R: ")
    expect(page.locator("#queue-table thead")).to_contain_text("Updated")
    fits(page, 1366)
    doc_shot(page, "console-queue-countdowns")
    # Live, with the page's clock paused and driven by hand: one second after the minute boundary of the
    # deadline the words read one minute less (the old 15-second beat would mostly still show the old minute),
    # and once the deadline passes the clock turns red.
    soon_clock = page.locator(f'.queue-row[data-ref="{soon.reference}"] .sla-countdown')
    page.clock.pause_at((page.evaluate("Date.now()") + 500) / 1000)  # Python: seconds
    left_ms = soon_clock.evaluate("el => Date.parse(el.dataset.due) - Date.now()")
    whole_minutes = int(left_ms // 60_000)
    assert whole_minutes >= 2
    # Read at once, not with expect(): its retries give the page time to catch up, which is what is tested.
    page.clock.run_for(int(left_ms % 60_000) + 1000)
    assert soon_clock.locator(".sla-left").inner_text() == f"{whole_minutes - 1} m left"
    page.clock.run_for(whole_minutes * 60_000)
    assert re.fullmatch(r"breached (<1|\d+) m ago", soon_clock.locator(".sla-left").inner_text())
    assert "sla-breached" in (soon_clock.get_attribute("class") or "")

    page.goto(f"{live_server.url}/desk/incidents/{calm.reference}/")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Response clock started: due")
    expect(timeline).to_contain_text("Assigned to Rosa Ruiz (was Alex Agent)")
    expect(timeline).to_contain_text("Escalated to Network operations (level 1)")
    expect(timeline).to_contain_text("Acknowledged: Alex Agent is working on it")
    expect(timeline).not_to_contain_text("network-ops")
    fits(page, 1366)
    page.locator("#timeline-section").scroll_into_view_if_needed()
    doc_shot(page, "console-timeline-in-words", full_page=True)
    assert console_errors == []


def test_classify_follows_domain_and_team_and_shows_the_priority(live_server, page: Page, console_errors):
    d = _desk()
    incident = services.create_incident(
        title="Tunnel drops every ten minutes", reporter_email="kim@example.org"
    )
    sign_in(page.context, live_server, d["agent"])
    page.set_viewport_size(SCREENS["laptop"])
    page.goto(f"{live_server.url}/desk/incidents/{incident.reference}/")
    page.locator("#action-classify").click()
    form = page.locator("form[data-classify]")
    form.locator("[name='classify-domain']").select_option(str(d["it"].pk))
    category = form.locator("[name='classify-category']")
    visible = category.locator("option:not([hidden])")
    texts = visible.all_text_contents()
    assert any("VPN" in t for t in texts)
    assert not any("Patient fall" in t for t in texts)
    expect(form.locator(".classify-harm")).to_be_hidden()
    category.select_option(str(d["vpn"].pk))
    form.locator("[name='classify-team']").select_option(str(d["desk"].pk))
    assignees = form.locator("[name='classify-assignee'] option:not([hidden])").all_text_contents()
    assert assignees[0] == "Nobody yet"
    assert assignees[1].startswith("Rosa Ruiz")
    assert "qualified" in assignees[1]
    assert not any("Sam" in a for a in assignees)  # not a member of the service desk
    form.locator("[name='classify-impact']").select_option("1")
    form.locator("[name='classify-urgency']").select_option("2")
    expect(page.locator("#classify-priority-value")).to_have_text("P2")
    form.locator("[name='classify-urgency']").select_option("1")
    expect(page.locator("#classify-priority-value")).to_have_text("P1")
    doc_shot(page, "console-classify", full_page=True)
    form.locator("[name='classify-domain']").select_option(str(d["med"].pk))
    expect(form.locator(".classify-harm")).to_be_visible()
    assert not any("VPN" in t for t in category.locator("option:not([hidden])").all_text_contents())
    form.locator("[name='classify-domain']").select_option(str(d["it"].pk))
    category.select_option(str(d["vpn"].pk))
    form.locator("[name='classify-team']").select_option(str(d["desk"].pk))
    form.locator("[name='classify-assignee']").select_option(str(d["rosa"].pk))
    # Alex gets the VPN licence too, so that the handover below goes to someone the category allows.
    QualificationHolder.objects.create(qualification=d["vpn"].required_qualification, user=d["agent"])
    form.get_by_role("button", name="Classify").click()
    expect(page.locator(".alert-success")).to_contain_text(f"{incident.reference}: classified.")
    incident.refresh_from_db()
    assert (incident.priority, incident.assignee, incident.category) == (1, d["rosa"], d["vpn"])
    # Assign without a state change, from the incident page.
    page.locator("#action-assign").click()
    page.locator("[name='assign-assignee']").select_option(str(d["agent"].pk))
    page.locator("details[data-action='assign']").get_by_role("button", name="Assign").click()
    expect(page.locator(".alert-success")).to_contain_text(f"{incident.reference}: assigned.")
    incident.refresh_from_db()
    assert (incident.state, incident.assignee) == (S.CLASSIFIED, d["agent"])
    assert console_errors == []


def test_problems_are_opened_linked_and_followed_up_from_the_console(live_server, page: Page, console_errors):
    d = _desk()
    first = services.create_incident(title="VPN drops at 10:00", reporter_email="kim@example.org")
    second = services.create_incident(title="VPN drops again", reporter_email="lee@example.org")
    sign_in(page.context, live_server, d["agent"])
    page.set_viewport_size(SCREENS["laptop"])
    page.goto(f"{live_server.url}/desk/incidents/{first.reference}/")
    page.locator("#problem-create summary").click()
    page.locator("#problem-title-input").fill("VPN concentrator drops tunnels")
    page.get_by_role("button", name="Open the problem").click()
    problem = Problem.objects.get()
    expect(page.locator(".alert-success")).to_contain_text(
        f"Opened {problem.reference} from {first.reference}"
    )
    page.locator("#link-incident").fill(second.reference)
    page.get_by_role("button", name="Link an incident").click()
    expect(page.locator("#linked-incidents")).to_contain_text(second.reference)
    page.locator("#follow-up-add summary").click()
    page.get_by_label("What is to be done").fill("Replace the concentrator firmware")
    page.get_by_label("Owner").select_option(str(d["agent"].pk))
    page.get_by_label("Due").fill("2026-12-24")
    page.locator("#follow-up-add").get_by_role("button", name="Add").click()
    expect(page.locator("#follow-ups")).to_contain_text("Replace the concentrator firmware")
    page.locator("#problem-edit summary").click()
    page.locator("#root-cause").fill("Firmware 4.2 leaks sessions")
    page.locator("#workaround").fill("Restart the concentrator nightly")
    page.locator("#problem-edit").get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Known error").click()
    expect(page.locator("#problem-state")).to_have_text("Known error")
    fits(page, 1366)
    doc_shot(page, "console-problems", full_page=True)
    page.goto(f"{live_server.url}/desk/incidents/{second.reference}/")
    expect(page.locator("#problem-panel")).to_contain_text(problem.reference)
    page.locator("#problem-unlink").click()
    expect(page.locator(".alert-success")).to_contain_text("no longer linked")
    assert console_errors == []


@pytest.mark.parametrize("screen", list(SCREENS))
def test_interviews_are_reachable_by_role_read_only_when_closed_and_fit_the_screen(
    live_server, browser: Browser, screen
):
    import importlib

    from django.apps import apps

    from tests.interviews.helpers import interviewer, lead_of, session_in

    # A flush by an earlier live-server test removes the rubric a data migration seeds (tests/interviews/conftest.py).
    importlib.import_module("interviews.migrations.0002_default_rubric").create(apps, None)
    open_session = session_in("gather")
    closed = session_in("closed")
    manager = interviewer(username="morgan", first_name="Morgan", last_name="Manager")
    context = browser.new_context(viewport=SCREENS[screen])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(context, live_server, manager)
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/interviews/")  # the landing page of a manager
    if screen == "phone":
        page.locator(".navbar-toggler").click()
    expect(page.locator("#nav-interviews")).to_be_visible()
    expect(page.locator("h1")).to_have_text("Interview sessions")
    fits(page, SCREENS[screen]["width"])
    table = page.locator(".table-responsive")
    assert table.evaluate("t => t.scrollWidth <= t.clientWidth")  # no sideways scrolling inside the table
    doc_shot(page, f"interviews-landing-{screen}", full_page=True)
    page.goto(f"{live_server.url}/interviews/sessions/{open_session.pk}/")
    page.wait_for_timeout(500)
    fits(page, SCREENS[screen]["width"])
    context.close()

    # The lead of the closed session sees its console read-only: every control disabled.
    context = browser.new_context(viewport=SCREENS[screen])
    page = context.new_page()
    lead = lead_of(closed)
    sign_in(context, live_server, lead)
    page.goto(f"{live_server.url}/interviews/sessions/{closed.pk}/")
    expect(page.locator("#iv-read-only")).to_be_visible()
    page.wait_for_timeout(500)  # the console's script has read the session back
    enabled = page.locator("fieldset.iv-body button:enabled, fieldset.iv-body input:enabled, "
                           "fieldset.iv-body select:enabled, fieldset.iv-body textarea:enabled")  # fmt: skip
    expect(enabled).to_have_count(0)
    fits(page, SCREENS[screen]["width"])
    context.close()
    assert errors == []
    assert Permission.objects.filter(codename="view_session").exists()
