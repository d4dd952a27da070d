"""Integrations as configuration-as-code: export without secrets, idempotent apply, errors naming the item."""

from __future__ import annotations

import pytest

from intake.deskconfig import apply_integrations, export_integrations
from intake.models import Integration
from tests.factories import CategoryFactory, TeamFactory, domain

from .conftest import make_integration

pytestmark = pytest.mark.django_db


def item(**overrides):
    return {
        "slug": "prom",
        "name": "Prometheus",
        "domain": "it_service",
        "category": "network",
        "team": "ops",
        "severity_mapping": {"critical": {"impact": 1, "urgency": 1}, "info": {"impact": 3, "urgency": 3}},
        "grouping_window_minutes": 30,
        "rate_limit_per_minute": 120,
        "active": True,
        **overrides,
    }


@pytest.fixture
def targets():
    CategoryFactory(domain=domain("it_service"), slug="network")
    TeamFactory(slug="ops")


def test_export_never_contains_the_routing_key(targets):
    integration, key = make_integration(slug="prom", classified=True)

    exported = export_integrations()

    assert exported[0]["slug"] == "prom"
    text = repr(exported)
    assert key not in text
    assert integration.key_hash not in text
    assert integration.key_prefix not in text


def test_apply_creates_then_changes_nothing_the_second_time(targets):
    first = apply_integrations([item()], dry_run=False)
    second = apply_integrations([item()], dry_run=False)

    assert first == ["integration prom: created (rotate its routing key to get one)"]
    assert second == []
    integration = Integration.objects.get(slug="prom")
    assert integration.category.path == "network"
    assert integration.user.username == "integration-prom"


def test_export_then_apply_round_trips(targets):
    apply_integrations([item()], dry_run=False)

    assert apply_integrations(export_integrations(), dry_run=False) == []


def test_apply_reports_changed_fields(targets):
    apply_integrations([item()], dry_run=False)

    changes = apply_integrations([item(name="Prom", rate_limit_per_minute=60)], dry_run=False)

    assert changes == ["integration prom: name, rate_limit_per_minute changed"]
    assert Integration.objects.get(slug="prom").rate_limit_per_minute == 60


def test_dry_run_writes_nothing(targets):
    changes = apply_integrations([item()], dry_run=True)

    assert changes == ["integration prom: created (rotate its routing key to get one)"]
    assert not Integration.objects.exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"domain": "atlantis"}, "integrations[1].domain: no domain 'atlantis'"),
        ({"category": "nowhere"}, "integrations[1].category: no category 'nowhere' in domain it_service"),
        ({"team": "ghosts"}, "integrations[1].team: no team 'ghosts'"),
        (
            {"severity_mapping": {"fatal": {"impact": 1, "urgency": 1}}},
            "integrations[1].severity_mapping: Unknown severities fatal",
        ),
        (
            {"grouping_window_minutes": 0},
            "integrations[1].grouping_window_minutes: must be a positive whole number",
        ),
        ({"active": "yes"}, "integrations[1].active: must be true or false"),
        ({"colour": "red"}, "integrations[1].colour: unknown field"),
        ({"slug": ""}, "integrations[1].slug: is required"),
        ({"slug": "prom"}, "integrations[1].slug: 'prom' is listed twice"),
        (
            {"domain": "security", "category": None},
            "integrations[1].team: Team ops does not handle security incidents.",
        ),
    ],
)
def test_invalid_items_raise_naming_index_and_field_and_write_nothing(targets, bad, message):
    with pytest.raises(
        ValueError, match="^" + message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
    ):
        apply_integrations([item(), item(**{"slug": "other", **bad})], dry_run=False)

    assert not Integration.objects.exists()


def test_an_item_that_is_not_a_mapping_is_refused():
    with pytest.raises(ValueError, match=r"^integrations\[0\]: must be a mapping"):
        apply_integrations(["prom"], dry_run=False)  # type: ignore[list-item]
