"""An agent and a reporter in real browsers: the whole life of an incident, conflicts, XSS and shortcuts."""

from __future__ import annotations

import datetime as dt
import re

import time_machine
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from escalation.engine import sweep
from escalation.models import Schedule, ScheduleMember, ScheduleOverride
from incidents import lifecycle, services
from incidents.models import Incident, Membership
from tests.factories import CategoryFactory, TeamFactory, domain, incident_in, sla_policy

from .conftest import e2e, fresh_user, sign_in

pytestmark = e2e
S = Incident.State


def _desk():
    desk = TeamFactory(slug="service-desk", name="Service desk", domains=["it_service"])
    network = TeamFactory(slug="network-ops", name="Network operations", tier=2, domains=["it_service"])
    agent = fresh_user("alex", first_name="Alex", last_name="Agent")
    Membership.objects.create(team=desk, user=agent)
    Membership.objects.create(team=network, user=fresh_user("sam", first_name="Sam"))
    CategoryFactory(slug="vpn", name="VPN", default_team=desk)
    return desk, network, agent


def test_incident_from_report_to_closed_report(
    live_server, page: Page, browser: Browser, console_errors, shoot
):
    _desk()
    incident = services.create_incident(
        title="VPN drops every ten minutes", description="Since **9:00**.", reporter_email="pat@example.org"
    )
    services.create_incident(title="Printer jams on floor 2", reporter_email="kim@example.org")
    ref = incident.reference

    # the agent signs in through the form and lands on the queue
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alex")
    page.get_by_label("Password").fill("pw-e2e-2026-long")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    expect(page.locator("#attention-unclassified .attention-count")).to_have_text("2")
    shoot(page, "10-queue")

    page.get_by_label("Search").fill("VPN")
    page.get_by_label("Search").press("Enter")
    expect(page.locator(".queue-row")).to_have_count(1)
    page.get_by_role("link", name=f"{ref} VPN drops every ten minutes").click()
    expect(page.locator("#incident-title")).to_have_text("VPN drops every ten minutes")

    # classify: exactly the inputs of SPEC section 2
    page.locator("#action-classify").click()
    form = page.locator('details[data-action="classify"]')
    form.get_by_label("Domain").select_option(label="IT service")
    form.get_by_label("Category").select_option(label="VPN (vpn)")
    form.get_by_role("combobox", name=re.compile(r"^Impact")).select_option(
        label="A department or many users"
    )
    form.get_by_role("combobox", name=re.compile(r"^Urgency")).select_option(label="High")
    form.get_by_label("Team").select_option(label="Service desk")
    shoot(page, "11-classify-form")
    form.get_by_role("button", name="Classify").click()
    expect(page.get_by_text(f"{ref}: classified.")).to_be_visible()
    expect(page.locator("header .state-badge")).to_have_text("Classified")
    expect(page.locator("header [title='Priority 2']")).to_have_text("P2")

    page.locator("#action-acknowledge").click()
    expect(page.locator("header .state-badge")).to_have_text("Responding")

    page.locator("#comment-form textarea").fill("Vendor ticket **4711** opened (internal)")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#comment-preview strong")).to_have_text("4711")
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator(".timeline-internal.kind-comment")).to_contain_text("Vendor ticket 4711")
    page.locator("#comment-form textarea").fill("We are restarting the VPN concentrator.")
    page.get_by_label("Public reply (the reporter sees it)").check()
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator(".timeline-public.kind-comment")).to_contain_text("restarting the VPN concentrator")

    page.locator("#action-escalate").click()
    form = page.locator('details[data-action="escalate"]')
    form.get_by_label("To team").select_option(label="Network operations")
    form.get_by_label("Reason").fill("Needs the network team")
    form.get_by_role("button", name="Escalate").click()
    expect(page.locator("header .state-badge")).to_have_text("Escalated")

    page.locator("#action-resolve").click()
    form = page.locator('details[data-action="resolve"]')
    form.get_by_label("Resolution summary").fill("Concentrator firmware restarted; tunnels stable.")
    form.get_by_role("button", name="Resolve").click()
    expect(page.locator("header .state-badge")).to_have_text("Resolved")
    shoot(page, "12-incident-resolved")

    # the reporter, with only the link: the public reply, never the internal note; then confirms
    reporter_context = browser.new_context()
    reporter = reporter_context.new_page()
    reporter_errors: list[str] = []
    reporter.on("console", lambda m: reporter_errors.append(m.text) if m.type == "error" else None)
    try:
        reporter.goto(f"{live_server.url}/track/{incident.tracking_token}/")
        expect(reporter.locator("#timeline")).to_contain_text("restarting the VPN concentrator")
        expect(reporter.locator("body")).not_to_contain_text("4711")
        expect(reporter.locator(".state-badge")).to_have_text("Fixed - please confirm")
        shoot(reporter, "13-reporter-resolved")
        reporter.get_by_role("button", name="This fixed it").click()
        expect(reporter.locator("#confirmed-note")).to_be_visible()

        page.reload()
        expect(page.locator("#timeline .kind-reporter_confirmed")).to_contain_text(
            "The reporter confirmed the fix"
        )
        page.locator("#action-close").click()
        form = page.locator('details[data-action="close"]')
        form.get_by_label("Cause").fill("A memory leak in the concentrator firmware.")
        form.get_by_label("Measures taken").fill("Firmware upgraded to 9.2; memory alarm added.")
        form.get_by_label("Resolution code").select_option(label="Fixed")
        form.get_by_role("button", name="Close").click()
        expect(page.locator("header .state-badge")).to_have_text("Closed")
        expect(page.get_by_text("No action is possible")).to_be_visible()

        reporter.reload()
        report = reporter.locator("#incident-report")
        expect(report).to_contain_text("A memory leak in the concentrator firmware.")
        expect(report).to_contain_text("Firmware upgraded to 9.2")
        reporter.get_by_role("button", name="5 of 5").click()
        expect(reporter.locator("#rating-note")).to_have_text("You rated this 5 of 5. Thank you.")
        shoot(reporter, "14-reporter-report")
    finally:
        reporter_context.close()
    incident.refresh_from_db()
    assert incident.state == S.CLOSED
    assert incident.escalation_level == 1
    assert incident.rating.score == 5
    assert console_errors == []
    assert reporter_errors == []


def test_refused_action_and_stale_edit_show_clear_messages(live_server, page: Page, browser: Browser, shoot):
    _, _, agent = _desk()
    incident = incident_in(S.RESOLVED, reporter_email="pat@example.org")
    sign_in(page.context, live_server, agent)

    # the reporter's page is open on "resolved" while the desk closes the incident
    reporter_context = browser.new_context()
    try:
        reporter = reporter_context.new_page()
        reporter.goto(f"{live_server.url}/track/{incident.tracking_token}/")
        closer = Membership.objects.filter(team=incident.team).first().user
        lifecycle.close_incident(incident, actor=closer, cause="c", measures="m", resolution_code="fixed")
        reporter.get_by_text("Still broken").click()
        reporter.get_by_label("What is still wrong").fill("It dropped again")
        reporter.get_by_role("button", name="Reopen the incident").click()
        expect(reporter.locator("#action-error")).to_have_text(
            "Cannot reopen an incident that is closed. No action is allowed in this state."
        )
    finally:
        reporter_context.close()

    # two agents edit the same incident: the second sees a conflict with a reload, and nothing is lost
    other = services.create_incident(title="Mail delayed", reporter_email="kim@example.org")
    page.goto(f"{live_server.url}/desk/incidents/{other.reference}/")
    services.edit_incident(other, actor=agent, version=other.version, title="Mail delayed by an hour")
    page.get_by_text("Edit details").click()
    page.locator("#edit").get_by_label("Title").fill("Mail delayed (mine)")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#conflict")).to_contain_text("Someone else changed this incident")
    expect(page.locator("#conflict")).to_contain_text("you sent version 1, it is now at version 2")
    shoot(page, "15-conflict")
    page.locator("#conflict").get_by_role("link", name="Reload").click()
    expect(page.locator("#incident-title")).to_have_text("Mail delayed by an hour")


def test_stored_xss_never_runs_and_csp_is_sent(live_server, page: Page, console_errors):
    _, _, agent = _desk()
    payload = '<script>alert("t")</script><img src=x onerror="alert(\'i\')">'
    incident = services.create_incident(
        title=f"XSS {payload}", description=f"**d** {payload}", reporter_email="x@example.org"
    )
    services.add_comment(incident, author=agent, body=f"c {payload}", public=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page.context, live_server, agent)
    for path in ("/desk/", f"/desk/incidents/{incident.reference}/", f"/track/{incident.tracking_token}/"):
        response = page.goto(live_server.url + path)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        expect(page.locator("body")).to_contain_text("XSS")
        page.wait_for_timeout(200)
    assert dialogs == []
    # the blocked <img onerror> is the only console noise allowed: a broken image, never a script
    assert not [e for e in console_errors if "Content Security Policy" in e or "alert" in e]


def test_keyboard_shortcuts(live_server, page: Page, console_errors, shoot, monkeypatch):
    desk, _, agent = _desk()
    first = services.create_incident(title="First", reporter_email="a@example.org")
    second = services.create_incident(title="Second", reporter_email="b@example.org")
    category = CategoryFactory(slug="vpn")
    lifecycle.classify_incident(
        first, actor=agent, domain=domain("it_service"), category=category, impact=3, urgency=3, team=desk
    )
    sign_in(page.context, live_server, agent)
    page.goto(f"{live_server.url}/desk/?sort=newest")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    shoot(page, "16-shortcuts-help", full_page=False)
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.locator("#q").press("Escape")
    page.keyboard.press("j")
    expect(page.locator(f'.queue-row[data-ref="{second.reference}"]')).to_have_class("queue-row is-selected")
    page.keyboard.press("j")
    expect(page.locator(f'.queue-row[data-ref="{first.reference}"]')).to_have_class("queue-row is-selected")
    page.keyboard.press("k")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.locator("#incident-title")).to_have_text("First")
    page.keyboard.press("c")
    expect(page.locator("#comment-form textarea")).to_be_focused()
    page.locator("#comment-form textarea").press("Escape")
    page.keyboard.press("a")
    expect(page.locator("header .state-badge")).to_have_text("Responding")
    page.keyboard.press("u")
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()

    # n / p page through the queue (one incident a page here), keeping the sort
    monkeypatch.setattr("incidents.views.desk_queue.PAGE_SIZE", 1)
    page.goto(f"{live_server.url}/desk/?sort=oldest")
    expect(page.locator(".queue-row")).to_have_attribute("data-ref", first.reference)
    page.keyboard.press("n")
    expect(page.locator(".queue-row")).to_have_attribute("data-ref", second.reference)
    assert "sort=oldest" in page.url
    page.keyboard.press("p")
    expect(page.locator(".queue-row")).to_have_attribute("data-ref", first.reference)
    expect(page.locator("#previous-page")).to_have_count(0)
    assert console_errors == []


def test_queue_on_a_phone(live_server, browser: Browser, shoot):
    _, _, agent = _desk()
    for i in range(3):
        services.create_incident(
            title=f"Incident number {i} with a long title", reporter_email="a@example.org"
        )
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        sign_in(context, live_server, agent)
        page = context.new_page()
        page.goto(f"{live_server.url}/desk/")
        expect(page.locator(".queue-row")).to_have_count(3)
        expect(page.get_by_label("Search")).to_be_hidden()  # filters fold away on a phone
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shoot(page, "17-queue-phone")
        page.get_by_role("button", name="Filters and search").click()
        page.get_by_label("Search").fill("number 1")
        page.get_by_label("Search").press("Enter")
        expect(page.locator(".queue-row")).to_have_count(1)
        expect(page.get_by_label("Search")).to_be_visible()  # still unfolded: a filter is on
        page.locator(".queue-row .incident-link").click()
        expect(page.locator("#incident-title")).to_have_text("Incident number 1 with a long title")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shoot(page, "17b-incident-phone")
    finally:
        context.close()


def test_busy_queue_and_a_team_page_with_on_call(live_server, page: Page, console_errors, shoot):
    """The queue with work in every state and SLA clocks from the engine (the README's screenshot), then
    the team page: who is on call now and next, an override marked."""
    desk, network, agent = _desk()
    sla_policy(priority=2, response=30, resolution=240)
    sla_policy(priority=3, response=60, resolution=480)
    it = domain("it_service")
    mail, storage = CategoryFactory(slug="mail", name="Mail"), CategoryFactory(slug="storage", name="Storage")
    vpn = CategoryFactory(slug="vpn")  # made by _desk()

    def work(title: str, state: str, category, impact: int, urgency: int) -> Incident:
        incident = services.create_incident(title=title, reporter_email="kim@example.org", domain=it)
        incident = lifecycle.classify_incident(
            incident, actor=agent, domain=it, category=category, impact=impact, urgency=urgency, team=desk
        )
        if state in (S.RESPONDING, S.ON_HOLD):
            incident = lifecycle.acknowledge_incident(incident, actor=agent)
        if state == S.ON_HOLD:
            incident = lifecycle.hold_incident(incident, actor=agent, reason="awaiting_vendor")
        if state == S.ESCALATED:
            incident = lifecycle.escalate_incident(incident, actor=agent, team=network, reason="Core network")
        return incident

    t0 = timezone.now() - dt.timedelta(minutes=50)
    with time_machine.travel(t0, tick=False):
        work("Mail delivery delayed for the finance department", S.RESPONDING, mail, 2, 2)
        work("VPN concentrator in building B drops tunnels", S.ESCALATED, vpn, 2, 1)
        work("Shared drive quota exceeded", S.CLASSIFIED, storage, 2, 2)
        work("Laptop docking station not detected", S.ON_HOLD, storage, 3, 2)
        urgent = work("Payroll system login fails for all users", S.CLASSIFIED, mail, 1, 2)
    sweep(
        now=t0 + dt.timedelta(minutes=46)
    )  # P2 response (30 min) breached; P3 (60 min, warns at 45) warning
    services.create_incident(title="Printer on floor 2 shows paper jam", reporter_email="pat@example.org")
    services.create_incident(title="Suspicious e-mail asking for passwords", reporter_email="lee@example.org")
    sam = Membership.objects.get(team=network).user
    on_call = Schedule.objects.create(
        team=desk, slug="desk-primary", name="Desk primary", start=timezone.now() - dt.timedelta(hours=2)
    )
    ScheduleMember.objects.create(schedule=on_call, user=agent, position=0)
    ScheduleMember.objects.create(schedule=on_call, user=sam, position=1)
    ScheduleOverride.objects.create(
        schedule=on_call,
        user=sam,
        start=timezone.now() - dt.timedelta(hours=1),
        end=timezone.now() + dt.timedelta(hours=3),
        reason=ScheduleOverride.Reason.SWAP,
    )
    sign_in(page.context, live_server, agent)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/desk/")
    expect(page.locator(".queue-row")).to_have_count(7)
    expect(page.locator("#attention-breached .attention-count")).not_to_have_text("0")
    expect(page.locator("#attention-warning .attention-count")).not_to_have_text("0")
    expect(page.locator(f'.queue-row[data-ref="{urgent.reference}"] .sla-breached')).to_contain_text(
        "breached"
    )
    shoot(page, "18-queue-busy", full_page=False)
    page.locator("#attention-breached").click()
    expect(page.locator("#f-sla")).to_have_value("breached")

    page.get_by_role("link", name="Teams").click()
    page.get_by_role("link", name=re.compile("Service desk")).click()
    now = page.locator('[data-schedule="desk-primary"] .oncall-now')
    expect(now).to_contain_text("Sam")
    expect(now).to_contain_text("override: swap")
    expect(page.locator('[data-schedule="desk-primary"] .oncall-next')).to_contain_text("Alex Agent")
    shoot(page, "19-team-oncall")
    assert console_errors == []


def test_the_team_files_a_report_on_the_targets_card_and_sees_the_target_met(
    live_server, page: Page, console_errors, shoot
):
    """A medical incident with a 1 h safety report: the nurse files it from the card and sees it met."""
    from escalation.models import ReportFiling, SlaTarget

    ward = TeamFactory(slug="ward-3", name="Ward 3", domains=["medical"])
    nurse = fresh_user("nina", first_name="Nina", last_name="Nurse")
    Membership.objects.create(team=ward, user=nurse)
    policy = sla_policy(domain_slug="medical", response=30, resolution=24 * 60)
    SlaTarget.objects.create(
        policy=policy, slug="report-1h", name="Safety report within 1 h", minutes=60, harm_levels=["3b"]
    )
    incident = services.create_incident(title="Wrong dose given", reporter=nurse, domain=domain("medical"))
    lifecycle.classify_incident(
        incident, actor=nurse, domain=domain("medical"), category=CategoryFactory(domain=domain("medical")),
        impact=1, urgency=1, team=ward, harm_level="3b",
    )  # fmt: skip
    sign_in(page.context, live_server, nurse)

    page.goto(f"{live_server.url}/desk/incidents/{incident.reference}/")
    card = page.locator("#targets")
    expect(card.locator('[data-target="report-1h"]')).to_contain_text("pending")
    expect(card.locator('[data-target="report-1h"]')).to_contain_text("left")
    card.get_by_text("File a report").click()
    card.get_by_label("Authority's reference").fill("BfArM-2026-0042")
    card.get_by_label("Note").fill("Filed by phone, confirmed by mail")
    card.get_by_role("button", name="File the report").click()

    expect(page.locator("body")).to_contain_text(
        f"{incident.reference}: report for report-1h filed (BfArM-2026-0042)."
    )
    card = page.locator("#targets")
    expect(card.locator('[data-target="report-1h"]')).to_contain_text("met")
    expect(card.locator('[data-target="report-1h"]')).to_contain_text("filed")
    expect(card.locator("#report-filings")).to_contain_text("BfArM-2026-0042")
    expect(card.locator("#report-filings")).to_contain_text("Nina Nurse")
    expect(card.get_by_text("File a report")).to_have_count(0)  # nothing left to file
    shoot(page, "30-report-filed")
    assert ReportFiling.objects.get(incident=incident).filed_by == nurse
    assert console_errors == []


def test_the_queue_poll_keeps_unchanged_rows_with_a_304_and_ages_them(
    live_server, page: Page, console_errors
):
    """The poll sends the ETag of its rows: nothing changed answers 304 and the rows stay, their ages ticking
    in the browser; a new incident comes with the next poll."""
    _, _, agent = _desk()
    first = services.create_incident(title="Printer jams", reporter_email="a@example.org")
    sign_in(page.context, live_server, agent)
    page.clock.install()
    page.goto(f"{live_server.url}/desk/")
    age = page.locator(f'.queue-row[data-ref="{first.reference}"] time.age').first
    expect(age).to_have_text("<1 min ago")
    etag = page.locator("#queue-results").get_attribute("data-etag")

    def poll():
        return page.expect_response(lambda r: r.request.headers.get("hx-target") == "queue-results")

    with poll() as unchanged:
        page.clock.run_for(31_000)
    assert unchanged.value.status == 304
    assert unchanged.value.request.headers.get("if-none-match") == etag
    # Each poll is waited for: on SQLite a write while a poll is being served finds the table locked.
    for _ in range(2):
        with poll() as unchanged:
            page.clock.run_for(30_000)
        assert unchanged.value.status == 304
    expect(age).to_have_text("1 min ago")  # the row stayed, and aged in the browser
    second = services.create_incident(title="Mail bounces", reporter_email="b@example.org")
    with poll() as changed:
        page.clock.run_for(31_000)
    assert changed.value.status == 200
    expect(page.locator(f'.queue-row[data-ref="{second.reference}"]')).to_have_count(1)
    assert page.locator("#queue-results").get_attribute("data-etag") != etag
    assert console_errors == []
