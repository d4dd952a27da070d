"""The web forms of incidents.forms."""

from __future__ import annotations

import pytest

from incidents.forms import ReportForm
from tests.factories import CategoryFactory, UserFactory, domain

pytestmark = pytest.mark.django_db


def test_report_forms_share_no_choices_or_fields_that_differ_between_them():
    CategoryFactory(slug="malware", domain=domain("security"))
    CategoryFactory(slug="vpn")

    security = ReportForm({"domain": domain("security").pk})
    signed_in = ReportForm(user=UserFactory())
    anonymous = ReportForm()

    assert [c.slug for c in security.fields["category"].queryset] == ["malware"]
    assert not signed_in.fields["category"].queryset.exists()
    assert not anonymous.fields["category"].queryset.exists()
    assert "reporter_email" not in signed_in.fields
    assert anonymous.fields["reporter_email"].required
