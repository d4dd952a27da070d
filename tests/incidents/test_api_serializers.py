"""The incident's representation, its fields built once per process (FieldsBuiltOnce), is DRF's own."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth.models import User
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from incidents.api.serializers import (
    REPORTER_FIELDS,
    IncidentCreateSerializer,
    IncidentSerializer,
    ReporterIncidentSerializer,
)
from incidents.models import Incident
from incidents.selectors import desk_user
from tests.factories import UserFactory, agent, incident_in, privacy_officer, responder_of, sla_policy

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


class DrfCreateSerializer(IncidentCreateSerializer):
    """The same declared fields, deep-copied per instance as DRF does."""

    def get_fields(self):
        return copy.deepcopy(self._declared_fields)


CREATE_INPUTS = [
    {"title": "VPN drops"},
    {"title": "VPN drops", "description": "**bold**", "impact": 1, "urgency": "2", "confidential": "true"},
    {"title": "", "impact": 9, "urgency": "x", "outcome": "nope", "confidential": "maybe"},
    {"title": "x" * 201, "description": None, "reporter_email": "not-an-address"},
    {"title": "Disk", "domain": "no-such-domain", "category": "a/b"},
    {"title": "Disk", "domain": "it_service", "category": "nope"},
    {"title": "Disk", "domain": "security", "harm_level": "1", "reporter_email": "x@example.org"},
    {},
    {"title": ["a list"], "impact": None},
]


def test_the_create_input_validates_exactly_as_drf_with_fields_built_per_instance():
    reporter = UserFactory()
    request = APIRequestFactory().post("/")
    request.user = agent()
    for viewer in (reporter, request.user):
        request.user = viewer
        for body in CREATE_INPUTS * 2:  # twice: nothing a validation leaves behind changes the next
            fast, drf = (
                cls(data=body, context={"request": request})
                for cls in (IncidentCreateSerializer, DrfCreateSerializer)
            )
            assert fast.is_valid() == drf.is_valid(), body
            assert fast.errors == drf.errors, body
            assert dict(fast.validated_data if not fast.errors else {}) == dict(
                drf.validated_data if not drf.errors else {}
            ), body


def test_a_create_inputs_fields_are_its_own_while_another_is_alive():
    request = APIRequestFactory().post("/")
    request.user = UserFactory()
    first = IncidentCreateSerializer(data={"description": "no title"}, context={"request": request})
    assert first.fields["title"].parent is first
    # Another serializer of the class, bound while the first is alive, partial: the first's fields are
    # still its own (a shared field would answer for the other's root and let the missing title pass).
    other = IncidentCreateSerializer(data={}, partial=True, context={"request": request})
    assert other.fields["title"] is not first.fields["title"]
    assert not first.is_valid()
    assert first.errors == {"title": ["This field is required."]}
