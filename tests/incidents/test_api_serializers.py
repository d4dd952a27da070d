"""The incident's representation, its fields built once per process (FieldsBuiltOnce), is DRF's own."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from incidents.api.serializers import REPORTER_FIELDS, IncidentSerializer, ReporterIncidentSerializer
from incidents.models import Incident
from incidents.selectors import desk_user
from tests.factories import UserFactory, incident_in, privacy_officer, responder_of, sla_policy

pytestmark = pytest.mark.django_db


def drf_representation(serializer_class: type, incident: Incident, viewer: User) -> dict:
    """What DRF's ModelSerializer answers, with the fields built for this serializer, filtered as before."""
    request = APIRequestFactory().get("/")
    request.user = viewer
    serializer = serializer_class(context={"request": request})
    data = serializers.ModelSerializer.to_representation(serializer, incident)
    me = desk_user(viewer)
    if not me.as_responder(incident):
        data = {key: value for key, value in data.items() if key in REPORTER_FIELDS}
    if not me.can_see_reporter(incident):
        data.pop("reporter", None)
        data.pop("reporter_email", None)
    return data


@pytest.mark.parametrize("state", ["received", "on_hold", "closed", "cancelled"])
def test_every_viewer_gets_exactly_what_drf_builds_in_every_state(state):
    sla_policy(domain_slug="security")
    reporter = UserFactory()
    incident = incident_in(state, domain_slug="security", reporter=reporter, confidential=True)
    incident = Incident.objects.get(pk=incident.pk)
    viewers = [
        reporter,
        responder_of(incident),
        privacy_officer(),
        UserFactory(is_superuser=True),
        UserFactory(),  # neither: the reporter's fields, no reporter
    ]
    for viewer in viewers:
        viewer = User.objects.get(pk=viewer.pk)
        request = APIRequestFactory().get("/")
        request.user = viewer
        for serializer_class in (IncidentSerializer, ReporterIncidentSerializer):
            fast = serializer_class(incident, context={"request": request}).data
            assert list(fast.items()) == list(drf_representation(serializer_class, incident, viewer).items())
    many = IncidentSerializer([incident, incident], many=True, context={"request": request}).data
    assert [dict(row) for row in many] == [drf_representation(IncidentSerializer, incident, viewer)] * 2
