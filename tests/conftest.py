"""Shared fixtures. Tests that need a real service call `require_service`: on a laptop without it they skip;
with REQUIRE_SERVICES=1 (CI) the skip becomes a failure."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import UserFactory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def require_service(name: str, available: bool, why: str = "") -> None:
    if available:
        return
    message = f"{name} is not available{': ' + why if why else ''}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (REQUIRE_SERVICES=1 turns this skip into a failure)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def postgres() -> None:
    """For tests that need PostgreSQL itself (row locks across connections, triggers, full-text search)."""
    require_service("PostgreSQL", connection.vendor == "postgresql", "set DATABASE_URL=postgres://...")


# Property, fuzz and matrix tests: minutes each. CI runs them once, on PostgreSQL (.ci/run deselects them
# from its SQLite pass, the new user's path, with -m "not fuzz"); `make test` runs them wherever it runs.
FUZZ_FILES = frozenset({
    "tests/test_api_schemathesis.py",
    "tests/visibility/test_matrix.py",
    "tests/visibility/test_state_machine.py",
    "tests/incidents/test_api_config_fuzz.py",
    "tests/escalation/test_webhooks_out_fuzz.py",
    "tests/visibility/test_audit_paths.py",
    "tests/visibility/test_reporter_schema.py",
})  # fmt: skip


def _may_select_fuzz(markexpr: str) -> bool:
    """Whether `-m markexpr` can select an item marked fuzz, whatever other markers it has: tried with fuzz
    set and every combination of the expression's other names. Unsure (keyword arguments) means yes."""
    if not markexpr.strip():
        return True
    if "=" in markexpr:
        return True
    expression = Expression.compile(markexpr)
    names = sorted(set(re.findall(r"[\w:+\-.\[\]\\/]+", markexpr)) - {"and", "or", "not", "fuzz"})
    for values in itertools.product((False, True), repeat=len(names)):
        marks = {**dict(zip(names, values, strict=True)), "fuzz": True}
        if expression.evaluate(lambda name, /, marks=marks, **kwargs: marks.get(name, False)):
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A run that deselects fuzz (CI's `-m 'not fuzz'` runs) does not collect the fuzz files either: collecting
    them costs more than some whole test files (schemathesis builds every operation's coverage examples when it
    collects), only for every item to be deselected."""
    try:
        relative = collection_path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return None
    if relative in FUZZ_FILES and not _may_select_fuzz(config.getoption("markexpr") or ""):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::", 1)[0] in FUZZ_FILES:
            item.add_marker(pytest.mark.fuzz)
        if item.get_closest_marker("postgres") and "postgres" not in getattr(item, "fixturenames", []):
            item.fixturenames.insert(0, "postgres")  # type: ignore[attr-defined]


@pytest.fixture
def keep_connection():
    """For the fuzzers, which call the WSGI app in process: the app closes the database connection when a
    request ends (Django's test client prevents that), which would end the test's transaction. Keep it open."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def reporter_api():
    user = UserFactory()
    client = client_for(user)
    client.user = user
    return client


@pytest.fixture
def attachment_dir(tmp_path):
    """Point the attachments storage (fixed on the model field at import) at a fresh folder."""
    from incidents.models import Attachment

    storage = Attachment._meta.get_field("file").storage
    old = storage._location

    def relocate(location):
        storage._location = location
        for cached in ("base_location", "location"):
            storage.__dict__.pop(cached, None)

    relocate(str(tmp_path))
    yield tmp_path
    relocate(old)


@pytest.fixture(autouse=True)
def _seeded_domains_after_flush(request):
    """Transactional tests (live server, threads, real workers) end with a flush, which removes the rows that
    data migrations seed (the domains of SPEC section 3). Put them back before each such test, whatever
    ran before it."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    import importlib

    from incidents.models import Domain

    seed = importlib.import_module("incidents.migrations.0003_seed_domains")
    for slug, name, restricted, requires_harm_level in seed.DOMAINS:
        Domain.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "restricted": restricted, "requires_harm_level": requires_harm_level},
        )
