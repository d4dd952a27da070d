from __future__ import annotations

import pytest
from django.core.cache import cache

from intake import events
from intake.models import Integration
from tests.factories import CategoryFactory, TeamFactory, domain


def make_integration(*, classified: bool = False, **kwargs) -> tuple[Integration, str]:
    """An integration and its routing key; `classified` gives it a complete mapping (domain, category, team)."""
    kwargs.setdefault("slug", f"mon-{Integration.objects.count() + 1}")
    kwargs.setdefault("name", kwargs["slug"].title())
    if classified:
        dom = domain("it_service")
        kwargs.setdefault("domain", dom)
        kwargs.setdefault("category", CategoryFactory(domain=dom))
        kwargs.setdefault("team", TeamFactory(domains=["it_service"]))
    integration = Integration(**kwargs)
    raw = integration.set_new_key()
    integration.save()
    events.service_user(integration)
    return integration, raw


@pytest.fixture(autouse=True)
def _fresh_throttle_cache():
    cache.clear()
    yield
    cache.clear()
