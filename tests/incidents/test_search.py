from __future__ import annotations

import pytest
from django.db import connection

from incidents.models import Incident
from incidents.selectors import search_incidents
from tests.factories import report

pytestmark = pytest.mark.django_db


def test_search_matches_title_and_description_and_references():
    vpn = report(title="VPN drops", description="The tunnel to Berlin fails")
    mail = report(title="Mail delayed", description="Outlook shows nothing")
    qs = Incident.objects.all()
    assert set(search_incidents(qs, "vpn")) == {vpn}
    assert set(search_incidents(qs, "outlook")) == {mail}
    assert set(search_incidents(qs, mail.reference)) == {mail}
    assert set(search_incidents(qs, "")) == {vpn, mail}


@pytest.mark.postgres
def test_postgres_full_text_search_stems_and_uses_the_gin_index():
    hit = report(title="Printers failing", description="Several printer queues stopped printing")
    report(title="Badge reader", description="Door stays closed")
    qs = Incident.objects.all()
    assert list(search_incidents(qs, "printer failed")) == [hit]  # stemming: printers/failing
    assert list(search_incidents(qs, '"door" -badge')) == []  # websearch syntax
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        sql, params = search_incidents(qs, "printer").order_by().query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "incident_fulltext_idx" in plan, plan
