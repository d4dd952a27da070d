"""A whole interview in real browsers: the lead's console, the candidate's screen (another device, no
account, only the link) and a second rater. Playwright drives Debian's Chromium against Django's live server."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from interviews import cases, services
from tests.e2e.conftest import (  # noqa: F401 - fixtures used by name
    _fresh_cache,
    browser_type_launch_args,
    e2e,
    shoot,
    sign_in,
)
from tests.interviews.helpers import (
    SECRET_FACT_TEXT,
    SECRET_HARM,
    SECRET_PARTIAL,
    SECRET_PROBLEM,
    SECRET_SOLUTION,
    interviewer,
    new_session,
    published_version,
    publisher,
    rubric_keys,
    session_in,
)
from tests.interviews.test_findings import draft_with_findings, of_medical_team

# On PostgreSQL, as in CI: three browsers poll and write at once, which SQLite's shared in-memory test
# database answers with "table is locked".
pytestmark = [e2e, pytest.mark.postgres]


def collect_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def rate_everything(page, username: str, *, level: str) -> None:
    form = page.locator("#iv-rating-form")
    for key in rubric_keys():
        form.get_by_label("Dimension").select_option(key)
        form.get_by_label("Level").select_option(level)
        form.get_by_label("Evidence").fill(f"{username} saw it on {key}")
        form.get_by_role("button", name="Save rating").click()
        expect(page.locator("#iv-ratings")).to_contain_text(f"{username} · {key} = {level}")


def test_an_interview_runs_live_in_two_browsers(live_server, browser: Browser, shoot):  # noqa: F811
    version = published_version()
    lead, rater = interviewer(username="lead"), interviewer(username="rater")
    candidate = services.create_candidate(name="Casey Candidate", consent=True, consent_text="ok")
    session = services.create_session(
        case_version=version, candidate=candidate, lead=lead, raters=[rater], actor=lead
    )

    lead_context, candidate_context, rater_context = (
        browser.new_context(),
        browser.new_context(),
        browser.new_context(),
    )
    try:
        sign_in(lead_context, live_server, lead)
        sign_in(rater_context, live_server, rater)
        console = lead_context.new_page()
        console_errors = collect_errors(console)
        console.goto(f"{live_server.url}/interviews/sessions/{session.pk}/")
        screen = candidate_context.new_page()
        screen_errors = collect_errors(screen)
        screen.goto(f"{live_server.url}/interviews/c/{session.candidate_token}/")
        expect(screen.locator("#c-presentation")).to_have_text("The interview has not started yet.")

        console.get_by_role("button", name="Start").click()
        expect(console.get_by_test_id("phase")).to_have_text("present")
        expect(screen.locator("#c-presentation")).to_have_text(version.presentation)
        console.get_by_role("button", name="Next phase").click()
        expect(console.get_by_test_id("phase")).to_have_text("gather")
        expect(screen.get_by_test_id("phase")).to_have_text("gather")

        # A question, the suggested fact, confirmed by the interviewer with one click.
        console.get_by_role("textbox", name="Question", exact=True).fill("What do the logs say?")
        suggestion = console.locator("[data-suggestion=F1]")
        expect(suggestion).to_be_visible()
        console.get_by_role("button", name="Record", exact=True).click()
        expect(console.get_by_test_id("questions")).to_contain_text("What do the logs say?")
        suggestion.get_by_role("button", name="Reveal").click()
        expect(console.get_by_test_id("key-counter")).to_have_text("key facts 1/2")
        expect(screen.get_by_test_id("reveals")).to_have_text(
            "The gateway log shows TLS handshake failures from 12:00 on."
        )
        # A partial reveal from the fact board.
        console.locator("[data-fact=F2]").get_by_role("button", name="Partial").click()
        expect(console.get_by_test_id("key-counter")).to_have_text("key facts 2/2")
        expect(screen.get_by_test_id("reveals").locator("li")).to_have_count(2)
        expect(screen.get_by_test_id("reveals").locator("li").nth(1)).to_have_text(SECRET_PARTIAL)
        shoot(console, "interviews-01-console")

        console.get_by_role("button", name="Next phase").click()
        expect(screen.get_by_test_id("phase")).to_have_text("extract")
        screen.get_by_label("Problem").fill("The certificate of the gateway expired")
        screen.get_by_label("Fact 1").check()
        screen.get_by_role("button", name="State problem").click()
        expect(screen.get_by_test_id("problems")).to_have_text("The certificate of the gateway expired")
        expect(console.get_by_test_id("problems")).to_contain_text("The certificate of the gateway expired")
        # The lead maps it to the answer key (suggestions stay suggestions: a person decides).
        console.locator('[data-map^="problem:"]').select_option("matched:P1")
        expect(console.locator('[data-map^="problem:"]')).to_have_value("matched:P1")
        screen.get_by_label("Notepad").fill("check cert expiry dates")

        console.get_by_role("button", name="Next phase").click()
        expect(screen.get_by_test_id("phase")).to_have_text("solve")
        screen.get_by_label("Action").fill("Renew the certificate")
        screen.get_by_label("Reason").fill("It brings payments back")
        screen.get_by_role("button", name="Propose").click()
        expect(screen.locator("#c-solutions")).to_have_text("Renew the certificate — It brings payments back")
        expect(console.get_by_test_id("solutions")).to_contain_text("Renew the certificate", timeout=10_000)
        console.locator('[data-map^="solution:"]').select_option("matched:S1")
        expect(console.locator('[data-map^="solution:"]')).to_have_value("matched:S1")
        shoot(screen, "interviews-02-candidate")

        console.get_by_role("button", name="Next phase").click()
        expect(console.get_by_test_id("phase")).to_have_text("evaluate")
        console.get_by_role("button", name="Next phase").click()
        expect(console.get_by_test_id("phase")).to_have_text("rating")

        # Two raters rate alone, each in their own browser, with evidence.
        rater_page = rater_context.new_page()
        rater_errors = collect_errors(rater_page)
        rater_page.goto(f"{live_server.url}/interviews/sessions/{session.pk}/")
        rate_everything(rater_page, "rater", level="3")
        rate_everything(console, "lead", level="4")
        expect(rater_page.locator("#iv-ratings li")).to_have_count(
            len(rubric_keys())
        )  # blind: only their own

        console.get_by_role("button", name="Next phase").click()
        expect(console.get_by_test_id("phase")).to_have_text("consensus")
        expect(console.locator("#iv-ratings li")).to_have_count(2 * len(rubric_keys()))
        for key in rubric_keys():
            form = console.locator("#iv-consensus-form")
            form.get_by_label("Consensus dimension").select_option(key)
            form.get_by_label("Consensus level").select_option("4" if key == "communication" else "3")
            form.get_by_role("button", name="Record consensus").click()
            expect(console.get_by_test_id("consensus")).to_contain_text(f"{key} = ")
        close = console.locator("#iv-close-form")
        close.get_by_label("Recommendation").select_option("yes")
        close.get_by_label("Summary").fill("Went straight to the logs.")
        close.get_by_role("button", name="Close the session").click()
        expect(console.get_by_test_id("phase")).to_have_text("closed")
        console.goto(f"{live_server.url}/interviews/sessions/{session.pk}/report/")
        expect(console.get_by_test_id("fact-scores")).to_contain_text("Key-fact recall")
        expect(console.get_by_text("The certificate of the gateway expired — matched (P1)")).to_be_visible()
        expect(console.get_by_text("Precision 1.00 · recall 0.67 · F1 0.80")).to_be_visible()
        expect(console.get_by_text("Recall 0.67 · rank agreement (Kendall's tau) n/a")).to_be_visible()
        expect(console.get_by_text("recommendation: yes")).to_be_visible()
        shoot(console, "interviews-03-report")

        html = screen.content()
        for secret in (SECRET_FACT_TEXT, SECRET_PROBLEM, SECRET_SOLUTION, SECRET_HARM, "No renewal owner"):
            assert secret not in html
        assert console_errors == []
        assert screen_errors == []
        assert rater_errors == []
    finally:
        lead_context.close()
        candidate_context.close()
        rater_context.close()


def test_the_chart_pages_draw_without_console_errors(live_server, browser: Browser, shoot):  # noqa: F811
    version = published_version()
    for facts in (["F1", "F2"], ["F1"]):
        session = session_in("gather", new_session(version, raters=1))
        for key in facts:
            services.reveal_fact(session, actor=session.members.get(role="lead").user, fact=key)
        session_in("closed", session)
    context = browser.new_context()
    try:
        sign_in(context, live_server, interviewer(username="manager"))
        page = context.new_page()
        errors = collect_errors(page)
        base = f"{live_server.url}/interviews/reports"
        for path, charts in (
            (f"/{version.case.slug}/v{version.number}/comparison/", 1),
            (f"/{version.case.slug}/v{version.number}/analytics/", 3),
            ("/raters/?by=all", 2),
        ):
            page.goto(base + path)
            expect(page.locator('canvas[data-drawn="true"]')).to_have_count(charts)
            shoot(page, "interviews-charts-" + path.strip("/").split("/")[-1].split("?")[0])
        assert errors == []
    finally:
        context.close()


def test_a_reviewer_decides_each_finding_in_the_case_page_then_publishes(
    live_server,
    browser: Browser,
    shoot,  # noqa: F811
):
    version, weber, evita = draft_with_findings()
    cases.submit_for_review(version, actor=version.created_by)
    context = browser.new_context()
    try:
        # a draft from a medical incident is read by those whose teams handle medical (SPEC section 1)
        sign_in(context, live_server, of_medical_team(publisher(username="reviewer")))
        page = context.new_page()
        errors = collect_errors(page)
        page.goto(f"{live_server.url}/interviews/cases/{version.case.slug}/")
        findings = page.locator("#case-findings")
        expect(findings.locator(f"#finding-{weber.pk}")).to_contain_text("Jonas Weber")
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("alert").filter(has_text="finding(s) are open")).to_be_visible()
        shoot(page, "interviews-case-findings-open")

        findings.locator(f"#finding-{evita.pk}").get_by_role("button", name="Accept").click()
        expect(page.locator(f"#finding-{evita.pk}")).to_have_attribute("data-status", "accepted")
        page.get_by_label(f"Replacement for finding {weber.pk}").fill("Person Q")
        page.locator(f"#finding-{weber.pk}").get_by_role("button", name="Replace").click()
        expect(page.locator(f"#finding-{weber.pk}")).to_have_attribute("data-status", "replaced")
        expect(page.locator("main")).to_contain_text("Rückfragen an Person Q.")
        expect(page.locator("main")).not_to_contain_text("Jonas Weber")

        page.get_by_role("button", name="Approve").click()
        expect(page.locator("#case-status")).to_have_text("Published")
        shoot(page, "interviews-case-findings-decided")
        assert errors == []
    finally:
        context.close()
