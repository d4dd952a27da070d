"""Who may call each configuration endpoint (users, me, tokens, categories, teams, webhooks): one table, every
cell.

Roles: anonymous, a reporter, an agent, a team manager, an admin (staff) and a superuser. Every write that
succeeds leaves exactly one audit row (django's admin LogEntry) naming the caller.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from rest_framework.test import APIClient

from accounts.models import ApiToken
from escalation.models import WebhookEndpoint
from tests.conftest import client_for
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "reporter", "agent", "manager", "admin", "superuser"]


@pytest.fixture
def world():
    team = TeamFactory(slug="ops")
    manager = agent(team, username="manager")
    team.manager = manager
    team.save()
    category = CategoryFactory(slug="network")
    users = {
        "anonymous": None,
        "reporter": UserFactory(username="reporter"),
        "agent": agent(team, username="agent"),
        "manager": manager,
        "admin": UserFactory(username="admin", is_staff=True),
        "superuser": UserFactory(username="root", is_staff=True, is_superuser=True),
    }
    target = UserFactory(username="target", email="target@example.org")
    UserFactory(username="gone", is_active=False)
    old = CategoryFactory(slug="fax", active=False)
    WebhookEndpoint.objects.create(slug="chat", name="Chat", url="http://127.0.0.1:9/hook")
    tokens = {role: ApiToken.issue(user)[0].pk for role, user in users.items() if user is not None}
    return {
        "users": users, "category": category, "old_category": old, "tokens": tokens,
        "target_token": ApiToken.issue(target)[0].pk,
    }  # fmt: skip


def _client(user) -> APIClient:
    return client_for(user) if user is not None else APIClient()


A, R, G, M, ADM, SU = range(6)  # positions in a row of expectations, in the order of ROLES

# (method, path, body, expected status per role in ROLES order, writes)
MATRIX = [
    ("get", "/api/v1/users/", None, [401, 403, 403, 403, 200, 200], False),
    ("get", "/api/v1/users/target/", None, [401, 403, 403, 403, 200, 200], False),
    ("post", "/api/v1/users/", {"username": "new", "email": "new@example.org"}, [401, 403, 403, 403, 201, 201], True),
    ("patch", "/api/v1/users/target/", {"first_name": "Tara"}, [401, 403, 403, 403, 200, 200], True),
    ("post", "/api/v1/users/target/deactivate/", None, [401, 403, 403, 403, 200, 200], True),
    ("post", "/api/v1/users/sync/", {"email": "dir@example.org", "external_id": "E1"}, [401, 403, 403, 403, 201, 201], True),
    ("get", "/api/v1/users/target/tokens/", None, [401, 403, 403, 403, 200, 200], False),
    ("get", "/api/v1/me/", None, [401, 200, 200, 200, 200, 200], False),
    ("patch", "/api/v1/me/", {"first_name": "Me"}, [401, 200, 200, 200, 200, 200], True),
    ("get", "/api/v1/me/tokens/", None, [401, 200, 200, 200, 200, 200], False),
    ("post", "/api/v1/me/tokens/", {"name": "ci"}, [401, 201, 201, 201, 201, 201], True),
    ("get", "/api/v1/categories/", None, [401, 200, 200, 200, 200, 200], False),
    ("get", "/api/v1/categories/{category}/", None, [401, 200, 200, 200, 200, 200], False),
    ("post", "/api/v1/categories/", {"domain": "it_service", "path": "printers", "name": "Printers"}, [401, 403, 403, 403, 201, 201], True),
    ("patch", "/api/v1/categories/{category}/", {"name": "Networks"}, [401, 403, 403, 403, 200, 200], True),
    ("post", "/api/v1/categories/{category}/deactivate/", None, [401, 403, 403, 403, 200, 200], True),
    ("get", "/api/v1/teams/", None, [401, 403, 200, 200, 200, 200], False),
    ("get", "/api/v1/teams/ops/", None, [401, 403, 200, 200, 200, 200], False),
    ("post", "/api/v1/teams/", {"slug": "db", "name": "Databases", "tier": 2, "domains": ["it_service"]}, [401, 403, 403, 403, 201, 201], True),
    ("patch", "/api/v1/teams/ops/", {"name": "Operations"}, [401, 403, 403, 403, 200, 200], True),
    ("post", "/api/v1/users/gone/activate/", None, [401, 403, 403, 403, 200, 200], True),
    ("delete", "/api/v1/users/target/tokens/{target_token}/", None, [401, 403, 403, 403, 204, 204], True),
    ("delete", "/api/v1/me/tokens/{my_token}/", None, [401, 204, 204, 204, 204, 204], True),
    ("post", "/api/v1/categories/{old_category}/activate/", None, [401, 403, 403, 403, 200, 200], True),
    ("get", "/api/v1/webhooks/", None, [401, 403, 403, 403, 200, 200], False),
    ("get", "/api/v1/webhooks/chat/", None, [401, 403, 403, 403, 200, 200], False),
    ("post", "/api/v1/webhooks/", {"slug": "crm", "name": "CRM", "url": "https://hooks.example.org/desk", "owner_team": "ops", "events": ["incident.created"]}, [401, 403, 403, 403, 201, 201], True),
    ("patch", "/api/v1/webhooks/chat/", {"name": "Team chat"}, [401, 403, 403, 403, 200, 200], True),
    ("post", "/api/v1/webhooks/chat/rotate-secret/", None, [401, 403, 403, 403, 200, 200], True),
    ("delete", "/api/v1/webhooks/chat/", None, [401, 403, 403, 403, 204, 204], True),
]  # fmt: skip

CELLS = [
    pytest.param(method, path, body, role, row[i], writes, id=f"{method} {path} as {role}")
    for method, path, body, row, writes in MATRIX
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("method", "path", "body", "role", "expected", "writes"), CELLS)
def test_permission_matrix(world, method, path, body, role, expected, writes):
    user = world["users"][role]
    url = path.format(
        category=world["category"].pk, old_category=world["old_category"].pk,
        target_token=world["target_token"], my_token=world["tokens"].get(role, 0),
    )  # fmt: skip
    before = LogEntry.objects.count()

    response = getattr(_client(user), method)(url, body, format="json")

    assert response.status_code == expected, response.content
    audit = list(LogEntry.objects.order_by("id")[before:])
    if writes and expected < 300:
        assert len(audit) == 1, "every write leaves one audit row"
        assert audit[0].user_id == user.pk
    else:
        assert audit == []


def test_matrix_covers_every_new_route():
    """A configuration route added later without a row here fails this test."""
    from django.urls import get_resolver

    covered = {path.split("{")[0].rstrip("/") for _, path, *_ in MATRIX}
    prefixes = ("users", "me", "categories", "teams", "webhooks")
    routes = set()
    for pattern in get_resolver().url_patterns:
        if str(pattern.pattern) != "api/v1/":
            continue
        for sub in pattern.url_patterns:
            text = str(sub.pattern).lstrip("^").split("(")[0].split("<")[0].split("\\.")[0].rstrip("$/")
            if text.split("/")[0] in prefixes and "oncall" not in str(sub.pattern):
                routes.add(f"/api/v1/{text}".rstrip("/"))
    missing = {r for r in routes if not any(c.startswith(r) for c in covered)}
    assert not missing
