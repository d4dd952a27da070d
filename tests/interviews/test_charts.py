"""The report chart pages: each chart's data as JSON for charts.js, a table view beside it, and a number
of queries that does not grow with the number of sessions."""

from __future__ import annotations

import json
import re

import pytest

from interviews import charts, lifecycle, reports, scoring, services
from interviews.models import Session
from tests.factories import UserFactory
from tests.interviews.helpers import (
    interviewer,
    lead_of,
    new_session,
    published_version,
    rate_all,
    rubric_keys,
    session_in,
)

pytestmark = pytest.mark.django_db


def chart_data(html: str, element_id: str) -> dict:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no {element_id} in the page"
    return json.loads(match.group(1))


def closed_sessions(version, n: int) -> list[Session]:
    sessions = []
    for i in range(n):
        session = session_in("extract", new_session(version, raters=2))
        lead = session.members.get(role="lead").user
        problem = services.add_candidate_problem(
            session, statement="The certificate expired.", cited_reveals=[], by_candidate=True
        )
        if i % 2 == 0:
            services.map_problem(session, actor=lead, problem=problem, verdict="matched", expected="P1")
        else:
            services.map_problem(session, actor=lead, problem=problem, verdict="invalid")
        sessions.append(session_in("closed", session))
    return sessions


def test_batch_scores_equal_one_by_one_scores():
    version = published_version()
    sessions = closed_sessions(version, 3)
    sessions = list(Session.objects.filter(pk__in=[s.pk for s in sessions]).select_related("case_version"))
    batch = scoring.score_sessions(sessions)
    assert {pk: batch[pk] for pk in batch} == {s.pk: scoring.score_session(s) for s in sessions}
    assert scoring.score_sessions([]) == {}


def test_the_comparison_chart_shows_percentiles_with_a_table_in_constant_queries(
    client, django_assert_num_queries
):
    version = published_version()
    closed_sessions(version, 1)
    client.force_login(interviewer())
    url = f"/interviews/reports/{version.case.slug}/v{version.number}/comparison/"
    client.get(url)  # warm the session and permission caches of the first request
    with django_assert_num_queries(22) as one:
        client.get(url)
    closed_sessions(version, 3)
    with django_assert_num_queries(len(one)):
        html = client.get(url).content.decode()

    config = chart_data(html, "chart-comparison")
    assert config["type"] == "bar"
    assert [d["label"] for d in config["data"]["datasets"]] == [
        "Fact coverage",
        "Problem F1",
        "Rubric (consensus)",
    ]
    rows = reports.comparison(version)
    assert config["data"]["datasets"][1]["data"] == [r["problem_f1_percentile"] for r in rows]
    assert sorted(config["data"]["datasets"][1]["data"]) == [12.5, 62.5, 62.5, 62.5]  # 3 hit P1, 1 did not
    table = html.split('id="comparison-table"')[1]
    assert table.count("<tr>") == 1 + 4
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in html
    assert "<script>" not in html  # the CSP forbids inline scripts: data only


def test_case_analytics_charts_facts_problems_and_overruns(client, django_assert_num_queries):
    version = published_version()
    closed_sessions(version, 2)
    client.force_login(interviewer())
    url = f"/interviews/reports/{version.case.slug}/v{version.number}/analytics/"
    client.get(url)
    with django_assert_num_queries(29) as two:
        client.get(url)
    closed_sessions(version, 2)
    with django_assert_num_queries(len(two)):
        html = client.get(url).content.decode()

    facts = chart_data(html, "chart-facts")
    assert facts["data"]["labels"][0] == "F1 (key)"
    assert [d["label"] for d in facts["data"]["datasets"]] == ["Discovery rate", "Median minutes to find"]
    problems = chart_data(html, "chart-problems")
    assert problems["data"]["labels"] == ["P1", "P2"]
    phases = chart_data(html, "chart-phases")
    assert phases["data"]["labels"] == list(Session.TIMED_PHASES)
    for table in ("facts-table", "problems-table", "phases-table"):
        assert f'id="{table}"' in html
    assert html.split('id="facts-table"')[1].split("</table>")[0].count("<tr>") == 1 + 5


def test_rater_analytics_charts_agreement_over_time_and_leniency(client, django_assert_num_queries):
    version = published_version()
    session = session_in("rating", new_session(version, raters=1))
    keys = rubric_keys()
    rate_all(session, {k: [4, 3] for k in keys})
    session = lifecycle.advance_session(session, actor=lead_of(session))
    session_in("closed", session)
    client.force_login(interviewer())
    client.get("/interviews/reports/raters/")
    with django_assert_num_queries(7):
        html = client.get("/interviews/reports/raters/?by=quarter").content.decode()

    agreement = chart_data(html, "chart-agreement")
    assert agreement["type"] == "line"
    assert sorted(d["label"] for d in agreement["data"]["datasets"]) == sorted(keys)
    assert all(re.fullmatch(r"\d{4}-Q[1-4]", p) for p in agreement["data"]["labels"])
    leniency = chart_data(html, "chart-leniency")
    assert sorted(leniency["data"]["datasets"][0]["data"]) == [-1.0, 1.0]
    assert 'id="agreement-table"' in html
    assert 'id="leniency-table"' in html
    assert client.get("/interviews/reports/raters/?by=decade").status_code == 200  # falls back to month


def test_report_pages_do_not_exist_for_others(client):
    version = published_version()
    client.force_login(UserFactory())
    for url in (
        "/interviews/reports/",
        "/interviews/reports/raters/",
        f"/interviews/reports/{version.case.slug}/v{version.number}/comparison/",
        f"/interviews/reports/{version.case.slug}/v{version.number}/analytics/",
    ):
        assert client.get(url).status_code == 404
    client.force_login(interviewer())
    index = client.get("/interviews/reports/").content.decode()
    assert f"/interviews/reports/{version.case.slug}/v{version.number}/comparison/" in index
    assert client.get(f"/interviews/reports/{version.case.slug}/v99/comparison/").status_code == 404
    assert client.get("/interviews/reports/no-such-case/v1/analytics/").status_code == 404


def test_chart_configurations_hold_no_functions_and_handle_empty_reports():
    empty = {"facts": [], "problems": [], "phases": [], "dimensions": [], "leniency": {}}
    for config in (
        charts.comparison([]),
        charts.fact_discovery(empty),
        charts.separating_problems(empty),
        charts.phase_overruns(empty),
        charts.agreement_over_time(empty),
        charts.leniency(empty),
    ):
        assert json.loads(json.dumps(config)) == config
        assert config["data"]["labels"] == []


def test_the_reports_index_lists_every_version_in_constant_queries(client, django_assert_num_queries):
    published_version()
    client.force_login(interviewer())
    client.get("/interviews/reports/")
    with django_assert_num_queries(5) as few:
        client.get("/interviews/reports/")
    for _ in range(3):
        session_in("closed", new_session(published_version()))
    with django_assert_num_queries(len(few)):
        html = client.get("/interviews/reports/").content.decode()
    assert html.split('id="report-versions"')[1].count("<tr>") == 1 + 4
