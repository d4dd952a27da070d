"""Issue 11: the reporter's representation conforms to the OpenAPI document.

Every incident operation of the schema is called by people who see incidents as their reporter (a reporter,
a confidential reporter, a responder who reported a security incident outside their teams' domains) and by
a responder, on every incident they see, and each successful JSON answer is validated against the
operation's documented response (`oneOf` Incident / ReporterIncident, see incidents.api.schema). The
reporter's component is compared with the reporter's page (templates/incidents/track.html).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from incidents import lifecycle
from incidents.api.serializers import REPORTER_FIELDS
from tests.visibility.test_matrix import _payload, _request
from tests.visibility.world import WHISTLEBLOWER_USERNAME, World, build_world, oracle_sees_as

pytestmark = pytest.mark.django_db

# Fields of the API's reporter view that the page does not print as `incident.<field>`: the API's own
# bookkeeping (url, version, allowed_actions, created_at, updated_at), the raw Markdown beside its HTML, the
# reporter's own identity, and the milestones the page shows as words ("Resolved", "Closed", "you confirmed").
API_ONLY = {"url", "version", "allowed_actions", "created_at", "updated_at", "description", "reporter",
            "reporter_email", "confidential", "resolved_at", "closed_at", "reporter_confirmed_at"}  # fmt: skip


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` in JSON Schema terms (the rest of the document is JSON Schema already)."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def incident_operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (path, method.upper())
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/incidents/")
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    )


def nonconforming(schema: dict[str, Any], path: str, method: str, code: int, body: str) -> str | None:
    """Why this answer does not conform to the operation's documented response, or None."""
    responses = schema["paths"][path][method.lower()]["responses"]
    documented = responses.get(str(code))
    if documented is None:
        return f"status {code} is not documented"
    content = documented.get("content", {})
    if "application/json" not in content:
        return None  # a file, CSV, or a status described in words only
    root = {
        **_nullable_to_json_schema(copy.deepcopy(content["application/json"]["schema"])),
        "components": _nullable_to_json_schema(copy.deepcopy(schema["components"])),
    }
    try:
        jsonschema.Draft202012Validator(root).validate(json.loads(body))
    except jsonschema.ValidationError as exc:
        return f"{exc.message[:300]} at {list(exc.absolute_path)}"
    return None


def _resolve_for_the_reporter(world: World) -> None:
    """Reporter A's IT incident is resolved, so that their confirm and reopen succeed."""
    target = world.targets["it"]
    worker = world.users["_x"]
    incident = lifecycle.acknowledge_incident(target.incident, actor=worker)
    target.incident = lifecycle.resolve_incident(incident, actor=worker, summary="Restarted the spooler")


PEOPLE = ("reporter_a", "confidential_reporter", "agent_x")


def _person(world: World, name: str) -> Any:
    if name == "confidential_reporter":
        return world.targets["confidential"].incident.reporter
    return world.user(name)


def _sees(world: World, name: str, incident: Any) -> str | None:
    if name == "confidential_reporter":
        return "reporter" if incident.reporter_id == _person(world, name).pk else None
    return oracle_sees_as(world, name, incident)


@pytest.mark.parametrize("person", PEOPLE)
def test_every_incident_answer_conforms_to_the_schema(person, schema, attachment_dir):
    world = build_world()
    _resolve_for_the_reporter(world)
    user = _person(world, person)
    client = Client()
    client.force_login(user)
    visible = [t for t in world.targets.values() if _sees(world, person, t.incident) is not None]
    as_reporter = [t for t in visible if _sees(world, person, t.incident) == "reporter"]
    assert as_reporter, f"{person} sees no incident as its reporter: the test would prove nothing"
    failures: list[str] = []
    validated: dict[str, int] = {"reporter": 0, "responder": 0}
    for path, method in incident_operations(schema):
        key = path.lstrip("/")
        for target in visible if "{reference}" in path else [None]:
            values = {"reference": "", "attachment_id": "1"}
            if target is not None:
                values = {"reference": target.incident.reference, "attachment_id": str(target.attachment_id)}
            url = path.replace("{reference}", values["reference"]).replace(
                "{attachment_id}", values["attachment_id"]
            )
            data = _payload(key, target, world)
            if key == "api/v1/incidents/" and method == "POST":
                data = {"title": "Printer on fire", "description": "Smoke from tray 2."}
            if key.endswith(("/confirm/", "/reopen/")) and target is not None:
                data["version"] = target.incident.version
            cache.clear()
            code, body = _request(client, method, url, data)
            if code >= 500:
                failures.append(f"{method} {url}: {code}")
                continue
            if not 200 <= code < 300:
                continue
            why = nonconforming(schema, path, method, code, body)
            if why:
                failures.append(f"{person} {method} {url} -> {code}: {why}")
            elif target is not None and "application/json" in str(
                schema["paths"][path][method.lower()]["responses"][str(code)].get("content", {})
            ):
                validated[_sees(world, person, target.incident) or "reporter"] += 1
            body_json = json.loads(body) if body.startswith("{") else {}
            if (
                target is not None
                and "reference" in body_json
                and _sees(world, person, target.incident) == ("reporter")
            ):
                extra = set(body_json) - REPORTER_FIELDS
                if extra:
                    failures.append(f"{person} {method} {url}: internal fields {sorted(extra)}")
            if WHISTLEBLOWER_USERNAME in body and person not in ("confidential_reporter",):
                failures.append(f"{person} {method} {url}: the confidential reporter's identity")
    print(f"reporter schema: {person}: validated {validated}")
    assert not failures, "\n".join(failures)
    assert validated["reporter"] >= 3  # detail and more, as the reporter
    if person == "agent_x":
        assert validated["responder"] >= 3  # and the responder's shape, through the same oneOf


def test_the_reporter_component_has_exactly_the_fields_of_the_reporters_page(schema):
    component = schema["components"]["schemas"]["ReporterIncident"]
    assert set(component["properties"]) == REPORTER_FIELDS
    assert component["additionalProperties"] is False
    page = (Path(settings.BASE_DIR) / "templates/incidents/track.html").read_text()
    shown = set(re.findall(r"incident\.(\w+)", page)) - {"tracking_token"}  # the link's secret, not a field
    assert shown, "the page reads no field of the incident?"
    assert shown <= REPORTER_FIELDS, f"the page shows fields the API hides: {shown - REPORTER_FIELDS}"
    assert REPORTER_FIELDS - shown == API_ONLY
    # Nothing of the responder's shape: no team, assignee, priority, override reason, SLA, targets.
    internal = {"team", "assignee", "priority", "priority_override_reason", "sla", "targets", "domain"}
    assert not internal & set(component["properties"])
    # The reporter's identity is absent (not empty) on a confidential report: optional in both shapes.
    for name in ("Incident", "ReporterIncident"):
        required = set(schema["components"]["schemas"][name].get("required", []))
        assert not {"reporter", "reporter_email"} & required


def test_an_answer_matches_exactly_one_shape(schema):
    """`oneOf` decides: a responder's answer is no ReporterIncident, a reporter's is no Incident."""
    incident_ref = {"$ref": "#/components/schemas/IncidentAsSeen"}
    components = _nullable_to_json_schema(copy.deepcopy(schema["components"]))
    validator = jsonschema.Draft202012Validator({**incident_ref, "components": components})
    reporter_answer = dict.fromkeys(REPORTER_FIELDS)
    assert not validator.is_valid({**reporter_answer, "team": "team-x"})  # a reporter's with a leaked field
