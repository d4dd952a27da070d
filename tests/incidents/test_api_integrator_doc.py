"""docs/integrator.md runs: every `sh` block, in order, in one bash, with curl against a live desk."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model

from accounts.models import ApiToken
from escalation.models import WebhookEndpoint
from incidents.models import Category, Team
from tests.conftest import require_service
from tests.factories import UserFactory

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrator.md"
User = get_user_model()


def _script(base_url: str) -> str:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) >= 8
    text = "\n".join(blocks).replace("export DESK=http://127.0.0.1:8000", f"export DESK={base_url}")
    return "set -euo pipefail\n" + text


@pytest.mark.django_db(transaction=True)
def test_every_example_of_the_integrator_page_works(live_server):
    require_service("curl and jq", bool(shutil.which("curl") and shutil.which("jq")))
    UserFactory(username="root", is_staff=True, is_superuser=True)

    result = subprocess.run(
        ["bash", "-c", _script(live_server.url)],
        env={"PATH": "/usr/bin:/bin", "DESK_ADMIN": "root", "DESK_PASSWORD": "pw-for-tests-2026"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    hook = WebhookEndpoint.objects.get(slug="crm")
    assert (hook.owner_team.slug, hook.events) == ("network", ["incident.created", "incident.sla_breached"])
    network = Team.objects.get(slug="network")
    assert network.manager is None, "ada managed it until she was deactivated"
    assert (network.tier, network.name) == (2, "Network operations")
    assert {c.path: c.active for c in Category.objects.filter(path__startswith="network")} == {
        "network": True,
        "network/remote-access": False,
    }
    grace = User.objects.get(directory__external_id="HR-1042")
    assert list(grace.teams.values_list("slug", flat=True)) == ["network"]
    ada = User.objects.get(username="ada")
    assert not ada.is_active
    assert ada.last_name == "Lovelace"
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["directory sync"]
    # Every write of the page left its audit row, naming who made it.
    audited = {(e.content_type.model, e.action_flag) for e in LogEntry.objects.filter(user__username="root")}
    assert {
        ("team", ADDITION), ("team", CHANGE), ("category", ADDITION), ("category", CHANGE),
        ("user", ADDITION), ("user", CHANGE), ("apitoken", ADDITION), ("apitoken", DELETION),
        ("webhookendpoint", ADDITION), ("webhookendpoint", CHANGE),
    } <= audited  # fmt: skip
