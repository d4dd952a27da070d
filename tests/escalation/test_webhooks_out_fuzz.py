"""schemathesis over the webhook operations (`/api/v1/webhooks/`, rotate-secret included) as an admin: no
5xx, and every answer conforms to the schema. Bounded: six examples per operation, derandomized."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.models import ApiToken
from config.wsgi import application
from escalation.models import WebhookEndpoint
from tests.factories import TeamFactory, UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
webhook_ops = schema.include(path_regex=r"^/api/v1/webhooks/")


@pytest.fixture
def admin_token(db, keep_connection):
    admin = UserFactory(username="fuzz-admin", is_staff=True, is_superuser=True)
    team = TeamFactory(slug="ops")
    WebhookEndpoint.objects.create(
        slug="crm", name="CRM", url="http://127.0.0.1:9/hook", events=["incident.created"], owner_team=team
    )
    _, key = ApiToken.issue(admin)
    return key


@pytest.mark.django_db
@webhook_ops.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_webhook_operations_never_answer_5xx(case, admin_token):
    case.headers = {**(case.headers or {}), "Authorization": f"Token {admin_token}"}
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
