"""A reporter in a real browser: the form with an attachment, the private link, and the status behind it."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from incidents import services
from incidents.models import Incident
from tests.factories import CategoryFactory

from .conftest import e2e

pytestmark = e2e


def test_anonymous_report_with_attachment_then_tracking_in_a_fresh_browser(
    live_server, page: Page, browser: Browser, console_errors, shoot, attachment_dir
):
    CategoryFactory(slug="vpn", name="VPN")
    page.goto(f"{live_server.url}/report/")
    expect(page.get_by_role("heading", name="Report an incident")).to_be_visible()
    page.get_by_label("What went wrong, in one line").fill("VPN drops every ten minutes")
    page.get_by_label("What happened").fill("Since this morning the **VPN** disconnects.")
    page.get_by_label("Kind of incident").select_option(label="IT service")
    # htmx swaps in the categories of the chosen domain
    expect(page.locator("#id_category option", has_text="VPN (vpn)")).to_have_count(1)
    page.get_by_label("Category").select_option(label="VPN (vpn)")
    page.get_by_label("Happened, no harm").check()
    page.get_by_label("Who is affected").select_option(label="A team, a ward or a department")
    page.get_by_label("How urgent is it").select_option(index=1)
    page.get_by_label("Attach a file").set_input_files(
        files=[{"name": "vpn.log", "mimeType": "text/plain", "buffer": b"12:01 tunnel down\n"}]
    )
    page.get_by_label("Your e-mail address").fill("pat@example.org")
    expect(page.get_by_label("Patient impact (medical incidents)")).to_be_hidden()
    shoot(page, "01-report-form")
    page.get_by_role("button", name="Send the report").click()

    expect(page.get_by_text("Thank you, your report is in.")).to_be_visible()
    incident = Incident.objects.get()
    expect(page.locator("#reference")).to_have_text(incident.reference)
    link = page.locator("#tracking-link").input_value()
    assert re.fullmatch(rf"{re.escape(live_server.url)}/track/[A-Za-z0-9_-]{{43}}/", link)
    assert incident.attachments.get().filename == "vpn.log"
    shoot(page, "02-report-done")

    other = browser.new_context()  # no cookies: only the link
    try:
        reporter = other.new_page()
        reporter.goto(link)
        expect(reporter.locator("#incident-title")).to_have_text("VPN drops every ten minutes")
        expect(reporter.locator(".state-badge")).to_have_text("We have your report")
        expect(reporter.get_by_role("link", name="vpn.log")).to_be_visible()
        shoot(reporter, "03-tracking-page")
    finally:
        other.close()
    assert console_errors == []


def test_report_form_on_a_phone(live_server, browser: Browser, shoot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/report/")
        expect(page.get_by_role("button", name="Send the report")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the form scrolls sideways on a phone ({width}px)"
        shoot(page, "04-report-form-phone")
        incident = services.create_incident(
            title="Badge reader at the east entrance rejects every card", reporter_email="pat@example.org"
        )
        services.add_comment(incident, author=None, body="It started after the power cut.", public=True)
        page.goto(f"{live_server.url}/track/{incident.tracking_token}/")
        expect(page.locator("#timeline")).to_contain_text("It started after the power cut.")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the tracking page scrolls sideways on a phone ({width}px)"
        shoot(page, "05-tracking-page-phone")
    finally:
        context.close()
