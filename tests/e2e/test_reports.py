"""The report dashboard in a real browser: Chart.js draws all four charts under the CSP, no console error."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.reporting import desk as d

from .conftest import e2e, sign_in

pytestmark = e2e
CHARTS = ["chart-trend", "chart-sla", "chart-backlog", "chart-categories"]


def test_dashboard_draws_every_chart_without_console_errors(live_server, page: Page, console_errors, shoot):
    desk = d.build()
    sign_in(page.context, live_server, desk.superuser)

    page.goto(f"{live_server.url}/reports/?from=2026-03-02&to=2026-03-08")

    expect(page.get_by_role("heading", name="Reports")).to_be_visible()
    for canvas in CHARTS:
        expect(page.locator(f"#{canvas}")).to_be_visible()
    drawn = page.evaluate(
        """ids => ids.map(id => {
            const chart = window.Chart && window.Chart.getChart(document.getElementById(id));
            return chart ? chart.data.datasets.reduce((n, set) => n + set.data.length, 0) : -1;
        })""",
        CHARTS,
    )
    # Trend: 7 days x 2 series; SLA: 3 priorities x 2; backlog: 7 days; categories: 3.
    assert drawn == [14, 6, 7, 3]
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute(
        "href",
        "/desk/export.csv?received_after=2026-03-02T00%3A00%3A00%2B00%3A00"
        "&received_before=2026-03-09T00%3A00%3A00%2B00%3A00",
    )
    page.get_by_text("Table").first.click()
    expect(page.get_by_role("cell", name="2026-03-02").first).to_be_visible()
    shoot(page, "reports-dashboard")
    assert console_errors == []
