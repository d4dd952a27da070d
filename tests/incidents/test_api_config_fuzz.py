"""schemathesis over the configuration operations (users, me, tokens, categories, teams) as an admin:
no 5xx, and every answer conforms to the schema. Bounded: six examples per operation, derandomized.

(Status codes the schema does not list, such as the cursor pagination's 404 for a bad cursor, are left to the
project-wide fuzz test; here the promise is no server error and no answer unlike its schema.)"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.models import ApiToken
from config.wsgi import application
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
config_ops = schema.include(path_regex=r"^/api/v1/(users|me|categories|teams/\{slug\}/$|teams/$)")


@pytest.fixture
def admin_token(db, keep_connection):
    admin = UserFactory(username="fuzz-admin", is_staff=True, is_superuser=True)
    team = TeamFactory(slug="ops")
    agent(team, username="member")
    CategoryFactory(slug="network")
    _, key = ApiToken.issue(admin)
    return key


@pytest.mark.django_db
@config_ops.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_configuration_operations_never_answer_5xx(case, admin_token):
    case.headers = {**(case.headers or {}), "Authorization": f"Token {admin_token}"}
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
