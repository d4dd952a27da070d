"""schemathesis over /api/schema/ (issue 11, "Prove it"): every operation of the OpenAPI schema, called with
generated input by an agent and by an admin, never answers a 5xx, and every answer conforms to the schema
(status code documented or a standard 4xx, content type, body).

Bounded: SCHEMATHESIS_EXAMPLES examples per operation (2 by default; CI may raise it), no shrinking
deadline. The desk holds a few incidents so that generated references sometimes hit a real one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from django.core.serializers.json import DjangoJSONEncoder
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from accounts.models import ApiToken
from tests.factories import UserFactory, agent, classified

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "2"))


def _load() -> Any:
    """The schema /api/schema/ serves (the same generator), bound to the WSGI app for the calls."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(document, cls=DjangoJSONEncoder)))
    loaded.app = get_wsgi_application()
    return loaded


@pytest.fixture
def tokens(db, keep_connection):
    """An agent's and an admin's API tokens, and a few incidents for them to find."""
    worker = agent()
    admin = UserFactory(username="schema-admin", is_superuser=True, is_staff=True)
    classified()
    return [ApiToken.issue(worker)[1], ApiToken.issue(admin)[1]]


schema = _load()


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_answers_every_operation_without_5xx_and_as_documented(case, tokens):
    for key in tokens:
        case.call_and_validate(
            headers={"Authorization": f"Token {key}"},
            checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        )
