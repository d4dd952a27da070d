"""The front door in Chromium: ReDoc under the Content-Security-Policy with nothing fetched from elsewhere,
the error pages in the app's layout, and the reporter's list on a phone without sideways scrolling or words
broken in the middle."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from incidents import services
from tests.factories import UserFactory

from .conftest import e2e, sign_in

pytestmark = e2e

PHONE = {"width": 360, "height": 780}


def test_redoc_renders_under_the_csp_with_local_assets_only(live_server, page: Page, console_errors, shoot):
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server.url, "data:", "blob:"))
            else foreign.append(request.url)
        ),
    )
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    response = page.goto(f"{live_server.url}/api/redoc/")
    assert response is not None
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-eval" not in policy

    # The schema is generated on request and ReDoc renders all of it: generous on a busy CI machine.
    expect(page.get_by_role("heading", name=re.compile(r"^IncidentDesk API"))).to_be_visible(timeout=180_000)
    # The operations are listed in the menu and rendered in the body (ReDoc's own styles applied).
    expect(page.get_by_role("menuitem", name="v1")).to_be_visible()
    expect(page.get_by_text("/api/v1/auth/token/").first).to_be_attached()
    menu_width = page.evaluate("document.querySelector('.menu-content').getBoundingClientRect().width")
    assert menu_width > 150, "ReDoc's layout styles did not apply"
    shoot(page, "front-redoc", full_page=False)

    assert violations == []
    assert console_errors == []
    assert foreign == [], f"fetched from elsewhere: {foreign}"


def test_a_reporter_opening_the_console_gets_the_apps_404(live_server, page: Page, console_errors):
    sign_in(page.context, live_server, UserFactory(username="pat"))
    response = page.goto(f"{live_server.url}/desk/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="We cannot find this page")).to_be_visible()
    expect(page.get_by_role("link", name="My incidents").first).to_be_visible()
    # The browser reports the page's own 404 status in the console; nothing else may fail.
    assert [error for error in console_errors if "status of 404" not in error] == []


def _broken_words(page: Page, selector: str) -> list[str]:
    """Words of the elements' text that the layout split over two lines (a word's letters on different lines)."""
    return page.evaluate(
        """(selector) => {
          const broken = [];
          for (const element of document.querySelectorAll(selector)) {
            const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              const re = /\\S+/g;
              let match;
              while ((match = re.exec(node.data))) {
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                if (tops.size > 1) broken.push(match[0]);
              }
            }
          }
          return broken;
        }""",
        selector,
    )


def test_my_incidents_on_a_phone_neither_scrolls_sideways_nor_breaks_words(
    live_server, browser: Browser, shoot
):
    reporter = UserFactory(username="pat", first_name="Pat", last_name="Lee")
    titles = [
        "Intermittent authentication failures on the departmental workstations",
        "Medication reconciliation printout unreadable after the printer replacement",
        "Videoconferencing equipment disconnects during interdisciplinary meetings",
    ]
    incidents = [services.create_incident(title=title, reporter=reporter) for title in titles]
    context = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    try:
        sign_in(context, live_server, reporter)
        page = context.new_page()
        page.goto(f"{live_server.url}/my/")
        expect(page.locator(".list-group-item")).to_have_count(3)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"/my/ scrolls sideways on a phone ({width}px)"
        assert _broken_words(page, "main") == []
        shoot(page, "front-my-incidents-phone")
        # The same on the incident's own page, the one the list links to.
        page.goto(f"{live_server.url}/track/{incidents[0].tracking_token}/")
        expect(page.locator("#incident-title")).to_have_text(titles[0])
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the tracking page scrolls sideways on a phone ({width}px)"
        assert _broken_words(page, "main") == []
    finally:
        context.close()
