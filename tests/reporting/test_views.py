"""The report dashboard: figures, filters, tables for every chart, the export link, who may see it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test import Client

from incidents.models import Incident
from tests.factories import UserFactory

from . import desk as d

pytestmark = pytest.mark.django_db
URL = "/reports/"


@pytest.fixture
def desk():
    return d.build()


def page(user, params=None):
    client = Client()
    client.force_login(user)
    with time_machine.travel(d.AFTER, tick=False):
        return client.get(URL, params or {})


def test_dashboard_shows_the_figures_and_embeds_them_for_the_charts(desk):
    response = page(desk.superuser, d.PERIOD)

    assert response.status_code == 200
    html = response.content.decode()
    for canvas in ("chart-trend", "chart-sla", "chart-backlog", "chart-categories"):
        assert f'id="{canvas}"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert "js/reports.js" in html
    embedded = json.loads(
        html.split('<script id="report-data" type="application/json">')[1].split("</script>")[0]
    )
    assert embedded["counts"] == d.EXPECTED["counts"]
    assert embedded["backlog"]["series"] == d.EXPECTED["backlog"]["series"]
    # The table views of the charts and the headline cards, in plain text.
    assert '<td>2026-03-02</td><td class="text-end">2</td><td class="text-end">3.3 h</td>' in html
    assert '<td>P2</td><td class="text-end">0.0 %</td><td class="text-end">0.0 %</td>' in html
    assert '<td>IT service · network/vpn</td><td class="text-end">3</td>' in html
    assert ">Under 1 day</th>" in html  # not the key under_1d (issue 13, item 7)
    assert ">On hold</th>" in html
    assert "VPN firmware" in html
    assert "66.7 %" in html  # response SLA compliance


def test_export_link_carries_the_same_filters_and_period(desk, client):
    html = page(desk.superuser, {**d.PERIOD, "team": "net", "priority": ["1", "2"]}).content.decode()
    href = (
        "/desk/export.csv?team=net&priority=1&priority=2"
        "&received_after=2026-03-02T00%3A00%3A00%2B00%3A00&received_before=2026-03-09T00%3A00%3A00%2B00%3A00"
    )
    assert f'href="{href.replace("&", "&amp;")}"' in html
    # Following it exports exactly the report's cohort: the period's incidents of that team and priority.
    client.force_login(desk.superuser)
    rows = b"".join(client.get(href).streaming_content).decode().splitlines()[1:]
    expected = Incident.objects.filter(
        team__slug="net", priority__in=[1, 2], received_at__gte=datetime(2026, 3, 2, tzinfo=UTC),
        received_at__lt=datetime(2026, 3, 9, tzinfo=UTC),
    )  # fmt: skip
    assert expected.exists()
    assert sorted(row.split(",")[0] for row in rows) == sorted(i.reference for i in expected)
    assert client.get("/desk/export.csv?from=2026-03-02").status_code == 400  # not a filter of the export


def test_filters_narrow_the_figures_and_stay_selected(desk):
    response = page(desk.superuser, {**d.PERIOD, "domain": "medical"})
    assert response.context["data"]["counts"]["total"] == 1
    html = response.content.decode()
    assert '<option value="medical" selected>' in html


def test_bad_filters_say_which_and_fall_back_to_the_last_30_days(desk):
    response = page(desk.superuser, {"from": "soon", "team": "nobody"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "<strong>from</strong>" in html
    assert "<strong>team</strong>" in html
    assert response.context["data"]["counts"]["total"] == 9


def test_reporters_get_404():
    assert page(UserFactory()).status_code == 404


def test_anonymous_are_sent_to_sign_in():
    response = Client().get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_nav_links_to_reports_for_responders(desk):
    html = page(desk.it_agent, d.PERIOD).content.decode()
    assert 'href="/reports/" aria-current="page">Reports</a>' in html


def test_page_query_count_is_fixed(desk, django_assert_num_queries):
    """Session, the user with their teams and permission (one query), the filters' lookups, the figures (see
    tests/reporting/test_api.py), and the domain, team and category lists of the filter form."""
    fresh = type(desk.it_agent).objects.get(pk=desk.it_agent.pk)
    figures = 8 if connection.vendor == "postgresql" else 14
    client = Client()
    client.force_login(fresh)
    with time_machine.travel(d.AFTER, tick=False), django_assert_num_queries(1 + 1 + 2 + figures + 3):
        response = client.get(URL, {**d.PERIOD, "domain": "it_service", "team": "desk"})
    assert response.status_code == 200
